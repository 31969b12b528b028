"""Rule kinds: one small function per *kind* of condition; the rules themselves are pack data.

Each kind takes the rule's ``Params`` (and the compile context) once, at compile time, and
returns a closure ``Facts -> bool`` that says whether the rule is broken for one event — or a
``Split``, which also tells the engine what is decided by the selection ``Key`` alone and
which event features the rule cannot fire without. The closure must be pure and fast: no I/O,
no clock, no allocation it can avoid. Thresholds arrive already resolved for the period being
compiled (``Params.threshold``); ``None`` means not in force (return ``NEVER``). docs/rules.md lists
every kind with its params and the facts it reads; a new jurisdiction's pack plugs in as YAML,
plus at most a new kind here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, get_args

from collectguard.domain.event import Conduct, ConsentKind, Disclosure
from collectguard.policy.loader import PackError
from collectguard.rules.facts import (
    CONDUCT,
    CONSENT,
    DEBT,
    DISCLOSES,
    Facts,
    Key,
    Pred,
    Split,
    all_of,
    any_of,
    compile_conditions,
    default_of,
    fact_getter,
    feature_of,
)
from collectguard.rules.params import Params

__all__ = ["DERIVED_CONDUCT", "KINDS", "NEVER", "CompileContext", "hhmm_to_secs", "window_secs"]

# Conduct the lint can add that has no field value of its own in the event contract.
DERIVED_CONDUCT = frozenset({"disclosure_threat"})
_CONDUCT = frozenset(get_args(Conduct)) | DERIVED_CONDUCT
_DISCLOSURES = frozenset(get_args(Disclosure))
_CONSENTS = frozenset(get_args(ConsentKind))
_ILLEGAL_TESTS = frozenset({"status_illegal", "unlicensed_over_cap", "private_over_lpr_multiple"})


@dataclass
class CompileContext:
    """What a kind may know about the pack while compiling one rule."""

    where: str
    debtor_roles: frozenset[str]
    earlier_rules: set[str] = field(default_factory=set)


Kind = Callable[[Params, CompileContext], Pred | Split]

# A rule whose threshold is not in force in the period being compiled: it never applies.
NEVER = Split(lambda k: False, None)
KINDS: dict[str, Kind] = {}


def kind(name: str) -> Callable[[Kind], Kind]:
    """Register a kind function under ``name`` (the ``kind:`` packs write)."""

    def register(fn: Kind) -> Kind:
        KINDS[name] = fn
        return fn

    return register


def hhmm_to_secs(v: Any) -> int:
    """``"HH:MM"`` (``24:00`` allowed) -> seconds after midnight."""
    if not isinstance(v, str) or len(v) != 5 or v[2] != ":":
        raise ValueError(f'{v!r} is not "HH:MM"')
    h, m = int(v[:2]), int(v[3:])
    if not (0 <= m < 60 and (0 <= h < 24 or (h == 24 and m == 0))):
        raise ValueError(f"{v!r} is not a time of day")
    return h * 3600 + m * 60


@lru_cache(maxsize=1024)
def window_secs(hours: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` (already validated by the event model) -> (start, end) seconds."""
    return hhmm_to_secs(hours[:5]), hhmm_to_secs(hours[6:])


def _inside(t: float, a: int, b: int, end_inclusive: bool) -> bool:
    if a < b:
        return a <= t <= b if end_inclusive else a <= t < b
    # A window across midnight, e.g. 21:00-07:00.
    return t >= a or (t <= b if end_inclusive else t < b)


def _number(v: Any) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | float | Decimal | str):
        raise ValueError(f"{v!r} is not a number")
    return Decimal(str(v))


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{v!r} is not a whole number >= 1")
    return v


def _names(p: Params, key: str, allowed: frozenset[str], default: Any = ...) -> frozenset[str]:
    v = p.get(key, default, types_=(list,))
    bad = [x for x in v if x not in allowed]
    if bad:
        raise PackError(f"{p.where}: {key} has unknown values {bad}")
    return frozenset(v)


def _needs(path: str, fires: Callable[[Any], bool]) -> int:
    """The feature of ``path`` if the rule cannot fire while the path has its default value."""
    feature = feature_of(path)
    return feature if feature and not fires(default_of(path)) else 0


@kind("quiet_hours")
def quiet_hours(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when the recipient-local wall clock is outside the allowed window, or outside the
    agreed window (``consent.agreed_hours``, unless withdrawn) when one is given and honoured."""
    start = p.threshold("allowed_from", hhmm_to_secs)
    end = p.threshold("allowed_until", hhmm_to_secs)
    end_inclusive = p.get("until_inclusive", False, types_=(bool,))
    honour = p.get("honour_agreed_hours", True, types_=(bool,))
    if start is None or end is None:
        return NEVER

    def check(f: Facts) -> bool:
        ev = f.ev
        t = ev.time
        secs = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond * 1e-6
        consent = ev.consent
        if honour and consent.agreed_hours is not None and "agreed_hours" not in consent.withdrawn:
            a, b = window_secs(consent.agreed_hours)
            return not _inside(secs, a, b, end_inclusive)
        return not _inside(secs, start, end, end_inclusive)

    return check


@kind("counter_cap")
def counter_cap(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when a counter of earlier contacts has already reached ``max`` (this one would exceed it)."""
    path = p.get("counter", types_=(str,))
    get = fact_getter(path, where=p.where)
    cap = p.threshold("max", _positive_int)
    if cap is None:
        return NEVER
    return Split(None, lambda f: get(f) >= cap, _needs(path, lambda v: v is not None and v >= cap))


@kind("minimum")
def minimum(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when a numeric fact is absent or below ``min``."""
    get = fact_getter(p.get("fact", types_=(str,)), where=p.where)
    low = p.threshold("min", _number)
    if low is None:
        return NEVER

    def check(f: Facts) -> bool:
        v = get(f)
        return v is None or v < low

    return check


@kind("maximum")
def maximum(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when a numeric fact is present and above ``max``."""
    path = p.get("fact", types_=(str,))
    get = fact_getter(path, where=p.where)
    high = p.threshold("max", _number)
    if high is None:
        return NEVER

    def check(f: Facts) -> bool:
        v = get(f)
        return v is not None and v > high

    return Split(None, check, _needs(path, lambda v: v is not None and v > high))


@kind("always")
def always(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken whenever the rule applies (its ``applies_when`` holds)."""
    return Split(None, None)


def _as_pred(cond: Mapping[str, Any], ctx: CompileContext, where: str) -> Pred:
    static, dynamic, _, _ = compile_conditions(cond, where=where, debtor_roles=ctx.debtor_roles)

    def pred(f: Facts) -> bool:
        if static is not None and not static(f.key):
            return False
        return dynamic is None or dynamic(f)

    return pred


@kind("match")
def match(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when any of the ``any_of`` condition sets holds (each set: all its conditions)."""
    options = p.get("any_of", types_=(list,))
    if not options or not all(isinstance(o, Mapping) for o in options):
        raise PackError(f"{p.where}: any_of must be a non-empty list of condition maps")
    splits = [compile_conditions(o, where=p.where, debtor_roles=ctx.debtor_roles) for o in options]
    if len(splits) == 1:
        return splits[0]
    needs = splits[0].needs
    for sp in splits[1:]:
        needs &= sp.needs  # a feature every option needs

    def bind(key: Key) -> Pred | bool:
        # Once per selection key: drop the options that cannot hold for it; an option with
        # nothing left to check per event makes the rule broken outright.
        live = [
            sp.dynamic for sp in splits if (sp.needs & key.feats) == sp.needs and (sp.static is None or sp.static(key))
        ]
        if not live:
            return False
        if any(d is None for d in live):
            return True
        return any_of([d for d in live if d is not None])

    return Split(None, None, needs, bind)


@kind("required")
def required(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when any of the listed facts is false or absent."""
    paths = p.get("facts", types_=(list,))
    getters = [fact_getter(x, where=p.where) for x in paths]
    if not getters:
        return lambda f: False  # nothing is required
    present = all_of(getters)
    return lambda f: not present(f)


@kind("discloses")
def discloses(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when the contact reveals any of ``items`` (``discloses`` plus what the lint found)."""
    items = _names(p, "items", _DISCLOSURES)
    # What is disclosed is part of the selection key: settled once per combination.
    return Split(None, None, DISCLOSES, lambda k: not items.isdisjoint(k.discloses))


@kind("conduct_ban")
def conduct_ban(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when the conduct (reported, or found by the lint in the message) includes a listed one."""
    banned = _names(p, "conduct", _CONDUCT)
    # The conduct is part of the selection key: settled once per combination, never per event.
    return Split(None, None, CONDUCT, lambda k: not banned.isdisjoint(k.conduct))


@kind("consent_withdrawn")
def consent_withdrawn(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when the contact relies on a consent the borrower has withdrawn."""
    relies = p.get("relies_on", types_=(list,))
    pairs: list[tuple[str, Pred]] = []
    for r in relies:
        if not isinstance(r, Mapping) or set(r) != {"consent", "when"} or r["consent"] not in _CONSENTS:
            raise PackError(f"{p.where}: relies_on entries are {{consent: <kind>, when: <conditions>}}")
        pairs.append((r["consent"], _as_pred(r["when"], ctx, p.where)))

    def check(f: Facts) -> bool:
        withdrawn = f.ev.consent.withdrawn
        return bool(withdrawn) and any(c in withdrawn and w(f) for c, w in pairs)

    return Split(None, check, CONSENT)


@kind("illegal_debt")
def illegal_debt(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when the debt is illegal by one of ``tests`` — and, if ``conduct`` or ``or_rules`` is
    given, only when the contact also shows that conduct or one of those earlier rules fired."""
    tests = _names(p, "tests", _ILLEGAL_TESTS)
    cap = p.threshold("unlicensed_cap", _number) if "unlicensed_over_cap" in tests else None
    mult = p.threshold("lpr_multiple", _number) if "private_over_lpr_multiple" in tests else None
    conduct = _names(p, "conduct", _CONDUCT, [])
    or_rules = frozenset(p.get("or_rules", [], types_=(list,)))
    unknown = or_rules - ctx.earlier_rules
    if unknown:
        raise PackError(f"{p.where}: or_rules must name rules listed earlier in the pack: {sorted(unknown)}")
    by_status = "status_illegal" in tests

    def illegal(f: Facts) -> bool:
        d = f.ev.debt
        if by_status and d.status == "illegal":
            return True
        rate = d.annual_rate
        if rate is None:
            return False
        if cap is not None and d.lender_type == "unlicensed" and rate > cap:
            return True
        return (
            mult is not None
            and d.lender_type == "private"
            and d.lpr_at_signing is not None
            and (rate > mult * d.lpr_at_signing)
        )

    # A debt is only illegal by a fact given in `debt`, so every variant needs the debt facts.
    if not conduct and not or_rules:
        return Split(None, illegal, DEBT)

    def check(f: Facts) -> bool:
        if conduct.isdisjoint(f.conduct) and or_rules.isdisjoint(f.fired):
            return False
        return illegal(f)

    return Split(None, check, DEBT)


# The US/EU kinds register themselves with @kind on import (kept in their own module).
from collectguard.rules import kinds_intl as _kinds_intl  # noqa: E402, F401
