"""Fact extraction from a free-text complaint (zh Simplified or Traditional, or English).

Pure and deterministic: regular expressions over a normalised text, no model, no I/O::

    from collectguard.rules.extract import extract
    x = extract("我网贷逾期了，他们给我通讯录里的人发短信说我欠钱不还", as_of=date(2026, 4, 7))
    x.cases[0].facts   # a collection event (DESIGN §5) as a dict
    x.cases[0].stated  # the dotted fields the text actually said

Each distinct contact (recipient x channel) becomes one case. ``stated`` lets the assessment tell
a fact that was said from a default filled in to make a valid event: only stated facts are
taken as known; the others are probed (``domain/assessment.py``). Modules: ``normalise``,
``numerals``, ``times``, ``counts``, ``parties``, ``speech``, ``channels``, ``consent``,
``lending``, ``cases``, ``form`` (the self-check questionnaire), ``probes`` (the facts a
description may leave open, for the assessment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from collectguard.rules.extract.cases import Draft, Reading, read_clauses, split_quotes
from collectguard.rules.extract.lending import Lending, find_lending
from collectguard.rules.extract.normalise import has_cjk, normalise, split_clauses

__all__ = ["OFFSETS", "ExtractedCase", "Extraction", "Lending", "event_time", "extract"]

#: UTC offsets used to write an event's time; only the wall-clock time matters to the rules.
OFFSETS = {"CN": "+08:00", "US": "-05:00", "EU": "+01:00"}
#: Placeholder time of day for a contact whose time was not said (never "stated").
UNKNOWN_TIME = 10 * 60
_DEBTOR_ROLES = frozenset({"borrower", "guarantor"})
_US = re.compile(r"\$|\busd\b|fdcpa|cfpb|debt collector|attorney general|regulation f|\bu\.?s\.?a?\b")
_EU = re.compile(r"€|\beur\b|gdpr|data protection authority|\beu\b|europe")


@dataclass(frozen=True)
class ExtractedCase:
    """One contact: the event (DESIGN §5, as a dict), the fields stated, hinted, and the clauses read."""

    facts: dict[str, Any]
    stated: frozenset[str]
    hints: frozenset[str]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Extraction:
    """What a description says: contacts, the loan, and how the jurisdiction was chosen."""

    jurisdiction: str
    jurisdiction_source: str  # "given" | "text" | "assumed"
    language: str  # "zh" | "en"
    cases: tuple[ExtractedCase, ...]
    lending: Lending | None
    text: str  # the normalised description


def event_time(as_of: date, minutes: int, jurisdiction: str) -> str:
    """ISO-8601 time with offset for ``minutes`` after midnight on ``as_of``."""
    offset = OFFSETS.get(jurisdiction, "+00:00")
    return f"{as_of.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}:00{offset}"


def _jurisdiction(original: str, text: str, given: str | None) -> tuple[str, str]:
    if given:
        return given, "given"
    if has_cjk(original):
        return "CN", "text"
    if _US.search(text):
        return "US", "text"
    if _EU.search(text):
        return "EU", "text"
    return "CN", "assumed"


def _statement(reading: Reading, name: str) -> Any:
    """The last non-empty value of one statement field across the clauses."""
    value = None
    for st in reading.statements:
        v = getattr(st, name)
        if v:
            value = v
    return value


def _case(d: Draft, reading: Reading, lending: Lending | None, juris: str, as_of: date) -> ExtractedCase:
    stated = {"jurisdiction", "recipient.role"}
    minutes = UNKNOWN_TIME if d.time is None else d.time.minutes
    ev: dict[str, Any] = {"jurisdiction": juris, "channel": d.channel or "call",
                          "time": event_time(as_of, minutes, juris), "recipient": {"role": d.role}}

    def put(path: str, value: Any) -> None:
        head, _, tail = path.partition(".")
        if tail:
            ev.setdefault(head, {})[tail] = value
        else:
            ev[head] = value
        stated.add(path)

    stated |= {"channel"} if d.channel else set()
    stated |= {"time"} if d.time is not None else set()
    if d.purpose:
        put("purpose", d.purpose)
    if d.source:
        put("recipient.source", d.source)
    # A call or a visit reaches one person at a time; only written channels reach many at once.
    if d.count > 1 and ev["channel"] not in ("call", "visit"):
        put("recipient.count", d.count)
    if d.role in reading.refused_roles:
        put("recipient.no_contact_requested", True)
    if d.messages:
        ev["message"] = " / ".join(d.messages)
    if d.discloses:
        ev["discloses"] = sorted(d.discloses)
    if d.conduct:
        ev["conduct"] = sorted(d.conduct)
    for name, field in (("contact_list_consent", "contact_list"),
                        ("third_party_consent", "third_party_contact")):
        value = _statement(reading, name)
        if value:
            put(f"consent.{field}", value)
    if _statement(reading, "withdrawn"):
        put("consent.withdrawn", ["contact_list", "third_party_contact"])
    if _statement(reading, "agreed_hours_none"):
        stated.add("consent.agreed_hours")
    # The event is the last contact of the day: n contacts said means n - 1 before it.
    for count, field in ((d.attempts, "attempts_today_same_method"), (d.connected, "connected_calls_today"),
                         (d.texts, "messages_today")):
        if count is not None and count >= 1:
            put(f"history.{field}", count - 1)
    reached = reading.borrower_reached or _statement(reading, "reachable") is True
    if reached or any(st.reachable is False for st in reading.statements):
        put("history.borrower_unreachable", not reached)
    if _statement(reading, "agency"):
        put("collector.kind", "agency")
    if ev["channel"] == "visit" and d.visitors is not None:
        put("collector.visitors", d.visitors)
    if lending is not None and lending.apr is not None:
        put("debt.annual_rate", str(Decimal(str(lending.apr))))
    if lending is not None and lending.lender_type:
        put("debt.lender_type", lending.lender_type)
    status = _statement(reading, "debt_status")
    if status:
        put("debt.status", status)
    hints = set(d.hints)
    if d.role not in _DEBTOR_ROLES:
        hints.discard("history.attempts_today_same_method")
    return ExtractedCase(ev, frozenset(stated), frozenset(hints), tuple(d.evidence))


def extract(text: str, *, as_of: date, jurisdiction: str | None = None) -> Extraction:
    """Read a free-text description into contacts (one per recipient and channel) and loan facts.

    ``as_of`` dates the contacts (a description rarely gives a date, and the rules in force
    depend on it); ``jurisdiction`` (CN, US, EU) defaults to CN for Chinese text.
    """
    norm = normalise(text)
    juris, source = _jurisdiction(text, norm, jurisdiction)
    guarded, quotes = split_quotes(norm)
    reading = read_clauses(split_clauses(guarded), quotes)
    lending = find_lending(norm, as_of=as_of)
    cases = tuple(_case(d, reading, lending, juris, as_of) for d in reading.drafts)
    return Extraction(juris, source, "zh" if has_cjk(text) else "en", cases, lending, norm)
