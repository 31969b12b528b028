"""The borrower portal through the real app (TestClient), on SQLite and PostgreSQL.

One world per backend: a small demo portfolio after a daily run, staff users, and guard activity
about one borrower (a contact made, a late call the guard blocked, a call allowed inside agreed
hours). Sign-in codes are read back in-process from the outbox, where a non-development server
puts them (encrypted) for the SMS sender; in development they go to the log instead (tested too).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from typing import Any

import pytest
import structlog
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from collectguard.adapters.db.models import (
    ApiToken,
    AuditRecord,
    Borrower,
    Case,
    Consent,
    Loan,
    RightsRequest,
    Tenant,
    User,
)
from collectguard.adapters.db.models_outbox import OutboxMessage
from collectguard.api.app import create_app
from collectguard.bootstrap import Container
from collectguard.domain.delinquency import DEFAULT_BUCKETS
from collectguard.domain.validation import CONSENT_KINDS
from collectguard.errors import Unauthenticated
from collectguard.services import accounts, approvals, complaints, consents, portal_signin, workbench
from collectguard.services.authz import ROLES, Principal
from collectguard.services.daily import HOME_ZONE, daily_run
from collectguard.services.demo import DEMO_LENDER, demo_seed
from conftest import FIXED_NOW, create_database, make_container

PASSWORD = "correct horse battery"
STAFF = {"li.collector": "collector", "wang.compliance": "compliance_officer", "zhang.lead": "team_lead"}
AGREED = "21:00-23:00"
UNKNOWN_PHONE = "13912345678"


def _staff(s: Any, username: str) -> Principal:
    user = s.scalar(select(User).where(User.username == username))
    tenant = s.get(Tenant, user.tenant_id)
    return Principal(tenant_id=tenant.id, tenant_code=tenant.code, role=user.role, user_id=user.id, username=username)


def local(hh: int, mm: int = 0) -> dt.datetime:
    """Today (the fixed clock's day) at hh:mm, Beijing wall time, as the workbench takes it."""
    return FIXED_NOW.astimezone(HOME_ZONE).replace(hour=hh, minute=mm, tzinfo=None)


def seed_portal(c: Container) -> dict[str, dict[str, Any]]:
    """A small portfolio after a daily run, staff users, and guard activity about the "main" borrower:
    an agreed-hours consent (21:00-23:00), a call made inside those hours, a later call the guard blocked.
    Returns the borrowers the tests use (id, phone and name in clear, open case) by role in the tests."""
    now = c.clock()
    today = now.astimezone(HOME_ZONE).replace(tzinfo=None)
    demo_seed(c, loans=60, seed=42)
    daily_run(c)
    with c.uow() as s:
        for username, role in STAFF.items():
            accounts.user_create(s, tenant_code=DEMO_LENDER, username=username, role=role, password=PASSWORD,
                                 actor="test", now=now)
        rows = s.execute(select(Borrower.id, Case.id).join(Case, Case.borrower_id == Borrower.id)
                         .where(Borrower.jurisdiction == "CN", Case.status == "open",
                                Case.agency_tenant_id.is_(None)).order_by(Borrower.id)).all()
        firsts = list(dict.fromkeys(b for b, _ in rows))
        names = ("main", "flow", "cap", "other", "log", "out")
        assert len(firsts) >= len(names), "the demo needs six CN borrowers in collection"
        people = {}
        for name, bid in zip(names, firsts, strict=False):
            b = s.get(Borrower, bid)
            people[name] = {"id": bid, "phone": c.cipher.decrypt(b.phone_enc), "name": c.cipher.decrypt(b.name_enc),
                            "case": next(cs for b_, cs in rows if b_ == bid)}
        main = s.get(Borrower, people["main"]["id"])
        for r in consents.consents_of(s, borrower_id=main.id):
            if r.kind == "agreed_hours" and r.withdrawn_at is None:
                r.withdrawn_at = now
        consents.consent_give(s, borrower=main, kind="agreed_hours", form="separate", channel="app",
                              actor="test", now=now - dt.timedelta(days=3), hours=AGREED)
        col = _staff(s, "li.collector")
    case = people["main"]["case"]
    out = workbench.case_attempt_record(c, principal=col, case_id=case, channel="call", recipient="borrower",
                                        when=today.replace(hour=22, minute=10))
    people["main"]["attempt"] = out["attempt_id"]
    late = workbench.case_check(c, principal=col, case_id=case, channel="call", recipient="borrower",
                                when=today.replace(hour=23, minute=30))
    assert late["decision"]["verdict"] == "deny"
    return people


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    db = create_database(request.param, tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
        mp.setattr(accounts, "_dummy_hash", None)
        c = make_container(db, log_json=False, log_level="WARNING")
        yield c, seed_portal(c)
    db.close()


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def last_code(c: Container, borrower_id: int) -> str | None:
    """The newest sign-in code sent to ``borrower_id``, decrypted from the outbox (what the SMS sender gets)."""
    with c.uow(write=False) as s:
        rows = list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "sms")
                              .order_by(OutboxMessage.id.desc())))
    for m in rows:
        if m.payload.get("purpose") == "portal_otp" and m.payload.get("borrower_id") == borrower_id:
            return re.search(r"\d{6}", c.cipher.decrypt(base64.b64decode(m.payload["body_enc"]))).group(0)
    return None


def send_code(client: TestClient, phone: str, **query: str) -> Any:
    page = client.get("/portal", params=query)
    return client.post("/portal", params=query, data={"step": "send", "phone": phone, "csrf_token": csrf(page.text)})


def verify(client: TestClient, phone: str, code: str) -> Any:
    token = csrf(client.get("/portal").text)
    return client.post("/portal", data={"step": "verify", "phone": phone, "code": code, "csrf_token": token},
                       follow_redirects=False)


def sign_in(c: Container, person: dict[str, Any]) -> TestClient:
    client = TestClient(create_app(c))
    assert send_code(client, person["phone"]).status_code == 200
    r = verify(client, person["phone"], last_code(c, person["id"]))
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.text[:300]
    return client


@pytest.fixture(scope="module")
def borrower(world):
    return sign_in(world[0], world[1]["main"])


def officer_client(c: Container) -> TestClient:
    client = TestClient(create_app(c))
    page = client.get("/signin")
    r = client.post("/signin", data={"username": "wang.compliance", "password": PASSWORD,
                                     "csrf_token": csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    return client


# ---------------------------------------------------------------- signing in

def test_sign_in_page_in_chinese_and_english(world):
    client = TestClient(create_app(world[0]))
    zh = client.get("/portal")
    assert zh.status_code == 200 and "获取验证码" in zh.text and 'id="phone"' in zh.text
    en = client.get("/portal?lang=en")
    assert "Send me a code" in en.text and 'lang="en"' in en.text


def test_the_answer_does_not_reveal_whether_a_number_is_on_record(world):
    c, people = world
    client = TestClient(create_app(c))
    known_phone = people["flow"]["phone"].removeprefix("+86")
    known = send_code(client, known_phone)
    unknown = send_code(client, UNKNOWN_PHONE)
    assert known.status_code == unknown.status_code == 200
    strip = lambda html: re.sub(r'value="[^"]*"|\d{3}\*{4}\d{4}', "", html)  # noqa: E731 - the number echoed back
    assert strip(known.text) == strip(unknown.text)
    assert last_code(c, people["flow"]["id"]) is not None  # the known number got a code; nobody else got one
    with c.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.role == "portal-otp")) >= 1


def test_a_malformed_number_is_bad_input(world):
    client = TestClient(create_app(world[0]))
    r = send_code(client, "not a phone")
    assert r.status_code == 422 and "请输入正确的手机号" in r.text


def test_wrong_code_then_the_right_one_then_reuse(world):
    c, people = world
    person = people["flow"]
    client = TestClient(create_app(c))
    send_code(client, person["phone"])
    code = last_code(c, person["id"])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    bad = verify(client, person["phone"], wrong)
    assert bad.status_code == 401 and "验证码错误或已过期" in bad.text
    ok = verify(client, person["phone"], code)
    assert ok.status_code == 303 and "cg_session" in ok.headers["set-cookie"]
    assert 'data-loan="' in client.get("/portal").text
    again = verify(TestClient(create_app(c)), person["phone"], code)
    assert again.status_code == 401  # single use
    with c.uow(write=False) as s:
        user = s.scalar(select(User).where(User.borrower_id == person["id"], User.role == "borrower"))
        assert user is not None and person["phone"][-8:] not in user.username
        assert not accounts.password_verify(user.password_hash, "")  # no password sign-in for a portal user
        actions = set(s.scalars(select(AuditRecord.action).where(AuditRecord.subject == f"borrower:{person['id']}")))
    assert {"portal.code_issue", "portal.code_wrong"} <= actions


def test_five_wrong_tries_kill_the_code(world):
    c, people = world
    person = people["flow"]
    portal_signin.portal_code_request(c, phone=person["phone"])
    code = last_code(c, person["id"])
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    for _ in range(portal_signin.MAX_TRIES):
        with pytest.raises(Unauthenticated):
            portal_signin.portal_code_verify(c, phone=person["phone"], code=wrong)
    with pytest.raises(Unauthenticated):
        portal_signin.portal_code_verify(c, phone=person["phone"], code=code)


def test_an_expired_code_is_refused(world):
    c, people = world
    person = people["flow"]
    portal_signin.portal_code_request(c, phone=person["phone"])
    code = last_code(c, person["id"])
    later = dataclasses.replace(c, clock=lambda: FIXED_NOW + portal_signin.CODE_TTL + dt.timedelta(seconds=1))
    r = verify(TestClient(create_app(later)), person["phone"], code)
    assert r.status_code == 401
    assert [m.borrower_id for m in portal_signin.portal_code_verify(c, phone=person["phone"], code=code)] == [
        person["id"]]  # still valid inside its five minutes


def test_a_new_code_replaces_the_old_one(world):
    c, people = world
    person = people["flow"]
    portal_signin.portal_code_request(c, phone=person["phone"])
    first = last_code(c, person["id"])
    portal_signin.portal_code_request(c, phone=person["phone"])
    second = last_code(c, person["id"])
    if first != second:
        with pytest.raises(Unauthenticated):
            portal_signin.portal_code_verify(c, phone=person["phone"], code=first)
    assert portal_signin.portal_code_verify(c, phone=person["phone"], code=second)


def test_codes_per_number_and_day_are_capped(world):
    c, people = world
    person = people["cap"]

    def sent() -> int:
        with c.uow(write=False) as s:
            return sum(1 for m in s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "sms"))
                       if m.payload.get("borrower_id") == person["id"])

    for _ in range(portal_signin.MAX_CODES_PER_DAY + 2):
        portal_signin.portal_code_request(c, phone=person["phone"])
    assert sent() == portal_signin.MAX_CODES_PER_DAY
    tomorrow = dataclasses.replace(c, clock=lambda: FIXED_NOW + dt.timedelta(days=1))
    portal_signin.portal_code_request(tomorrow, phone=person["phone"])
    assert sent() == portal_signin.MAX_CODES_PER_DAY + 1


def test_sending_codes_is_rate_limited_per_number(world):
    c, _people = world
    client = TestClient(create_app(c))
    answers = [send_code(client, UNKNOWN_PHONE).status_code for _ in range(4)]
    assert answers[:3] == [200, 200, 200] and answers[3] == 429


def test_a_code_is_never_a_bearer_token(world):
    c, people = world
    person = people["flow"]
    portal_signin.portal_code_request(c, phone=person["phone"])
    code = last_code(c, person["id"])
    client = TestClient(create_app(c))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {code}"}).status_code == 401
    assert portal_signin.OTP_ROLE not in ROLES


def test_development_prints_the_code_to_the_log_and_nothing_else_does(world):
    c, people = world
    person = people["log"]
    for env, logged in (("development", True), ("test", False), ("production", False)):
        ce = dataclasses.replace(c, settings=c.settings.model_copy(update={"environment": env}))
        with structlog.testing.capture_logs() as logs:
            portal_signin.portal_code_request(ce, phone=person["phone"])
        codes = [e["code"] for e in logs if "code" in e]
        assert bool(codes) is logged, env
        if logged:
            assert all(re.fullmatch(r"\d{6}", x) for x in codes)
        else:  # the code went to the outbox, encrypted: neither the log nor the payload holds it in clear
            code = last_code(c, person["id"])
            assert code not in json.dumps(logs, default=str)
            with c.uow(write=False) as s:
                newest = s.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
                assert code not in json.dumps(newest.payload)


def test_one_number_at_two_lenders_chooses_which_to_open(world):
    c, people = world
    person = people["other"]
    with c.uow() as s:
        second = Tenant(code="second-lender", name="第二贷款公司", kind="lender", licensed=True, created_at=FIXED_NOW)
        s.add(second)
        s.flush()
        src = s.get(Borrower, person["id"])
        twin = Borrower(tenant_id=second.id, ext_id="X1", name_enc=src.name_enc, phone_enc=src.phone_enc,
                        phone_hmac=src.phone_hmac, jurisdiction="CN", timezone="Asia/Shanghai", language="zh-CN",
                        status="active", created_at=FIXED_NOW)
        s.add(twin)
        s.flush()
        twin_id, second_id = twin.id, second.id
    client = TestClient(create_app(c))
    send_code(client, person["phone"])
    page = verify(client, person["phone"], last_code(c, person["id"]))
    assert page.status_code == 200 and "选择贷款机构" in page.text and "第二贷款公司" in page.text
    ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
    forged = client.post("/portal", data={"step": "choose", "ticket": ticket[:-2] + "xx", "borrower": str(twin_id),
                                          "csrf_token": csrf(page.text)}, follow_redirects=False)
    assert forged.status_code == 403
    elsewhere = TestClient(create_app(c))  # another browser: the ticket is bound to this one's CSRF cookie
    stolen = elsewhere.post("/portal", data={"step": "choose", "ticket": ticket, "borrower": str(twin_id),
                                             "csrf_token": csrf(elsewhere.get("/portal").text)})
    assert stolen.status_code == 403
    ok = client.post("/portal", data={"step": "choose", "ticket": ticket, "borrower": str(twin_id),
                                      "csrf_token": csrf(page.text)}, follow_redirects=False)
    assert ok.status_code == 303
    home = client.get("/portal")
    assert "second-lender" in home.text and "第二贷款公司" in home.text and 'data-loan="' not in home.text
    with c.uow(write=False) as s:
        user = s.scalar(select(User).where(User.borrower_id == twin_id))
        assert user.tenant_id == second_id


def test_sign_in_posts_need_the_csrf_token(world):
    client = TestClient(create_app(world[0]))
    client.get("/portal")
    r = client.post("/portal", data={"step": "send", "phone": world[1]["flow"]["phone"]})
    assert r.status_code == 403 and "页面已过期" in r.text


def test_staff_see_the_sign_in_form_and_no_portal_pages(world):
    officer = officer_client(world[0])
    assert "只对借款人本人开放" in officer.get("/portal").text
    r = officer.get("/portal/contacts")
    assert r.status_code == 403 and "无权访问" in r.text


def test_pages_need_a_session(world):
    client = TestClient(create_app(world[0]))
    for path in ("/portal/contacts", "/portal/consents", "/portal/loans/1"):
        r = client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
        # To the portal's own sign-in (a one-time code), never the staff one and never the page itself.
        assert r.status_code == 303 and r.headers["location"] == "/portal", path


# ---------------------------------------------------------------- the pages

def test_overview_shows_loans_with_masked_personal_data(world, borrower):
    c, people = world
    me = people["main"]
    html = borrower.get("/portal").text
    assert me["name"] not in html and me["phone"].removeprefix("+86") not in html
    assert re.search(r"data-masked-phone>1\d{2}\*{4}\d{4}<", html)
    with c.uow(write=False) as s:
        loans = list(s.scalars(select(Loan).where(Loan.borrower_id == me["id"])))
        others = s.scalar(select(Loan.id).where(Loan.borrower_id == people["other"]["id"]))
    assert {int(x) for x in re.findall(r'data-loan="(\d+)"', html)} == {ln.id for ln in loans}
    overdue = [ln for ln in loans if ln.dpd > 0]
    assert overdue and f'data-dpd="{overdue[0].dpd}"' in html and "已逾期" in html
    loan = borrower.get(f"/portal/loans/{overdue[0].id}")
    assert loan.status_code == 200 and 'id="schedule-table"' in loan.text and 'data-state="overdue"' in loan.text
    assert borrower.get(f"/portal/loans/{others}").status_code == 404
    assert "My loans" in borrower.get("/portal?lang=en").text
    borrower.get("/portal?lang=zh-CN")


def test_contact_history_shows_every_contact_and_the_guards_reasons(world, borrower):
    c, people = world
    html = borrower.get("/portal/contacts").text
    assert 'data-kind="contact"' in html and 'data-kind="blocked"' in html
    assert 'data-rule="cn.quiet_hours"' in html and 'data-citation="CN:GBT45251"' in html
    with c.uow(write=False) as s:
        staff_no = s.scalar(select(User.id).where(User.username == "li.collector"))
    assert f"工号 {staff_no}" in html and "li.collector" not in html  # a staff number, never a username
    assert people["main"]["phone"].removeprefix("+86") not in html and re.search(r"\d{3}\*{4}\d{4}", html)
    en = borrower.get("/portal/contacts?lang=en").text
    assert "Blocked, not made" in en and "Quiet hours" in en
    borrower.get("/portal?lang=zh-CN")


def test_withdrawing_a_consent_takes_effect_at_the_next_guard_decision(world, borrower):
    c, people = world
    me = people["main"]
    with c.uow(write=False) as s:
        col = _staff(s, "li.collector")
        consent_id = s.scalar(select(Consent.id).where(Consent.borrower_id == me["id"], Consent.kind == "agreed_hours",
                                                       Consent.withdrawn_at.is_(None)))
    before = workbench.case_check(c, principal=col, case_id=me["case"], channel="call", recipient="borrower",
                                  when=local(22, 30))
    assert before["decision"]["verdict"] == "allow"
    page = borrower.get("/portal/consents").text
    assert f'data-withdraw="{consent_id}"' in page
    no_token = borrower.post(f"/portal/consents/{consent_id}/withdraw")
    assert no_token.status_code == 403
    r = borrower.post(f"/portal/consents/{consent_id}/withdraw", data={"csrf_token": csrf(page)},
                      follow_redirects=False)
    assert r.status_code == 303
    after_page = borrower.get(r.headers["location"]).text
    assert "已撤回，立即生效" in after_page
    assert re.search(rf'id="consent-{consent_id}"[^>]*data-active="no"', after_page)
    after = workbench.case_check(c, principal=col, case_id=me["case"], channel="call", recipient="borrower",
                                 when=local(22, 30))
    assert after["decision"]["verdict"] == "deny"
    assert "cn.quiet_hours" in [v["rule"] for v in after["decision"]["violations"]]
    twice = borrower.post(f"/portal/consents/{consent_id}/withdraw", data={"csrf_token": csrf(page)})
    assert twice.status_code == 409 and 'role="alert"' in twice.text and "当前状态不允许" in twice.text


def test_another_borrowers_consent_is_not_found(world, borrower):
    c, people = world
    with c.uow(write=False) as s:
        theirs = s.scalar(select(Consent.id).where(Consent.borrower_id == people["other"]["id"]))
    if theirs is None:
        pytest.skip("the other borrower has no consent on record")
    page = borrower.get("/portal/consents").text
    r = borrower.post(f"/portal/consents/{theirs}/withdraw", data={"csrf_token": csrf(page)})
    assert r.status_code == 404
    with c.uow(write=False) as s:
        assert s.get(Consent, theirs).withdrawn_at is None


def test_data_copy_downloads_everything_and_is_recorded(world, borrower):
    c, people = world
    me = people["main"]
    page = borrower.get("/portal/data")
    assert page.status_code == 200 and 'data-count="loans"' in page.text
    r = borrower.post("/portal/data", data={"csrf_token": csrf(page.text)})
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment;")
    copy = r.json()
    assert copy["data"]["borrower"]["phone"] == me["phone"] and copy["data"]["borrower"]["name"] == me["name"]
    assert copy["data"]["contact_attempts"] and copy["data"]["decisions"]
    with c.uow(write=False) as s:
        req = s.get(RightsRequest, copy["request_id"])
        assert req.borrower_id == me["id"] and req.kind == "access"
        actor = s.scalar(select(AuditRecord.actor).where(AuditRecord.subject == f"rights_request:{req.id}"))
        user_id = s.scalar(select(User.id).where(User.borrower_id == me["id"]))
    assert actor == f"user:{user_id}"
    assert borrower.post("/portal/data").status_code == 403  # CSRF


def test_a_complaint_lands_in_the_compliance_queue(world, borrower):
    c, people = world
    me = people["main"]
    page = borrower.get("/portal/complaints").text
    text = "晚上十一点半还打电话催收，我要投诉。"
    empty = borrower.post("/portal/complaints", data={"csrf_token": csrf(page), "case_id": str(me["case"]),
                                                      "category": "harassment", "text": " "})
    assert empty.status_code == 422 and "请写下投诉内容" in empty.text
    r = borrower.post("/portal/complaints", data={"csrf_token": csrf(page), "case_id": str(me["case"]),
                                                  "category": "harassment", "text": text}, follow_redirects=False)
    assert r.status_code == 303
    filed = int(re.search(r"filed=(\d+)", r.headers["location"]).group(1))
    assert text in borrower.get("/portal/complaints").text
    with c.uow(write=False) as s:
        officer = _staff(s, "wang.compliance")
    queue = complaints.complaints_list_as(c, principal=officer, status="open")
    mine = [x for x in queue["items"] if x["id"] == filed]
    assert mine and mine[0]["source"] == "portal" and mine[0]["channel"] == "portal" and mine[0]["risk"] == "high"
    api = officer_client(c).get("/api/v1/complaints", params={"status": "open"})
    assert api.status_code == 200 and filed in [x["id"] for x in api.json()["items"]]
    other = borrower.post("/portal/complaints", data={"csrf_token": csrf(page), "case_id": str(people["other"]["case"]),
                                                      "category": "other", "text": "x"})
    assert other.status_code == 404


def test_a_payment_plan_request_goes_to_the_checkers(world, borrower):
    c, people = world
    me = people["main"]
    page = borrower.get("/portal/plans").text
    first = (FIXED_NOW.astimezone(HOME_ZONE).date() + dt.timedelta(days=10)).isoformat()
    late = borrower.post("/portal/plans", data={"csrf_token": csrf(page), "case_id": str(me["case"]),
                                                "installments": "6", "first_due": "2030-01-01", "reason": "失业"})
    assert late.status_code == 422 and "60 天" in late.text
    r = borrower.post("/portal/plans", data={"csrf_token": csrf(page), "case_id": str(me["case"]), "installments": "6",
                                             "first_due": first, "reason": "最近失业，下月开始有收入"},
                      follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    with c.uow(write=False) as s:
        lead = _staff(s, "zhang.lead")
        loan_id = s.get(Case, me["case"]).loan_id
        owed = approvals.loan_balance(s, loan_id=loan_id, on=FIXED_NOW.astimezone(HOME_ZONE).date())["outstanding"]
    pending = [x for x in approvals.approvals_list_as(c, principal=lead, status="pending") if x["kind"] == "plan"
               and x["case_id"] == me["case"]]
    assert pending and pending[0]["maker_role"] == "borrower"
    schedule = pending[0]["detail"]["schedule"]
    assert len(schedule) == 6 and schedule[0]["due_date"] == first
    assert sum(float(x["amount"]) for x in schedule) == pytest.approx(float(owed))
    assert 'data-status="pending"' in borrower.get("/portal/plans").text


def test_sign_out_ends_the_session(world):
    c, people = world
    client = sign_in(c, people["out"])
    page = client.get("/portal").text
    r = client.post("/portal", data={"step": "signout", "csrf_token": csrf(page)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/portal/consents", follow_redirects=False).status_code in (303, 401)
    assert "获取验证码" in client.get("/portal").text


def test_every_portal_string_has_chinese_and_english():
    from pathlib import Path

    from collectguard.web import i18n_portal
    from collectguard.web.i18n import MESSAGES

    loaded = i18n_portal.load_catalogues()
    assert loaded and all(set(v) == {"zh-CN", "en"} for v in loaded.values())
    folder = Path(i18n_portal.__file__).with_name("templates") / "portal"
    used = {k for f in folder.glob("*.html") for k in re.findall(r"t\('(portal\.[a-z_.]+)'\)", f.read_text())}
    routes = Path(i18n_portal.__file__).with_name("portal.py").read_text()
    used |= set(re.findall(r'"(portal\.error\.[a-z_]+)"', routes))
    # Keys built from values in the templates: every value the data can hold has its words.
    families = {"consent": [*CONSENT_KINDS, *(f"{k}.help" for k in CONSENT_KINDS)],
                "complaint": list(complaints.CATEGORIES),
                "bucket": [*(n for n, _ in DEFAULT_BUCKETS.edges), DEFAULT_BUCKETS.beyond, DEFAULT_BUCKETS.closed],
                "inst": ["paid", "overdue", "partial", "due"], "complaints.status": ["open", "resolved"],
                "plans.status": ["pending", "approved", "rejected", "cancelled"],
                "nav": ["overview", "contacts", "consents", "data", "complaints", "plans"],
                "contacts.verdict": ["allow", "deny"], "consents.form": ["separate", "bundled"],
                "data.count": ["loans", "contacts", "consents", "contact_attempts", "decisions", "complaints"]}
    used |= {f"portal.{family}.{v}" for family, values in families.items() for v in values}
    assert used and sorted(k for k in used if k not in MESSAGES) == []
