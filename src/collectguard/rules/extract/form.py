"""The self-check questionnaire as facts, and how it combines with the free-text description.

The questionnaire asks who was contacted and how (each pair becomes a contact), and facts that
hold for every contact (when, how often, what was said, consent, reachability, visits). An
answer left at "not sure" is not stated, so the assessment probes it. Answers are strings from
an HTML form: anything outside the known values is ignored, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from collectguard.rules.extract import ExtractedCase, event_time

__all__ = ["FORM_CHANNELS", "FORM_CONDUCT", "FORM_ROLES", "Overlay", "apply_overlay", "form_cases"]

FORM_ROLES = ("borrower", "contact_list_entry", "emergency_contact", "relative", "spouse", "colleague",
              "employer", "other_third_party", "public")
FORM_CHANNELS = ("call", "sms", "im", "visit", "letter", "public_post")
FORM_CONDUCT = ("debt_existence", "debt_amount", "insult", "threat", "impersonate_authority",
                "false_legal_claim", "fake_documents", "violence", "stalking", "extra_fees",
                "restrict_liberty", "enter_home")
_DISCLOSURES = ("debt_existence", "debt_amount")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_TIME_OF_DAY = {"day": 15 * 60, "night": 23 * 60, "early": 6 * 60}


@dataclass(frozen=True)
class Overlay:
    """Questionnaire facts that hold for every contact, and the fields they state."""

    facts: dict[str, Any]
    stated: frozenset[str]
    minutes: int | None


def _many(answers: Mapping[str, Any], key: str, allowed: Sequence[str]) -> list[str]:
    raw = answers.get(key) or []
    values = [raw] if isinstance(raw, str) else list(raw)
    return [v for v in allowed if v in values]


def _int(answers: Mapping[str, Any], key: str, low: int = 0, high: int = 1000) -> int | None:
    raw = str(answers.get(key) or "").strip()
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else None


def _choice(answers: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str | None:
    raw = str(answers.get(key) or "")
    return raw if raw in allowed else None


def _set(facts: dict[str, Any], stated: set[str], path: str, value: Any) -> None:
    head, _, tail = path.partition(".")
    if tail:
        facts.setdefault(head, {})[tail] = value
    else:
        facts[head] = value
    stated.add(path)


def _overlay(answers: Mapping[str, Any]) -> Overlay:
    facts: dict[str, Any] = {}
    stated: set[str] = set()
    minutes = None
    m = _HHMM.match(str(answers.get("time") or "").strip())
    if m:
        minutes = int(m.group(1)) * 60 + int(m.group(2))
    elif str(answers.get("time_of_day") or "") in _TIME_OF_DAY:
        minutes = _TIME_OF_DAY[str(answers["time_of_day"])]
    calls, connected = _int(answers, "calls_per_day", 1), _int(answers, "connected_per_day", 1)
    if calls is not None:
        _set(facts, stated, "history.attempts_today_same_method", calls - 1)
    if connected is not None:
        _set(facts, stated, "history.connected_calls_today", connected - 1)
    said = _many(answers, "said", FORM_CONDUCT)
    if [s for s in said if s in _DISCLOSURES]:
        _set(facts, stated, "discloses", [s for s in said if s in _DISCLOSURES])
    if [s for s in said if s not in _DISCLOSURES]:
        _set(facts, stated, "conduct", [s for s in said if s not in _DISCLOSURES])
    for key, path in (("unreachable", "history.borrower_unreachable"),
                      ("refused", "recipient.no_contact_requested")):
        yes_no = _choice(answers, key, ("yes", "no"))
        if yes_no:
            _set(facts, stated, path, yes_no == "yes")
    for key, path, allowed in (
        ("purpose", "purpose", ("collect", "locate", "relay_message", "reminder")),
        ("source", "recipient.source", ("borrower_designated", "contact_list", "public_record", "purchased")),
        ("consent_contact_list", "consent.contact_list", ("none", "bundled", "separate")),
        ("consent_third_party", "consent.third_party_contact", ("none", "bundled", "separate")),
    ):
        value = _choice(answers, key, allowed)
        if value:
            _set(facts, stated, path, value)
    if _choice(answers, "agreed_hours", ("no",)):
        stated.add("consent.agreed_hours")
    agency = _choice(answers, "agency", ("yes", "no"))
    if agency:
        _set(facts, stated, "collector.kind", "agency" if agency == "yes" else "lender")
    visitors = _int(answers, "visitors", 1, 50)
    if visitors is not None:
        _set(facts, stated, "collector.visitors", visitors)
    return Overlay(facts, frozenset(stated), minutes)


def apply_overlay(case: ExtractedCase, overlay: Overlay, *, as_of: date) -> ExtractedCase:
    """``case`` with the questionnaire's facts laid over it (the questionnaire wins; lists are joined)."""
    facts = {k: dict(v) if isinstance(v, dict) else v for k, v in case.facts.items()}
    third = facts["recipient"]["role"] not in ("borrower", "guarantor")
    stated = set(case.stated)
    for path in overlay.stated:
        if path in ("recipient.no_contact_requested", "recipient.source", "purpose") and not third:
            continue  # about the third parties in the questionnaire; meaningless for the borrower
        if path == "collector.visitors" and facts["channel"] != "visit":
            continue
        head, _, tail = path.partition(".")
        if path == "consent.agreed_hours":
            stated.add(path)
            continue
        value = overlay.facts[head][tail] if tail else overlay.facts[head]
        if head in ("discloses", "conduct"):
            value = sorted(set(facts.get(head, [])) | set(value))
        if tail:
            facts.setdefault(head, {})[tail] = value
        else:
            facts[head] = value
        stated.add(path)
    if overlay.minutes is not None:
        facts["time"] = event_time(as_of, overlay.minutes, str(facts["jurisdiction"]))
        stated.add("time")
    return ExtractedCase(facts, frozenset(stated), case.hints, case.evidence)


def form_cases(answers: Mapping[str, Any], *, as_of: date, jurisdiction: str,
               text_cases: Sequence[ExtractedCase] = ()) -> list[ExtractedCase]:
    """Contacts from the questionnaire combined with those read from the description.

    Each (who, how) pair ticked is a contact; a contact the description also names is one contact
    with both sets of facts. The questionnaire's other answers apply to every contact.
    """
    overlay = _overlay(answers)
    roles = _many(answers, "who", FORM_ROLES)
    channels = _many(answers, "how", FORM_CHANNELS)
    cases = list(text_cases)
    for role in roles:
        role_channels: list[str | None] = (
            ["public_post"] if role == "public" else [c for c in channels if c != "public_post"])
        for channel in role_channels or [None]:
            if any(c.facts["recipient"]["role"] == role and (channel is None or c.facts["channel"] == channel)
                   for c in cases):
                continue
            ev: dict[str, Any] = {"jurisdiction": jurisdiction, "channel": channel or "call",
                                  "time": event_time(as_of, 10 * 60, jurisdiction),
                                  "recipient": {"role": role}}
            stated = {"jurisdiction", "recipient.role"} | ({"channel"} if channel else set())
            if role == "contact_list_entry":
                many = 2 if channel not in ("call", "visit") else 1
                ev["recipient"].update(source="contact_list", count=many)
                stated.add("recipient.source")
            if role == "emergency_contact":
                ev["recipient"]["source"] = "borrower_designated"
                stated.add("recipient.source")
            cases.append(ExtractedCase(ev, frozenset(stated), frozenset(), ()))
    if not roles and not cases and (channels or overlay.stated or overlay.minutes is not None):
        # Facts about a contact but nobody named: the questionnaire is filled in by the borrower.
        ev = {"jurisdiction": jurisdiction, "channel": channels[0] if channels else "call",
              "time": event_time(as_of, 10 * 60, jurisdiction), "recipient": {"role": "borrower"}}
        cases.append(ExtractedCase(ev, frozenset({"jurisdiction"} | ({"channel"} if channels else set())),
                                   frozenset(), ()))
    return [apply_overlay(c, overlay, as_of=as_of) for c in cases]
