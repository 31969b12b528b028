"""What a rule reads: the ``Facts`` of one event, fact paths, conditions and feature bits.

A *fact path* names a scalar field of ``CollectionEvent`` with dots (``history.borrower_unreachable``)
or one of the derived facts: ``third_party`` (the recipient is not a debtor role of the pack).
Paths and the values a pack compares them with are checked against the event model when the
pack is compiled, so a typo in a pack (``recipient.role: borower``) fails at start-up instead of
silently never matching.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from operator import attrgetter, itemgetter
from typing import Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel

from collectguard.domain.event import CollectionEvent
from collectguard.policy.loader import PackError

__all__ = [
    "ALL_FEATURES",
    "COLLECTOR",
    "CONDUCT",
    "CONSENT",
    "DEBT",
    "DISCLOSES",
    "HISTORY",
    "MANY",
    "REFUSED",
    "SOURCE",
    "STATIC_PATHS",
    "Facts",
    "Pred",
    "Split",
    "StaticPred",
    "all_of",
    "any_of",
    "compile_conditions",
    "default_of",
    "fact_getter",
    "feature_of",
    "features",
    "path_spec",
]


_T = TypeVar("_T")


class Key(NamedTuple):
    """What the engine selects rules by: facts with few values, cached per combination.

    Everything a rule decides from these alone is settled once per combination, not per event.
    """

    channel: str
    role: str
    purpose: str
    feats: int  # feature bits (below)
    period: int  # index of the pack period the event's date falls in
    conduct: frozenset[str]  # reported + linted
    discloses: frozenset[str]  # reported + linted
    debt_status: str
    collector_kind: str


# Fact paths held in the Key, by position (third_party is derived from the role). Static
# predicates index the tuple, so they work on the engine's plain tuple as on a ``Key``.
_KEY_FIELDS = {
    "channel": Key._fields.index("channel"),
    "recipient.role": Key._fields.index("role"),
    "purpose": Key._fields.index("purpose"),
    "debt.status": Key._fields.index("debt_status"),
    "collector.kind": Key._fields.index("collector_kind"),
}
_ROLE = Key._fields.index("role")
STATIC_PATHS = frozenset({*_KEY_FIELDS, "third_party"})


class Facts:
    """The facts one evaluation reads: the event plus what is derived from it (lint, roles, date)."""

    __slots__ = ("conduct", "day", "discloses", "ev", "fired", "key", "third_party")

    def __init__(
        self,
        ev: CollectionEvent,
        key: tuple[Any, ...],
        third_party: bool,
        conduct: frozenset[str],
        discloses: frozenset[str],
        day: date,
    ) -> None:
        self.ev = ev
        self.key = key  # the selection key's fields as a plain tuple (see Key)
        self.third_party = third_party
        self.conduct = conduct
        self.discloses = discloses
        # The event's time is already the recipient's wall clock (DESIGN §5): its own date and
        # time of day are used as given, never converted to another zone.
        self.day = day
        self.fired: set[str] = set()


Pred = Callable[[Facts], bool]
# Can the rule apply to this Key (or its tuple)? A static predicate may read only the Key's
# channel, role, purpose, period, debt_status and collector_kind (what a condition can name):
# the engine caches its answer per combination of those fields, not per full Key.
StaticPred = Callable[[tuple[Any, ...]], bool]


# Feature bits: what an event carries beyond the bare minimum. A rule that cannot be broken
# without a feature (a conduct ban without any conduct, a debt rule without debt facts, a source
# rule without a source) is left out of the selection for events that lack it; most events carry
# few features, so most rules are never even called. A feature is claimed only where provably
# sound: a path's feature is "present" whenever the path may differ from its default value.
CONDUCT, DISCLOSES, CONSENT, HISTORY, COLLECTOR, DEBT, SOURCE, REFUSED, MANY = (1 << i for i in range(9))
ALL_FEATURES = (1 << 9) - 1
_SUBMODELS = {"consent": CONSENT, "history": HISTORY, "collector": COLLECTOR, "debt": DEBT}
_DEFAULTS: dict[str, Any] = {name: CollectionEvent.model_fields[name].default for name in _SUBMODELS}
_D_CONSENT, _D_HISTORY, _D_COLLECTOR, _D_DEBT = (_DEFAULTS[n] for n in _SUBMODELS)
# Recipient fields with a feature of their own: (bit, value when the feature is absent).
_RECIPIENT = {
    "recipient.source": (SOURCE, None),
    "recipient.no_contact_requested": (REFUSED, False),
    "recipient.count": (MANY, 1),
}


def features(ev: CollectionEvent, conduct: frozenset[str], discloses: frozenset[str]) -> int:
    """The feature bits of one event (an absent sub-object is the shared default instance)."""
    # The fields' dict: a pydantic model's attribute access goes through its __getattr__ hook.
    d = ev.__dict__
    m = CONDUCT if conduct else 0
    if discloses:
        m |= DISCLOSES
    if d["consent"] is not _D_CONSENT:
        m |= CONSENT
    if d["history"] is not _D_HISTORY:
        m |= HISTORY
    if d["collector"] is not _D_COLLECTOR:
        m |= COLLECTOR
    if d["debt"] is not _D_DEBT:
        m |= DEBT
    r = d["recipient"].__dict__
    if r["source"] is not None:
        m |= SOURCE
    if r["no_contact_requested"]:
        m |= REFUSED
    if r["count"] != 1:
        m |= MANY
    return m


def feature_of(path: str) -> int:
    """The feature bit whose absence pins ``path`` to its default value (0: none)."""
    if path in _RECIPIENT:
        return _RECIPIENT[path][0]
    return _SUBMODELS.get(path.split(".", 1)[0], 0)


def default_of(path: str) -> Any:
    """The value ``path`` has when its feature is absent (only for paths with a feature)."""
    if path in _RECIPIENT:
        return _RECIPIENT[path][1]
    head, _, rest = path.partition(".")
    return attrgetter(rest)(_DEFAULTS[head])


class Split(NamedTuple):
    """A condition split into a part decided by the selection ``Key`` alone, which the engine
    folds into its per-combination rule selection, a per-event part (``None``: always true), and
    the feature bits without which it cannot hold."""

    static: StaticPred | None
    dynamic: Pred | None
    needs: int = 0
    # Optional: specialise per Key: False = cannot apply, True = broken whenever it applies,
    # or the per-event check for that combination.
    bind: Callable[[Key], Pred | bool] | None = None


def _unwrap(ann: Any) -> tuple[Any, bool]:
    """Strip ``X | None`` / ``Annotated``; return (inner annotation, optional?)."""
    optional = False
    while True:
        origin = get_origin(ann)
        if origin is typing.Annotated:
            ann = get_args(ann)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(ann) if a is not type(None)]
            optional = optional or len(args) < len(get_args(ann))
            ann = args[0] if len(args) == 1 else ann
            if len(args) != 1:
                return ann, optional
        else:
            return ann, optional


def _build_paths() -> dict[str, tuple[frozenset[Any] | None, bool, bool]]:
    """path -> (allowed values or None, optional?, is a list)."""
    out: dict[str, tuple[frozenset[Any] | None, bool, bool]] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann, optional = _unwrap(field.annotation)
            path = f"{prefix}{name}"
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, path + ".")
                continue
            is_list = get_origin(ann) is tuple
            if is_list:
                ann, _ = _unwrap(get_args(ann)[0])
            allowed: frozenset[Any] | None = None
            if get_origin(ann) is Literal:
                allowed = frozenset(get_args(ann))
            elif ann is bool:
                allowed = frozenset({True, False})
            out[path] = (allowed, optional, is_list)

    walk(CollectionEvent, "")
    out["third_party"] = (frozenset({True, False}), False, False)
    return out


_PATHS = _build_paths()


def path_spec(path: str, *, where: str) -> tuple[frozenset[Any] | None, bool, bool]:
    """Describe a fact path or raise ``PackError``: (allowed values, optional?, is a list)."""
    try:
        return _PATHS[path]
    except KeyError:
        raise PackError(f"{where}: unknown fact {path!r}") from None


def fact_getter(path: str, *, where: str, scalar: bool = True) -> Callable[[Facts], Any]:
    """A fast getter for a fact path (``operator.attrgetter`` on the event)."""
    _, _, is_list = path_spec(path, where=where)
    if scalar and is_list:
        raise PackError(f"{where}: {path!r} is a list; use a kind made for lists")
    if path == "third_party":
        return attrgetter("third_party")
    return attrgetter("ev." + path)


def _values(path: str, spec: Any, *, where: str) -> tuple[bool, frozenset[Any]]:
    """Parse one condition value into (negated?, values) and check the values are possible."""
    negate = False
    if isinstance(spec, Mapping):
        if set(spec) == {"in"}:
            spec = spec["in"]
        elif set(spec) == {"not_in"}:
            negate, spec = True, spec["not_in"]
        else:
            raise PackError(f"{where}: condition on {path!r}: a list, a value, {{in: …}} or {{not_in: …}}")
    values = frozenset(spec) if isinstance(spec, list) else frozenset([spec])
    allowed, optional, _ = path_spec(path, where=where)
    for v in values:
        if v is None and optional:
            continue
        if allowed is not None and v not in allowed:
            raise PackError(f"{where}: {v!r} is not a possible value of {path!r}")
    return negate, values


def compile_conditions(cond: Mapping[str, Any], *, where: str, debtor_roles: frozenset[str]) -> Split:
    """Compile ``{path: values, …}`` (all must hold) into a static part, a per-event part and needs."""
    static: list[StaticPred] = []
    dynamic: list[Pred] = []
    needs = 0
    for path, spec in cond.items():
        negate, values = _values(path, spec, where=where)
        if path in STATIC_PATHS:
            static.append(_static(path, negate, values, debtor_roles))
        else:
            get = fact_getter(path, where=where)
            feature = feature_of(path)
            if feature and (default_of(path) in values) == negate:
                needs |= feature  # false whenever the sub-object is absent
            dynamic.append(_membership(get, values, negate))
    return Split(all_of(static) if static else None, all_of(dynamic) if dynamic else None, needs)


def all_of(preds: Sequence[Callable[[_T], bool]]) -> Callable[[_T], bool]:
    """One predicate that holds when all of ``preds`` (at least one) hold, tested in order.
    Unrolled for short lists: a generator per event costs more than the tests themselves."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda x: a(x) and b(x)
    if len(preds) == 3:
        a, b, c = preds
        return lambda x: a(x) and b(x) and c(x)
    items = tuple(preds)
    return lambda x: all(p(x) for p in items)


def any_of(preds: Sequence[Callable[[_T], bool]]) -> Callable[[_T], bool]:
    """One predicate that holds when any of ``preds`` (at least one) holds, tested in order."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda x: a(x) or b(x)
    if len(preds) == 3:
        a, b, c = preds
        return lambda x: a(x) or b(x) or c(x)
    items = tuple(preds)
    return lambda x: any(p(x) for p in items)


def _membership(get: Callable[[Facts], Any], values: frozenset[Any], negate: bool) -> Pred:
    if negate:
        return lambda f: get(f) not in values
    return lambda f: get(f) in values


def _static(path: str, negate: bool, values: frozenset[Any], debtor_roles: frozenset[str]) -> StaticPred:
    if path == "third_party":
        if negate:
            return lambda k: (k[_ROLE] not in debtor_roles) not in values
        return lambda k: (k[_ROLE] not in debtor_roles) in values
    pick = itemgetter(_KEY_FIELDS[path])
    if negate:
        return lambda k: pick(k) not in values
    return lambda k: pick(k) in values
