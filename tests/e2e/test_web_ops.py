"""Collection operations on the staff pages, end to end through the real app (TestClient), both backends:
revealing a number with a reason, stops and holds, maker-checker approvals, repayment links, sending only
approved templates, complaints and the complaint-risk tag, the third-party PTP refusal, the allocation
dry run and apply, QA review. Users sign in with passwords; every effect is checked in the database and
the audit chain, and a role without the permission gets a 403 page (HTML, never JSON, never a 500)."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from collectguard.adapters.db.models import AuditRecord, Case, Contact, ContactAttempt, Decision, User
from collectguard.adapters.db.models_ops import (
    AllocationRun,
    ApprovalRequest,
    CaseHold,
    CollectionStop,
    ComplaintMeta,
    MessageTemplate,
    PayLink,
)
from collectguard.adapters.db.models_qa import QaReviewRow
from collectguard.api.app import create_app
from collectguard.services import accounts, qa, queue
from conftest import FIXED_NOW, create_database, make_container

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_allocation import borrower, case, contract, lender

PASSWORD = "correct horse battery"
USERS = {"liwei": "collector", "dora": "team_lead", "erin": "team_lead", "olga": "compliance_officer", "root": "admin"}
PHONE, CONTACT_PHONE = "+8613800138000", "+8613900139000"
TRANSCRIPTS = Path(__file__).parents[1] / "data" / "transcripts" / "all.jsonl"


def _contact(s: Any, c: Any, b: Any, ext: str, phone: str, relation: str, source: str) -> Contact:
    ct = Contact(tenant_id=b.tenant_id, borrower_id=b.id, ext_id=ext, name_enc=c.cipher.encrypt("李四"),
                 phone_enc=c.cipher.encrypt(phone), phone_hmac=c.cipher.lookup_hash(phone), relation=relation,
                 source=source, designated_by_borrower=source == "borrower_designated", created_at=FIXED_NOW)
    s.add(ct)
    s.flush()
    return ct


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    db = create_database(request.param, tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
        mp.setattr(accounts, "_dummy_hash", None)
        c = make_container(db, log_json=False, log_level="WARNING")
        ids: dict[str, Any] = {}
        with c.uow() as s:
            t, ag, other = lender(s), lender(s, "agency-a", "agency", "甲催收"), lender(s, "lender-z")
            contract(s, t, ag)
            for name, role in USERS.items():
                ids[name] = accounts.user_create(s, tenant_code="lender-o", username=name, role=role,
                                                 password=PASSWORD, actor="test", now=FIXED_NOW).id
            accounts.user_create(s, tenant_code="agency-a", username="agent", role="agency_collector",
                                 password=PASSWORD, actor="test", now=FIXED_NOW)
            queue.collector_capacity_set(s, tenant_id=t.id, user_id=ids["liwei"], capacity=20, actor="test",
                                         now=FIXED_NOW)
            b = borrower(s, c, t, "B1", phone=PHONE, name="王小明")
            ids |= {"t": t.id, "b": b.id, "m1": case(s, b, "L1", bucket="M1", dpd=5, amount="3000.00").id,
                    "emergency": _contact(s, c, b, "C1", CONTACT_PHONE, "relative", "borrower_designated").id,
                    "listed": _contact(s, c, b, "C3", "+8613600136000", "contact_list_entry", "contact_list").id}
            for n, key in enumerate(("s1", "h1", "a1", "c1", "p1"), start=2):
                bn = borrower(s, c, t, f"B{n}", phone=f"+861380013800{n}", name="赵六")
                ids[key] = case(s, bn, f"L{n}", bucket="M2", dpd=40, amount="3000.00").id
            ids["m4"] = case(s, borrower(s, c, t, "B9", phone="+8613800138009"), "L9", bucket="M4", dpd=100).id
            far = borrower(s, c, other, "Z1", phone="+8613800138099")
            ids["far"] = case(s, far, "Z1").id
            ids["far_contact"] = _contact(s, c, far, "Z1C", "+8613900139099", "relative", "borrower_designated").id
        yield c, ids
    db.close()


def signed_in(c: Any, username: str) -> TestClient:
    client = TestClient(create_app(c))
    page = client.get("/signin")
    r = client.post("/signin", data={"username": username, "password": PASSWORD, "csrf_token": csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    return client


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture(scope="module")
def users(world):
    return {name: signed_in(world[0], name) for name in USERS}


def page(client: TestClient, case_id: int) -> tuple[str, str]:
    r = client.get(f"/work/cases/{case_id}")
    assert r.status_code == 200, r.text[:300]
    return r.text, csrf(r.text)


def post(client: TestClient, url: str, token: str, **data: Any):
    return client.post(url, data={"csrf_token": token, **data}, follow_redirects=False)


def refused_page(r, status: int) -> None:
    """An error shown as an HTML page with its status: never JSON, never a 500."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html") and 'role="alert"' in r.text


def audits(c: Any, action: str) -> list[tuple[str, dict[str, Any]]]:
    with c.uow(write=False) as s:
        return [(r.actor, json.loads(r.payload)) for r in s.scalars(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.id))]


# ---------------------------------------------------------------- revealing a number

def test_reveal_needs_a_reason_that_lands_in_the_pii_read_record(world, users):
    c, ids = world
    li = users["liwei"]
    html, token = page(li, ids["m1"])
    assert PHONE not in html and "138****8000" in html and 'id="reveal-form"' in html
    assert f"contact:{ids['listed']}" not in html  # contact-list entries stay hidden from collectors
    for reason in ("", "看看"):
        refused_page(post(li, f"/work/cases/{ids['m1']}/reveal", token, target="borrower", reason=reason), 422)
    assert audits(c, "pii.read") == []
    r = post(li, f"/work/cases/{ids['m1']}/reveal", token, target="borrower", reason="借款人来电核对号码")
    assert r.status_code == 200 and f"<strong>{PHONE}</strong>" in r.text
    assert r.headers["cache-control"] == "no-store"
    r = post(li, f"/work/cases/{ids['m1']}/reveal", token, target=f"contact:{ids['emergency']}",
             reason="紧急联系人回拨")
    assert CONTACT_PHONE in r.text
    got = audits(c, "pii.read")
    assert [(a, p["borrower_id"], p["contact_id"], p["reason"]) for a, p in got] == [
        (f"user:{ids['liwei']}", ids["b"], None, "借款人来电核对号码"),
        (f"user:{ids['liwei']}", ids["b"], ids["emergency"], "紧急联系人回拨")]
    assert PHONE not in li.get(f"/work/cases/{ids['m1']}").text  # shown once, never kept on the page
    for target in (f"contact:{ids['listed']}", f"contact:{ids['far_contact']}"):  # hidden, or another borrower's
        refused_page(post(li, f"/work/cases/{ids['m1']}/reveal", token, target=target, reason="核对号码用"), 404)
    assert li.get(f"/work/cases/{ids['far']}").status_code == 404
    root = users["root"]  # an admin administers, never reads personal data
    _html, rtoken = page(root, ids["m1"])
    assert 'id="reveal-form"' not in _html
    refused_page(post(root, f"/work/cases/{ids['m1']}/reveal", rtoken, target="borrower", reason="核对号码用"), 403)
    assert len(audits(c, "pii.read")) == 2


# ---------------------------------------------------------------- stops and holds

def test_a_team_lead_stops_collection_the_guard_denies_and_compliance_lifts(world, users):
    c, ids = world
    li, dora, olga = users["liwei"], users["dora"], users["olga"]
    url = f"/work/cases/{ids['s1']}/stops"
    html, token = page(li, ids["s1"])
    assert 'id="stop-form"' not in html  # a collector may not stop collection ...
    refused_page(post(li, url, token, reason="fraud"), 403)  # ... and is refused when trying
    html, token = page(dora, ids["s1"])
    for reason in ("complaint", "dispute", "fraud", "litigation", "deceased", "hardship"):
        assert f'<option value="{reason}">' in html
    refused_page(post(dora, url, token, reason="bored"), 422)
    refused_page(post(dora, url, token, reason="fraud", ends_on="not a date"), 422)
    r = post(dora, url, token, reason="fraud", note="身份冒用核查中")
    assert r.status_code == 303 and r.headers["location"].endswith("done=stop#ops-stops")
    with c.uow(write=False) as s:
        stop = s.scalar(select(CollectionStop).where(CollectionStop.case_id == ids["s1"]))
        assert (stop.scope, stop.reason, stop.lifted_at, stop.created_by) == ("case", "fraud", None,
                                                                              f"user:{ids['dora']}")
    assert [(a, p["stop_id"]) for a, p in audits(c, "stop.create")] == [(f"user:{ids['dora']}", stop.id)]
    html, token = page(li, ids["s1"])
    assert "data-stopped" in html and f'data-stop="{stop.id}" data-active="yes"' in html
    local = FIXED_NOW.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%dT10:00")
    checked = post(li, f"/work/cases/{ids['s1']}/check", token, channel="call", recipient="borrower", time=local)
    assert 'data-verdict="deny"' in checked.text and "cn.debt.disputed" in checked.text
    lift = f"/work/stops/{stop.id}/lift"
    _html, token = page(dora, ids["s1"])
    assert 'action="/work/stops/' not in _html  # no lift button for a team lead ...
    refused_page(post(dora, lift, token, case_id=ids["s1"]), 403)  # ... lifting is compliance's call
    _html, otoken = page(olga, ids["s1"])
    assert post(olga, lift, otoken, case_id=ids["s1"]).status_code == 303
    with c.uow(write=False) as s:
        assert s.get(CollectionStop, stop.id).lifted_at is not None
    assert [a for a, _p in audits(c, "stop.lift")] == [f"user:{ids['olga']}"]
    refused_page(post(olga, lift, otoken, case_id=ids["s1"]), 409)  # already lifted
    r = post(dora, url, token, reason="complaint", scope="number", target=f"contact:{ids['emergency']}")
    refused_page(r, 404)  # the contact is another borrower's: not this case's number


def test_a_hold_takes_the_case_from_everyone_until_released(world, users):
    c, ids = world
    li, dora = users["liwei"], users["dora"]
    html, token = page(li, ids["h1"])
    assert 'id="hold-form"' not in html
    refused_page(post(li, f"/work/cases/{ids['h1']}/hold", token, reason="留案"), 403)
    _html, token = page(dora, ids["h1"])
    refused_page(post(dora, f"/work/cases/{ids['h1']}/hold", token, reason=" "), 422)
    assert post(dora, f"/work/cases/{ids['h1']}/hold", token, reason="留案：待法务评估").status_code == 303
    html, token = page(dora, ids["h1"])
    assert "data-held" in html and "留案：待法务评估" in html and 'id="release-form"' in html
    with c.uow(write=False) as s:
        assert s.get(Case, ids["h1"]).paused_reason == "hold"
    refused_page(post(dora, f"/work/cases/{ids['h1']}/hold", token, reason="again"), 409)
    assert post(dora, f"/work/cases/{ids['h1']}/hold/release", token).status_code == 303
    with c.uow(write=False) as s:
        assert s.get(Case, ids["h1"]).paused_reason is None
        assert s.scalar(select(CaseHold.released_by).where(CaseHold.case_id == ids["h1"])) == f"user:{ids['dora']}"
    assert [a for a, _p in audits(c, "case.hold")] == [f"user:{ids['dora']}"]


# ---------------------------------------------------------------- waivers, plans, extensions

def test_approvals_are_maker_checker_within_each_roles_limits(world, users):
    c, ids = world
    li, dora, erin, olga = users["liwei"], users["dora"], users["erin"], users["olga"]
    url = f"/work/cases/{ids['a1']}/approvals"
    _html, token = page(li, ids["a1"])
    assert post(li, url, token, kind="waiver", amount="100.00", reason="困难减免").status_code == 303
    bad = post(li, url, token, kind="plan", schedule="2026-05-01 100\nnext month", reason="分期")
    refused_page(bad, 422)
    assert "schedule" in bad.text and 'value="plan" selected' in bad.text  # the form comes back filled in
    with c.uow(write=False) as s:
        waiver = s.scalar(select(ApprovalRequest).where(ApprovalRequest.case_id == ids["a1"]))
        assert (waiver.status, waiver.maker, waiver.amount) == ("pending", f"user:{ids['liwei']}", 100)
    html, token = page(li, ids["a1"])
    assert f'action="/work/approvals/{waiver.id}/decision"' not in html  # a collector decides nothing
    decide = f"/work/approvals/{waiver.id}/decision"
    refused_page(post(li, decide, token, decision="approve", case_id=ids["a1"]), 403)
    _html, dtoken = page(dora, ids["a1"])
    assert post(dora, url, dtoken, kind="extension", days="10", reason="展期10天").status_code == 303
    with c.uow(write=False) as s:
        ext = s.scalar(select(ApprovalRequest).where(ApprovalRequest.kind == "extension"))
    own = post(dora, f"/work/approvals/{ext.id}/decision", dtoken, decision="approve", case_id=ids["a1"])
    refused_page(own, 403)
    assert "maker-checker" in own.text
    _html, etoken = page(erin, ids["a1"])
    for rid in (waiver.id, ext.id):
        assert post(erin, f"/work/approvals/{rid}/decision", etoken, decision="approve",
                    case_id=ids["a1"]).status_code == 303
    with c.uow(write=False) as s:
        assert {r.id: (r.status, r.checker) for r in s.scalars(select(ApprovalRequest))} == {
            waiver.id: ("approved", f"user:{ids['erin']}"), ext.id: ("approved", f"user:{ids['erin']}")}
        assert s.get(ApprovalRequest, ext.id).effect["extended"]
    _html, token = page(li, ids["a1"])
    assert post(li, url, token, kind="waiver", amount="2500.00", reason="结清减免").status_code == 303
    with c.uow(write=False) as s:
        big = s.scalar(select(ApprovalRequest.id).where(ApprovalRequest.status == "pending"))
    queue_page = erin.get("/work/approvals")
    assert queue_page.status_code == 200 and f'data-approval="{big}"' in queue_page.text
    over = erin.post(f"/work/approvals/{big}/decision", data={"csrf_token": csrf(queue_page.text),
                                                              "decision": "approve"}, follow_redirects=False)
    refused_page(over, 403)
    assert "compliance_officer" in over.text  # whom to escalate to
    q = olga.get("/work/approvals")
    done = olga.post(f"/work/approvals/{big}/decision", data={"csrf_token": csrf(q.text), "decision": "approve",
                                                              "note": "结清"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/work/approvals?done=decision"
    assert [a for a, p in audits(c, "approval.approved.waiver")] == [f"user:{ids['erin']}", f"user:{ids['olga']}"]


# ---------------------------------------------------------------- repayment links and templates

def test_a_pay_link_is_signed_expiring_and_shown_on_the_case(world, users):
    c, ids = world
    li = users["liwei"]
    _html, token = page(li, ids["p1"])
    assert post(li, f"/work/cases/{ids['p1']}/pay-links", token, ttl_hours="24").status_code == 303
    refused_page(post(li, f"/work/cases/{ids['p1']}/pay-links", token, ttl_hours="9999"), 422)
    html, _token = page(li, ids["p1"])
    path = re.search(r'href="(/pay/[^"]+)" rel="noreferrer" data-pay-path', html).group(1)
    code = re.search(r"data-pay-code>([A-Z0-9]{8})<", html).group(1)
    with c.uow(write=False) as s:
        link = s.scalar(select(PayLink).where(PayLink.case_id == ids["p1"]))
        expires = link.expires_at.replace(tzinfo=dt.UTC) if link.expires_at.tzinfo is None else link.expires_at
    assert link.code == code and expires == FIXED_NOW + dt.timedelta(hours=24)
    public = TestClient(create_app(c)).get(path)  # no sign-in: the signed token is the credential
    assert public.status_code == 200 and code in public.text and "赵*" in public.text and "赵六" not in public.text
    assert TestClient(create_app(c)).get(path[:-2] + "xx").status_code == 404
    assert [p["link_id"] for _a, p in audits(c, "paylink.create")] == [link.id]


def test_only_approved_templates_can_be_sent_filled_in_from_the_case(world, users):
    c, ids = world
    li, dora, olga = users["liwei"], users["dora"], users["olga"]
    tpl = dora.get("/compliance/templates")
    assert tpl.status_code == 200 and 'id="template-form"' in tpl.text
    body = "{name_masked}您好，您的借款{amount}元已逾期，请在{app}内使用还款码{pay_code}还款。"
    r = dora.post("/compliance/templates", data={"csrf_token": csrf(tpl.text), "code": "remind", "language": "zh",
                                                 "channel": "sms", "audience": "debtor", "jurisdiction": "CN",
                                                 "body": body}, follow_redirects=False)
    assert r.status_code == 303
    bad = dora.post("/compliance/templates", data={"csrf_token": csrf(tpl.text), "code": "x", "language": "zh",
                                                   "body": "{phone}"}, follow_redirects=False)
    refused_page(bad, 422)
    with c.uow(write=False) as s:
        tid = s.scalar(select(MessageTemplate.id).where(MessageTemplate.code == "remind"))
    assert dora.post(f"/compliance/templates/{tid}/lint", data={"csrf_token": csrf(tpl.text)},
                     follow_redirects=False).status_code == 303
    refused_page(dora.post(f"/compliance/templates/{tid}/review", data={"csrf_token": csrf(tpl.text),
                                                                         "decision": "approve"}), 403)
    draft = olga.get("/compliance/templates")
    olga.post("/compliance/templates", data={"csrf_token": csrf(draft.text), "code": "draft", "language": "zh",
                                             "body": "{name_masked}您好，请尽快还款。"})
    approved = olga.post(f"/compliance/templates/{tid}/review",
                         data={"csrf_token": csrf(draft.text), "decision": "approve"}, follow_redirects=False)
    assert approved.status_code == 303
    with c.uow(write=False) as s:
        status = dict(s.execute(select(MessageTemplate.code, MessageTemplate.status)).all())
        draft_id = s.scalar(select(MessageTemplate.id).where(MessageTemplate.code == "draft"))
    assert status == {"remind": "approved", "draft": "draft"}
    html, token = page(li, ids["p1"])  # the case has a live repayment link (previous test) or gets one now
    if "data-pay-code" not in html:
        post(li, f"/work/cases/{ids['p1']}/pay-links", token)
        html, token = page(li, ids["p1"])
    options = re.findall(r'<option value="(\d+)"[^>]*>remind|<option value="(\d+)"[^>]*>draft', html)
    assert options == [(str(tid), "")]  # only the approved one is offered
    code = re.search(r"data-pay-code>([A-Z0-9]{8})<", html).group(1)
    local = FIXED_NOW.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%dT10:05")
    form = {"channel": "sms", "recipient": "borrower", "time": local, "message": "随便写的话"}
    r = post(li, f"/work/cases/{ids['p1']}/check", token, template_id=str(tid), **form)
    assert r.status_code == 200 and 'data-verdict="allow"' in r.text
    sent = f"赵*您好，您的借款1500.00元已逾期，请在示例金融内使用还款码{code}还款。"
    assert sent in r.text and "随便写的话" not in r.text
    refused_page(post(li, f"/work/cases/{ids['p1']}/check", token, template_id=str(draft_id), **form), 409)
    refused_page(post(li, f"/work/cases/{ids['p1']}/attempts", token, template_id=str(draft_id), **form), 409)
    rec = post(li, f"/work/cases/{ids['p1']}/attempts", token, template_id=str(tid), **form)
    assert rec.status_code == 303
    with c.uow(write=False) as s:
        assert s.scalar(select(ContactAttempt.message).where(ContactAttempt.case_id == ids["p1"])) == sent


# ---------------------------------------------------------------- complaints, third parties

def test_complaints_and_the_complaint_risk_tag_on_the_case(world, users):
    c, ids = world
    li, dora = users["liwei"], users["dora"]
    html, token = page(li, ids["c1"])
    assert "data-complaint-risk" not in html
    r = post(li, f"/work/cases/{ids['c1']}/complaints", token, category="third_party_contact", channel="phone",
             text="你们给我同事打电话说我欠钱")
    assert r.status_code == 303
    refused_page(post(li, f"/work/cases/{ids['c1']}/complaints", token, category="aliens", text="x"), 422)
    html, _token = page(li, ids["c1"])
    assert 'data-complaint-risk="high"' in html and 'data-risk="high"' in html
    assert "你们给我同事打电话说我欠钱" not in html  # the text is for those who read complaints
    assert "你们给我同事打电话说我欠钱" in dora.get(f"/work/cases/{ids['c1']}").text
    with c.uow(write=False) as s:
        assert s.scalar(select(ComplaintMeta.risk)) == "high"


def test_no_promise_to_pay_is_recorded_for_a_third_party(world, users):
    c, ids = world
    li = users["liwei"]
    with c.uow() as s:  # an attempt the guard allowed earlier (the debtor was unreachable), with its decision
        event = {"channel": "call", "time": "2026-04-07T10:00:00+08:00", "recipient": {"role": "relative"},
                 "purpose": "locate"}
        decision = Decision(tenant_id=ids["t"], borrower_id=ids["b"], created_at=FIXED_NOW, verdict="allow",
                            pack="CN", pack_version="test", event=event, result={"violations": []})
        s.add(decision)
        s.flush()
        row = ContactAttempt(tenant_id=ids["t"], case_id=ids["m1"], loan_id=s.get(Case, ids["m1"]).loan_id,
                             borrower_id=ids["b"], contact_id=ids["emergency"], channel="call",
                             recipient_role="relative", recipient_key="k", actor=f"user:{ids['liwei']}",
                             planned_at=FIXED_NOW, local_date=FIXED_NOW.date(), decision_id=decision.id)
        s.add(row)
        s.flush()
        aid = row.id
    html, token = page(li, ids["m1"])
    select_html = re.search(rf'<select id="outcome-{aid}".*?</select>', html, re.S).group(0)
    assert 'value="connected"' in select_html and 'value="ptp"' not in select_html
    r = post(li, f"/work/attempts/{aid}/outcome", token, case_id=ids["m1"], result="ptp")
    refused_page(r, 422)
    assert "CN:GBT45251" in r.text
    with c.uow(write=False) as s:
        assert s.get(ContactAttempt, aid).outcome is None


# ---------------------------------------------------------------- QA, csrf, language

def test_the_qa_queue_scorecards_and_a_review(world, users):
    c, ids = world
    olga, li = users["olga"], users["liwei"]
    with c.uow() as s:
        transcripts, _single = qa.transcripts_parse([json.loads(x) for x in TRANSCRIPTS.read_text().splitlines()])
        stored = qa.qa_results_store(s, cipher=c.cipher, tenant_id=ids["t"], actor="test", now=FIXED_NOW,
                                     transcripts=transcripts)
    sampled = [r["qa_id"] for r in stored if r["sampled"]]
    r = olga.get("/compliance/qa")
    assert r.status_code == 200 and int(re.search(r'data-qa-queue="(\d+)"', r.text).group(1)) == len(sampled)
    assert 'id="qa-scorecards"' in r.text and 'data-chart="hbar"' in r.text
    refused_page(olga.post("/compliance/qa/reviews", data={"csrf_token": csrf(r.text), "qa_id": str(sampled[0]),
                                                           "score": "101"}), 422)
    ok = olga.post("/compliance/qa/reviews", data={"csrf_token": csrf(r.text), "qa_id": str(sampled[0]),
                                                   "score": "60", "notes": "语气生硬"}, follow_redirects=False)
    assert ok.status_code == 303
    with c.uow(write=False) as s:
        assert s.scalar(select(QaReviewRow.score).where(QaReviewRow.qa_result_id == sampled[0])) == 60
    assert f'data-qa="{sampled[0]}"' not in olga.get("/compliance/qa").text  # reviewed: out of the queue
    refused_page(li.get("/compliance/qa"), 403)


def test_posts_need_the_csrf_token_and_pages_speak_english(world, users):
    _c, ids = world
    dora = users["dora"]
    assert dora.post(f"/work/cases/{ids['m1']}/hold", data={"reason": "x"}).status_code == 403
    en = dora.get(f"/work/cases/{ids['m1']}?lang=en").text
    for text in ("Stops and hold", "Waivers, plans, extensions", "Repayment links and codes", "Complaints"):
        assert text in en
    assert "Allocation" in dora.get("/work/allocation").text
    zh = dora.get(f"/work/cases/{ids['m1']}?lang=zh-CN").text
    assert "停催与留案" in zh and "减免、分期、展期" in zh
    raw_key = re.compile(r">[^<]*\b(?:work|cmp|ops)\.[a-z_]+\.[a-z_.]+")  # a string with no translation
    for client, path in ((dora, f"/work/cases/{ids['m1']}"), (dora, "/work/approvals"), (dora, "/work/allocation"),
                         (users["olga"], "/compliance/qa"), (users["olga"], "/compliance/templates")):
        for lang in ("en", "zh-CN"):
            html = client.get(f"{path}?lang={lang}").text
            assert not raw_key.search(html), (path, lang, raw_key.search(html))


# ---------------------------------------------------------------- allocation (last: it moves every case)

def test_allocation_dry_run_shows_the_distribution_then_applies_it(world, users):
    c, ids = world
    li, dora = users["liwei"], users["dora"]
    refused_page(li.get("/work/allocation"), 403)
    assert 'href="/work/allocation"' not in li.get("/work").text and 'href="/work/allocation"' in dora.get("/work").text
    start = dora.get("/work/allocation")
    assert start.status_code == 200 and "data-rules-version" in start.text
    dry = dora.post("/work/allocation/dry-run", data={"csrf_token": csrf(start.text)})
    assert dry.status_code == 200 and 'data-chart="bar"' in dry.text and 'id="distribution"' in dry.text
    with c.uow(write=False) as s:
        open_cases = s.scalar(select(func.count()).select_from(Case).where(Case.tenant_id == ids["t"],
                                                                            Case.status == "open"))
        assert s.scalar(select(func.count()).select_from(AllocationRun)) == 0  # a dry run writes nothing
    holders = {h: int(n) for h, n in re.findall(r'data-holder="([^"]+)" data-holder-cases="(\d+)"', dry.text)}
    assert sum(holders.values()) == int(re.search(r"data-cases>(\d+)<", dry.text).group(1)) <= open_cases
    assert "liwei" in holders or "agency-a" in holders
    sha = re.search(r'name="plan_sha256" value="([0-9a-f]{64})"', dry.text).group(1)
    applied = dora.post("/work/allocation/apply", data={"csrf_token": csrf(dry.text), "plan_sha256": sha})
    assert applied.status_code == 200 and "data-run=" in applied.text
    with c.uow(write=False) as s:
        run = s.scalar(select(AllocationRun))
        assert run.plan_sha256 == sha and run.applied_by == f"user:{ids['dora']}"
        held_by_li = s.scalar(select(func.count()).select_from(Case).where(Case.assignee_user_id == ids["liwei"]))
    assert held_by_li == holders.get("liwei", 0)
    assert [a for a, _p in audits(c, "allocation.apply")] == [f"user:{ids['dora']}"]
    stale = dora.post("/work/allocation/apply", data={"csrf_token": csrf(dry.text), "plan_sha256": sha})
    refused_page(stale, 409)
    with c.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.role == "team_lead")) == 2
