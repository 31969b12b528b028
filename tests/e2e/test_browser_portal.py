"""The public self-check (zh and en) and the borrower portal in a real browser (Debian's Chromium
through Playwright) against the real app.

The app runs under uvicorn in a thread on a free 127.0.0.1 port, on a fresh SQLite database seeded
like the portal's TestClient tests (``test_portal.seed_portal``: a small demo portfolio, an
agreed-hours consent, a call made and a call the guard blocked). Its clock is today at 10:00 in
Beijing and runs on from there. The borrower signs in with the code the server sent, read back
in-process from the outbox (where a non-development server puts it for the SMS sender).
Screenshots go to ``artifacts/screenshots/`` (git-ignored).

Without /usr/bin/chromium (``COLLECTGUARD_CHROMIUM`` names another binary) the module skips with a
message; under ``CI=true`` that is a failure. Never ``playwright install``: no browser is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from test_browser_ui import SHOTS, _need_browser, chromium, container_at_ten, serve_in_thread, unlabelled
from test_portal import AGREED, _staff, last_code, seed_portal

from collectguard.adapters.db.models import Consent
from collectguard.services import accounts, workbench
from collectguard.services.daily import HOME_ZONE
from conftest import create_database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    _need_browser()
    db = create_database("sqlite", tmp_path_factory)
    c = container_at_ten(db)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
        people = seed_portal(c)
    with serve_in_thread(c) as base:
        yield base, c, people
    db.close()


@pytest.fixture(scope="module")
def browser(server: Any) -> Iterator[Any]:
    with chromium() as b:
        yield b


def new_page(browser: Any, **context: Any) -> Any:
    options = {"locale": "zh-CN", "viewport": {"width": 390, "height": 844}, "is_mobile": True} | context
    page = browser.new_context(**options).new_page()
    page.set_default_timeout(15_000)
    return page


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"{page.url} scrolls sideways on a phone ({width}px)"


# ---------------------------------------------------------------- the self-check (public)

def test_self_check_questionnaire_in_chinese(server: Any, browser: Any) -> None:
    base = server[0]
    page = new_page(browser)
    page.goto(f"{base}/self-check")
    assert "合法性自查" in page.inner_text("h1")
    assert unlabelled(page) == []
    for name, value in (("who", "borrower"), ("who", "contact_list_entry"), ("how", "call"), ("how", "sms"),
                        ("said", "debt_existence")):
        page.check(f"input[name={name}][value={value}]")
    page.fill("input[name=time]", "23:30")
    page.click("#selfcheck-form button[type=submit]")
    page.wait_for_selector("[data-verdict]")
    assert page.get_attribute("[data-verdict]", "data-verdict") == "unlawful"
    assert "违法" in page.inner_text(".verdict .big")
    assert page.locator('#findings li[data-rule="cn.quiet_hours"]').count() == 1
    assert page.locator('#findings li[data-rule="cn.contact_list_source"]').count() == 1
    assert page.locator('#findings [data-citation="CN:GBT45251"]').count() >= 1
    assert "22:00" in page.inner_text('#findings li[data-rule="cn.quiet_hours"]')  # the article's text, not only its id
    no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / "selfcheck_result_zh.png"), full_page=True)


def test_self_check_free_text_in_english(server: Any, browser: Any) -> None:
    base = server[0]
    page = new_page(browser, locale="en-US")
    page.goto(f"{base}/self-check?lang=en")
    assert "Self-check" in page.inner_text("h1")
    page.fill("#sc-text", "They called me at 11:30 pm and texted my sister that I owe money")
    page.click("#selfcheck-form button[type=submit]")
    page.wait_for_selector("[data-verdict]")
    assert page.get_attribute("[data-verdict]", "data-verdict") == "unlawful"
    assert "Unlawful" in page.inner_text(".verdict .big")
    disclosure = page.locator('#findings li[data-rule="cn.third_party.disclosure"]')
    assert disclosure.count() == 1 and disclosure.locator("[data-citation]").count() >= 1
    assert page.locator('#findings [data-citation="CN:GBT45251"]').count() >= 1
    page.screenshot(path=str(SHOTS / "selfcheck_result_en.png"), full_page=True)


# ---------------------------------------------------------------- the portal

def test_borrower_signs_in_and_withdraws_a_consent(server: Any, browser: Any) -> None:
    base, c, people = server
    me = people["main"]
    page = new_page(browser)
    page.goto(f"{base}/portal")
    assert unlabelled(page) == []
    page.fill("#phone", me["phone"].removeprefix("+86"))  # typed as people write it, without +86
    page.click("#send-code")
    page.wait_for_selector("#code-form")
    assert "****" in page.inner_text("#code-sent")
    page.fill("#code", last_code(c, me["id"]))
    page.click("#verify-code")
    page.wait_for_selector("#loans")
    assert page.locator("[data-loan]").count() >= 1 and me["name"] not in page.inner_text("body")
    no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / "portal_overview_zh.png"), full_page=True)

    page.click("nav.ptabs a[href^='/portal/contacts']")
    page.wait_for_selector("#contacts")
    blocked = page.locator("li[data-kind=blocked]")
    assert blocked.count() >= 1 and blocked.first.locator('cite[data-citation="CN:GBT45251"]').count() == 1
    assert page.locator("li[data-kind=contact]").count() >= 1
    no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / "portal_contacts_zh.png"), full_page=True)

    with c.uow(write=False) as s:
        consent_id = s.scalar(select(Consent.id).where(Consent.borrower_id == me["id"], Consent.kind == "agreed_hours",
                                                       Consent.withdrawn_at.is_(None)))
        col = _staff(s, "li.collector")
    page.click("nav.ptabs a[href^='/portal/consents']")
    item = page.locator(f"#consent-{consent_id}")
    assert item.get_attribute("data-active") == "yes" and AGREED in item.inner_text()
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))  # "are you sure?" before withdrawing
    item.locator(f"button[data-withdraw='{consent_id}']").click()
    page.wait_for_selector("#withdrawn-flash")
    assert asked and "立即生效" in asked[0]
    assert page.locator(f"#consent-{consent_id}").get_attribute("data-active") == "no"
    assert "已撤回" in page.inner_text(f"#consent-{consent_id}")
    page.screenshot(path=str(SHOTS / "portal_consent_withdrawn_zh.png"), full_page=True)
    # Effective immediately: the next guard decision inside the once-agreed hours is a refusal.
    late = c.clock().astimezone(HOME_ZONE).replace(hour=22, minute=30, tzinfo=None)
    after = workbench.case_check(c, principal=col, case_id=me["case"], channel="call", recipient="borrower", when=late)
    assert after["decision"]["verdict"] == "deny"

    page.click("a.lang")  # English on the same page
    page.wait_for_selector("#consents")
    assert "My consents" in page.inner_text("h1") and "Withdrawn" in page.inner_text(f"#consent-{consent_id}")
    page.screenshot(path=str(SHOTS / "portal_consents_en.png"), full_page=True)
    page.click("#signout")
    page.wait_for_selector("#phone-form")
