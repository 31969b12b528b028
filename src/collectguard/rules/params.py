"""A rule's ``params`` as a kind sees them: plain values, thresholds resolved for one period."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from collectguard.policy.loader import PackError

__all__ = ["Params", "param_dates"]


def _dated_entries(raw: Any) -> bool:
    return isinstance(raw, list) and bool(raw) and all(isinstance(x, Mapping) for x in raw)


def param_dates(raw: Mapping[str, Any]) -> set[date]:
    """Every ``effective_from`` in a rule's dated params (the engine compiles once per period)."""
    out: set[date] = set()
    for v in raw.values():
        if _dated_entries(v):
            out |= {x["effective_from"] for x in v if isinstance(x.get("effective_from"), date)}
    return out


class Params:
    """A rule's ``params`` as in force on one day; remembers which keys a kind used.

    The engine compiles each rule once per period in which all dated values of the pack are
    constant, so a kind sees plain values and its closure never looks a date up.
    """

    def __init__(self, raw: Mapping[str, Any], *, where: str, day: date) -> None:
        self.raw = dict(raw)
        self.where = where
        self.day = day
        self.used: set[str] = set()

    def get(self, key: str, default: Any = ..., *, types_: tuple[type, ...] | None = None) -> Any:
        """A plain (undated) parameter; ``default=...`` makes it required."""
        self.used.add(key)
        if key not in self.raw:
            if default is ...:
                raise PackError(f"{self.where}: missing param {key!r}")
            return default
        v = self.raw[key]
        if types_ is not None and not isinstance(v, types_):
            raise PackError(f"{self.where}: param {key!r} must be {'/'.join(t.__name__ for t in types_)}")
        return v

    def threshold(self, key: str, convert: Callable[[Any], Any]) -> Any:
        """A threshold, either one value or ``[{value, effective_from}, …]``, as in force on the day.

        The value in force is the one with the latest ``effective_from`` not after the day; before
        the first one the threshold is not in force and ``None`` is returned (the rule cannot fire).
        Every value is converted (checked) whichever is in force.
        """
        raw = self.get(key)
        if not _dated_entries(raw):
            return self._convert(key, convert, raw)
        in_force: tuple[date, Any] | None = None
        for x in raw:
            if set(x) != {"value", "effective_from"} or not isinstance(x["effective_from"], date):
                raise PackError(f"{self.where}: {key!r} entries need just value and effective_from (a date)")
            value = self._convert(key, convert, x["value"])
            if x["effective_from"] <= self.day and (in_force is None or x["effective_from"] > in_force[0]):
                in_force = (x["effective_from"], value)
        return None if in_force is None else in_force[1]

    def _convert(self, key: str, convert: Callable[[Any], Any], v: Any) -> Any:
        try:
            return convert(v)
        except (TypeError, ValueError) as exc:
            raise PackError(f"{self.where}: bad value for {key!r}: {exc}") from None

    def finish(self) -> None:
        """Refuse params the kind did not read (a typo would otherwise be ignored)."""
        extra = set(self.raw) - self.used
        if extra:
            raise PackError(f"{self.where}: unknown params {sorted(extra)}")
