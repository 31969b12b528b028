"""The engine: compiles a pack into closures once, then judges events with them.

Compiling (``compiler.py``): every rule once per *period* in which all of the pack's dates are
constant, with its ``Violation`` (citations in force) built in advance.

Judging. ``evaluate`` picks the period of the event's (recipient-local) date, then the rules that
can apply to the event's selection ``Key`` — channel, role, purpose, conduct, disclosures, debt
status, collector kind and *features* (which optional facts the event carries) — a selection
cached per combination — and runs **every** one of them, returning all violations, never just
the first. ``evaluate_json``/``evaluate_utf8`` give ``evaluate(...).model_dump_json()`` (as text or
UTF-8) from precomputed fragments, cached per (rules broken, lint hits).

Fail closed: an exception inside a rule becomes an ``engine.error`` violation for that rule (the
other rules still run); an exception outside the rules (lint, facts) denies with ``engine.error``
too; a jurisdiction without a pack denies with ``engine.no_pack``.
Deterministic: the output depends only on the event and the pack, in pack order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from collectguard.domain.event import CollectionEvent, Decision, Violation
from collectguard.policy.loader import LexiconSpec, PackError, PackSpec
from collectguard.rules.compiler import CompiledRule, compile_periods
from collectguard.rules.facts import (
    ALL_FEATURES,
    Facts,
    Key,
    Pred,
    StaticPred,
    features,
)
from collectguard.rules.lint import Linter, LintView

__all__ = [
    "CompiledPack",
    "CompiledRule",
    "compile_pack",
    "engine_error",
    "evaluate",
    "evaluate_json",
    "evaluate_utf8",
    "no_pack",
]

_EMPTY: frozenset[str] = frozenset()
_CACHE_MAX = 1 << 16  # entries per cache (selections, decisions) before it is emptied


class _Found:
    """A violation or warning one rule contributes, with its JSON (text and UTF-8) made in advance.

    Hashed by identity: a tuple of them is the cheap key of a cached decision text.
    """

    __slots__ = ("deny", "json", "utf8", "violation")

    def __init__(self, violation: Violation, json: str, deny: bool) -> None:
        self.violation = violation
        self.json = json
        self.utf8 = json.encode()
        self.deny = deny


# What the evaluation loop runs per selected rule: (test or None, rule id, what it contributes).
_Selected = tuple[Pred | None, str, _Found]
# A rule of a period as the selection reads it: (static, needs, bind, wrap, test, rule id, found).
_Prepared = tuple[
    StaticPred | None,
    int,
    Callable[[Key], Pred | bool] | None,
    Callable[[Pred | None], Pred | None],
    Pred | None,
    str,
    _Found,
]


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
        self._prepared: list[tuple[_Prepared, ...]] = [
            tuple(
                (r.static, r.needs, r.bind, r.wrap, r.test, r.id, _Found(*r.violation, r.deny)) for r in rules
            )
            for rules in periods
        ]
        self._period_of: dict[date, int] = {}
        self._lexicons = lexicons
        self._linter: Linter | None = None
        self._selected: dict[tuple[Any, ...], tuple[_Selected, ...]] = {}
        self._base: dict[tuple[Any, ...], tuple[_Prepared, ...]] = {}
        self._errors: dict[str, _Found] = {}
        self._texts: dict[tuple[tuple[_Found, ...], str], str] = {}
        self._utf8: dict[tuple[tuple[_Found, ...], str], bytes] = {}
        self._allow = Decision(verdict="allow", pack=self.name, pack_version=self.version)
        self._allow_json = self._allow.model_dump_json()
        self._allow_utf8 = self._allow_json.encode()
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
        to the cheapest per-event test for that combination (cached by the caller).

        In two steps: the rules whose static test passes are cached per *base* key (the fields a
        static test may read: channel, role, purpose, period, debt status, collector kind — far
        fewer combinations than full keys); only those are then matched against the features,
        conduct and disclosures of the full key.
        """
        key = Key(*raw_key)
        base_key = (key.channel, key.role, key.purpose, key.period, key.debt_status, key.collector_kind)
        base = self._base.get(base_key)
        if base is None:
            if len(self._base) >= _CACHE_MAX:
                self._base.clear()
            base = self._base[base_key] = tuple(
                r for r in self._prepared[key.period] if r[0] is None or r[0](key)
            )
        feats = key.feats
        picked: list[_Selected] = []
        for _, needs, bind, wrap, test, rule_id, found in base:
            if (needs & feats) != needs:
                continue
            if bind is not None:
                bound = bind(key)
                if bound is False:
                    continue
                test = wrap(None if bound is True else bound)
            picked.append((test, rule_id, found))
        if len(self._selected) >= _CACHE_MAX:
            self._selected.clear()  # bounded: odd inputs cannot grow it without end
        rules = self._selected[raw_key] = tuple(picked)
        return rules

    def _error(self, rule_id: str) -> _Found:
        found = self._errors.get(rule_id)
        if found is None:
            v = engine_error(rule_id)
            found = self._errors[rule_id] = _Found(v, v.model_dump_json(), True)
        return found

    def _run(self, ev: CollectionEvent, prune: bool = True) -> tuple[list[_Found], LintView | None]:
        """Every applicable rule on one event: (what the broken rules contribute, in pack order;
        what the lint found in the message, if there is one).

        ``prune=False`` claims every feature, so no rule is skipped for lack of one: the reference
        the tests compare the pruned selection with.
        """
        d = ev.__dict__  # the fields: cheaper than a pydantic model's attribute hook
        role = d["recipient"].__dict__["role"]
        third_party = role not in self.debtor_roles
        conduct = frozenset(d["conduct"]) if d["conduct"] else _EMPTY
        discloses = frozenset(d["discloses"]) if d["discloses"] else _EMPTY
        view: LintView | None = None
        message = d["message"]
        if message:
            view = (self._linter or self.linter).view(message, third_party=third_party)
            if view.conduct:
                conduct = conduct | view.conduct
            if view.discloses:
                discloses = discloses | view.discloses
        day = d["time"].date()
        period = self._period_of.get(day)
        if period is None:
            if len(self._period_of) > 4096:
                self._period_of.clear()
            period = self._period_of[day] = bisect_right(self._cuts, day)
        feats = features(ev, conduct, discloses) if prune else ALL_FEATURES
        # A plain tuple with the Key's fields: cheaper to build and hash than the NamedTuple.
        key = (
            d["channel"],
            role,
            d["purpose"],
            feats,
            period,
            conduct,
            discloses,
            d["debt"].__dict__["status"],
            d["collector"].__dict__["kind"],
        )
        selected = self._selected.get(key)
        if selected is None:
            selected = self._select(key)
        facts = Facts(ev, key, third_party, conduct, discloses, day)
        found: list[_Found] = []
        for test, rule_id, f in selected:
            if test is not None:
                try:
                    if not test(facts):
                        continue
                except Exception:  # fail closed, and keep judging the other rules
                    found.append(self._error(rule_id))
                    continue
            facts.fired.add(rule_id)
            found.append(f)
        return found, view

    def evaluate(self, ev: CollectionEvent, *, prune: bool = True) -> Decision:
        """Judge one event with every applicable rule (see the module docstring)."""
        found, view = self._run(ev, prune)
        hits = view.hits if view is not None else ()
        if not found and not hits:
            return self._allow
        violations = tuple(f.violation for f in found if f.deny)
        return Decision.model_construct(
            verdict="deny" if violations else "allow",
            pack=self.name,
            pack_version=self.version,
            violations=violations,
            warnings=tuple(f.violation for f in found if not f.deny),
            lint=hits,
        )

    def evaluate_json(self, ev: CollectionEvent) -> str:
        """``evaluate(ev).model_dump_json()``, built from precomputed JSON fragments (the fast path)."""
        found, view = self._run(ev)
        hits_json = view.hits_json if view is not None else ""
        if not found and not hits_json:
            return self._allow_json
        # Events that break the same rules (and show the same lint hits) get the same text.
        key = (tuple(found), hits_json)
        text = self._texts.get(key)
        if text is None:
            if len(self._texts) >= _CACHE_MAX:
                self._texts.clear()
            text = self._texts[key] = self._text(found, hits_json)
        return text

    def evaluate_utf8(self, ev: CollectionEvent) -> bytes:
        """``evaluate_json(ev)`` encoded as UTF-8 (what the ``check`` command writes)."""
        found, view = self._run(ev)
        hits_json = view.hits_json if view is not None else ""
        if not found and not hits_json:
            return self._allow_utf8
        key = (tuple(found), hits_json)
        data = self._utf8.get(key)
        if data is None:
            if len(self._utf8) >= _CACHE_MAX:
                self._utf8.clear()
            data = self._utf8[key] = self._text(found, hits_json).encode()
        return data

    def _text(self, found: list[_Found], hits_json: str) -> str:
        deny = any(f.deny for f in found)
        return "".join(
            (
                '{"verdict":"deny",' if deny else '{"verdict":"allow",',
                self._json_head,
                ",".join([f.json for f in found if f.deny]),
                '],"warnings":[',
                ",".join([f.json for f in found if not f.deny]),
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


def evaluate_utf8(event: CollectionEvent, pack: CompiledPack | None) -> bytes:
    """``evaluate_json(event, pack)`` encoded as UTF-8."""
    if pack is None or pack.jurisdiction != event.jurisdiction:
        return no_pack(event.jurisdiction).model_dump_json().encode()
    try:
        return pack.evaluate_utf8(event)
    except Exception:  # an error outside the rules (lint, facts): deny rather than guess
        return _internal_error(pack).model_dump_json().encode()
