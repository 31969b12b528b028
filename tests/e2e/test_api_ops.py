"""Collection operations through the real app with bearer tokens (TestClient), both backends: allocation,
holds, stops, complaints, approvals, payments, the public repayment page, templates, reveal, contacts."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from collectguard.adapters.db.models import AuditRecord
from collectguard.api import deps
from collectguard.api.app import create_app
from collectguard.api.routes import ops
from collectguard.services import accounts
from conftest import FIXED_NOW, create_database, make_container

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_allocation import D, borrower, case, contract, lender, user

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    db = create_database(request.param, tmp_path_factory)
    c = make_container(db, log_json=False, log_level="WARNING")
    ids = {}
    with c.uow() as s:
        t, ag = lender(s), lender(s, "agency-a", "agency", "甲催收")
        contract(s, t, ag)
        user(s, t, "alice", capacity=10)
        for name, role in (("dora", "team_lead"), ("erin", "team_lead"), ("olga", "compliance_officer"),
                           ("root", "admin"), ("audrey", "auditor")):
            user(s, t, name, role)
        user(s, ag, "agent", "agency_collector")
        b = borrower(s, c, t, "B1", name="王小明")
        ids |= {"b": b.id, "m1": case(s, b, "L1", bucket="M1", dpd=5, amount="3000.00").id,
                "m4": case(s, borrower(s, c, t, "B2", phone="+8613800138002"), "L2", bucket="M4", dpd=100).id}
        user(s, t, "zhang", "borrower").borrower_id = b.id
        roles = {"alice": "collector", "dora": "team_lead", "erin": "team_lead", "olga": "compliance_officer",
                 "root": "admin", "audrey": "auditor", "zhang": "borrower", "agent": "agency_collector",
                 "paysys": "integration"}
        tokens = {name: accounts.token_create(s, tenant_code="agency-a" if name == "agent" else "lender-o", role=role,
                                              username=None if name == "paysys" else name, actor="test",
                                              now=FIXED_NOW)[1]
                  for name, role in roles.items()}
    yield c, ids, tokens
    db.close()


@pytest.fixture(scope="module")
def client(world):
    app = create_app(world[0])
    if not any(getattr(r, "path", "").startswith("/api/v1/allocation") for r in app.routes):
        app.include_router(ops.router, prefix="/api/v1")  # until the lead adds "ops" to API_MODULES
        app.include_router(ops.pages)
    with pytest.MonkeyPatch.context() as mp:
        if not deps.is_public("/pay/x"):  # until the lead adds "/pay/" to PUBLIC_PREFIXES
            mp.setattr(deps, "PUBLIC_PREFIXES", (*deps.PUBLIC_PREFIXES, "/pay/"))
        yield TestClient(app)


def h(world, who):
    return {"Authorization": f"Bearer {world[2][who]}"}


def post(client, world, who, url, **kw):
    return client.post(f"/api/v1{url}", headers={**h(world, who), **kw.pop("headers", {})}, **kw)


def test_every_ops_route_requires_authentication_but_the_pay_page(client):
    routes = [rc for rc in iter_route_contexts(ops.router.routes) if rc.methods]
    assert len(routes) >= 25
    for rc in routes:
        for method in rc.methods - {"HEAD", "OPTIONS"}:
            resp = client.request(method, "/api/v1" + re.sub(r"\{[^}]+\}", "1", rc.path))
            assert resp.status_code == 401, (method, rc.path, resp.status_code)
            assert resp.headers["content-type"].startswith(PROBLEM)
    assert client.get("/pay/1.2.x").status_code == 404


def test_allocation_dry_run_then_apply_and_the_agency_sees_only_its_case(client, world):
    _c, ids, _t = world
    assert post(client, world, "alice", "/allocation/dry-run", json={}).status_code == 403
    dry = post(client, world, "dora", "/allocation/dry-run", json={})
    assert dry.status_code == 200 and dry.json()["moves"] == 2
    assert {d["name"] for d in dry.json()["distribution"]} == {"alice", "agency-a"}
    applied = post(client, world, "dora", "/allocation/apply", json={"plan_sha256": dry.json()["plan_sha256"]})
    assert applied.status_code == 200 and applied.json()["run_id"]
    stale = post(client, world, "dora", "/allocation/apply", json={"plan_sha256": dry.json()["plan_sha256"]})
    assert stale.status_code == 409 and stale.headers["content-type"].startswith(PROBLEM)
    agent = h(world, "agent")
    assert client.get(f"/api/v1/cases/{ids['m4']}/stops", headers=agent).status_code == 200
    assert client.get(f"/api/v1/cases/{ids['m1']}/stops", headers=agent).status_code == 404
    assert post(client, world, "agent", "/allocation/dry-run", json={}).status_code in (403, 404)
    rules = client.get("/api/v1/allocation/rules", headers=h(world, "dora")).json()
    assert rules["version"] and rules["sha256"]


def test_hold_and_release(client, world):
    ids = world[1]
    assert post(client, world, "alice", f"/cases/{ids['m1']}/hold", json={"reason": "x"}).status_code == 403
    assert post(client, world, "dora", f"/cases/{ids['m1']}/hold", json={"reason": "留案待审"}).status_code == 201
    assert post(client, world, "dora", f"/cases/{ids['m1']}/hold", json={"reason": "again"}).status_code == 409
    assert post(client, world, "dora", f"/cases/{ids['m1']}/hold/release").status_code == 200


def test_stops_are_set_by_leads_listed_by_staff_and_lifted_by_compliance(client, world):
    ids = world[1]
    body = {"reason": "fraud", "ends_on": (D + dt.timedelta(days=30)).isoformat(), "note": "身份冒用核查中"}
    assert post(client, world, "alice", f"/cases/{ids['m1']}/stops", json=body).status_code == 403
    made = post(client, world, "dora", f"/cases/{ids['m1']}/stops", json=body)
    assert made.status_code == 201 and made.json()["active"]
    bad = post(client, world, "dora", f"/cases/{ids['m1']}/stops", json={"reason": "bored"})
    assert bad.status_code == 422 and bad.json()["field"] == "reason"
    listed = client.get(f"/api/v1/cases/{ids['m1']}/stops", headers=h(world, "alice")).json()
    assert made.json()["id"] in [x["id"] for x in listed]
    assert post(client, world, "dora", f"/stops/{made.json()['id']}/lift", json={}).status_code == 403
    assert post(client, world, "olga", f"/stops/{made.json()['id']}/lift", json={}).json()["active"] is False


def test_complaints_from_the_portal_and_from_a_csv(client, world):
    ids = world[1]
    filed = post(client, world, "zhang", f"/cases/{ids['m1']}/complaints",
                 json={"category": "third_party_contact", "text": "你们给我同事打电话说我欠钱"})
    assert filed.status_code == 201 and filed.json()["risk"] == "high" and filed.json()["source"] == "portal"
    csv = "complaint_ref,loan_id,received_at,channel,category,text\nR-9,L2,2026-04-06T09:00:00+08:00,regulator,fees,x\n"
    assert post(client, world, "alice", "/complaints/import", content=csv.encode(),
                headers={"Content-Type": "text/csv"}).status_code == 403
    imported = post(client, world, "olga", "/complaints/import", content=csv.encode(),
                    headers={"Content-Type": "text/csv"})
    assert imported.json() == {"imported": 1, "skipped": 0}
    mine = client.get("/api/v1/complaints", headers=h(world, "zhang")).json()
    assert [x["id"] for x in mine["items"]] == [filed.json()["id"]]
    done = post(client, world, "olga", f"/complaints/{filed.json()['id']}/resolution", json={"resolution": "已整改"})
    assert done.json()["status"] == "resolved"


def test_approvals_are_maker_checker(client, world):
    ids = world[1]
    req = post(client, world, "dora", f"/cases/{ids['m1']}/approvals",
               json={"kind": "waiver", "amount": "100.00", "reason": "困难减免"})
    assert req.status_code == 201
    rid = req.json()["id"]
    assert post(client, world, "alice", f"/approvals/{rid}/decision", json={"approve": True}).status_code == 403
    own = post(client, world, "dora", f"/approvals/{rid}/decision", json={"approve": True})
    assert own.status_code == 403 and "maker-checker" in own.json()["detail"]
    ok = post(client, world, "erin", f"/approvals/{rid}/decision", json={"approve": True})
    assert ok.status_code == 200 and ok.json()["effect"]["waived"]
    big = post(client, world, "alice", f"/cases/{ids['m1']}/approvals",
               json={"kind": "waiver", "amount": "2500.00", "reason": "结清减免"}).json()["id"]
    refused = post(client, world, "erin", f"/approvals/{big}/decision", json={"approve": True})
    assert refused.status_code == 403 and refused.json()["escalate_to"] == ["compliance_officer"]
    listed = client.get("/api/v1/approvals?status=pending", headers=h(world, "olga")).json()
    assert [x["id"] for x in listed] == [big]


def test_payments_are_idempotent_per_key(client, world):
    body = {"loan_ref": "L1", "amount": "200.00", "paid_on": D.isoformat(), "ext_ref": "PAY-1"}
    key = {"Idempotency-Key": "lender-pay-000123"}
    assert post(client, world, "alice", "/payments", json=body, headers=key).status_code == 403
    first = post(client, world, "root", "/payments", json=body, headers=key)
    assert first.status_code == 201
    again = post(client, world, "root", "/payments", json=body, headers=key)
    assert again.status_code == 200 and again.json() == first.json()
    assert post(client, world, "root", "/payments", json={**body, "amount": "201.00"}, headers=key).status_code == 409
    missing = post(client, world, "root", "/payments", json=body)
    assert missing.status_code == 422 and missing.json()["field"] == "idempotency-key"


def test_the_public_repayment_page(client, world):
    ids = world[1]
    link = post(client, world, "alice", f"/cases/{ids['m1']}/pay-links", json={"ttl_hours": 24})
    assert link.status_code == 201
    page = client.get(link.json()["path"])  # no Authorization header
    assert page.status_code == 200 and "王**" in page.text and "王小明" not in page.text
    assert link.json()["code"] in page.text and "不收款" in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert "Pay in the lender" in client.get(link.json()["path"] + "?lang=en").text
    assert client.get(link.json()["path"][:-3] + "abc").status_code == 404


def test_templates_from_draft_to_render(client, world):
    ids = world[1]
    body = {"code": "m1", "language": "zh", "body": "{name_masked}您好，您的借款{amount}元已到期，请在{app}内还款。"}
    assert post(client, world, "alice", "/templates", json=body).status_code == 403
    tid = post(client, world, "dora", "/templates", json=body).json()["id"]
    assert post(client, world, "dora", f"/templates/{tid}/lint").json()["status"] == "linted"
    assert post(client, world, "dora", f"/templates/{tid}/review", json={"approve": True}).status_code == 403
    reviewed = post(client, world, "olga", f"/templates/{tid}/review", json={"approve": True})
    assert reviewed.json()["status"] == "approved"
    values = {"name_masked": "王**", "amount": "860.00", "app": "示例金融"}
    out = post(client, world, "alice", f"/templates/{tid}/render", json={"variables": values, "case_id": ids["m1"]})
    assert out.status_code == 200 and out.json()["text"].startswith("王**您好")
    legal = post(client, world, "olga", f"/cases/{ids['m1']}/legal-actions",
                 json={"filed_on": D.isoformat(), "court": "某某区人民法院", "case_number": "（2026）某01民初1号"})
    assert legal.status_code == 201


def test_reveal_needs_a_reason_and_is_audited(client, world):
    c, ids, _t = world
    url = f"/borrowers/{ids['b']}/phone/reveal"
    assert post(client, world, "alice", url, json={"reason": "看"}).status_code == 422
    assert post(client, world, "audrey", url, json={"reason": "审计抽查号码"}).status_code == 403
    got = post(client, world, "alice", url, json={"reason": "借款人来电核对"})
    assert got.status_code == 200 and got.json() == {"phone": "+8613800138000"}
    with c.uow(write=False) as s:
        rec = s.scalars(select(AuditRecord).where(AuditRecord.action == "pii.read")).all()[-1]
    assert "借款人来电核对" in rec.payload and rec.actor.startswith("user:")


def test_contacts_come_only_from_the_borrower(client, world):
    ids = world[1]
    url = f"/borrowers/{ids['b']}/contacts"
    body = {"name": "李四", "phone": "13300133000", "relation": "emergency_contact"}
    ok = post(client, world, "zhang", url, json=body)
    assert ok.status_code == 201 and ok.json()["phone"] == "133****3000"
    bought = post(client, world, "olga", url, json={"name": "某人", "phone": "13300133001", "relation": "relative",
                                                    "source": "data_broker"})
    assert bought.status_code == 422 and "CN:CL:253-1" in bought.json()["refusal"]["citations"]
    assert post(client, world, "agent", url, json={"name": "x", "phone": "13300133002",
                                                   "relation": "relative"}).status_code in (403, 404)


def test_the_payment_system_reports_payments_with_an_integration_token_and_reads_nothing(client, world):
    ids = world[1]
    body = {"loan_ref": "L2", "amount": "50.00", "paid_on": D.isoformat()}
    made = post(client, world, "paysys", "/payments", json=body, headers={"Idempotency-Key": "paysys-000001"})
    assert made.status_code == 201 and made.json()["amount"] == "50.00"
    for url in (f"/api/v1/cases/{ids['m4']}/stops", "/api/v1/complaints", "/api/v1/approvals"):
        assert client.get(url, headers=h(world, "paysys")).status_code == 403
    assert post(client, world, "paysys", f"/cases/{ids['m4']}/pay-links", json={}).status_code == 403


def test_a_ledger_plan_is_decided_under_maker_checker(client, world):
    ids = world[1]
    schedule = [{"due_date": (D + dt.timedelta(days=30)).isoformat(), "amount": "300.00"},
                {"due_date": (D + dt.timedelta(days=60)).isoformat(), "amount": "300.00"}]
    made = post(client, world, "alice", f"/cases/{ids['m4']}/plans", json={"schedule": schedule, "reason": "分期"})
    assert made.status_code == 201 and made.json()["status"] == "proposed"
    plan = made.json()["plan_id"]
    assert post(client, world, "alice", f"/plans/{plan}/decision", json={"accept": True}).status_code == 403
    too_much = post(client, world, "alice", f"/cases/{ids['m4']}/plans",
                    json={"schedule": [{"due_date": (D + dt.timedelta(days=30)).isoformat(), "amount": "99999.00"}]})
    assert too_much.status_code == 422 and too_much.json()["field"] == "schedule"
    ok = post(client, world, "dora", f"/plans/{plan}/decision", json={"accept": True, "note": "同意"})
    assert ok.status_code == 200 and ok.json()["status"] == "active" and ok.json()["request_status"] == "approved"
    again = post(client, world, "erin", f"/plans/{plan}/decision", json={"accept": False})
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)
    own = post(client, world, "dora", f"/cases/{ids['m1']}/plans", json={"schedule": schedule[:1]})
    assert post(client, world, "dora", f"/plans/{own.json()['plan_id']}/decision",
                json={"accept": True}).json()["detail"].startswith("maker-checker")
