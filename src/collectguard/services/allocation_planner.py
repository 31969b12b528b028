"""The allocation planner (分案), pure: the rule-set model and ``plan_cases``, which decides who holds
each case. No database and no clock: ``services.allocation`` loads the portfolio, calls it, writes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AllocationRules", "CaseRow", "Holder", "Rule", "Team", "When", "plan_cases", "rotation_due"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


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


def rotation_due(c: CaseRow, rule: Rule, rules: AllocationRules, as_of: dt.date) -> bool:
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
            stays = c.holder in in_pool[r.id] and not rotation_due(c, r, rules, as_of)
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
        due = any(rotation_due(c, rule, rules, as_of) for c in group)
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


