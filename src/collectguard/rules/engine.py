"""The engine: compiles a pack into closures once, then judges events with them.

Compiling (``compiler.py``): every rule once per *period* in which all of the pack's dates are
constant, with its ``Violation`` (citations in force) built in advance.

Judging. ``evaluate`` picks the period of the event's (recipient-local) date, then the rules that
can apply to the event's selection ``Key`` — channel, role, purpose, conduct, disclosures, debt
status, collector kind and *features* (which optional facts the event carries) — a selection
cached per combination — and runs **every** one of them, returning all violations, never just
the first.

Fail closed: an exception inside a rule becomes an ``engine.error`` violation for that rule (the
other rules still run); an exception outside the rules (lint, facts) denies with ``engine.error``
too; a jurisdiction without a pack denies with ``engine.no_pack``.
Deterministic: the output depends only on the event and the pack, in pack order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from datetime import date
from typing import Any

from collectguard.domain.event import CollectionEvent, Decision, LintHit, Violation
from collectguard.policy.loader import LexiconSpec, PackError, PackSpec
from collectguard.rules.compiler import CompiledRule, compile_periods
from collectguard.rules.facts import (
    ALL_FEATURES,
    Facts,
    Key,
    Pred,
    features,
)
from collectguard.rules.lint import Linter

__all__ = [
    "CompiledPack",
    "CompiledRule",
    "compile_pack",
    "engine_error",
    "evaluate",
    "evaluate_json",
    "no_pack",
]

_EMPTY: frozenset[str] = frozenset()
_Found = list[tuple[Violation, str]]
_Run = tuple[_Found, _Found, tuple[LintHit, ...], str]  # violations, warnings, lint hits, hits as JSON


# What the evaluation loop runs: (test or None, deny?, rule id, (violation, its JSON)).
_Selected = tuple[Pred | None, bool, str, tuple[Violation, str]]


def engine_error(rule: str) -> Violation:
    """The violation that stands in for a rule that raised: the contact is denied (fail closed)."""
    return Violation(
        rule="engine.error",
        citations=(),
        message_zh=(
            f"评估规则 {rule} 时发生内部错误。为安全起见，本次联系被拒绝（出错即拒绝）。请将此情况报告合规或技术人员。"
        ),
        message_en=(
            f"Internal error while evaluating rule {rule}. The contact is denied to be safe "
            "(fail closed). Please report this to compliance or engineering."
        ),
    )


def no_pack(jurisdiction: str) -> Decision:
    """The decision for a jurisdiction that has no rule pack loaded: deny, nothing can be judged."""
    v = Violation(
        rule="engine.no_pack",
        citations=(),
        message_zh=f"未加载司法辖区 {jurisdiction} 的规则包，无法判断本次联系是否合法，因此拒绝。",
        message_en=f"No rule pack is loaded for jurisdiction {jurisdiction}; the guard cannot judge "
        "this contact, so it is denied.",
    )
    return Decision(verdict="deny", pack=jurisdiction, pack_version=None, violations=(v,))


class CompiledPack:
    """A pack compiled into closures. Build it with ``compile_pack``; judge with ``evaluate``."""

    def __init__(
        self,
        spec: PackSpec,
        cuts: list[date],
        periods: list[tuple[CompiledRule, ...]],
        lexicons: list[LexiconSpec],
    ) -> None:
        self.spec = spec
        self.name = spec.pack
        self.version = spec.version
        self.jurisdiction = spec.jurisdiction
        self.debtor_roles = frozenset(spec.debtor_roles)
        self._cuts = cuts
        self._periods = periods
        self._period_of: dict[date, int] = {}
        self._lexicons = lexicons
        self._linter: Linter | None = None
        self._selected: dict[tuple[Any, ...], tuple[_Selected, ...]] = {}
        self._allow = Decision(verdict="allow", pack=self.name, pack_version=self.version)
        self._allow_json = self._allow.model_dump_json()
        head = self._allow_json.split('"violations"', 1)[0].removeprefix('{"verdict":"allow",')
        self._json_head = head + '"violations":['  # '"pack":"CN","pack_version":"2026.1","violations":['

    def describe(self) -> dict[str, Any]:
        """The pack as data (rules, citations with their dates, thresholds, messages), JSON-ready."""
        return self.spec.model_dump(mode="json", exclude_defaults=False)

    @property
    def linter(self) -> Linter:
        """The message lint for this pack's lexicons (built on first use)."""
        if self._linter is None:
            self._linter = Linter(self._lexicons)
        return self._linter

    def rules_in_force(self, day: date) -> tuple[CompiledRule, ...]:
        """The rules in force on ``day``, in pack order."""
        return self._periods[bisect_right(self._cuts, day)]

    def _select(self, raw_key: tuple[Any, ...]) -> tuple[_Selected, ...]:
        """The rules of a period that can apply to this selection key, in pack order, each bound
        to the cheapest per-event test for that combination (cached by the caller)."""
        key = Key(*raw_key)
        picked: list[_Selected] = []
        for r in self._periods[key.period]:
            if (r.needs & key.feats) != r.needs:
                continue
            if r.static is not None and not r.static(key):
                continue
            test = r.test
            if r.bind is not None:
                bound = r.bind(key)
                if bound is False:
                    continue
                test = r.wrap(None if bound is True else bound)
            picked.append((test, r.deny, r.id, r.violation))
        rules = self._selected[raw_key] = tuple(picked)
        return rules

    def _run(self, ev: CollectionEvent, prune: bool = True) -> tuple[_Found, _Found, tuple[LintHit, ...], str]:
        """Every applicable rule on one event: (violations, warnings, lint hits, lint hits as JSON).

        ``prune=False`` claims every feature, so no rule is skipped for lack of one: the reference
        the tests compare the pruned selection with.
        """
        recipient = ev.recipient
        third_party = recipient.role not in self.debtor_roles
        conduct = frozenset(ev.conduct) if ev.conduct else _EMPTY
        discloses = frozenset(ev.discloses) if ev.discloses else _EMPTY
        hits: tuple[LintHit, ...] = ()
        hits_json = ""
        if ev.message:
            found = (self._linter or self.linter).view(ev.message, third_party=third_party)
            if found.conduct:
                conduct = conduct | found.conduct
            if found.discloses:
                discloses = discloses | found.discloses
            hits, hits_json = found.hits, found.hits_json
        day = ev.time.date()
        period = self._period_of.get(day)
        if period is None:
            if len(self._period_of) > 4096:
                self._period_of.clear()
            period = self._period_of[day] = bisect_right(self._cuts, day)
        feats = features(ev, conduct, discloses) if prune else ALL_FEATURES
        # A plain tuple with the Key's fields: cheaper to build and hash than the NamedTuple.
        key = (
            ev.channel,
            recipient.role,
            ev.purpose,
            feats,
            period,
            conduct,
            discloses,
            ev.debt.status,
            ev.collector.kind,
        )
        selected = self._selected.get(key)
        if selected is None:
            selected = self._select(key)
        facts = Facts(ev, key, third_party, conduct, discloses, day)
        violations: _Found = []
        warnings: _Found = []
        for test, deny, rule_id, violation in selected:
            if test is not None:
                try:
                    if not test(facts):
                        continue
                except Exception:  # fail closed, and keep judging the other rules
                    v = engine_error(rule_id)
                    violations.append((v, v.model_dump_json()))
                    continue
            facts.fired.add(rule_id)
            (violations if deny else warnings).append(violation)
        return violations, warnings, hits, hits_json

    def evaluate(self, ev: CollectionEvent, *, prune: bool = True) -> Decision:
        """Judge one event with every applicable rule (see the module docstring)."""
        violations, warnings, hits, _ = self._run(ev, prune)
        if not violations and not warnings and not hits:
            return self._allow
        return Decision.model_construct(
            verdict="deny" if violations else "allow",
            pack=self.name,
            pack_version=self.version,
            violations=tuple(v for v, _ in violations),
            warnings=tuple(w for w, _ in warnings),
            lint=hits,
        )

    def evaluate_json(self, ev: CollectionEvent) -> str:
        """``evaluate(ev).model_dump_json()``, built from precomputed JSON fragments (the fast path)."""
        violations, warnings, hits, hits_json = self._run(ev)
        if not violations and not warnings and not hits:
            return self._allow_json
        return "".join(
            (
                '{"verdict":"deny",' if violations else '{"verdict":"allow",',
                self._json_head,
                ",".join([j for _, j in violations]),
                '],"warnings":[',
                ",".join([j for _, j in warnings]),
                '],"lint":[',
                hits_json,
                "]}",
            )
        )


def compile_pack(spec: PackSpec, lexicons: Mapping[str, LexiconSpec] | None = None) -> CompiledPack:
    """Compile a validated pack; raise ``PackError`` for an unknown kind, param or fact.

    ``lexicons`` maps lexicon names to specs; every name the pack lists must be present.
    """
    lexicons = lexicons or {}
    missing = [n for n in spec.lexicons if n not in lexicons]
    if missing:
        raise PackError(f"pack {spec.pack}: lexicons not supplied: {missing}")
    cuts, periods = compile_periods(spec)
    return CompiledPack(spec, cuts, periods, [lexicons[n] for n in spec.lexicons])


def _internal_error(pack: CompiledPack) -> Decision:
    error = engine_error("engine")
    return Decision(verdict="deny", pack=pack.name, pack_version=pack.version, violations=(error,))


def evaluate(event: CollectionEvent, pack: CompiledPack | None) -> Decision:
    """Judge ``event`` with ``pack``: all violations, fail closed, ``engine.no_pack`` without a pack."""
    if pack is None or pack.jurisdiction != event.jurisdiction:
        return no_pack(event.jurisdiction)
    try:
        return pack.evaluate(event)
    except Exception:  # an error outside the rules (lint, facts): deny rather than guess
        return _internal_error(pack)


def evaluate_json(event: CollectionEvent, pack: CompiledPack | None) -> str:
    """``evaluate(event, pack)`` serialised as compact JSON (same text as ``model_dump_json``)."""
    if pack is None or pack.jurisdiction != event.jurisdiction:
        return no_pack(event.jurisdiction).model_dump_json()
    try:
        return pack.evaluate_json(event)
    except Exception:  # an error outside the rules (lint, facts): deny rather than guess
        return _internal_error(pack).model_dump_json()
