"""The contact-attempt, consent and clause-lint endpoints through the real app (TestClient), both backends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from collectguard.adapters.db.models import ContactAttempt, Decision
from collectguard.adapters.db.models_ledger import AgencyContract
from collectguard.api.app import create_app
from collectguard.services import accounts
from conftest import FIXED_NOW, create_database, make_container

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_attempts_seed import seed

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    db = create_database(request.param, tmp_path_factory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
        mp.setattr(accounts, "_dummy_hash", None)
        c = make_container(db, log_json=False, log_level="WARNING")
        w = seed(c)
        with c.uow() as s:

            def token(tenant, role, **kw):
                return accounts.token_create(s, tenant_code=tenant, role=role, actor="test", now=FIXED_NOW, **kw)[1]

            accounts.user_create(
                s,
                tenant_code="lender-a",
                username="zhang",
                role="borrower",
                password="correct horse battery",
                borrower_ext_id="B1",
                actor="t",
                now=FIXED_NOW,
            )
            tokens = {
                "collector": token("lender-a", "collector"),
                "officer": token("lender-a", "compliance_officer"),
                "agent": token("agency-x", "agency_collector"),
                "outsider": token("lender-b", "collector"),
                "borrower": token("lender-a", "borrower", username="zhang"),
            }
        yield c, w, tokens
    db.close()


@pytest.fixture(scope="module")
def client(world):
    return TestClient(create_app(world[0]))


def h(world, who):
    return {"Authorization": f"Bearer {world[2][who]}"}


def post(client, world, body, who="collector"):
    return client.post("/api/v1/contact-attempts", json=body, headers=h(world, who))


def body(world, **kw):
    b = {"case_id": world[1]["case"], "channel": "call", "recipient": {"role": "borrower"}}
    b.update(kw)
    return {k: v for k, v in b.items() if v is not None}


def attempts(world):
    with world[0].uow(write=False) as s:
        return s.scalar(select(func.count()).select_from(ContactAttempt))


def test_allowed_201_then_outcome_and_listing(client, world):
    resp = post(client, world, body(world, time="2026-04-07T10:05:00+08:00", message="您好，请按时还款。"))
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert set(out) == {"attempt_id", "decision_id", "decision"} and out["decision"]["verdict"] == "allow"
    got = client.post(
        f"/api/v1/contact-attempts/{out['attempt_id']}/outcome",
        json={"result": "no_answer"},
        headers=h(world, "collector"),
    )
    assert got.status_code == 200 and got.json()["result"] == "no_answer"
    again = client.post(
        f"/api/v1/contact-attempts/{out['attempt_id']}/outcome", json={"result": "busy"}, headers=h(world, "collector")
    )
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)
    listed = client.get(f"/api/v1/cases/{world[1]['case']}/contact-attempts", headers=h(world, "officer"))
    assert listed.status_code == 200 and out["attempt_id"] in [a["id"] for a in listed.json()]
    one = client.get(f"/api/v1/contact-attempts/{out['attempt_id']}", headers=h(world, "collector"))
    assert one.json()["outcome"] == "no_answer"


def test_denied_is_403_problem_json_carrying_the_decision_and_it_is_recorded(client, world):
    before = attempts(world)
    with world[0].uow(write=False) as s:
        decisions = s.scalar(select(func.count()).select_from(Decision))
    resp = post(client, world, body(world, time="2026-04-07T22:30:00+08:00"))
    assert resp.status_code == 403 and resp.headers["content-type"].startswith(PROBLEM)
    problem = resp.json()
    assert problem["code"] == "denied" and problem["decision"]["verdict"] == "deny"
    assert "cn.quiet_hours" in {v["rule"] for v in problem["decision"]["violations"]}
    assert problem["decision_id"] and attempts(world) == before
    with world[0].uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == decisions + 1


def test_a_third_party_refusal_blocks_the_next_attempt(client, world):
    w = world[1]
    # Not unreachable: the precondition denies; the decision names it.
    resp = post(
        client,
        world,
        body(world, recipient={"contact_id": w["guarantor"]}, purpose="collect", time="2026-04-07T11:00:00+08:00"),
    )
    assert resp.status_code == 201  # a guarantor is a debtor
    refused = client.post(
        f"/api/v1/contact-attempts/{resp.json()['attempt_id']}/outcome",
        json={"result": "no_contact_request"},
        headers=h(world, "collector"),
    )
    assert refused.json()["effects"] == {"contact_no_contact_requested": w["guarantor"]}


@pytest.mark.parametrize(
    "who, payload, status, field",
    [
        ("collector", {"case_id": 999999}, 404, None),
        ("collector", {"case_id": "case2"}, 404, None),
        ("outsider", {}, 404, None),
        ("collector", {"recipient": {"contact_id": "contact2"}}, 404, None),
        ("collector", {"recipient": {"contact_id": "listed"}}, 404, None),
        ("agent", {}, 404, None),
        ("collector", {"extra": 1}, 422, "extra"),
        ("collector", {"channel": None}, 422, "channel"),
        ("collector", {"channel": "fax"}, 422, "channel"),
        ("collector", {"loan_id": "loan"}, 422, "body"),
        ("collector", {"recipient": {"role": "borrower", "contact_id": "emergency"}}, 422, "recipient"),
        ("collector", {"recipient": {"role": "spouse"}}, 422, "recipient.role"),
        ("collector", {"time": "2026-04-07T10:00:00"}, 422, "time"),
        ("collector", {"time": "tomorrow"}, 422, "time"),
        ("collector", {"time": "2026-04-07T01:00:00+08:00"}, 422, "time"),
        ("collector", {"case_id": 2**70}, 422, "case_id"),
        ("collector", {"visitors": -1}, 422, "visitors"),
        ("collector", {"conduct": ["bribery"]}, 422, "conduct.0"),
        ("borrower", {}, 403, None),
    ],
)
def test_bad_input_and_foreign_ids_never_500(client, world, who, payload, status, field):
    w = world[1]
    fixed = {}
    for k, v in payload.items():
        if isinstance(v, dict):
            v = {kk: w.get(vv, vv) if isinstance(vv, str) else vv for kk, vv in v.items()}
        fixed[k] = w.get(v, v) if isinstance(v, str) and k in ("case_id", "loan_id") else v
    b = body(world, time="2026-04-07T12:00:00+08:00")
    b.update(fixed)
    b = {k: v for k, v in b.items() if v is not None}
    before = attempts(world)
    resp = post(client, world, b, who=who)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    if field:
        assert resp.json()["field"].startswith(field), resp.json()
    assert attempts(world) == before


def test_malformed_json_and_ids_in_paths(client, world):
    resp = client.post(
        "/api/v1/contact-attempts",
        content=b"{not json",
        headers={**h(world, "collector"), "content-type": "application/json"},
    )
    assert resp.status_code == 422
    assert client.get("/api/v1/contact-attempts/abc", headers=h(world, "collector")).status_code == 422
    assert client.get(f"/api/v1/contact-attempts/{2**70}", headers=h(world, "collector")).status_code == 422
    assert client.get("/api/v1/contact-attempts/987654", headers=h(world, "collector")).status_code == 404
    resp = client.post(
        "/api/v1/contact-attempts/987654/outcome", json={"result": "maybe"}, headers=h(world, "collector")
    )
    assert resp.status_code == 422 and resp.json()["field"] == "result"


def test_consents_through_the_api_and_the_next_decision(client, world):
    w = world[1]
    url = f"/api/v1/borrowers/{w['borrower']}/consents"
    given = client.post(
        url,
        json={
            "kind": "agreed_hours",
            "form": "separate",
            "hours": "09:00-23:00",
            "device_fingerprint": "android-14|pixel",
        },
        headers=h(world, "borrower"),
    )
    assert given.status_code == 201, given.text
    assert "device_fingerprint" not in given.text and given.json()["evidence"]["device_sha256"]
    ok = post(client, world, body(world, time="2026-04-07T22:40:00+08:00"))
    assert ok.status_code == 201
    withdrawn = client.post(f"/api/v1/consents/{given.json()['id']}/withdraw", headers=h(world, "borrower"))
    assert withdrawn.status_code == 200 and withdrawn.json()["kinds"] == ["agreed_hours"]
    assert post(client, world, body(world, time="2026-04-07T22:45:00+08:00")).status_code == 403
    history = client.get(url, headers=h(world, "officer")).json()
    assert [c["active"] for c in history if c["kind"] == "agreed_hours"] == [False]
    # A collector may not write consents; nobody sees another lender's borrower.
    assert (
        client.post(url, json={"kind": "marketing", "form": "separate"}, headers=h(world, "collector")).status_code
        == 403
    )
    assert client.get(url, headers=h(world, "outsider")).status_code == 404
    bad = client.post(url, json={"kind": "marketing", "form": "separate", "hours": "9-5"}, headers=h(world, "officer"))
    assert bad.status_code == 422 and bad.json()["field"] == "hours"
    assert client.post(url, json={"kind": "x", "form": "separate"}, headers=h(world, "officer")).status_code == 422


def test_an_agency_with_a_contract_and_a_notice_is_allowed(client, world):
    c, w = world[0], world[1]
    with c.uow() as s:
        from collectguard.adapters.db.models import Case

        s.get(Case, w["case"]).agency_tenant_id = w["agency"]
        s.add(
            AgencyContract(
                lender_tenant_id=w["lender"],
                agency_tenant_id=w["agency"],
                capacity=5,
                processing_contract=True,
                active=True,
                created_at=FIXED_NOW,
            )
        )
    try:
        denied = post(client, world, body(world, time="2026-04-07T13:00:00+08:00"), who="agent")
        assert denied.status_code == 403
        assert {v["rule"] for v in denied.json()["decision"]["violations"]} == {"cn.outsourcing.notice"}
        client.post(
            f"/api/v1/borrowers/{w['borrower']}/consents",
            json={"kind": "outsourcing_notice", "form": "separate", "channel": "paper"},
            headers=h(world, "officer"),
        )
        assert post(client, world, body(world, time="2026-04-07T13:01:00+08:00"), who="agent").status_code == 201
    finally:
        with c.uow() as s:
            s.get(Case, w["case"]).agency_tenant_id = None


def test_clause_lint_takes_text_or_json(client, world):
    text = "您同意我们读取您的通讯录并用于逾期催收。"
    plain = client.post(
        "/api/v1/clauses/lint",
        content=text.encode(),
        headers={**h(world, "officer"), "content-type": "text/plain; charset=utf-8"},
    )
    assert plain.status_code == 200 and plain.json()["verdict"] == "problems"
    as_json = client.post("/api/v1/clauses/lint", json={"text": text}, headers=h(world, "officer"))
    assert as_json.json() == plain.json()
    clean = client.post("/api/v1/clauses/lint", json={"text": "我们不会读取您的通讯录。"}, headers=h(world, "officer"))
    assert clean.json() == {"verdict": "clean", "findings": []}
    for bad, field in (
        (b'{"txt": "x"}', "text"),
        (b"{oops", "body"),
        (b'{"text": 5}', "text"),
        (b'{"text": "  "}', "text"),
    ):
        resp = client.post(
            "/api/v1/clauses/lint", content=bad, headers={**h(world, "officer"), "content-type": "application/json"}
        )
        assert resp.status_code == 422 and resp.json()["field"] == field
    resp = client.post("/api/v1/clauses/lint", content=b"\xff\xfe", headers=h(world, "officer"))
    assert resp.status_code == 422
    assert client.post("/api/v1/clauses/lint", json={"text": text}, headers=h(world, "collector")).status_code == 403


# ---- the envelope (api/envelope.py, pure ASGI since session 3) ------------------------------------

SECURITY = (
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Content-Security-Policy",
    "Permissions-Policy",
)


def test_every_answer_carries_the_request_id_and_the_security_headers(client, world):
    created = post(client, world, body(world), who="collector")
    denied = client.post("/api/v1/contact-attempts", json=body(world), headers={"X-Request-ID": "abc123"})
    for resp in (created, denied, client.get("/health")):
        assert all(resp.headers.get(k) for k in SECURITY), resp.headers
        assert len(resp.headers.get_list("x-request-id")) == 1
    assert denied.status_code == 401 and denied.headers["x-request-id"] == "abc123"  # echoed, not replaced
    assert created.headers["x-request-id"] != post(client, world, body(world)).headers["x-request-id"]


def test_a_declared_body_over_the_limit_is_refused_before_the_app(client, world):
    limit = world[0].settings.max_request_bytes
    resp = client.post(
        "/api/v1/contact-attempts",
        content=b"{}",
        headers={**h(world, "collector"), "Content-Length": str(limit + 1), "Content-Type": "application/json"},
    )
    assert resp.status_code == 413 and resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["code"] == "too_large" and resp.json()["instance"] == "/api/v1/contact-attempts"
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["x-request-id"]
    bad = client.post("/api/v1/contact-attempts", content=b"{}", headers={"Content-Length": "12x"})
    assert bad.status_code in (400, 413)
