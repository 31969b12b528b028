"""The facts a description may leave open, and the values each is tried with (counterfactual probing).

``domain/assessment.py`` judges a past contact once per combination of these values for every
probe that applies and was not stated. A probe's values are the plausible readings that matter
to the rules: a daytime and a night-time hour for an unknown time, reachable or not for
``history.borrower_unreachable``, one or two collectors for an unknown visit, and so on.

*Presumed* probes are facts the law treats as exceptions a complainant would mention (agreed
contact hours, a third party's earlier refusal, withdrawn consent, the number of calls): they
stay at the contract's default unless the input hints at them: probing them always would leave
every lawful contact undetermined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from collectguard.domain.event import CollectionEvent

__all__ = ["PROBES", "Probe"]


def _with(ev: CollectionEvent, path: str, value: Any) -> CollectionEvent:
    """``ev`` with one (dotted) field replaced; values come from the probe table, so no re-validation."""
    head, _, tail = path.partition(".")
    if not tail:
        return ev.model_copy(update={head: value})
    sub: BaseModel = getattr(ev, head)
    return ev.model_copy(update={head: sub.model_copy(update={tail: value})})


def _values(path: str, *values: Any) -> Callable[[CollectionEvent], tuple[CollectionEvent, ...]]:
    return lambda ev: tuple(_with(ev, path, v) for v in values)


def _times(ev: CollectionEvent) -> tuple[CollectionEvent, ...]:
    # A daytime and a night-time reading: the only question the time rules ask.
    return tuple(ev.model_copy(update={"time": ev.time.replace(hour=h, minute=0, second=0, microsecond=0)})
                 for h in (10, 23))


def _hours(ev: CollectionEvent) -> tuple[CollectionEvent, ...]:
    h = ev.time.hour
    window = f"{h:02d}:00-{h + 1:02d}:00" if h < 23 else "23:00-24:00"
    return ev, _with(ev, "consent.agreed_hours", window)


@dataclass(frozen=True)
class Probe:
    """A fact that may be unknown: when it matters, and the values it is tried with."""

    field: str
    applies: Callable[[CollectionEvent, bool], bool]  # (event, is the recipient a third party?)
    values: Callable[[CollectionEvent], tuple[CollectionEvent, ...]]
    presumed: bool = False  # probed only when the input hints at it


def _third(ev: CollectionEvent, third: bool) -> bool:
    return third


PROBES: tuple[Probe, ...] = (
    Probe("time", lambda ev, t: ev.channel != "letter", _times),
    Probe("history.borrower_unreachable", _third, _values("history.borrower_unreachable", False, True)),
    Probe("purpose", _third, _values("purpose", "collect", "locate")),
    Probe("recipient.source", lambda ev, t: t and ev.recipient.role not in ("contact_list_entry", "public"),
          _values("recipient.source", "contact_list", "borrower_designated")),
    Probe("consent.contact_list", lambda ev, t: t, _values("consent.contact_list", "none", "separate")),
    Probe("consent.third_party_contact", _third, _values("consent.third_party_contact", "none", "separate")),
    Probe("collector.visitors", lambda ev, t: ev.channel == "visit", _values("collector.visitors", 1, 2)),
    Probe("collector.outsourcing_notified", lambda ev, t: ev.collector.kind == "agency",
          _values("collector.outsourcing_notified", False, True)),
    Probe("collector.processing_contract", lambda ev, t: ev.collector.kind == "agency",
          _values("collector.processing_contract", False, True)),
    Probe("debt.lender_type", lambda ev, t: ev.debt.annual_rate is not None,
          _values("debt.lender_type", "licensed_institution", "unlicensed")),
    Probe("recipient.no_contact_requested", _third, _values("recipient.no_contact_requested", False, True),
          presumed=True),
    Probe("consent.agreed_hours", lambda ev, t: True, _hours, presumed=True),
    Probe("consent.withdrawn", lambda ev, t: t,
          _values("consent.withdrawn", (), ("contact_list", "third_party_contact")), presumed=True),
    Probe("history.attempts_today_same_method", lambda ev, t: ev.channel == "call" and not t,
          _values("history.attempts_today_same_method", 0, 6), presumed=True),
)
