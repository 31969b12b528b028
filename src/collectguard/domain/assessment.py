"""Assessment of a contact that already happened: ``unlawful``, ``lawful`` or ``undetermined``.

The same guard that refuses a planned contact judges a past one (DESIGN §5 "Assessment", §7
``assess``): its violations become *findings*. What makes an assessment more than a check is
that a past event is usually described incompletely, and a default filled in for an unknown
fact must not decide the verdict. So every unknown fact that could matter is **probed**: the
event is judged in every combination of that fact's plausible values (a *world*), and

* a finding present in every world is certain: the verdict is ``unlawful``;
* no finding in any world: ``lawful``;
* otherwise ``undetermined``, and the missing facts are the probed ones that flip the verdict
  between two worlds differing only in that fact (each comes with a question, zh and en).

A fact is unknown when the input did not state it (structured input: the field was absent;
free text: the extractor did not find it). Which facts are probed, with which values, and which
are presumed unless hinted at: ``rules/extract/probes.py``.

Pure: the guard is passed in as ``check`` and the data (consequences, next steps, questions,
explanations) as an ``AssessCatalogue``; no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from collectguard.domain.event import CollectionEvent, Decision, Violation
from collectguard.policy.assess import AssessCatalogue
from collectguard.rules.extract.probes import PROBES, Probe

__all__ = ["PROBES", "Assessment", "Case", "Finding", "MissingFact", "Note", "Probe", "assess_cases",
           "practice_finding", "stated_paths"]

Verdict = Literal["unlawful", "lawful", "undetermined"]
Check = Callable[[CollectionEvent], Decision]
_MAX_PROBES = 10  # 2**10 worlds per contact at most; real descriptions leave 2-6 facts open
_OUT = ConfigDict(frozen=True)


@dataclass(frozen=True)
class Case:
    """One contact to assess: the event as understood and which of its fields were actually stated."""

    event: CollectionEvent
    stated: frozenset[str]
    hints: frozenset[str] = frozenset()
    evidence: tuple[str, ...] = ()


class Finding(BaseModel):
    """A broken rule (same shape as a guard violation) plus the borrower-facing explanation."""

    model_config = _OUT
    rule: str
    citations: tuple[str, ...]
    message_zh: str
    message_en: str
    title_zh: str = ""
    title_en: str = ""
    explain_zh: str = ""
    explain_en: str = ""
    events: tuple[int, ...] = ()


class MissingFact(BaseModel):
    """A fact the verdict depends on, with the question to ask for it."""

    model_config = _OUT
    field: str
    question_zh: str
    question_en: str
    events: tuple[int, ...] = ()


class Note(BaseModel):
    """Something the reader should know that is not a finding (an assumption, an unjudged rule)."""

    model_config = _OUT
    code: str
    message_zh: str
    message_en: str


class EventResult(BaseModel):
    """One contact's own result."""

    model_config = _OUT
    index: int
    facts: dict[str, Any]
    stated: tuple[str, ...]
    unknown: tuple[str, ...]
    verdict: Verdict
    findings: tuple[str, ...]
    possible: tuple[str, ...]
    missing: tuple[str, ...]
    evidence: tuple[str, ...] = ()


class Assessment(BaseModel):
    """DESIGN §5 Assessment; ``jurisdiction`` and later keys are optional extensions."""

    model_config = _OUT
    verdict: Verdict
    findings: tuple[Finding, ...]
    missing_facts: tuple[MissingFact, ...]
    consequences: tuple[dict[str, Any], ...]
    next_steps: tuple[dict[str, Any], ...]
    facts: dict[str, Any]
    jurisdiction: str
    pack_version: str | None = None
    events: tuple[EventResult, ...] = ()
    possible_findings: tuple[Finding, ...] = ()
    lending: dict[str, Any] | None = None
    notes: tuple[Note, ...] = Field(default=())


def stated_paths(obj: Any, prefix: str = "") -> frozenset[str]:
    """The dotted paths present in a decoded JSON event.

    ``{"history": {"calls_7d": 1}}`` -> ``{"history.calls_7d"}``; an empty object states nothing.
    """
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                out |= stated_paths(v, path + ".")
            elif not isinstance(v, dict):
                out.add(path)
    return frozenset(out)


# ------------------------------------------------------------------------------------- judging

@dataclass(frozen=True)
class _World:
    picks: tuple[int, ...]  # the value index of each probe
    found: dict[str, Violation]  # legal findings by rule id
    problems: tuple[Violation, ...]  # engine.no_pack / engine.error: nothing could be judged


@dataclass(frozen=True)
class _Judged:
    case: Case
    probes: tuple[Probe, ...]
    verdict: Verdict
    certain: dict[str, Violation]
    possible: dict[str, Violation]
    missing: tuple[str, ...]
    problems: tuple[Violation, ...]
    policy: tuple[Violation, ...]
    pack_version: str | None


def _worlds(ev: CollectionEvent, probes: Sequence[Probe]) -> list[tuple[tuple[int, ...], CollectionEvent]]:
    """Every combination of the probes' values, probes applied in order (a value may read earlier ones)."""
    worlds: list[tuple[tuple[int, ...], CollectionEvent]] = [((), ev)]
    for p in probes:
        worlds = [((*picks, i), variant) for picks, e in worlds for i, variant in enumerate(p.values(e))]
    return worlds


def _judge(case: Case, check: Check, debtor_roles: frozenset[str], non_legal: frozenset[str]) -> _Judged:
    ev = case.event
    third = ev.recipient.role not in debtor_roles
    probes = tuple(p for p in PROBES if p.field not in case.stated and p.applies(ev, third)
                   and (not p.presumed or p.field in case.hints))[:_MAX_PROBES]
    worlds: list[_World] = []
    policy: dict[str, Violation] = {}
    pack_version = None
    for picks, variant in _worlds(ev, probes):
        decision = check(variant)
        pack_version = decision.pack_version
        found = {v.rule: v for v in decision.violations
                 if v.rule not in non_legal and not v.rule.startswith("engine.")}
        policy |= {v.rule: v for v in decision.violations if v.rule in non_legal}
        problems = tuple(v for v in decision.violations if v.rule.startswith("engine."))
        worlds.append(_World(picks, found, problems))
    problems = next((w.problems for w in worlds if w.problems), ())
    every = set.intersection(*(set(w.found) for w in worlds))
    union: dict[str, Violation] = {}
    for w in worlds:
        union |= w.found
    certain = {r: v for r, v in union.items() if r in every}
    possible = {r: v for r, v in union.items() if r not in every}
    if certain:
        verdict: Verdict = "unlawful"
    elif not possible and not problems:
        verdict = "lawful"
    else:
        verdict = "undetermined"
    missing: list[str] = []
    if verdict == "undetermined":
        for k, p in enumerate(probes):
            groups: dict[tuple[int, ...], set[bool]] = {}
            for w in worlds:
                groups.setdefault(w.picks[:k] + w.picks[k + 1:], set()).add(bool(w.found))
            if any(len(g) > 1 for g in groups.values()):
                missing.append(p.field)
    return _Judged(case, probes, verdict, certain, possible, tuple(missing), problems, tuple(policy.values()),
                   pack_version)


def _first_sentence(message: str) -> str:
    return re.split(r"(?<=[。；])|(?<=\.) (?=[A-Z])", message, maxsplit=1)[0].rstrip("。；.")


def _finding(v: Violation, catalogue: AssessCatalogue, events: Iterable[int]) -> Finding:
    # A rule the catalogue does not explain yet (a new pack rule) reads with its pack message.
    text = catalogue.rules.get(v.rule)
    return Finding(rule=v.rule, citations=v.citations, message_zh=v.message_zh, message_en=v.message_en,
                   title_zh=text.title_zh if text else _first_sentence(v.message_zh),
                   title_en=text.title_en if text else _first_sentence(v.message_en),
                   explain_zh=text.explain_zh if text else v.message_zh,
                   explain_en=text.explain_en if text else v.message_en, events=tuple(events))


def practice_finding(catalogue: AssessCatalogue, practice_id: str) -> Finding:
    """The finding for a lending practice named in ``explanations.yaml`` (e.g. contact list required)."""
    p = catalogue.practices[practice_id]
    return Finding(rule=practice_id, citations=p.citations, message_zh=p.message_zh, message_en=p.message_en,
                   title_zh=p.title_zh, title_en=p.title_en, explain_zh=p.explain_zh, explain_en=p.explain_en)


def _merge(found: Iterable[tuple[int, dict[str, Violation]]], catalogue: AssessCatalogue) -> list[Finding]:
    """One finding per rule, in order of first appearance, with the contacts it was found in."""
    order: dict[str, tuple[Violation, list[int]]] = {}
    for i, rules in found:
        for rule, v in rules.items():
            order.setdefault(rule, (v, []))[1].append(i)
    return [_finding(v, catalogue, idx) for v, idx in order.values()]


def _facts(ev: CollectionEvent, stated: frozenset[str]) -> dict[str, Any]:
    """The event as understood: what differs from the defaults, plus every stated field."""
    facts = ev.model_dump(mode="json", exclude_defaults=True)
    full = ev.model_dump(mode="json")
    for path in sorted(stated):
        head, _, tail = path.partition(".")
        if head not in full:
            continue
        if not tail:
            facts.setdefault(head, full[head])
        elif isinstance(full[head], dict) and tail in full[head]:
            facts.setdefault(head, {}).setdefault(tail, full[head][tail])
    return facts


def _question(catalogue: AssessCatalogue, field: str, events: Iterable[int]) -> MissingFact:
    q = catalogue.questions.get(field)
    return MissingFact(field=field, question_zh=q.question_zh if q else field,
                       question_en=q.question_en if q else field, events=tuple(events))


def assess_cases(
    cases: Sequence[Case],
    *,
    check: Check,
    catalogue: AssessCatalogue,
    jurisdiction: str,
    debtor_roles: Iterable[str] = ("borrower", "guarantor"),
    non_legal_rules: Iterable[str] = (),
    practices: Sequence[Finding] = (),
    extra_missing: Sequence[str] = (),
    lending: dict[str, Any] | None = None,
    notes: Sequence[Note] = (),
) -> Assessment:
    """Assess past contacts (one ``Case`` each) and lending-practice findings as one complaint.

    ``check`` is the guard (``Guard.check``); ``non_legal_rules`` are pack rules that are platform
    policy rather than law (they become notes, never findings); ``extra_missing`` are facts
    missing outside any contact (e.g. the lender's type for a loan with no contact described).
    The verdict is ``unlawful`` if any contact or practice is; else ``undetermined`` if any
    contact is, or a fact is missing, or nothing at all was described; else ``lawful``.
    """
    roles = frozenset(debtor_roles)
    judged = [_judge(c, check, roles, frozenset(non_legal_rules)) for c in cases]
    findings = _merge(((i, j.certain) for i, j in enumerate(judged)), catalogue) + list(practices)
    open_ = any(j.verdict == "undetermined" for j in judged) or bool(extra_missing)
    # With no contact and no assessable loan there is nothing to call lawful.
    nothing = not cases and not (lending and lending.get("apr") is not None)
    verdict: Verdict = "unlawful" if findings else "undetermined" if open_ or nothing else "lawful"
    missing: dict[str, list[int]] = {}
    possible: list[Finding] = []
    if verdict == "undetermined":
        for i, j in enumerate(judged):
            for f in j.missing:
                missing.setdefault(f, []).append(i)
        for f in extra_missing:
            missing.setdefault(f, [])
        if nothing and not extra_missing:
            for f in ("recipient.role", "channel", "time"):
                missing.setdefault(f, [])
        possible = _merge(((i, j.possible) for i, j in enumerate(judged)), catalogue)
    rules = [f.rule for f in findings]
    all_notes = list(notes)
    for j in judged:
        for v in (*j.problems, *j.policy):
            note = Note(code=v.rule, message_zh=v.message_zh, message_en=v.message_en)
            if note not in all_notes:
                all_notes.append(note)
    events = tuple(
        EventResult(index=i, facts=_facts(j.case.event, j.case.stated), stated=tuple(sorted(j.case.stated)),
                    unknown=tuple(p.field for p in j.probes), verdict=j.verdict, findings=tuple(j.certain),
                    possible=tuple(j.possible), missing=j.missing, evidence=j.case.evidence)
        for i, j in enumerate(judged))
    consequences = tuple(
        {**spec.model_dump(mode="json"), "because": because}
        for spec, because in catalogue.consequences_for(rules))
    steps = tuple(s.model_dump(mode="json", exclude={"when"})
                  for s in catalogue.steps_for(jurisdiction=jurisdiction, verdict=verdict, rules=rules))
    return Assessment(
        verdict=verdict, findings=tuple(findings),
        missing_facts=tuple(_question(catalogue, f, idx) for f, idx in missing.items()),
        consequences=consequences, next_steps=steps, facts=events[0].facts if events else {},
        jurisdiction=jurisdiction, pack_version=next((j.pack_version for j in judged), None), events=events,
        possible_findings=tuple(possible), lending=lending, notes=tuple(all_notes))
