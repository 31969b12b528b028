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
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Borrower, Case, Loan, Tenant, User
from collectguard.adapters.db.models_ledger import AgencyContract, CaseAssignment, CollectorCapacity, WorkItem
from collectguard.adapters.db.models_ops import AllocationRuleset, AllocationRun, CaseHold
from collectguard.domain.event import bad_input_from
from collectguard.errors import Conflict
from collectguard.services.audit import audit_append, canonical_json

__all__ = ["AllocationRules", "allocation_apply", "allocation_plan", "allocation_rules_for", "allocation_rules_parse",
           "allocation_rules_save"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
CHANGES_SHOWN = 1000


class When(BaseModel):
    """The conditions of a rule; an absent one matches anything."""

    model_config = _STRICT
    buckets: tuple[str, ...] = ()
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    products: tuple[str, ...] = ()
    jurisdictions: tuple[str, ...] = ()


class Rule(BaseModel):
    """Which pool takes the cases a ``When`` matches."""

    model_config = _STRICT
    id: str = Field(min_length=1, max_length=64)
    when: When = When()
    to: Literal["collectors", "agencies"]
    teams: tuple[str, ...] = ()
    agencies: tuple[str, ...] = ()
    rotation_days: int | None = Field(default=None, ge=0, le=3650)
    max_rounds: int | None = Field(default=None, ge=1, le=100)


class Team(BaseModel):
    """A team of collectors (by username) with an optional capacity for the whole team."""

    model_config = _STRICT
    id: str = Field(min_length=1, max_length=64)
    capacity: int | None = Field(default=None, ge=0)
    members: tuple[str, ...] = ()


class AllocationRules(BaseModel):
    """A whole rule set (see ``policy/allocation/default.yaml`` for the meaning of each field)."""

    model_config = _STRICT
    version: str = Field(min_length=1, max_length=32)
    keep_borrower_together: bool = True
    collector_capacity: int | None = Field(default=None, ge=0)
    rotation_days: dict[str, int] = {}
    teams: tuple[Team, ...] = ()
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> AllocationRules:
        teams = {t.id for t in self.teams}
        if len(teams) != len(self.teams) or len({r.id for r in self.rules}) != len(self.rules):
            raise ValueError("rule and team ids must be unique")
        for r in self.rules:
            if set(r.teams) - teams:
                raise ValueError(f"rule {r.id}: unknown teams {sorted(set(r.teams) - teams)}")
            if (r.teams and r.to != "collectors") or ((r.agencies or r.max_rounds) and r.to != "agencies"):
                raise ValueError(f"rule {r.id}: teams go with collectors, agencies and max_rounds with agencies")
        return self


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


# ---------------------------------------------------------------- the planner (pure)

@dataclass
class CaseRow:
    """An open case as the planner sees it."""

    id: int
    borrower_id: int
    bucket: str
    dpd: int
    amount: Decimal
    product: str
    jurisdiction: str
    holder: str | None  # "u:<user id>" or "a:<agency tenant id>"
    since: dt.date | None  # when the current holder got it
    rounds: int  # agency assignments so far, the current one included
    frozen: bool  # paused (dispute, hardship, plan): nobody takes it from its holder


@dataclass
class Holder:
    """A collector (``u:<id>``) or an agency (``a:<id>``) that may hold cases, with its load so far."""

    key: str
    name: str
    capacity: int
    team: str | None = None
    load: int = 0


def _matches(c: CaseRow, w: When) -> bool:
    return ((not w.buckets or c.bucket in w.buckets) and (not w.products or c.product in w.products)
            and (not w.jurisdictions or c.jurisdiction in w.jurisdictions)
            and (w.amount_min is None or c.amount >= w.amount_min)
            and (w.amount_max is None or c.amount <= w.amount_max))


def _due(c: CaseRow, rule: Rule, rules: AllocationRules, as_of: dt.date) -> bool:
    days = rule.rotation_days if rule.rotation_days is not None else rules.rotation_days.get(c.bucket)
    return bool(days) and c.since is not None and as_of >= c.since + dt.timedelta(days=days or 0)


def plan_cases(cases: list[CaseRow], holders: dict[str, Holder], pools: dict[str, list[str]], rules: AllocationRules,
               as_of: dt.date, team_caps: dict[str, int | None]) -> tuple[dict[int, str | None], dict[int, str],
                                                                         dict[int, str]]:
    """Who holds each case after allocation (case -> holder or None), why a case has no rule or no
    holder (``no_rule`` | ``no_capacity`` | ``no_holder``) and the rule of each case allocated by one.
    ``holders``' loads are updated to the result."""
    final: dict[int, str | None] = {}
    unalloc: dict[int, str] = {}
    rule_of: dict[int, str] = {}
    in_pool = {r: set(keys) for r, keys in pools.items()}
    groups: dict[tuple[Any, ...], tuple[Rule, list[CaseRow]]] = {}
    for c in cases:
        rule, matched = None, False
        for r in rules.rules:
            if not _matches(c, r.when):
                continue
            matched = True
            if not pools[r.id]:
                continue  # nobody may hold these cases (e.g. no agency under contract): the next rule decides
            stays = c.holder in in_pool[r.id] and not _due(c, r, rules, as_of)
            if r.to == "agencies" and r.max_rounds is not None and not stays and c.rounds >= r.max_rounds:
                continue  # its outsourcing rounds are used up: a later rule (in-house) takes it
            rule = r
            break
        if c.frozen or rule is None:
            # Left as it is — unless its holder may no longer hold cases (a collector gone, an agency
            # whose PIPL 21 contract ended): then nobody holds it.
            final[c.id] = c.holder if c.frozen or c.holder in holders else None
            if rule is None:
                unalloc[c.id] = "no_holder" if matched else "no_rule"
            continue
        rule_of[c.id] = rule.id
        key = (c.borrower_id, rule.id) if rules.keep_borrower_together else (c.id,)
        groups.setdefault(key, (rule, []))[1].append(c)
    by_borrower: dict[int, set[str]] = defaultdict(set)
    team_load: dict[str, int] = defaultdict(int)

    def count(key: str | None, n: int) -> None:
        if key in holders:
            holders[key].load += n
            team_load[holders[key].team or ""] += n

    def take(key: str | None, group: list[CaseRow]) -> None:
        for c in group:
            final[c.id] = key
            if key:
                by_borrower[c.borrower_id].add(key)
        count(key, len(group))

    for c in cases:
        if c.id in final:  # frozen and rule-less cases keep their holder and count toward its load
            take(final[c.id], [c])
    movers = []
    for rule, group in groups.values():
        held = {c.holder for c in group if c.holder}
        due = any(_due(c, rule, rules, as_of) for c in group)
        if len(held) == 1 and next(iter(held)) in in_pool[rule.id] and not due:
            take(next(iter(held)), group)
        else:
            movers.append((rule, group, held if due else set(), held))
    movers.sort(key=lambda m: (-max(c.dpd for c in m[1]), m[1][0].borrower_id, m[1][0].id))

    def room(k: str, n: int) -> bool:
        h = holders[k]
        cap = team_caps.get(h.team) if h.team else None
        return h.load + n <= h.capacity and (cap is None or team_load[h.team or ""] + n <= cap)

    for rule, group, avoid, held in movers:
        cands = [k for k in pools[rule.id] if k not in avoid]
        # One borrower, one holder: a holder of the borrower's other cases takes these too, even
        # past capacity (the call caps are per debtor; two collectors would race each other).
        sticky = [k for k in cands if k in by_borrower[group[0].borrower_id]] if rules.keep_borrower_together else []
        fits = sorted((k for k in cands if room(k, len(group))),
                      key=lambda k: (holders[k].load / max(holders[k].capacity, 1), k))
        pick = sticky[0] if sticky else fits[0] if fits else None
        if pick is None and len(held) == 1 and next(iter(held)) in holders:
            # Nobody else has room: better its current holder than nobody — if that holder may still
            # hold cases at all (an agency whose contract ended may not: the case comes back).
            pick = next(iter(held))
        if pick is None:
            unalloc.update({c.id: "no_capacity" if cands else "no_holder" for c in group})
        take(pick, group)
    return final, unalloc, rule_of


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
        return "new" if c.holder is None else "rotation" if rule and _due(c, rule, rules, as_of) else "reallocated"

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
