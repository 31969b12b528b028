"""Collection strategies as data: per jurisdiction and bucket the channels, cadence, times, templates.

The packaged defaults are ``policy/strategies/<cn|us|eu>.yaml``; a tenant may save its own
(``strategy`` table), which then replaces the default for its cases. Every template is rendered
with sample values and run through the guard's message lint (the jurisdiction's rule pack) when
a strategy is loaded or saved: a strategy with a threatening, insulting or disclosing template is
refused as a whole, so that no queue is ever built from it.

Cadence: a step fires on the listed ``days`` of a case's stay in its bucket (day 1 = the first
day past the bucket's lower edge, so M1 day 1 is DPD 1, M2 day 1 is DPD 31) and, with ``every``,
again every so many days after the last listed day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import string
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collectguard.adapters.db.models_ledger import Strategy
from collectguard.domain.delinquency import DEFAULT_BUCKETS, BucketScheme
from collectguard.domain.event import Channel, Role, bad_input_from
from collectguard.errors import BadInput, Unavailable
from collectguard.policy.loader import PackError, load_yaml_text
from collectguard.services.audit import audit_append

VARIABLES = frozenset({"name_masked", "amount", "due_date", "app", "dpd"})
# The values templates are linted (and queue actions pre-checked) with; the real ones are only
# known when a collector sends the message, and the guard checks that message again then.
SAMPLE = {
    "zh": {"name_masked": "张*", "amount": "860.00", "due_date": "2026-04-01", "app": "示例金融",
           "dpd": "12"},
    "en": {"name_masked": "Z***", "amount": "860.00", "due_date": "2026-04-01", "app": "Example Finance",
           "dpd": "12"},
}
EARLIEST, LATEST = dt.time(8, 0), dt.time(21, 59)  # planned times stay inside 08:00–22:00
# How a message offers the recipient a way to stop electronic messages: "Reply STOP", "text STOP",
# "unsubscribe", "opt out", 退订, 回复TD … (US Reg F 1006.6(e) requires one in every electronic
# communication). The queue reads the template through it for the event fact
# ``collector.opt_out_included``; the attempts API takes the sender's word and checks again then.
OPT_OUT = re.compile(
    r"\b(?:reply|text|send|respond(?:\s+with)?)\s+[\"'“‘]?stop\b|\bunsubscribe\b|\bopt[\s-]?out\b"
    r"|退订|拒收请回复|回复\s*[\"'“‘]?(?:stop|td|t)(?![a-z])",
    re.IGNORECASE,
)
Lang = Literal["zh", "en"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Step(BaseModel):
    """One recurring action of a bucket."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9_]{1,24}$")
    channel: Channel
    days: tuple[int, ...] = Field(min_length=1)
    every: int = Field(0, ge=0, le=366)
    at: dt.time
    template: str
    recipient: Role = "borrower"
    purpose: Literal["collect", "locate", "relay_message", "reminder", "validation_notice"] = "collect"

    @field_validator("days")
    @classmethod
    def _days(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 for d in v) or len(set(v)) != len(v):
            raise ValueError("days are distinct numbers from 1 (day 1 = the first day in the bucket)")
        return tuple(sorted(v))

    @field_validator("at")
    @classmethod
    def _at(cls, v: dt.time) -> dt.time:
        if not EARLIEST <= v <= LATEST or v.second or v.microsecond:
            raise ValueError("a planned time is HH:MM between 08:00 and 21:59 (recipient-local)")
        return v


class StrategySpec(BaseModel):
    """A whole strategy: buckets -> steps, templates by id and language."""

    model_config = _STRICT

    jurisdiction: Literal["CN", "US", "EU"]
    version: str = Field(min_length=1, max_length=32)
    outsource_from: str | None = None  # the first bucket whose cases may go to an agency
    buckets: dict[str, tuple[Step, ...]]
    templates: dict[str, dict[Lang, str]]

    @model_validator(mode="after")
    def _consistent(self) -> StrategySpec:
        for bucket, steps in self.buckets.items():
            if len({s.id for s in steps}) != len(steps):
                raise ValueError(f"buckets.{bucket}: step ids must be distinct")
            for s in steps:
                if s.template not in self.templates:
                    raise ValueError(f"buckets.{bucket}.{s.id}: unknown template {s.template!r}")
        for tid, langs in self.templates.items():
            if set(langs) != {"zh", "en"}:
                raise ValueError(f"templates.{tid}: needs both zh and en")
            for lang, body in langs.items():
                names = {f for _, f, _, _ in string.Formatter().parse(body) if f is not None}
                if names - VARIABLES:
                    raise ValueError(f"templates.{tid}.{lang}: unknown variables "
                                     f"{sorted(names - VARIABLES)}; allowed: {sorted(VARIABLES)}")
        return self


def strategy_parse(data: Any, *, where: str = "strategy") -> StrategySpec:
    """Validate a decoded strategy (YAML/JSON object); ``BadInput`` naming the field if malformed."""
    try:
        return StrategySpec.model_validate(data)
    except ValidationError as exc:
        raise bad_input_from(exc) from None


def render(body: str, values: dict[str, str]) -> str:
    """Fill a template's ``{variables}``."""
    return body.format_map(values)


def opt_out_offered(message: str) -> bool:
    """Whether ``message`` tells the recipient how to opt out of electronic messages (``OPT_OUT``)."""
    return OPT_OUT.search(message) is not None


def strategy_lint(spec: StrategySpec, *, linter: Any = None) -> list[dict[str, Any]]:
    """Lint every template as its steps use it; returns the findings (empty when clean).

    ``linter`` defaults to the lint of the jurisdiction's rule pack; without a pack the strategy
    cannot be checked and ``Unavailable`` is raised (fail closed: it is not used).
    """
    lint = linter or _pack_linter(spec.jurisdiction)
    roles: dict[str, set[bool]] = {}
    for steps in spec.buckets.values():
        for s in steps:
            roles.setdefault(s.template, set()).add(s.recipient in ("borrower", "guarantor"))
    findings = []
    for tid, langs in spec.templates.items():
        for lang, body in langs.items():
            result = lint.lint(render(body, SAMPLE[lang]))
            for to_debtor in roles.get(tid, {True}):
                for hit in (result.hits_for_debtor if to_debtor else result.hits):
                    findings.append({"template": tid, "language": lang, "category": hit.category,
                                     "text": hit.text, "to_debtor": to_debtor})
    return findings


def strategy_check(spec: StrategySpec, *, linter: Any = None) -> StrategySpec:
    """``spec`` when its templates lint clean, else ``BadInput`` naming the first bad template."""
    findings = strategy_lint(spec, linter=linter)
    if findings:
        f = findings[0]
        raise BadInput(f"the lint found {f['category']} ({f['text']!r}) in this template",
                       field=f"templates.{f['template']}.{f['language']}", detail={"findings": findings})
    return spec


@cache
def strategy_default(jurisdiction: str) -> StrategySpec:
    """The packaged strategy of ``jurisdiction``, validated and linted (once per process)."""
    res = resources.files("collectguard.policy").joinpath("strategies", f"{jurisdiction.lower()}.yaml")
    if not res.is_file():
        raise BadInput(f"no packaged strategy for {jurisdiction!r}", field="jurisdiction")
    where = f"policy/strategies/{jurisdiction.lower()}.yaml"
    try:
        data = load_yaml_text(res.read_text(encoding="utf-8"), where=where)
    except PackError as exc:
        raise BadInput(str(exc), field="strategy") from None
    return strategy_check(strategy_parse(data, where=where))


def strategy_for(session: Session, *, tenant_id: int, jurisdiction: str) -> StrategySpec:
    """The tenant's active saved strategy for ``jurisdiction``, else the packaged default."""
    row = session.scalar(select(Strategy).where(Strategy.tenant_id == tenant_id, Strategy.active.is_(True),
                                                Strategy.jurisdiction == jurisdiction))
    if row is None:
        return strategy_default(jurisdiction)
    return strategy_check(strategy_parse(row.body))


def strategy_save(session: Session, *, tenant_id: int, body: dict[str, Any], actor: str,
                  now: dt.datetime) -> Strategy:
    """Validate, lint and store a tenant's strategy as the active one of its jurisdiction (audited)."""
    spec = strategy_check(strategy_parse(body))
    data = spec.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    session.execute(update(Strategy).where(Strategy.tenant_id == tenant_id,
                                           Strategy.jurisdiction == spec.jurisdiction).values(active=False))
    row = Strategy(tenant_id=tenant_id, jurisdiction=spec.jurisdiction, version=spec.version, body=data,
                   sha256=digest, active=True, created_by=actor, created_at=now)
    session.add(row)
    session.flush()
    audit_append(session, tenant_id=tenant_id, actor=actor, action="strategy.save",
                 subject=f"strategy:{row.id}", now=now,
                 payload={"jurisdiction": spec.jurisdiction, "version": spec.version, "sha256": digest})
    return row


def strategy_steps(spec: StrategySpec, scheme: BucketScheme = DEFAULT_BUCKETS) -> list[dict[str, Any]]:
    """The steps as rows for the queue's SQL: bucket, ``base`` (DPD before day 1), day, every, …"""
    bases = {name: upper for (name, _), (_, upper) in zip(scheme.edges[1:], scheme.edges, strict=False)}
    bases[scheme.beyond] = scheme.edges[-1][1]
    rows = []
    for bucket, steps in spec.buckets.items():
        if bucket not in bases:
            raise BadInput(f"{bucket!r} is not a bucket with open cases; expected one of {sorted(bases)}",
                           field=f"buckets.{bucket}")
        for s in steps:
            for n, day in enumerate(s.days):
                last = n == len(s.days) - 1
                rows.append({"jurisdiction": spec.jurisdiction, "bucket": bucket, "base": bases[bucket],
                             "day": day, "every": s.every if last else 0, "step": f"{bucket}.{s.id}",
                             "channel": s.channel, "role": s.recipient, "purpose": s.purpose,
                             "template": s.template, "local_time": s.at.strftime("%H:%M")})
    return rows


def outsourced_buckets(spec: StrategySpec, scheme: BucketScheme = DEFAULT_BUCKETS) -> list[str]:
    """The buckets whose cases may be handed to an agency (from ``outsource_from`` on)."""
    if spec.outsource_from is None:
        return []
    names = [*(n for n, _ in scheme.edges), scheme.beyond]
    if spec.outsource_from not in names:
        raise BadInput(f"unknown bucket {spec.outsource_from!r}", field="outsource_from")
    return names[names.index(spec.outsource_from):]


def _pack_linter(jurisdiction: str) -> Any:
    try:
        from collectguard.rules import Guard

        pack = Guard.default().packs.get(jurisdiction)
    except PackError as exc:
        raise Unavailable(f"the rule packs do not load: {exc}") from None
    if pack is None:
        raise Unavailable(f"no rule pack for {jurisdiction}: its strategy templates cannot be linted")
    return pack.linter
