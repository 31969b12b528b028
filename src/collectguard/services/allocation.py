"""Case allocation (分案) by configurable rules, with a dry run before anything is applied.

The rules are data (``policy/allocation/default.yaml``, or a tenant's saved version): which pool —
collectors (optionally by team) or agencies (outsourcing rounds, 委外轮次) — takes a case, by bucket,
amount, product and jurisdiction; capacity per collector (``collector_capacity``), per team and per
agency (``agency_contract``); rotation after N days per bucket; one holder per borrower.

``allocation_plan`` computes, on the current portfolio, who would hold every open case and the
resulting distribution per collector and agency (cases, amount, by bucket), without writing.
``allocation_apply`` recomputes the plan under a lock and writes it: assignments (``case`` holder
columns and ``case_assignment`` history), planned work moved to the new collector or cancelled when
a case leaves for or from an agency, an audit record per moved case and one for the run. Passing
the dry run's ``plan_sha256`` makes the apply refuse (409) a portfolio that changed in between.

An agency only ever sees the cases assigned to it (``authz.scope_cases`` reads
``collection_case.agency_tenant_id``); recall is a move away from the agency. Holds (留案) live in
``services.stops`` beside stops; a held case is left out of every pool.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Borrower, Case, Loan, Tenant, User
from collectguard.adapters.db.models_ledger import AgencyContract, CaseAssignment, CollectorCapacity, WorkItem
from collectguard.adapters.db.models_ops import AllocationRuleset, AllocationRun, CaseHold
from collectguard.bootstrap import Container
from collectguard.domain.event import bad_input_from
from collectguard.errors import Conflict, NotFound
from collectguard.services.allocation_planner import (
    AllocationRules,
    CaseRow,
    Holder,
    Rule,
    Team,
    When,
    plan_cases,
    rotation_due,
)
from collectguard.services.audit import audit_append, canonical_json
from collectguard.services.authz import Principal, require

__all__ = ["AllocationRules", "CaseRow", "Holder", "Rule", "Team", "When", "allocation_apply", "allocation_apply_as",
           "allocation_plan", "allocation_plan_as", "allocation_rules_for", "allocation_rules_parse",
           "allocation_rules_read_as", "allocation_rules_save", "allocation_rules_save_as", "plan_cases"]

CHANGES_SHOWN = 1000
PERM = "allocation.run"


def allocation_rules_parse(data: Any) -> AllocationRules:
    """Validate a rule set (a mapping, as read from YAML or JSON); ``BadInput`` names the bad field."""
    try:
        return AllocationRules.model_validate(data)
    except ValidationError as exc:
        raise bad_input_from(exc, prefix="rules") from None


@cache
def _default() -> tuple[AllocationRules, str]:
    raw = resources.files("collectguard.policy").joinpath("allocation", "default.yaml").read_text(encoding="utf-8")
    return _with_sha(allocation_rules_parse(yaml.safe_load(raw)))


def _with_sha(rules: AllocationRules) -> tuple[AllocationRules, str]:
    return rules, hashlib.sha256(canonical_json(rules.model_dump(mode="json")).encode()).hexdigest()


def allocation_rules_for(s: Session, *, tenant_id: int) -> tuple[AllocationRules, str]:
    """The tenant's active saved rule set, else the packaged default; with its SHA-256."""
    row = s.scalar(select(AllocationRuleset).where(AllocationRuleset.tenant_id == tenant_id,
                                                   AllocationRuleset.active.is_(True)).order_by(AllocationRuleset.id.desc()))
    return _with_sha(allocation_rules_parse(row.body)) if row is not None else _default()


def allocation_rules_save(s: Session, *, tenant_id: int, body: dict[str, Any], actor: str,
                          now: dt.datetime) -> AllocationRuleset:
    """Validate and store a tenant's rule set as the active one (audited); versions are never reused."""
    rules, sha = _with_sha(allocation_rules_parse(body))
    if s.scalar(select(AllocationRuleset.id).where(AllocationRuleset.tenant_id == tenant_id,
                                                   AllocationRuleset.version == rules.version)):
        raise Conflict(f"version {rules.version!r} is already stored; give the new rules a new version")
    s.execute(update(AllocationRuleset).where(AllocationRuleset.tenant_id == tenant_id).values(active=False))
    row = AllocationRuleset(tenant_id=tenant_id, version=rules.version, body=rules.model_dump(mode="json"), sha256=sha,
                            active=True, created_by=actor[:120], created_at=now)
    s.add(row)
    s.flush()
    audit_append(s, tenant_id=tenant_id, actor=actor, action="allocation.rules", subject=f"allocation_ruleset:{row.id}",
                 payload={"version": rules.version, "sha256": sha}, now=now)
    return row

# ---------------------------------------------------------------- the portfolio, the plan, applying it

def _load(s: Session, tenant_id: int, rules: AllocationRules) -> tuple[list[CaseRow], dict[str, Holder],
                                                                       dict[str, list[str]], dict[str, int | None]]:
    since = dict(s.execute(select(CaseAssignment.case_id, func.max(CaseAssignment.assigned_on))
                           .where(CaseAssignment.tenant_id == tenant_id, CaseAssignment.ended_on.is_(None))
                           .group_by(CaseAssignment.case_id)).all())
    rounds = dict(s.execute(select(CaseAssignment.case_id, func.count()).where(
        CaseAssignment.tenant_id == tenant_id, CaseAssignment.agency_tenant_id.is_not(None))
        .group_by(CaseAssignment.case_id)).all())
    held = set(s.scalars(select(CaseHold.case_id).where(CaseHold.tenant_id == tenant_id,
                                                        CaseHold.released_at.is_(None))))
    rows = s.execute(select(Case, Loan.outstanding, Loan.principal, Loan.product, Borrower.jurisdiction)
                     .join(Loan, Loan.id == Case.loan_id).join(Borrower, Borrower.id == Case.borrower_id)
                     .where(Case.tenant_id == tenant_id, Case.status == "open").order_by(Case.id))
    cases = [CaseRow(id=c.id, borrower_id=c.borrower_id, bucket=c.bucket, dpd=c.dpd, amount=out if out is not None
                     else principal, product=product or "", jurisdiction=jur,
                     holder=f"a:{c.agency_tenant_id}" if c.agency_tenant_id else
                     f"u:{c.assignee_user_id}" if c.assignee_user_id else None,
                     since=since.get(c.id), rounds=int(rounds.get(c.id, 0)), frozen=c.paused_reason is not None)
             for c, out, principal, product, jur in rows if c.id not in held and c.paused_reason != "hold"]
    team_of = {m: t.id for t in rules.teams for m in t.members}
    holders: dict[str, Holder] = {}
    users = s.execute(select(User.id, User.username, CollectorCapacity.capacity, CollectorCapacity.active)
                      .outerjoin(CollectorCapacity, CollectorCapacity.user_id == User.id)
                      .where(User.tenant_id == tenant_id, User.role == "collector", User.active.is_(True)))
    for uid, name, cap, active in users:
        capacity = cap if cap is not None and active else rules.collector_capacity if cap is None else None
        if capacity is not None:
            holders[f"u:{uid}"] = Holder(key=f"u:{uid}", name=name, capacity=int(capacity), team=team_of.get(name))
    agencies = s.execute(select(AgencyContract.agency_tenant_id, AgencyContract.capacity, Tenant.code)
                         .join(Tenant, Tenant.id == AgencyContract.agency_tenant_id)
                         .where(AgencyContract.lender_tenant_id == tenant_id, AgencyContract.active.is_(True),
                                AgencyContract.processing_contract.is_(True), Tenant.kind == "agency"))
    for aid, cap, code in agencies:
        holders[f"a:{aid}"] = Holder(key=f"a:{aid}", name=code, capacity=int(cap))
    pools = {}
    for r in rules.rules:
        keys = sorted(k for k, h in holders.items() if k[0] == ("u" if r.to == "collectors" else "a")
                      and (not r.teams or h.team in r.teams) and (not r.agencies or h.name in r.agencies))
        pools[r.id] = keys
    return cases, holders, pools, {t.id: t.capacity for t in rules.teams}


def _compute(s: Session, tenant_id: int, rules: AllocationRules, sha: str, as_of: dt.date) -> dict[str, Any]:
    cases, holders, pools, team_caps = _load(s, tenant_id, rules)
    final, unalloc, rule_of = plan_cases(cases, holders, pools, rules, as_of, team_caps)
    dist: dict[str, dict[str, Any]] = {}
    for c in cases:
        key = final[c.id] or "unassigned"
        d = dist.setdefault(key, {"cases": 0, "amount": Decimal("0.00"), "by_bucket": defaultdict(int)})
        d["cases"] += 1
        d["amount"] += c.amount
        d["by_bucket"][c.bucket] += 1
    out = []
    for key, d in sorted(dist.items()):
        h = holders.get(key)
        kind = "unassigned" if key == "unassigned" else "agency" if key[0] == "a" else "collector"
        out.append({"kind": kind, "id": int(key[2:]) if kind != "unassigned" else None,
                    "name": h.name if h else None, "team": h.team if h else None, "capacity": h.capacity if h else None,
                    "cases": d["cases"], "amount": str(d["amount"]), "by_bucket": dict(sorted(d["by_bucket"].items())),
                    "over_capacity": bool(h and d["cases"] > h.capacity)})
    rule_by_id = {r.id: r for r in rules.rules}

    def why(c: CaseRow) -> str:
        rule = rule_by_id.get(rule_of.get(c.id, ""))
        if c.holder is None:
            return "new"
        return "rotation" if rule and rotation_due(c, rule, rules, as_of) else "reallocated"

    moves = [{"case_id": c.id, "from": c.holder, "to": final[c.id], "rule": rule_of.get(c.id), "why": why(c)}
             for c in cases if final[c.id] != c.holder]
    plan_sha = hashlib.sha256(canonical_json({"rules": sha, "as_of": as_of.isoformat(),
                                              "moves": [[m["case_id"], m["to"]] for m in moves]}).encode()).hexdigest()
    return {"as_of": as_of.isoformat(), "rules_version": rules.version, "rules_sha256": sha, "plan_sha256": plan_sha,
            "cases": len(cases), "moves": len(moves), "unallocated": dict(sorted(Counter(unalloc.values()).items())),
            "distribution": out, "changes": moves[:CHANGES_SHOWN], "_moves": moves}


def allocation_plan(s: Session, *, tenant_id: int, as_of: dt.date,
                    rules: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dry run: the distribution the rules (given, or the tenant's) would give today; writes nothing."""
    spec, sha = _with_sha(allocation_rules_parse(rules)) if rules is not None else allocation_rules_for(
        s, tenant_id=tenant_id)
    plan = _compute(s, tenant_id, spec, sha, as_of)
    plan.pop("_moves")
    return plan


def allocation_apply(s: Session, *, tenant_id: int, as_of: dt.date, actor: str, now: dt.datetime,
                     expect_plan_sha256: str | None = None) -> dict[str, Any]:
    """Apply the tenant's rules: the plan of ``allocation_plan``, written with its audit records."""
    if s.get_bind().dialect.name == "postgresql":  # one allocation at a time per tenant (SQLite: one writer)
        s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"allocation:{tenant_id}"})
    spec, sha = allocation_rules_for(s, tenant_id=tenant_id)
    plan = _compute(s, tenant_id, spec, sha, as_of)
    if expect_plan_sha256 is not None and expect_plan_sha256 != plan["plan_sha256"]:
        raise Conflict("the portfolio or the rules changed since the dry run; run it again",
                       detail={"plan_sha256": plan["plan_sha256"]})
    moves = plan.pop("_moves")
    run = AllocationRun(tenant_id=tenant_id, as_of=as_of, rules_sha256=sha, plan_sha256=plan["plan_sha256"],
                        moves=len(moves), summary={k: v for k, v in plan.items() if k != "changes"},
                        applied_by=actor[:120], applied_at=now)
    s.add(run)
    s.flush()
    for m in moves:
        _move(s, tenant_id, m, as_of, actor, now, run.id)
    audit_append(s, tenant_id=tenant_id, actor=actor, action="allocation.apply", subject=f"allocation_run:{run.id}",
                 now=now, payload={"as_of": as_of.isoformat(), "rules_sha256": sha, "plan_sha256": plan["plan_sha256"],
                                   "moves": len(moves)})
    return {**plan, "run_id": run.id}


def _move(s: Session, tenant_id: int, m: dict[str, Any], as_of: dt.date, actor: str, now: dt.datetime,
          run_id: int) -> None:
    case = s.get(Case, m["case_id"])
    assert case is not None
    frm, to = m["from"], m["to"]
    s.execute(update(CaseAssignment).where(CaseAssignment.case_id == case.id, CaseAssignment.ended_on.is_(None))
              .values(ended_on=as_of, end_reason="rotated" if m["why"] == "rotation" else "reallocated"))
    planned = (WorkItem.case_id == case.id) & (WorkItem.as_of >= as_of) & (WorkItem.status == "planned")
    if (frm or "").startswith("a:") or (to or "").startswith("a:") or to is None:
        # Work planned for or by an agency does not carry over: a new holder plans afresh (an agency
        # only after the borrower has been told of the outsourcing).
        s.execute(update(WorkItem).where(planned).values(status="cancelled"))
    else:
        s.execute(update(WorkItem).where(planned).values(assignee_user_id=int(to[2:])))
    user = int(to[2:]) if to and to[0] == "u" else None
    agency = int(to[2:]) if to and to[0] == "a" else None
    case.assignee_user_id, case.agency_tenant_id = user, agency
    if to is not None:
        s.add(CaseAssignment(tenant_id=tenant_id, case_id=case.id, user_id=user, agency_tenant_id=agency,
                             assigned_on=as_of))
    audit_append(s, tenant_id=tenant_id, actor=actor, action="case.assign", subject=f"case:{case.id}", now=now,
                 payload={"borrower_id": case.borrower_id, "case_id": case.id, "from": frm, "to": to,
                          "rule": m["rule"], "why": m["why"], "allocation_run": run_id})


# ---------------------------------------------------------------- for the API and the workbench (principal-checked)

def _allocator(principal: Principal) -> None:
    require(principal, PERM)
    if principal.agency_tenant_id is not None:  # an agency allocates nothing of the lender's
        raise NotFound("no such object")


def allocation_rules_read_as(c: Container, *, principal: Principal) -> dict[str, Any]:
    """The rules in force with their SHA-256 (``allocation.run``)."""
    _allocator(principal)
    with c.uow(write=False) as s:
        rules, sha = allocation_rules_for(s, tenant_id=principal.tenant_id)
    return {**rules.model_dump(mode="json"), "sha256": sha}


def allocation_rules_save_as(c: Container, *, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """Save the caller's tenant's rules as a new version (``allocation.run``)."""
    _allocator(principal)
    with c.uow() as s:
        row = allocation_rules_save(s, tenant_id=principal.tenant_id, body=body, actor=principal.actor,
                                    now=c.clock())
        return {"id": row.id, "version": row.version, "sha256": row.sha256}


def allocation_plan_as(c: Container, *, principal: Principal, as_of: dt.date,
                       rules: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dry run for the caller's tenant (``allocation.run``); nothing is written."""
    _allocator(principal)
    with c.uow(write=False) as s:
        return allocation_plan(s, tenant_id=principal.tenant_id, as_of=as_of, rules=rules)


def allocation_apply_as(c: Container, *, principal: Principal, as_of: dt.date,
                        expect_plan_sha256: str | None = None) -> dict[str, Any]:
    """Apply the saved rules for the caller's tenant (``allocation.run``)."""
    _allocator(principal)
    with c.uow() as s:
        return allocation_apply(s, tenant_id=principal.tenant_id, as_of=as_of, actor=principal.actor, now=c.clock(),
                                expect_plan_sha256=expect_plan_sha256)
