"""Allocation (分案) by rules: dry run, apply, capacity, teams, one holder per borrower, rotation, holds,
outsourcing rounds with recall, agency visibility (both backends).

The builders at the top (``lender``, ``user``, ``borrower``, ``case``, ``principal``) also seed the other
operations tests (stops, approvals, pay links, templates, reveal and the API).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from collectguard.adapters.db.models import AuditRecord, Borrower, Case, Installment, Loan, Tenant, User
from collectguard.adapters.db.models_ledger import AgencyContract, CaseAssignment, CollectorCapacity, WorkItem
from collectguard.adapters.db.models_ops import AllocationRun
from collectguard.errors import BadInput, Conflict, NotFound
from collectguard.services import allocation as al
from collectguard.services.authz import Principal, ensure_visible, scope_cases
from collectguard.services.stops import case_hold, case_hold_release
from conftest import FIXED_NOW

NOW = FIXED_NOW  # 10:00 in Beijing on 2026-04-07
D = dt.date(2026, 4, 7)


# ---------------------------------------------------------------- builders shared by the operations tests

def lender(s: Any, code: str = "lender-o", kind: str = "lender", name: str = "示例金融") -> Tenant:
    t = s.scalar(select(Tenant).where(Tenant.code == code))
    if t is None:
        t = Tenant(code=code, name=name, kind=kind, licensed=True, created_at=NOW)
        s.add(t)
        s.flush()
    return t


def user(s: Any, tenant: Tenant, name: str, role: str = "collector", capacity: int | None = None) -> User:
    u = User(tenant_id=tenant.id, username=name, password_hash="x", role=role, created_at=NOW)
    s.add(u)
    s.flush()
    if capacity is not None:
        s.add(CollectorCapacity(user_id=u.id, tenant_id=tenant.id, capacity=capacity, active=True))
        s.flush()
    return u


def borrower(s: Any, c: Any, tenant: Tenant, ext: str, phone: str = "+8613800138000", name: str = "张三",
             jurisdiction: str = "CN") -> Borrower:
    b = Borrower(tenant_id=tenant.id, ext_id=ext, name_enc=c.cipher.encrypt(name), phone_enc=c.cipher.encrypt(phone),
                 phone_hmac=c.cipher.lookup_hash(phone), jurisdiction=jurisdiction,
                 timezone="Asia/Shanghai" if jurisdiction == "CN" else "America/New_York",
                 language="zh-CN", created_at=NOW)
    s.add(b)
    s.flush()
    return b


def case(s: Any, b: Borrower, ext: str, *, bucket: str = "M1", dpd: int = 10, amount: str = "1000.00",
         product: str = "cash", currency: str = "CNY") -> Case:
    """An open case on a loan of two equal installments, the first ``dpd`` days overdue."""
    value = Decimal(amount)
    loan = Loan(tenant_id=b.tenant_id, ext_id=ext, borrower_id=b.id, product=product,
                lender_type="licensed_institution", principal=value, currency=currency, annual_rate=Decimal("18"),
                disbursed_on=D - dt.timedelta(days=200), lpr_at_signing=Decimal("3.45"), dpd=dpd, bucket=bucket,
                outstanding=value, created_at=NOW)
    s.add(loan)
    s.flush()
    half = (value / 2).quantize(Decimal("0.01"))
    for seq, due, part in ((1, D - dt.timedelta(days=dpd), half), (2, D + dt.timedelta(days=30), value - half)):
        s.add(Installment(loan_id=loan.id, seq=seq, due_date=due, principal_due=part - Decimal("20.00"),
                          interest_due=Decimal("15.00"), fee_due=Decimal("5.00")))
    row = Case(tenant_id=b.tenant_id, loan_id=loan.id, borrower_id=b.id, status="open", bucket=bucket, dpd=dpd,
               opened_on=D - dt.timedelta(days=dpd))
    s.add(row)
    s.flush()
    return row


def principal(tenant: Tenant, role: str, *, user_id: int | None = None, agency: bool = False,
              token_id: int = 1) -> Principal:
    return Principal(tenant_id=tenant.id, tenant_code=tenant.code, role=role, user_id=user_id, token_id=token_id,
                     agency_tenant_id=tenant.id if agency else None)


def contract(s: Any, lender_t: Tenant, agency_t: Tenant, capacity: int = 100, processing: bool = True) -> None:
    s.add(AgencyContract(lender_tenant_id=lender_t.id, agency_tenant_id=agency_t.id, capacity=capacity,
                         processing_contract=processing, active=True, created_at=NOW))
    s.flush()


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def w(container):
    """A lender with collectors alice and bob (capacity 10), two agencies (one without a PIPL 21
    contract), borrowers with M1, M2 and M4 cases, one borrower with two cases."""
    c = container
    with c.uow() as s:
        t = lender(s)
        ag, rogue = lender(s, "agency-a", "agency", "甲催收"), lender(s, "agency-r", "agency", "无合同")
        contract(s, t, ag)
        contract(s, t, rogue, processing=False)
        alice, bob = user(s, t, "alice", capacity=10), user(s, t, "bob", capacity=10)
        user(s, t, "idle")  # no capacity row: takes no cases
        ids: dict[str, Any] = {"t": t.id, "agency": ag.id, "rogue": rogue.id, "alice": alice.id, "bob": bob.id}
        for n, (bucket, dpd, amount) in enumerate((("M1", 5, "1000.00"), ("M2", 40, "3000.00"),
                                                   ("M4", 100, "8000.00"), ("M1", 12, "500.00"))):
            b = borrower(s, c, t, f"B{n}", phone=f"+86138001380{n:02d}")
            ids[f"c{n}"] = case(s, b, f"L{n}", bucket=bucket, dpd=dpd, amount=amount).id
            ids[f"b{n}"] = b.id
        b0 = s.get(Borrower, ids["b0"])
        ids["c0b"] = case(s, b0, "L0b", bucket="M2", dpd=35, amount="200.00").id  # the same borrower's second case
    return ids


def holders(c, ids):
    with c.uow(write=False) as s:
        return {k: (s.get(Case, ids[k]).assignee_user_id, s.get(Case, ids[k]).agency_tenant_id)
                for k in ("c0", "c0b", "c1", "c2", "c3")}


def plan(c, w, **kw):
    with c.uow(write=False) as s:
        return al.allocation_plan(s, tenant_id=w["t"], as_of=D, **kw)


def apply(c, w, **kw):
    with c.uow() as s:
        return al.allocation_apply(s, tenant_id=w["t"], as_of=D, actor="user:1", now=NOW, **kw)


# ---------------------------------------------------------------- tests

def test_the_dry_run_shows_the_distribution_and_writes_nothing(container, w):
    out = plan(container, w)
    assert out["cases"] == 5 and out["moves"] == 5 and out["unallocated"] == {}
    dist = {(d["kind"], d["name"]): d for d in out["distribution"]}
    assert set(dist) == {("collector", "alice"), ("collector", "bob"), ("agency", "agency-a")}
    assert dist[("agency", "agency-a")]["cases"] == 1 and dist[("agency", "agency-a")]["by_bucket"] == {"M4": 1}
    assert dist[("agency", "agency-a")]["amount"] == "8000.00"
    assert sum(d["cases"] for d in dist.values()) == 5
    assert holders(container, w) == dict.fromkeys(("c0", "c0b", "c1", "c2", "c3"), (None, None))
    with container.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(CaseAssignment)) == 0


def test_apply_writes_assignments_and_audit_records_and_a_second_run_moves_nothing(container, w):
    dry = plan(container, w)
    out = apply(container, w, expect_plan_sha256=dry["plan_sha256"])
    assert out["moves"] == 5 and out["run_id"]
    h = holders(container, w)
    assert h["c2"] == (None, w["agency"])  # M4 CN: outsourced, only to the agency with a PIPL 21 contract
    assert h["c0"] == h["c0b"] and h["c0"][0] in (w["alice"], w["bob"])  # one borrower, one collector
    with container.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(CaseAssignment).where(CaseAssignment.ended_on.is_(None))) == 5
        actions = list(s.scalars(select(AuditRecord.action).where(AuditRecord.tenant_id == w["t"])))
        assert actions.count("case.assign") == 5 and actions.count("allocation.apply") == 1
        assert s.scalar(select(func.count()).select_from(AllocationRun)) == 1
    assert plan(container, w)["moves"] == 0


def test_apply_refuses_a_plan_that_changed_since_the_dry_run(container, w):
    dry = plan(container, w)
    with container.uow() as s:
        s.get(Case, w["c1"]).bucket = "M4"
    with pytest.raises(Conflict):
        apply(container, w, expect_plan_sha256=dry["plan_sha256"])


def test_collector_capacity_is_respected_and_the_rest_is_reported(container, w):
    with container.uow() as s:
        for uid in (w["alice"], w["bob"]):
            s.get(CollectorCapacity, uid).capacity = 1
    out = plan(container, w)
    assert sorted(d["cases"] for d in out["distribution"] if d["kind"] == "collector") == [1, 1]
    assert out["unallocated"] == {"no_capacity": 2}  # borrower B0's two cases go together or not at all
    assert next(d for d in out["distribution"] if d["kind"] == "unassigned")["cases"] == 2


def test_a_borrowers_new_case_joins_their_collector_even_past_capacity(container, w):
    apply(container, w)
    holder = holders(container, w)["c0"][0]
    with container.uow() as s:
        s.get(CollectorCapacity, holder).capacity = 2
        new = case(s, s.get(Borrower, w["b0"]), "L0c", bucket="M1", dpd=3, amount="100.00").id
    out = plan(container, w)
    assert [(m["case_id"], m["to"]) for m in out["changes"]] == [(new, f"u:{holder}")]
    (mine,) = [d for d in out["distribution"] if d["id"] == holder and d["kind"] == "collector"]
    assert mine["cases"] == 3 and mine["over_capacity"] is True


def test_team_capacity_and_team_pools_come_from_the_rules(container, w):
    body = {"version": "t1", "teams": [{"id": "early", "capacity": 2, "members": ["alice"]}],
            "rules": [{"id": "early", "when": {"buckets": ["M1", "M2", "M3"]}, "to": "collectors",
                       "teams": ["early"]}]}
    out = plan(container, w, rules=body)
    dist = {d["name"]: d for d in out["distribution"]}
    assert dist["alice"]["cases"] == 2 and dist["alice"]["team"] == "early" and "bob" not in dist
    assert out["unallocated"] == {"no_capacity": 2, "no_rule": 1}


@pytest.mark.parametrize("when, expected", [
    ({"amount_min": "2000"}, {"c1", "c2"}), ({"amount_max": "600"}, {"c0b", "c3"}), ({"products": ["card"]}, set()),
    ({"jurisdictions": ["US"]}, set()), ({"buckets": ["M2"]}, {"c0b", "c1"}),
])
def test_rules_match_by_amount_product_jurisdiction_and_bucket(container, w, when, expected):
    body = {"version": "t2", "keep_borrower_together": False,
            "rules": [{"id": "only", "when": when, "to": "collectors"}]}
    out = plan(container, w, rules=body)
    assert {k for k in ("c0", "c0b", "c1", "c2", "c3") if any(m["case_id"] == w[k] for m in out["changes"])} == expected


def test_rotation_after_n_days_moves_the_case_to_someone_else(container, w):
    apply(container, w)
    before = holders(container, w)["c3"]
    with container.uow() as s:
        s.execute(CaseAssignment.__table__.update().where(CaseAssignment.case_id == w["c3"])
                  .values(assigned_on=D - dt.timedelta(days=30)))
        s.add(WorkItem(as_of=D, tenant_id=w["t"], case_id=w["c3"], loan_id=s.get(Case, w["c3"]).loan_id,
                       borrower_id=w["b3"], recipient_key="borrower", step="M1.sms", channel="sms",
                       recipient_role="borrower", purpose="collect", template="t", language="zh", local_time="10:00",
                       timezone="Asia/Shanghai", planned_at=NOW, assignee_user_id=before[0]))
    out = apply(container, w)
    assert [(m["case_id"], m["why"]) for m in out["changes"]] == [(w["c3"], "rotation")]
    after = holders(container, w)["c3"]
    assert after[0] != before[0] and after[0] in (w["alice"], w["bob"])
    with container.uow(write=False) as s:
        ended = s.scalars(select(CaseAssignment.end_reason).where(CaseAssignment.case_id == w["c3"],
                                                                  CaseAssignment.ended_on.is_not(None))).all()
        assert ended == ["rotated"]
        assert s.scalar(select(WorkItem.assignee_user_id).where(WorkItem.case_id == w["c3"])) == after[0]


def test_a_hold_takes_the_case_from_everyone_until_released(container, w):
    apply(container, w)
    with container.uow() as s:
        case_hold(s, tenant_id=w["t"], case_id=w["c1"], reason="留案：待法务评估", on=D, actor="user:9", now=NOW)
        assert s.get(Case, w["c1"]).paused_reason == "hold"
    assert holders(container, w)["c1"] == (None, None)
    out = plan(container, w)
    assert out["cases"] == 4 and out["moves"] == 0
    with container.uow() as s, pytest.raises(Conflict):
        case_hold(s, tenant_id=w["t"], case_id=w["c1"], reason="again", on=D, actor="user:9", now=NOW)
    with container.uow() as s:
        case_hold_release(s, tenant_id=w["t"], case_id=w["c1"], actor="user:9", now=NOW)
        assert s.get(Case, w["c1"]).paused_reason is None
    assert [m["case_id"] for m in plan(container, w)["changes"]] == [w["c1"]]


def test_outsourcing_rounds_end_with_a_recall_to_the_lender(container, w):
    apply(container, w)
    agent = Principal(tenant_id=w["agency"], tenant_code="agency-a", role="agency_collector",
                      agency_tenant_id=w["agency"], token_id=7)
    with container.uow(write=False) as s:
        assert list(s.scalars(scope_cases(select(Case.id), agent))) == [w["c2"]]
        with pytest.raises(NotFound):
            ensure_visible(s.get(Case, w["c1"]), agent, session=s)
    with container.uow() as s:  # its third round, now due for rotation (M4: 45 days)
        s.execute(CaseAssignment.__table__.update().where(CaseAssignment.case_id == w["c2"])
                  .values(assigned_on=D - dt.timedelta(days=45)))
        for n in range(2):
            s.add(CaseAssignment(tenant_id=w["t"], case_id=w["c2"], agency_tenant_id=w["agency"],
                                 assigned_on=D - dt.timedelta(days=200 - n * 50), ended_on=D - dt.timedelta(days=100),
                                 end_reason="rotated"))
    out = apply(container, w)
    (move,) = [m for m in out["changes"] if m["case_id"] == w["c2"]]
    assert move["from"] == f"a:{w['agency']}" and move["to"].startswith("u:") and move["rule"] == "late_in_house"
    assert holders(container, w)["c2"][1] is None
    with container.uow(write=False) as s:
        assert list(s.scalars(scope_cases(select(Case.id), agent))) == []


def test_an_agency_without_an_entrusted_processing_contract_never_gets_cases(container, w):
    body = {"version": "t3", "rules": [{"id": "all_out", "to": "agencies", "agencies": ["agency-r"]}]}
    out = plan(container, w, rules=body)
    assert out["moves"] == 0 and out["unallocated"] == {"no_holder": 5}


def test_an_agency_whose_contract_ends_loses_its_cases_to_the_next_rule(container, w):
    apply(container, w)
    with container.uow() as s:
        s.execute(AgencyContract.__table__.update().values(active=False))
    (move,) = plan(container, w)["changes"]
    assert (move["case_id"], move["from"], move["rule"]) == (w["c2"], f"a:{w['agency']}", "late_in_house")
    only_out = {"version": "t4", "rules": [{"id": "out", "when": {"buckets": ["M4"]}, "to": "agencies"}]}
    out = plan(container, w, rules=only_out)  # no in-house rule left: the case is taken back all the same
    assert [(m["case_id"], m["to"]) for m in out["changes"]] == [(w["c2"], None)]


def test_paused_cases_stay_with_their_holder(container, w):
    apply(container, w)
    with container.uow() as s:
        s.get(Case, w["c3"]).paused_reason = "dispute"
        s.execute(CaseAssignment.__table__.update().where(CaseAssignment.case_id == w["c3"])
                  .values(assigned_on=D - dt.timedelta(days=300)))
    assert plan(container, w)["moves"] == 0


def test_rules_are_validated_and_saved_versions_are_never_reused(container, w):
    with pytest.raises(BadInput) as exc:
        plan(container, w, rules={"version": "x", "rules": [{"id": "a", "to": "robots"}]})
    assert exc.value.field.startswith("rules.rules.0.to")
    with pytest.raises(BadInput):
        plan(container, w, rules={"version": "x", "rules": [{"id": "a", "to": "collectors", "teams": ["ghost"]}]})
    body = {"version": "2026.2", "rules": [{"id": "all", "to": "collectors"}]}
    with container.uow() as s:
        al.allocation_rules_save(s, tenant_id=w["t"], body=body, actor="user:1", now=NOW)
    with container.uow() as s:
        rules, _sha = al.allocation_rules_for(s, tenant_id=w["t"])
        assert rules.version == "2026.2"
        with pytest.raises(Conflict):
            al.allocation_rules_save(s, tenant_id=w["t"], body=body, actor="user:1", now=NOW)
    assert plan(container, w)["rules_version"] == "2026.2"


# ---------------------------------------------------------------- the command line (a database with real commits)

@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def committed(request, tmp_path_factory):
    from conftest import create_database, make_container

    db = create_database(request.param, tmp_path_factory)
    c = make_container(db)
    with c.uow() as s:
        t = lender(s)
        user(s, t, "alice", capacity=10)
        b = borrower(s, c, t, "B1")
        ids = {"case": case(s, b, "L1").id, "t": t.id}
    yield db, ids
    db.close()


@pytest.fixture
def cli(committed, monkeypatch, capsys):
    import io
    import json
    import sys

    from collectguard.cli import context
    from collectguard.cli import main as cli_main
    from collectguard.cli import ops as cli_ops

    if not any(cmd.name == "allocate" for cmd in cli_main.app.registered_commands):
        cli_ops.register(cli_main.app)  # until the lead adds "ops" to FEATURE_COMMANDS
    monkeypatch.setenv("COLLECTGUARD_DATABASE_URL", committed[0].url)
    monkeypatch.setattr(context, "_CONTAINER", None)
    monkeypatch.setattr(context, "DATABASE_URL", None)
    monkeypatch.setattr(context, "container", lambda: _fixed_clock(context))

    def run(*args):
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        with pytest.raises(SystemExit) as exit_:
            cli_main.main([*args])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return int(exit_.value.code or 0), (json.loads(out) if out.strip() else None), err

    yield run
    if context._CONTAINER is not None:
        context._CONTAINER.engine.dispose()


def _fixed_clock(context):
    """The CLI's container with the tests' clock (the fixtures' dates are around 2026-04-07)."""
    from collectguard.bootstrap import build
    from collectguard.settings import Settings

    if context._CONTAINER is None:
        context._CONTAINER = build(Settings())
        context._CONTAINER.clock = lambda: NOW
    return context._CONTAINER


def test_cli_allocate_dry_run_then_apply(cli, committed, tmp_path):
    rc, out, _ = cli("allocate", "--dry-run", "--tenant", "lender-o")
    assert rc == 0 and out["moves"] == 1 and out["distribution"][0]["name"] == "alice"
    rc, _, err = cli("allocate", "--tenant", "lender-o")
    assert rc == 2 and "--dry-run" in err
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: cli-1\nrules:\n  - {id: nobody, when: {buckets: [M6+]}, to: collectors}\n")
    rc, out, _ = cli("allocate", "--dry-run", "--rules", str(rules), "--tenant", "lender-o")
    assert out["moves"] == 0 and out["unallocated"] == {"no_rule": 1}
    rc, out, _ = cli("allocate", "--apply", "--tenant", "lender-o", "--expect", "0" * 64)
    assert rc == 2
    rc, out, _ = cli("allocate", "--apply", "--tenant", "lender-o")
    assert rc == 0 and out["moves"] == 1


def test_cli_stops_templates_and_complaints(cli, committed, tmp_path):
    case_id = str(committed[1]["case"])
    rc, out, _ = cli("stop", "add", "--case", case_id, "--reason", "deceased", "--tenant", "lender-o")
    assert rc == 0 and out["active"] and out["scope"] == "case"
    rc, out, _ = cli("stop", "add", "--case", case_id, "--reason", "complaint", "--number", "borrower",
                     "--to", "2026-04-30", "--tenant", "lender-o")
    assert rc == 0 and out["borrower_number"] is True
    rc, listed, _ = cli("stop", "list", "--case", case_id, "--tenant", "lender-o")
    assert len(listed) == 2
    rc, out, _ = cli("stop", "lift", str(listed[0]["id"]), "--tenant", "lender-o")
    assert rc == 0 and out["active"] is False
    rc, _, err = cli("stop", "add", "--case", case_id, "--reason", "bored", "--tenant", "lender-o")
    assert rc == 2 and "reason" in err
    rc, out, _ = cli("templates", "create", "--code", "m1", "--language", "zh", "--body",
                     "{name_masked}您好，请按时还款。", "--tenant", "lender-o")
    tid = str(out["id"])
    assert cli("templates", "lint", tid, "--tenant", "lender-o")[1]["status"] == "linted"
    rc, _, err = cli("templates", "approve", tid, "--tenant", "lender-o")
    assert rc == 2 and "maker-checker" in err  # the same operator wrote it
    assert [t["id"] for t in cli("templates", "list", "--tenant", "lender-o")[1]] == [int(tid)]
    tickets = tmp_path / "c.csv"
    tickets.write_text("complaint_ref,loan_id,received_at,channel,category,text\n"
                       "R1,L1,2026-04-06T09:00:00+08:00,phone,harassment,电话太多\n", encoding="utf-8")
    assert cli("complaints", "import", str(tickets), "--tenant", "lender-o")[1] == {"imported": 1, "skipped": 0}
