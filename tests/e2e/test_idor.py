"""IDOR: no caller reaches an object they may not see by putting its id in a URL (both backends).

Two lenders (A and B) with the same data, an agency with one case of A assigned, and a user of every role.
``test_no_route_reaches_a_foreign_object`` walks every route of the app that has a path parameter
(``app.routes``, so pages and routes added later are included) and asks, as each caller, for objects the
caller may not see: another tenant's, for the agency the lender's unassigned case, for a borrower another
borrower's. Each answer must be exactly the answer for an id that does not exist (so it confirms nothing),
never a success, and a 404 wherever the caller could act on their own object of that kind.
A new path parameter name must be added to ``ID_KINDS`` (or ``NOT_IDS``): the test fails until it is.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from collectguard.adapters.crypto import mask_name, mask_phone
from collectguard.adapters.db.models import Case, Contact, Tenant
from collectguard.api.app import create_app
from collectguard.api.deps import is_public
from collectguard.services import accounts
from conftest import FIXED_NOW, create_database, make_container

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_allocation import D, borrower, case, contract, lender, user

MISSING = 987_654_321  # an id no table reaches in this test
STAFF = ("admin", "compliance_officer", "team_lead", "collector", "auditor", "integration")
# path parameter -> the kind of object it names; ``request_id`` depends on the route (see ``kind_of``)
ID_KINDS = {"case_id": "case", "borrower_id": "borrower", "contact_id": "contact", "consent_id": "consent",
            "attempt_id": "attempt", "stop_id": "stop", "complaint_id": "complaint", "plan_id": "plan",
            "template_id": "template", "qa_id": "qa", "user_id": "user", "decision_id": "decision",
            "loan_id": "loan", "request_id": None}
REQUEST_KINDS = {"/approvals/": "approval", "/disputes/": "dispute", "/hardship/": "hardship"}
# Path parameters that name no object of a tenant: a date, a jurisdiction, a page action, and the
# agency a lender contracts with (a partner tenant by design; the service scopes it to the caller's tenant).
NOT_IDS = {"as_of": D.isoformat(), "jurisdiction": "CN", "action": "check", "agency_tenant_id": None}
# Contact-list (通讯录) contacts: distinctive, so that any page or answer leaking them is caught.
LIST_NAME, LIST_PHONE = "通讯录联系人甲", "+8613911112222"


def kind_of(path: str, param: str) -> str:
    if param == "request_id":
        return next(k for prefix, k in REQUEST_KINDS.items() if prefix in path)
    kind = ID_KINDS[param]
    assert kind is not None
    return kind


# ---------------------------------------------------------------------------------------------- the world

def _api(client: TestClient, token: str, method: str, url: str, **kw: Any) -> dict[str, Any]:
    resp = client.request(method, f"/api/v1{url}", headers={"Authorization": f"Bearer {token}"}, **kw)
    assert resp.status_code in (200, 201), (method, url, resp.status_code, resp.text[:300])
    return resp.json()


FAMILY = {("lender-a", 1): "赵", ("lender-a", 2): "钱", ("lender-b", 1): "孙", ("lender-b", 2): "李"}
PHONES = {("lender-a", 1): "+8613800131101", ("lender-a", 2): "+8613800132202",
          ("lender-b", 1): "+8613900133303", ("lender-b", 2): "+8613900134404"}


def canary(code: str, side: int) -> str:
    """A token put into every free text of one borrower's objects: found in an answer, it is a leak."""
    return f"CANARY-{code[-1].upper()}{side}"


def _seed_tenant(s: Any, c: Any, code: str) -> dict[str, Any]:
    """Borrowers 1 and 2 with an open case each, a designated contact and a contact-list contact each."""
    t = lender(s, code)
    ids: dict[str, Any] = {"tenant": t.id}
    for side in (1, 2):
        family, phone = FAMILY[(code, side)], PHONES[(code, side)]
        b = borrower(s, c, t, f"{code}-B{side}", phone=phone, name=f"{family}借款人")
        k = case(s, b, f"{code}-L{side}", bucket="M1", dpd=10, amount="3000.00")
        contact_phone = phone[:-4] + "9" + phone[-3:]
        for source, name, number in (("borrower_designated", f"{family}联系人", contact_phone),
                                     ("contact_list", LIST_NAME, LIST_PHONE)):
            s.add(Contact(tenant_id=t.id, borrower_id=b.id, ext_id=f"{code}-C{side}-{source}",
                          name_enc=c.cipher.encrypt(name), phone_enc=c.cipher.encrypt(number),
                          phone_hmac=c.cipher.lookup_hash(number), relation="friend", source=source,
                          designated_by_borrower=source == "borrower_designated", created_at=FIXED_NOW))
        s.flush()
        contacts = {ct.source: ct.id for ct in s.scalars(select(Contact).where(Contact.borrower_id == b.id))}
        ids[side] = {"borrower": b.id, "case": k.id, "loan": k.loan_id,
                     "contact": contacts["borrower_designated"], "list_contact": contacts["contact_list"],
                     "secrets": _secrets(code, side)}
    for role in STAFF:
        if role != "integration":
            ids[f"user:{role}"] = user(s, t, f"{code}-{role}", role).id
    ids["user:team_lead2"] = user(s, t, f"{code}-team_lead2", "team_lead").id
    user(s, t, f"{code}-borrower", "borrower").borrower_id = ids[1]["borrower"]
    s.flush()
    return ids


def _secrets(code: str, side: int) -> tuple[str, ...]:
    """What must never reach a caller who may not see this borrower: names, numbers, masked or not, texts."""
    family, phone = FAMILY[(code, side)], PHONES[(code, side)]
    contact_phone = phone[:-4] + "9" + phone[-3:]
    out = [canary(code, side), f"{family}借款人", f"{family}联系人", mask_name(f"{family}借款人"),
           mask_name(f"{family}联系人")]
    for number in (phone, contact_phone):
        out += [number, number[3:], mask_phone(number)]
    return tuple(out)


def _tokens(s: Any, code: str) -> dict[str, str]:
    out = {}
    for role in (*STAFF, "team_lead2", "borrower"):
        username = None if role == "integration" else f"{code}-{role}"
        real_role = "team_lead" if role == "team_lead2" else role
        out[role] = accounts.token_create(s, tenant_code=code, role=real_role, username=username, actor="test",
                                          now=FIXED_NOW)[1]
    return out


def _objects(client: TestClient, tok: dict[str, str], ids: dict[str, Any], code: str) -> None:
    """Every other kind of object, made through the API by the tenant's own staff, on each side."""
    later = (D + dt.timedelta(days=30)).isoformat()
    for side in (1, 2):
        o, mark = ids[side], canary(code, side)
        case_id = o["case"]
        o["consent"] = _api(client, tok["compliance_officer"], "POST", f"/borrowers/{o['borrower']}/consents",
                            json={"kind": "third_party_contact", "form": "separate"})["id"]
        made = _api(client, tok["collector"], "POST", "/contact-attempts",
                    json={"case_id": case_id, "channel": "call", "recipient": {"role": "borrower"}})
        o["attempt"], o["decision"] = made["attempt_id"], made["decision_id"]
        o["stop"] = _api(client, tok["team_lead"], "POST", f"/cases/{case_id}/stops",
                         json={"reason": "fraud", "ends_on": later, "note": f"核查 {mark}"})["id"]
        o["complaint"] = _api(client, tok["compliance_officer"], "POST", f"/cases/{case_id}/complaints",
                              json={"category": "harassment", "text": f"电话太多 {mark}"})["id"]
        o["approval"] = _api(client, tok["team_lead"], "POST", f"/cases/{case_id}/approvals",
                             json={"kind": "waiver", "amount": "10.00", "reason": f"困难减免 {mark}"})["id"]
        o["plan"] = _api(client, tok["collector"], "POST", f"/cases/{case_id}/plans",
                         json={"schedule": [{"due_date": later, "amount": "300.00"}], "reason": f"分期 {mark}"}
                         )["plan_id"]
        o["hardship"] = _api(client, tok["collector"], "POST", f"/cases/{case_id}/hardship",
                             json={"reason": f"失业 {mark}"})["request_id"]
        o["dispute"] = _api(client, tok["compliance_officer"], "POST", f"/cases/{case_id}/disputes",
                            json={"reason": f"金额有误 {mark}"})["request_id"]
        o["template"] = _api(client, tok["team_lead"], "POST", "/templates",
                             json={"code": f"t{side}", "language": "zh",
                                   "body": f"您好，您的借款已到期，请按时还款。{mark}"})["id"]
        body = {"jurisdiction": "CN", "channel": "call", "time": "2026-04-07T10:00:00+08:00", "case_id": case_id,
                "recipient": {"role": "borrower"}, "id": f"rec-{mark}", "collector": {"kind": "lender", "id": mark},
                "turns": [{"speaker": "collector", "t": 0.0, "text": f"您好，您的借款已逾期，请按时还款。{mark}"}]}
        o["qa"] = _api(client, tok["compliance_officer"], "POST", "/qa", json=body)["qa_id"]
        o["user"] = ids["user:collector"]
        assert all(v for v in o.values()), o


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory):
    db = create_database(request.param, tmp_path_factory)
    c = make_container(db, log_json=False, log_level="CRITICAL")
    with c.uow() as s:
        a, b = _seed_tenant(s, c, "lender-a"), _seed_tenant(s, c, "lender-b")
        agency = lender(s, "agency-x", "agency", "某催收")
        contract(s, s.get(Tenant, a["tenant"]), agency)
        user(s, agency, "agency-x-agent", "agency_collector")
        tokens = {"A": _tokens(s, "lender-a"), "B": _tokens(s, "lender-b")}
        tokens["agency"] = accounts.token_create(s, tenant_code="agency-x", role="agency_collector",
                                                 username="agency-x-agent", actor="test", now=FIXED_NOW)[1]
    client = TestClient(create_app(c))
    _objects(client, tokens["A"], a, "lender-a")
    _objects(client, tokens["B"], b, "lender-b")
    with c.uow() as s:  # A's case 2 is handed to the agency (委外)
        s.get(Case, a[2]["case"]).agency_tenant_id = agency.id
    yield {"client": client, "A": a, "B": b, "tokens": tokens, "container": c}
    db.close()


# ---------------------------------------------------------------------------------------------- the walk

def id_routes(app: Any) -> list[tuple[str, str, list[str]]]:
    """(method, path, path parameters) of every non-public route with a path parameter."""
    out = set()
    for rc in iter_route_contexts(app.routes):
        params = re.findall(r"{(\w+)}", rc.path or "")
        if not params or not rc.methods or is_public(rc.path):
            continue
        for method in rc.methods - {"HEAD", "OPTIONS"}:
            out.add((method, rc.path, tuple(params)))
    return sorted((m, p, list(ps)) for m, p, ps in out)


def _body(method: str, path: str, own: dict[str, Any]) -> dict[str, Any]:
    """A request body that gets past validation, so the answer is the service's, not the schema's."""
    later = (D + dt.timedelta(days=20)).isoformat()
    if method == "GET":
        return {}
    if not path.startswith("/api/"):  # a page's form: every field any of them asks for (the rest are ignored)
        return {"data": {"case_id": str(own["case"]), "result": "no_answer", "channel": "call", "text": "已联系",
                         "reason": "核查原因说明", "note": "备注", "approve": "false", "decision": "reject",
                         "resolution": "已处理", "due_date": later, "amount": "100.00", "kind": "waiver",
                         "category": "harassment", "filed_on": D.isoformat(), "court": "某法院",
                         "case_number": "(2026)1号", "ends_on": later, "ttl_hours": "24"}}
    if path.endswith("/decision"):
        key = "approve" if "/approvals/" in path else "accept" if "/plans/" in path else "granted"
        return {"json": {key: False}}
    if path.endswith("/resolution"):
        return {"json": {"resolution": "已处理"} if "/complaints/" in path else {"upheld": True}}
    bodies: dict[str, Any] = {
        "/hold": {"reason": "留案"}, "/stops": {"reason": "fraud", "ends_on": later}, "/lift": {"note": "x"},
        "/complaints": {"category": "harassment", "text": "x"},
        "/approvals": {"kind": "waiver", "amount": "5.00", "reason": "x"},
        "/legal-actions": {"filed_on": D.isoformat(), "court": "某法院", "case_number": "(2026)1号"},
        "/reveal": {"reason": "借款人来电核对"},
        "/contacts": {"name": "新联系人", "phone": "13300133009", "relation": "emergency_contact"},
        "/consents": {"kind": "third_party_contact", "form": "separate"}, "/outcome": {"result": "no_answer"},
        "/ptp": {"due_date": later, "amount": "100.00"}, "/plans": {"schedule": [{"due_date": later,
                                                                                  "amount": "300.00"}]},
        "/disputes": {"reason": "x"}, "/hardship": {"reason": "x"}, "/review": {"approve": False},
        "/render": {"variables": {}}, "/capacity": {"capacity": 5},
        "/contract": {"capacity": 5, "processing_contract": True},
    }
    return {"json": next((b for suffix, b in bodies.items() if path.endswith(suffix)), {})}


def _url(path: str, values: dict[str, Any]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path)


def _call(client: TestClient, token: str, method: str, path: str, values: dict[str, Any], body: dict[str, Any]):
    return client.request(method, _url(path, values), headers={"Authorization": f"Bearer {token}",
                                                               "Accept": "application/json"},
                          follow_redirects=False, **body)


def _values(path: str, params: list[str], objs: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for p in params:
        if p in NOT_IDS:
            values[p] = NOT_IDS[p] if NOT_IDS[p] is not None else objs["agency"]
        else:
            values[p] = objs[kind_of(path, p)]
    return values


def test_every_path_parameter_is_known(world):
    app = world["client"].app
    unknown = {p for _m, _path, ps in id_routes(app) for p in ps if p not in ID_KINDS and p not in NOT_IDS}
    assert not unknown, f"path parameters the IDOR suite does not know: {unknown} (add them to ID_KINDS)"
    assert len(id_routes(app)) >= 40


LIST_SECRETS = (LIST_NAME, mask_name(LIST_NAME), LIST_PHONE, LIST_PHONE[3:], mask_phone(LIST_PHONE))
NO_LISTS = {"A:collector", "A:team_lead", "agency"}  # never shown a contact list (通讯录), even their borrowers'


def _callers(world) -> list[tuple[str, str, dict[str, Any], list[dict[str, Any]], tuple[str, ...]]]:
    """(name, token, own objects, foreign object sets, what no answer may contain) for every caller."""
    A, B, tok = world["A"], world["B"], world["tokens"]
    with world["container"].uow(write=False) as s:
        agency_id = s.scalar(select(Tenant.id).where(Tenant.code == "agency-x"))
    side = lambda ids, n: {**ids[n], "agency": agency_id}  # noqa: E731
    callers = [(f"A:{role}", tok["A"][role], side(A, 1), [side(B, 1)]) for role in STAFF]
    callers.append(("A:borrower", tok["A"]["borrower"], side(A, 1), [side(A, 2), side(B, 1)]))
    callers.append(("agency", tok["agency"], side(A, 2), [side(A, 1), side(B, 2)]))
    out = []
    for name, token, own, foreign in callers:
        secrets = B[1]["secrets"] + B[2]["secrets"] + (A[2]["secrets"] if name == "A:borrower" else ()) + (
            A[1]["secrets"] if name == "agency" else ()) + (LIST_SECRETS if name in NO_LISTS else ())
        out.append((name, token, own, foreign, secrets))
    return out


def test_no_route_reaches_a_foreign_object(world):
    client = world["client"]
    problems: list[str] = []
    strict = 0
    for name, token, own, foreign_sets, _secrets in _callers(world):
        for method, path, params in id_routes(client.app):
            if not any(p in ID_KINDS for p in params):
                continue
            body = _body(method, path, own)
            missing = _call(client, token, method, path, {p: MISSING for p in params} | {
                p: v for p, v in _values(path, params, own).items() if p in NOT_IDS}, body)
            answers = [(_call(client, token, method, path, _values(path, params, f), body), f) for f in foreign_sets]
            control = _call(client, token, method, path, _values(path, params, own), body)
            for resp, _f in answers:
                where = f"{name} {method} {_url(path, _values(path, params, _f))}"
                if resp.is_success:
                    problems.append(f"{where}: {resp.status_code} for a foreign object: {resp.text[:200]}")
                elif resp.status_code != missing.status_code:
                    problems.append(f"{where}: {resp.status_code}, but {missing.status_code} for a missing id "
                                    f"(the difference confirms the id exists): {resp.text[:200]}")
                elif control.is_success and resp.status_code != 404:
                    problems.append(f"{where}: {resp.status_code}, expected 404 (own object: {control.status_code})")
                strict += control.is_success and resp.status_code == 404
    assert not problems, "\n".join(problems)
    assert strict >= 60  # many routes were reached for real, not only refused up front


def get_routes(app: Any) -> list[tuple[str, list[str], list[str]]]:
    """(path, path parameters, query parameters naming objects) of every non-public GET route."""
    out = []
    for rc in iter_route_contexts(app.routes):
        if not rc.path or "GET" not in (rc.methods or ()) or is_public(rc.path):
            continue
        query, todo = [], [getattr(rc.original_route, "dependant", None)]
        while todo:  # the route's query parameters and those of its dependencies
            dep = todo.pop()
            if dep is not None:
                query += [q.alias for q in dep.query_params]
                todo += dep.dependencies
        out.append((rc.path, re.findall(r"{(\w+)}", rc.path), [q for q in query if q in ID_KINDS]))
    return sorted(out)


def test_no_answer_shows_what_the_caller_may_not_see(world):
    """Every page and API read, with the caller's own objects in the path and foreign ones in the query
    (``?case_id=``), never shows another tenant's or borrower's names, numbers or texts, masked or not;
    collectors, team leads and agencies never a contact list's."""
    client = world["client"]
    leaks, seen, own_shown = [], 0, set()
    for name, token, own, foreign_sets, secrets in _callers(world):
        for path, params, query_ids in get_routes(client.app):
            if not set(params) <= set(ID_KINDS) | set(NOT_IDS):
                continue  # test_every_path_parameter_is_known reports it
            url = _url(path, _values(path, params, own))
            queries = [{}] + [{q: f[kind_of(path, q)] for q in query_ids} for f in foreign_sets if query_ids]
            for query in queries:
                resp = client.get(url, params=query, headers={"Authorization": f"Bearer {token}"},
                                  follow_redirects=False)
                seen += resp.is_success
                if any(x in resp.text for x in own["secrets"]):
                    own_shown.add((name, path))
                found = [x for x in secrets if x in resp.text]
                if found:
                    leaks.append(f"{name} GET {url} {query}: {resp.status_code} shows {found}")
    assert not leaks, "\n".join(leaks)
    # The control: the same scan finds the caller's own borrower's data where it belongs, so it would see a leak.
    assert seen >= 40 and len(own_shown) >= 15, sorted(own_shown)


def test_contact_lists_are_refused_to_collectors_and_agencies(world):
    client, A, tok = world["client"], world["A"], world["tokens"]
    for name, token, own in (("collector", tok["A"]["collector"], A[1]), ("team_lead", tok["A"]["team_lead"], A[1]),
                             ("agency", tok["agency"], A[2])):
        reveal = client.post(f"/api/v1/contacts/{own['list_contact']}/phone/reveal", json={"reason": "核对号码"},
                             headers={"Authorization": f"Bearer {token}"})
        assert reveal.status_code == 404, (name, reveal.status_code)
    officer = client.post(f"/api/v1/contacts/{A[1]['list_contact']}/phone/reveal", json={"reason": "合规复核"},
                          headers={"Authorization": f"Bearer {tok['A']['compliance_officer']}"})
    assert officer.status_code == 200 and officer.json()["phone"] == LIST_PHONE  # the control: it exists


def test_the_agency_sees_its_case_and_nothing_else(world):
    client, A, B = world["client"], world["A"], world["B"]
    agent = {"Authorization": f"Bearer {world['tokens']['agency']}"}
    assert client.get(f"/api/v1/cases/{A[2]['case']}/stops", headers=agent).status_code == 200
    for case_id in (A[1]["case"], B[1]["case"], B[2]["case"]):
        assert client.get(f"/api/v1/cases/{case_id}/stops", headers=agent).status_code == 404
    page = client.get(f"/work/cases/{A[2]['case']}", headers=agent)
    assert page.status_code == 200 and mask_name(f"{FAMILY[('lender-a', 2)]}借款人") in page.text
    assert client.get(f"/work/cases/{A[1]['case']}", headers=agent).status_code == 404


def test_a_borrower_sees_only_their_own(world):
    client, A = world["client"], world["A"]
    me = {"Authorization": f"Bearer {world['tokens']['A']['borrower']}"}
    mine = client.get(f"/api/v1/borrowers/{A[1]['borrower']}/consents", headers=me)
    assert mine.status_code == 200 and mine.json()
    assert client.get(f"/api/v1/borrowers/{A[2]['borrower']}/consents", headers=me).status_code == 404
    complaints = client.get("/api/v1/complaints", headers=me).json()
    assert {x["case_id"] for x in complaints["items"]} == {A[1]["case"]}


def test_ids_in_request_bodies_are_scoped_too(world):
    """Ids that travel in a body or the query (not the path) get the same answer as an id that does not exist."""
    client, A, B, tok = world["client"], world["A"], world["B"], world["tokens"]["A"]
    later = (D + dt.timedelta(days=20)).isoformat()
    qa_body = {"jurisdiction": "CN", "channel": "call", "time": "2026-04-07T10:00:00+08:00", "id": "rec-x",
               "recipient": {"role": "borrower"}, "collector": {"kind": "lender", "id": "a-2"},
               "turns": [{"speaker": "collector", "t": 0.0, "text": "您好，请按时还款。"}]}
    probes = [  # (caller, method, url, body with "X" where the probed id goes, the kind of object probed)
        ("collector", "POST", "/contact-attempts", {"case_id": "X", "channel": "sms", "recipient": {"role": "borrower"},
                                                    "message": "您好，请按时还款。"}, "case"),
        ("collector", "POST", "/contact-attempts", {"loan_id": "X", "channel": "sms", "recipient": {"role": "borrower"},
                                                    "message": "您好，请按时还款。"}, "loan"),
        ("collector", "POST", "/contact-attempts", {"case_id": A[1]["case"], "channel": "sms",
                                                    "recipient": {"contact_id": "X"}, "message": "您好。"}, "contact"),
        ("compliance_officer", "POST", "/qa/reviews", {"qa_id": "X", "score": 60}, "qa"),
        ("compliance_officer", "POST", "/qa", {**qa_body, "case_id": "X"}, "case"),
        ("team_lead", "POST", f"/cases/{A[1]['case']}/stops", {"reason": "fraud", "scope": "number",
                                                              "contact_id": "X", "ends_on": later}, "contact"),
        ("integration", "POST", "/payments", {"loan_id": "X", "amount": "1.00", "paid_on": D.isoformat()}, "loan"),
    ]
    problems, keys = [], itertools.count()
    for who, method, url, template, kind in probes:
        def send(value: int) -> Any:
            body = json.loads(json.dumps(template).replace('"X"', str(value)))
            return client.request(method, f"/api/v1{url}", json=body, headers={
                "Authorization": f"Bearer {tok[who]}", "Idempotency-Key": f"idor-probe-{next(keys):06d}"})

        missing, foreign, own = send(MISSING), send(B[1][kind]), send(A[1][kind])
        if foreign.is_success or foreign.status_code != missing.status_code:
            problems.append(f"{who} {method} {url} {kind}=B's: {foreign.status_code} (missing id: "
                            f"{missing.status_code}) {foreign.text[:200]}")
        if own.status_code == 404:  # the control: the probed id is what decides
            problems.append(f"{who} {method} {url} {kind}=own: 404 {own.text[:200]}")
    recall = client.post(f"/api/v1/agencies/{_callers(world)[0][2]['agency']}/recall",
                         json={"case_ids": [B[1]["case"], B[2]["case"]]},
                         headers={"Authorization": f"Bearer {tok['team_lead']}"})
    assert recall.status_code == 200 and recall.json()["recalled"] == 0
    assert not problems, "\n".join(problems)
