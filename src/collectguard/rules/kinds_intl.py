"""Rule kinds the US and EU packs need beyond ``kinds.py``: date arithmetic and message phrases.

Registered with the same ``@kind`` decorator, so packs name them like any other kind;
``rules/kinds.py`` imports this module on its last line, so they are registered wherever
``KINDS`` is. Same contract as ``kinds.py``: params are read and checked once at compile time,
the closures are pure and never read the clock (the event's recipient-local date is
``Facts.day``).

* ``within_days``: Regulation F's "within 7 consecutive days after a telephone conversation",
  where the conversation date is day 1.
* ``days_elapsed``: "more than N days after" a date (e.g. the validation notice due 5 days after
  the initial communication).
* ``message_phrases``: a message that lacks a required statement ("from a debt collector"), or
  that contains one it must not ("debt collector" in a location call to a third party).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from collectguard.domain.event import CollectionEvent
from collectguard.policy.loader import PackError
from collectguard.rules.facts import Facts, Pred, Split, default_of, fact_getter, feature_of
from collectguard.rules.kinds import NEVER, CompileContext, kind
from collectguard.rules.normalize import normalize
from collectguard.rules.params import Params

__all__ = ["days_elapsed", "message_phrases", "within_days"]

_MODES = ("lacks", "contains")


def _non_negative_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{v!r} is not a whole number >= 0")
    return v


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{v!r} is not a whole number >= 1")
    return v


def _is_date_annotation(ann: Any) -> bool:
    """``date`` or ``date | None`` — and not ``datetime`` (``time`` is a wall clock, not a day)."""
    if get_origin(ann) in (Union, types.UnionType):
        inner = [a for a in get_args(ann) if a is not type(None)]
        return len(inner) == 1 and inner[0] is date
    return ann is date


def _date_getter(p: Params) -> tuple[str, Callable[[Facts], Any]]:
    """The ``fact`` param: a path to a date field of the event, checked against the event model."""
    path = p.get("fact", types_=(str,))
    get = fact_getter(path, where=p.where)  # refuses unknown paths and lists
    model: type[BaseModel] = CollectionEvent
    ann: Any = None
    parts = path.split(".")
    for i, name in enumerate(parts):
        field = model.model_fields.get(name)
        if field is None:  # unreachable: fact_getter has refused unknown paths already
            ann = None
            break
        ann = field.annotation
        sub = typing.get_args(ann) or (ann,)
        nested = [a for a in sub if isinstance(a, type) and issubclass(a, BaseModel)]
        if i < len(parts) - 1:
            if not nested:
                ann = None
                break
            model = nested[0]
    if not _is_date_annotation(ann):
        raise PackError(f"{p.where}: {path!r} is not a date fact")
    return path, get


def _cannot_fire_when_absent(path: str) -> int:
    """The feature bit of a date path: every kind here is silent while the date is absent."""
    feature = feature_of(path)
    return feature if feature and default_of(path) is None else 0


@kind("within_days")
def within_days(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when the date ``fact`` is given and the event's (recipient-local) date falls within
    ``days`` consecutive days counted from it, the date itself being day 1 — with ``days: 7``, a
    contact on the 7th day is broken and one on the 8th is not. A date after the event's date
    (inconsistent facts) is treated as within the period: fail closed.
    """
    path, get = _date_getter(p)
    days = p.threshold("days", _positive_int)
    if days is None:
        return NEVER

    def check(f: Facts) -> bool:
        d = get(f)
        return d is not None and (f.day - d).days < days

    return Split(None, check, _cannot_fire_when_absent(path))


@kind("days_elapsed")
def days_elapsed(p: Params, ctx: CompileContext) -> Pred | Split:
    """Broken when the date ``fact`` is given and the event's (recipient-local) date is more than
    ``more_than`` days after it (``more_than: 5``: day 5 after the date is not broken, day 6 is)."""
    path, get = _date_getter(p)
    limit = p.threshold("more_than", _non_negative_int)
    if limit is None:
        return NEVER

    def check(f: Facts) -> bool:
        d = get(f)
        return d is not None and (f.day - d).days > limit

    return Split(None, check, _cannot_fire_when_absent(path))


def _phrases(p: Params, key: str, *, required: bool) -> re.Pattern[str] | None:
    """A list of phrases as one pattern on the normalised message, Latin phrases on word bounds."""
    raw = p.get(key, ... if required else [], types_=(list,))
    if required and not raw:
        raise PackError(f"{p.where}: {key} must be a non-empty list of phrases")
    pieces: list[str] = []
    for phrase in raw:
        if not isinstance(phrase, str) or not phrase.strip():
            raise PackError(f"{p.where}: {key} entries must be non-empty strings")
        text = normalize(phrase).text.strip()
        if not text:
            raise PackError(f"{p.where}: {key}: {phrase!r} is empty once normalised")
        pieces.append(re.escape(text))
    if not pieces:
        return None
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(sorted(pieces, key=len, reverse=True)) + r")(?![a-z0-9])")


def _regexes(p: Params, key: str) -> tuple[re.Pattern[str], ...]:
    out: list[re.Pattern[str]] = []
    for rx in p.get(key, [], types_=(list,)):
        if not isinstance(rx, str):
            raise PackError(f"{p.where}: {key} entries must be strings")
        try:
            out.append(re.compile(rx))
        except re.error as exc:
            raise PackError(f"{p.where}: {key}: bad regex {rx!r}: {exc}") from None
    return tuple(out)


@kind("message_phrases")
def message_phrases(p: Params, ctx: CompileContext) -> Pred | Split:
    """Judges the wording of ``message`` (only when one is given; without it there is nothing to
    judge). ``mode: lacks`` — broken when none of ``phrases`` appears; ``mode: contains`` — broken
    when any appears. ``only_if_any`` / ``only_if_regex`` (optional) limit the rule to messages
    with at least one of those phrases or patterns (e.g. messages that say anything about a debt).
    Matching is on the normalised text (lower case, punctuation collapsed: the lint's
    ``normalize``), Latin phrases on word boundaries; regexes run on the normalised text too.
    """
    mode = p.get("mode", types_=(str,))
    if mode not in _MODES:
        raise PackError(f"{p.where}: mode must be one of {', '.join(_MODES)}")
    wanted = _phrases(p, "phrases", required=True)
    assert wanted is not None
    gate_words = _phrases(p, "only_if_any", required=False)
    gate_regex = _regexes(p, "only_if_regex")
    gated = gate_words is not None or bool(gate_regex)
    lacks = mode == "lacks"

    @lru_cache(maxsize=4096)
    def broken(message: str) -> bool:
        text = normalize(message).text
        if gated and not (
            (gate_words is not None and gate_words.search(text)) or any(rx.search(text) for rx in gate_regex)
        ):
            return False
        found = wanted.search(text) is not None
        return not found if lacks else found

    def check(f: Facts) -> bool:
        message = f.ev.message
        return bool(message) and broken(message)

    return check
