"""The staff pages in a real browser (Debian's Chromium through Playwright) against the real app.

The app runs under uvicorn in a thread on a free 127.0.0.1 port, on a fresh SQLite database seeded
like the TestClient tests (``test_web_pages.seed_world``: the 300-loan demo, two weeks of daily runs
and of guard activity). Its clock is today at 10:00 in Beijing and runs on from there, so that the
daytime actions are daytime whenever the suite runs. Screenshots (zh and en, workbench and
dashboard) go to ``artifacts/screenshots/`` (git-ignored).

Without /usr/bin/chromium (``COLLECTGUARD_CHROMIUM`` names another binary) the module skips with a
message; under ``CI=true`` that is a failure.
Never ``playwright install``: no browser is downloaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_web_pages import PASSWORD, THIRD_PARTY_SMS, seed_world

from collectguard.api.app import create_app
from collectguard.services.daily import HOME_ZONE
from conftest import IN_CI, create_database, make_container

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("COLLECTGUARD_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _need_browser() -> Any:
    reason = None
    if not CHROMIUM.exists():
        reason = f"browser tests skipped: {CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "browser tests skipped: the playwright package is not installed (pip install -e '.[dev]')"
    if reason:
        if IN_CI:
            pytest.fail(reason.replace("skipped", "cannot run under CI=true"))
        pytest.skip(reason)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def container_at_ten(db: Any) -> Any:
    """A container whose clock says today 10:00 in Beijing and runs on from there."""
    today = dt.datetime.now(HOME_ZONE).date()
    anchor, started = dt.datetime.combine(today, dt.time(10, 0), HOME_ZONE).astimezone(dt.UTC), time.monotonic()
    return dataclasses.replace(make_container(db, log_json=False, log_level="WARNING"),
                               clock=lambda: anchor + dt.timedelta(seconds=time.monotonic() - started))


@contextlib.contextmanager
def serve_in_thread(c: Any) -> Iterator[str]:
    """The real app under uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(c), host="127.0.0.1", port=port, log_config=None,
                                        access_log=False, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (skips, or fails under CI, when it is missing)."""
    sync_playwright = _need_browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _need_browser()
    db = create_database("sqlite", tmp_path_factory)
    c = container_at_ten(db)
    seed_world(c, days=12, per_day=5)
    with serve_in_thread(c) as base:
        yield base
    db.close()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def sign_in(browser: Any, base: str, username: str, **context: Any) -> Any:
    options = {"locale": "zh-CN", "viewport": {"width": 1280, "height": 900}} | context
    page = browser.new_context(**options).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/signin")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def unlabelled(page: Any) -> list[str]:
    """Visible form fields without a label (a <label for>, an enclosing label or aria-label)."""
    return page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(e => e.offsetParent !== null && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
        .map(e => e.name || e.id)""")


def test_collector_works_a_case_the_guard_blocks(server: str, browser: Any) -> None:
    page = sign_in(browser, server, "li.collector")
    assert page.url.endswith("/work")
    rows = page.locator("table#queue tbody tr")
    assert rows.count() > 0 and "今日催收队列" in page.inner_text("h1")
    page.screenshot(path=str(SHOTS / "workbench_queue_zh.png"), full_page=False)

    page.keyboard.press("j")  # keyboard: select the first row, open it
    assert "selected" in (rows.nth(0).get_attribute("class") or "")
    page.keyboard.press("o")
    page.wait_for_url(re.compile(r"/work/cases/\d+$"))
    assert re.search(r"\d{3}\*{4}\d{4}", page.inner_text("[data-masked-phone]"))
    assert "*" in page.inner_text("[data-masked-name]")
    assert unlabelled(page) == []

    day = page.input_value("#time")[:10]
    page.keyboard.press("c")  # keyboard: to the check form
    assert page.evaluate("document.activeElement.id") == "channel"
    page.fill("#time", f"{day}T23:00")
    page.click("#check-btn")
    page.wait_for_selector("#verdict")
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-verdict") == "deny"
    assert "不可联系" in verdict.inner_text()
    assert page.locator('#verdict cite[data-citation="CN:GBT45251"]').count() == 1
    verdict.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "workbench_case_blocked_zh.png"), full_page=True)

    relatives = page.locator("#recipient option[value^='contact:']")
    if relatives.count():  # an SMS telling a relative about the debt
        page.select_option("#channel", "sms")
        page.select_option("#recipient", relatives.first.get_attribute("value"))
        page.fill("#time", f"{day}T10:30")
        page.fill("#message", THIRD_PARTY_SMS)
        page.click("#check-btn")
        page.wait_for_selector("#verdict")
        assert page.locator("#verdict").get_attribute("data-verdict") == "deny"
        assert page.locator('#verdict li[data-rule="cn.third_party.disclosure"]').count() == 1

    page.click("a.lang")  # to English, on the same case
    page.wait_for_load_state("networkidle")
    assert "Check before contact" in page.inner_text("body")
    page.fill("#time", f"{day}T23:00")
    page.select_option("#channel", "call")
    page.select_option("#recipient", "borrower")
    page.fill("#message", "")
    page.click("#check-btn")
    page.wait_for_selector("#verdict")
    assert "Do not contact" in page.inner_text("#verdict") and "Quiet hours" in page.inner_text("#verdict")
    page.screenshot(path=str(SHOTS / "workbench_case_blocked_en.png"), full_page=True)
    page.goto(f"{server}/work")
    assert "Today's queue" in page.inner_text("h1")
    page.screenshot(path=str(SHOTS / "workbench_queue_en.png"), full_page=False)

    mobile = sign_in(browser, server, "li.collector", viewport={"width": 390, "height": 844}, is_mobile=True)
    mobile.goto(page.url.replace("/work", "/work?lang=zh-CN"))
    mobile.locator("table#queue tbody tr a").first.click()
    mobile.wait_for_url(re.compile(r"/work/cases/\d+$"))
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the case page scrolls sideways on a phone ({width}px)"
    mobile.screenshot(path=str(SHOTS / "workbench_case_mobile_zh.png"), full_page=False)


def test_officer_sees_charts_with_real_data(server: str, browser: Any) -> None:
    page = sign_in(browser, server, "wang.compliance")
    assert page.url.endswith("/compliance")
    bars = page.locator("svg[data-chart=bar] rect.bar")
    points = page.locator("svg[data-chart=line] circle.point")
    assert bars.count() > 0 and points.count() >= 30
    values = [float(v) for v in page.eval_on_selector_all("svg rect.bar", "els => els.map(e => e.dataset.value)")]
    assert sum(values) > 0
    assert int(page.inner_text('[data-figure="blocked"]').replace(",", "")) > 0
    assert page.locator("svg[role=img] > title").count() == page.locator("svg[role=img]").count() == 7
    page.screenshot(path=str(SHOTS / "dashboard_zh.png"), full_page=True)

    page.locator('svg[data-chart=hbar] a').first.click()  # drill down: a rule -> its decisions -> one
    page.wait_for_url(re.compile(r"/compliance/decisions\?"))
    assert int(page.get_attribute("[data-total]", "data-total")) > 0
    page.locator("table#decisions tbody a").first.click()
    page.wait_for_url(re.compile(r"/compliance/decisions/\d+$"))
    assert page.locator("[data-verdict=deny]").count() == 1 and "jurisdiction" in page.inner_text("pre.json")

    page.goto(f"{server}/compliance?lang=en")
    assert "Compliance dashboard" in page.inner_text("h1") and "Blocked contacts" in page.inner_text("body")
    page.screenshot(path=str(SHOTS / "dashboard_en.png"), full_page=True)

    page.goto(f"{server}/compliance/audit")
    page.click("#verify-btn")
    page.wait_for_selector("[data-audit]")
    assert page.get_attribute("[data-audit]", "data-audit") == "intact"
