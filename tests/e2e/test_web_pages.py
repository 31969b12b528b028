"""The staff pages through the real app (TestClient): /work (workbench) and /compliance (dashboard).

One seeded world per backend: the demo portfolio (300 loans), an agency contract and a collector's
capacity, daily runs over the last days, and a few days of real guard activity (``seed_world``, also
used by the browser tests): attempts and their outcomes, refused contacts, disputes, complaints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from collectguard.adapters.db.models import AuditRecord, Borrower, Case, Contact, Tenant, User
from collectguard.api.app import create_app
from collectguard.bootstrap import Container
from collectguard.errors import CollectguardError
from collectguard.services import accounts, attempts, complaints, queue, workbench
from collectguard.services.authz import Principal
from collectguard.services.daily import HOME_ZONE, daily_default_as_of, daily_run
from collectguard.services.demo import DEMO_AGENCY, DEMO_LENDER, demo_seed
from collectguard.services.guard import guard_check
from collectguard.web import charts
from collectguard.web.i18n_ops import load_catalogues
from conftest import FIXED_NOW, create_database, make_container

PASSWORD = "correct horse battery"
USERS = {"li.collector": ("collector", DEMO_LENDER), "wang.compliance": ("compliance_officer", DEMO_LENDER),
         "zhao.agency": ("agency_collector", DEMO_AGENCY)}
THIRD_PARTY_SMS = "您好，您的亲属张三在我司的借款5000元已逾期30天，请转告他尽快还款。"
THREAT = "再不还钱就让你坐牢，我们会通知你单位和家人。"


def _principal(s: Any, username: str) -> Principal:
    user = s.scalar(select(User).where(User.username == username))
    tenant = s.get(Tenant, user.tenant_id)
    return Principal(tenant_id=tenant.id, tenant_code=tenant.code, role=user.role, user_id=user.id, username=username,
                     agency_tenant_id=tenant.id if tenant.kind == "agency" else None)


def _try(fn: Any, **kw: Any) -> Any:
    try:
        return fn(**kw)
    except CollectguardError:  # refused, paused, capped: the refusals are the data the dashboard shows
        return None


def _day_of_activity(c: Container, col: Principal, agency: Principal, rng: random.Random, *, n: int) -> None:
    """One day of work at 10:00 Beijing: attempts and outcomes, and checks the guard refuses."""
    with c.uow(write=False) as s:
        mine = list(s.scalars(select(Case.id).join(Borrower, Borrower.id == Case.borrower_id).where(
            Case.status == "open", Case.assignee_user_id == col.user_id, Borrower.jurisdiction == "CN",
            Case.paused_reason.is_(None)).order_by(Case.id)))
        held = list(s.scalars(select(Case.id).where(Case.status == "open", Case.agency_tenant_id == agency.tenant_id)
                              .order_by(Case.id)))
    today = c.clock().astimezone(HOME_ZONE).replace(tzinfo=None)
    for case_id in rng.sample(mine, min(n, len(mine))):
        out = _try(workbench.case_attempt_record, c=c, principal=col, case_id=case_id, channel="call",
                   recipient="borrower", when=None)
        if out is not None:
            result = rng.choice(("connected", "no_answer", "busy", "connected", "ptp", "no_answer"))
            attempts.contact_attempt_outcome(c, principal=col, attempt_id=out["attempt_id"], result=result)
        if rng.random() < 0.5:  # a late call, refused for the quiet hours
            _try(workbench.case_check, c=c, principal=col, case_id=case_id, channel="call", recipient="borrower",
                 when=today.replace(hour=22, minute=rng.choice((5, 30, 45))))
        if rng.random() < 0.4:  # an SMS to a relative that discloses the debt
            f = workbench.case_file(c, principal=col, case_id=case_id)
            if f["contacts"]:
                _try(workbench.case_check, c=c, principal=col, case_id=case_id, channel="sms",
                     recipient=f"contact:{f['contacts'][0]['id']}", when=today, message=THIRD_PARTY_SMS)
        if rng.random() < 0.25:
            _try(workbench.case_check, c=c, principal=col, case_id=case_id, channel="call", recipient="borrower",
                 when=today, message=THREAT)
    if mine:  # one debtor answered three times already: the fourth call today is over the cap
        for _ in range(4):
            out = _try(workbench.case_attempt_record, c=c, principal=col, case_id=mine[0], channel="call",
                       recipient="borrower", when=None)
            if out is not None:
                attempts.contact_attempt_outcome(c, principal=col, attempt_id=out["attempt_id"], result="connected")
    for case_id in rng.sample(held, min(2, len(held))):  # the agency: refused without the outsourcing notice
        out = _try(workbench.case_attempt_record, c=c, principal=agency, case_id=case_id, channel="call",
                   recipient="borrower", when=None)
        if out is not None:
            attempts.contact_attempt_outcome(c, principal=agency, attempt_id=out["attempt_id"],
                                             result=rng.choice(("dispute", "no_answer", "connected")))


def col_cases(c: Container, col: Principal) -> list[int]:
    """The collector's open cases."""
    with c.uow(write=False) as s:
        return list(s.scalars(select(Case.id).where(Case.status == "open", Case.assignee_user_id == col.user_id)))


def seed_world(c: Container, *, days: int, per_day: int = 6) -> dict[str, Any]:
    """Demo portfolio, users, an agency contract, ``days`` daily runs with a day of activity after each."""
    now = c.clock()
    demo_seed(c, loans=300, seed=42)
    with c.uow() as s:
        for username, (role, tenant) in USERS.items():
            accounts.user_create(s, tenant_code=tenant, username=username, role=role, password=PASSWORD,
                                 actor="test", now=now)
        lender = s.scalar(select(Tenant).where(Tenant.code == DEMO_LENDER))
        agency = s.scalar(select(Tenant).where(Tenant.code == DEMO_AGENCY))
        queue.agency_contract_set(s, tenant_id=lender.id, agency_tenant_id=agency.id, capacity=15,
                                  processing_contract=True, actor="test", now=now)
        col, ag = _principal(s, "li.collector"), _principal(s, "zhao.agency")
        queue.collector_capacity_set(s, tenant_id=lender.id, user_id=col.user_id, capacity=60, actor="test", now=now)
    rng = random.Random(7)
    today = daily_default_as_of(c)
    for back in range(days - 1, -1, -1):
        day_c = dataclasses.replace(c, clock=lambda back=back: now - dt.timedelta(days=back))
        daily_run(day_c, as_of=today - dt.timedelta(days=back))
        _day_of_activity(day_c, col, ag, rng, n=per_day)
        if back % 3 == 1 and col_cases(c, col):
            with c.uow() as s:
                complaints.complaint_file(s, tenant_id=lender.id, case_id=rng.choice(col_cases(c, col)),
                                          category=rng.choice(("harassment", "third_party_contact")),
                                          text="夜里十一点还在打电话，还打给了我同事", actor="test",
                                          now=now - dt.timedelta(days=back))
    return {"lender_id": lender.id, "agency_id": agency.id, "today": today}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    db = create_database(request.param, tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        # Cheap argon2: the tests sign in often; the password cost is not what they check.
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
        mp.setattr(accounts, "_dummy_hash", None)
        c = make_container(db, log_json=False, log_level="WARNING")
        info = seed_world(c, days=4)
        yield c, info
    db.close()


def signed_in(c: Container, username: str) -> TestClient:
    client = TestClient(create_app(c))
    page = client.get("/signin")
    r = client.post("/signin", data={"username": username, "password": PASSWORD, "csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    return client


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture(scope="module")
def collector(world):
    return signed_in(world[0], "li.collector")


@pytest.fixture(scope="module")
def officer(world):
    return signed_in(world[0], "wang.compliance")


def first_case(client: TestClient, view: str = "mine") -> int:
    r = client.get(f"/work?view={view}")
    assert r.status_code == 200
    return int(re.search(r'data-case="(\d+)"', r.text).group(1))


def local(c: Container, hh: int, mm: int = 0) -> str:
    return c.clock().astimezone(HOME_ZONE).replace(hour=hh, minute=mm).strftime("%Y-%m-%dT%H:%M")


# ---------------------------------------------------------------- the workbench

def test_pages_need_sign_in(world):
    client = TestClient(create_app(world[0]))
    for path in ("/work", "/work/cases/1", "/compliance", "/compliance/decisions"):
        r = client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?next="), path


def test_queue_mine_and_all(collector):
    mine = collector.get("/work")
    every = collector.get("/work?view=all")
    n_mine = int(re.search(r'data-queue-total="(\d+)"', mine.text).group(1))
    n_all = int(re.search(r'data-queue-total="(\d+)"', every.text).group(1))
    assert 0 < n_mine <= n_all
    assert 'aria-current="page"' in mine.text and "键盘快捷键" in mine.text and "/static/app.js" in mine.text


def test_case_page_masks_personal_data(world, collector):
    c = world[0]
    case_id = first_case(collector)
    html = collector.get(f"/work/cases/{case_id}").text
    with c.uow(write=False) as s:
        b = s.get(Borrower, s.get(Case, case_id).borrower_id)
        name, phone = c.cipher.decrypt(b.name_enc), c.cipher.decrypt(b.phone_enc)
    assert name not in html and phone not in html and phone[-8:] not in html
    assert re.search(r"data-masked-phone>\d{3}\*{4}\d{4}<", html)
    assert name[0] + "*" * (len(name) - 1) in html
    for section in ("联系前检查", "联系记录", "还款计划", "还款承诺", "备注"):
        assert section in html


def test_collector_never_sees_contact_list_entries(world, collector):
    c = world[0]
    with c.uow(write=False) as s:
        row = s.execute(select(Case.id, Contact.id).join(Contact, Contact.borrower_id == Case.borrower_id).where(
            Contact.source == "contact_list", Case.status == "open")).first()
    if row is None:
        pytest.skip("the seeded portfolio has no open case with a contact-list entry")
    case_id, contact_id = row
    html = collector.get(f"/work/cases/{case_id}").text
    assert f"contact:{contact_id}" not in html and "通讯录联系人" not in html
    r = collector.post(f"/work/cases/{case_id}/check", data={
        "csrf_token": csrf(html), "channel": "sms", "recipient": f"contact:{contact_id}", "time": local(c, 10)})
    assert r.status_code == 404


def test_check_at_night_says_do_not_contact_with_citation(world, collector):
    c = world[0]
    case_id = first_case(collector)
    page = collector.get(f"/work/cases/{case_id}").text
    r = collector.post(f"/work/cases/{case_id}/check", data={
        "csrf_token": csrf(page), "channel": "call", "recipient": "borrower", "time": local(c, 23),
        "purpose": "collect"})
    assert r.status_code == 200
    assert 'data-verdict="deny"' in r.text and "不可联系" in r.text
    assert 'data-rule="cn.quiet_hours"' in r.text and 'data-citation="CN:GBT45251"' in r.text
    assert "22:00至次日8:00" in r.text  # the article text, not only its id
    en = collector.post(f"/work/cases/{case_id}/check?lang=en", data={
        "csrf_token": csrf(page), "channel": "call", "recipient": "borrower", "time": local(c, 23)})
    assert "Do not contact" in en.text and "Quiet hours" in en.text
    collector.get("/work?lang=zh-CN")  # the language sticks in a cookie: back to Chinese for the next tests


def test_threatening_script_is_linted_and_marked(world, collector):
    c = world[0]
    case_id = first_case(collector)
    page = collector.get(f"/work/cases/{case_id}").text
    r = collector.post(f"/work/cases/{case_id}/check", data={
        "csrf_token": csrf(page), "channel": "call", "recipient": "borrower", "time": local(c, 10), "message": THREAT})
    assert 'data-verdict="deny"' in r.text and "<mark" in r.text and "cn.conduct." in r.text


def _allowed_case(world, client) -> tuple[int, str]:
    c = world[0]
    html = client.get("/work?view=mine").text
    for case_id in dict.fromkeys(int(x) for x in re.findall(r'data-case="(\d+)"', html)):
        page = client.get(f"/work/cases/{case_id}").text
        r = client.post(f"/work/cases/{case_id}/check", data={
            "csrf_token": csrf(page), "channel": "sms", "recipient": "borrower", "time": local(c, 10, 5),
            "message": "您好，您的借款已逾期，请登录App查看并按时还款。"})
        if 'data-verdict="allow"' in r.text:
            return case_id, page
    pytest.fail("no case in the collector's queue where an SMS to the borrower is allowed")


def test_record_attempt_outcome_ptp_and_note(world, collector):
    case_id, page = _allowed_case(world, collector)
    token = csrf(page)
    r = collector.post(f"/work/cases/{case_id}/attempts", data={
        "csrf_token": token, "channel": "sms", "recipient": "borrower", "time": local(world[0], 10, 5),
        "message": "您好，您的借款已逾期，请登录App查看并按时还款。"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:400]
    attempt_id = int(re.search(r"attempt=(\d+)", r.headers["location"]).group(1))
    html = collector.get(r.headers["location"]).text
    assert "已记录本次联系" in html and f'/work/attempts/{attempt_id}/outcome' in html
    ok = collector.post(f"/work/attempts/{attempt_id}/outcome", data={"csrf_token": token, "case_id": case_id,
                                                                     "result": "ptp"}, follow_redirects=False)
    assert ok.status_code == 303
    again = collector.post(f"/work/attempts/{attempt_id}/outcome", data={"csrf_token": token, "case_id": case_id,
                                                                        "result": "busy"})
    assert again.status_code == 409 and 'role="alert"' in again.text
    due = (world[1]["today"] + dt.timedelta(days=5)).isoformat()
    p = collector.post(f"/work/cases/{case_id}/ptp", data={"csrf_token": token, "due_date": due, "amount": "300.00"},
                       follow_redirects=False)
    assert p.status_code == 303
    assert due in collector.get(f"/work/cases/{case_id}").text
    n = collector.post(f"/work/cases/{case_id}/notes", data={"csrf_token": token, "text": "借款人称周五发工资后还款"},
                       follow_redirects=False)
    assert n.status_code == 303 and "借款人称周五发工资后还款" in collector.get(f"/work/cases/{case_id}").text
    assert collector.post(f"/work/cases/{case_id}/notes", data={"csrf_token": token, "text": " "}).status_code == 422


def test_refused_attempt_shows_the_decision(world, collector):
    case_id = first_case(collector)
    page = collector.get(f"/work/cases/{case_id}").text
    r = collector.post(f"/work/cases/{case_id}/attempts", data={
        "csrf_token": csrf(page), "channel": "call", "recipient": "borrower", "time": local(world[0], 10),
        "message": THREAT})
    assert r.status_code == 403 and "不可联系" in r.text and "未记录" in r.text


def test_posts_need_the_csrf_token(collector):
    case_id = first_case(collector)
    r = collector.post(f"/work/cases/{case_id}/notes", data={"text": "x"})
    assert r.status_code == 403


def test_agency_sees_only_its_cases(world):
    c = world[0]
    agency = signed_in(c, "zhao.agency")
    with c.uow(write=False) as s:
        held = set(s.scalars(select(Case.id).where(Case.agency_tenant_id == world[1]["agency_id"])))
        other = s.scalar(select(Case.id).where(Case.agency_tenant_id.is_(None), Case.status == "open"))
    listed = {int(x) for x in re.findall(r'data-case="(\d+)"', agency.get("/work").text)}
    assert listed <= held
    assert agency.get(f"/work/cases/{other}").status_code == 404


def test_a_borrower_is_not_let_into_the_workbench(world):
    c = world[0]
    with c.uow() as s:
        accounts.user_create(s, tenant_code=DEMO_LENDER, username="borrower.b1", role="borrower", password=PASSWORD,
                             borrower_ext_id="B0000001", actor="test", now=FIXED_NOW)
    client = signed_in(c, "borrower.b1")
    assert client.get("/work").status_code == 403
    assert client.get("/compliance").status_code == 403


# ---------------------------------------------------------------- the compliance dashboard

def test_collector_may_not_open_the_dashboard(collector):
    r = collector.get("/compliance")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html") and "无权访问" in r.text


def test_dashboard_charts_show_the_stored_decisions(world, officer):
    c = world[0]
    r = officer.get("/compliance")
    assert r.status_code == 200
    first = world[1]["today"] - dt.timedelta(days=29)
    start = dt.datetime.combine(first, dt.time(), HOME_ZONE)
    with c.uow(write=False) as s:
        denied = s.execute(text("SELECT COUNT(*) FROM decision WHERE tenant_id = :t AND verdict = 'deny' "
                                "AND created_at >= :f"), {"t": world[1]["lender_id"], "f": start}).scalar_one()
    assert denied > 0
    assert f'data-figure="blocked">{denied:,}<' in r.text
    bars = [float(v) for v in re.findall(r'class="bar" data-series="[^"]*" data-value="([\d.]+)"', r.text)]
    assert bars and sum(bars) > 0 and len(re.findall(r'class="point"', r.text)) >= 30
    assert r.text.count('role="img"') == 7 and r.text.count("<desc") == 7 and "查看数据表" in r.text
    assert "上限 3" in r.text and "上限 6" in r.text  # the caps, read from the rule pack
    assert "Compliance dashboard" in officer.get("/compliance?lang=en").text
    officer.get("/compliance?lang=zh-CN")


def test_drill_down_to_one_decision(world, officer):
    r = officer.get("/compliance/decisions?verdict=deny&rule=cn.quiet_hours")
    assert int(re.search(r'data-total="(\d+)"', r.text).group(1)) > 0
    decision_id = re.search(r'href="/compliance/decisions/(\d+)"', r.text).group(1)
    d = officer.get(f"/compliance/decisions/{decision_id}")
    assert d.status_code == 200 and 'data-rule="cn.quiet_hours"' in d.text
    assert "&#34;channel&#34;: &#34;call&#34;" in d.text  # the event as judged (JSON, escaped)
    with world[0].uow() as s:
        other = Tenant(code="other-lender", name="other", kind="lender", licensed=True, created_at=FIXED_NOW)
        s.add(other)
        s.flush()
        other_id = other.id
    foreign = guard_check(world[0], event={"jurisdiction": "CN", "channel": "call", "time": "2026-04-07T23:00:00+08:00",
                                           "recipient": {"role": "borrower"}}, tenant_id=other_id, actor="test")
    assert foreign.verdict == "deny"
    with world[0].uow(write=False) as s:
        fid = s.execute(text("SELECT MAX(id) FROM decision WHERE tenant_id = :t"), {"t": other_id}).scalar_one()
    assert officer.get(f"/compliance/decisions/{fid}").status_code == 404


def test_audit_verification_intact_then_broken(world, officer):
    page = officer.get("/compliance/audit").text
    r = officer.post("/compliance/audit", data={"csrf_token": csrf(page)})
    assert 'data-audit="intact"' in r.text and "审计链完整" in r.text
    c = world[0]
    with c.uow() as s:
        rec = s.scalar(select(AuditRecord).where(AuditRecord.chain == f"t{world[1]['lender_id']}")
                       .order_by(AuditRecord.seq).offset(5).limit(1))
        original, rec_id, seq = rec.payload, rec.id, rec.seq
        rec.payload = original.replace("}", ',"x":1}', 1)
    try:
        broken = officer.post("/compliance/audit", data={"csrf_token": csrf(page)})
        assert 'data-audit="broken"' in broken.text and f"<td>{seq}</td>" in broken.text
    finally:
        with c.uow() as s:
            s.get(AuditRecord, rec_id).payload = original


def test_evidence_export_downloads_a_signed_zip(officer):
    page = officer.get("/compliance/evidence").text
    r = officer.post("/compliance/evidence", data={"csrf_token": csrf(page), "borrower": "B0000001"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "manifest.json" in names and "manifest.sig" in names and "report.html" in names
    missing = officer.post("/compliance/evidence", data={"csrf_token": csrf(page), "borrower": "B9999999"})
    assert missing.status_code == 404 and 'id="evidence-error"' in missing.text


def test_clause_lint_highlights_spans(officer):
    page = officer.get("/compliance/clauses").text
    body = "第一条 您同意我们读取您的通讯录并用于逾期催收。\n第二条 <b>注意</b>"
    r = officer.post("/compliance/clauses", data={"csrf_token": csrf(page), "text": body})
    assert 'data-lint="problems"' in r.text and '<mark id="span-1">' in r.text and "cn.clause.contact_list" in r.text
    assert "&lt;b&gt;注意&lt;/b&gt;" in r.text  # the pasted text is escaped, never rendered
    assert officer.post("/compliance/clauses", data={"csrf_token": csrf(page), "text": "  "}).status_code == 422


def test_agencies_and_contracts(officer):
    html = officer.get("/compliance/agencies").text
    assert "示例催收服务" in html and "demo-agency" in html and "✓" in html


# ---------------------------------------------------------------- strings and charts (no database)

def test_every_template_key_is_translated_in_both_catalogues():
    cat = load_catalogues()
    assert all(set(v) == {"zh-CN", "en"} for v in cat.values()), [k for k, v in cat.items() if len(v) != 2]
    root = Path(__file__).parents[2] / "src" / "collectguard" / "web"
    used = set()
    for path in [*root.glob("templates/work/*.html"), *root.glob("templates/compliance/*.html"),
                 root / "work.py", root / "compliance.py"]:
        used |= set(re.findall(r"""\bt\(['"]((?:ops|work|cmp)\.[a-z_.]+[a-z])['"]""", path.read_text("utf-8")))
    assert used and not sorted(k for k in used if k not in cat)


def test_charts_escape_labels_and_scale():
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8] and charts.nice_ticks(0) == [0.0, 1.0]
    svg = str(charts.bar_chart(title="<t>", desc="d", categories=["a<b", "c"], series=[("s&1", [1, 2])],
                               table_label="table"))
    assert "<t>" not in svg and "&lt;t&gt;" in svg and "a&lt;b" in svg and svg.count('class="bar"') == 2
    line = str(charts.line_chart(title="t", desc="d", categories=["1", "2", "3"], series=[("s", [1, None, 3])],
                                 table_label="table"))
    assert line.count('class="point"') == 2 and "<polyline" not in line  # a gap breaks the line
    h = str(charts.hbar_chart(title="t", desc="d", items=[("r", 3, "/x?a=1&b=2")], table_label="t", value_label="n"))
    assert 'href="/x?a=1&amp;b=2"' in h
