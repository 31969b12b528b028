"""Properties of the guard (hypothesis): total, deterministic, monotone, wall-clock based."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from collectguard.domain.event import Decision, parse_event
from collectguard.rules import Guard
from collectguard.rules.engine import evaluate_json

GUARD = Guard.default()
CN = GUARD.packs["CN"]
SETTINGS = settings(max_examples=150, deadline=None)

ROLES = [
    "borrower",
    "guarantor",
    "spouse",
    "emergency_contact",
    "relative",
    "colleague",
    "employer",
    "contact_list_entry",
    "public",
    "other_third_party",
]
CHANNELS = ["call", "sms", "email", "im", "app_push", "visit", "letter", "public_post"]
PURPOSES = ["collect", "locate", "relay_message", "reminder", "validation_notice"]
CONDUCT = [
    "threat",
    "insult",
    "violence",
    "impersonate_authority",
    "false_legal_claim",
    "fake_documents",
    "stalking",
    "restrict_liberty",
    "enter_home",
    "extra_fees",
    "induce_borrowing",
]
DISCLOSES = ["debt_existence", "debt_amount", "overdue_dates", "personal_info"]
MESSAGES = [
    None,
    "您好，您的借款本期应还860元已逾期2天，请通过App还款。",
    "再不還錢就讓你坐牢",
    "请转告张三联系我们。",
    "爆你通-讯-录",
    "这里是法院，你明天就会被拘留。",
    "Please call us back.",
    "You owe $500.",
]

hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))


def _window(a: str, b: str) -> str | None:
    return None if a == b else f"{a}-{b}"


offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.builds(
    lambda d, off: d.replace(tzinfo=off).isoformat(),
    st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31)),
    offsets,
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Random well-formed CN events, covering every field the CN rules read."""
    e: dict[str, Any] = {
        "jurisdiction": "CN",
        "channel": draw(st.sampled_from(CHANNELS)),
        "time": draw(times),
        "purpose": draw(st.sampled_from(PURPOSES)),
        "recipient": {
            "role": draw(st.sampled_from(ROLES)),
            "count": draw(st.integers(1, 5)),
            "no_contact_requested": draw(st.booleans()),
        },
        "conduct": draw(st.lists(st.sampled_from(CONDUCT), unique=True, max_size=3)),
        "discloses": draw(st.lists(st.sampled_from(DISCLOSES), unique=True, max_size=2)),
    }
    source = draw(st.sampled_from([None, "borrower_designated", "contact_list", "public_record", "purchased"]))
    if source:
        e["recipient"]["source"] = source
    message = draw(st.sampled_from(MESSAGES))
    if message:
        e["message"] = message
    if draw(st.booleans()):
        e["history"] = {
            "connected_calls_today": draw(st.integers(0, 6)),
            "attempts_today_same_method": draw(st.integers(0, 9)),
            "borrower_unreachable": draw(st.booleans()),
            "prior_contacts_with_recipient": draw(st.integers(0, 3)),
        }
    if draw(st.booleans()):
        consent: dict[str, Any] = {
            "contact_list": draw(st.sampled_from(["none", "bundled", "separate"])),
            "withdrawn": draw(
                st.lists(
                    st.sampled_from(["contact_list", "third_party_contact", "agreed_hours"]),
                    unique=True,
                    max_size=3,
                )
            ),
        }
        window = _window(draw(hhmm), draw(hhmm))
        if window:
            consent["agreed_hours"] = window
        e["consent"] = consent
    if draw(st.booleans()):
        e["collector"] = {
            "kind": draw(st.sampled_from(["lender", "agency"])),
            "outsourcing_notified": draw(st.booleans()),
            "processing_contract": draw(st.booleans()),
            "visitors": draw(st.integers(0, 3)),
        }
    if draw(st.booleans()):
        debt: dict[str, Any] = {"status": draw(st.sampled_from(["valid", "disputed", "paid", "illegal"]))}
        if draw(st.booleans()):
            debt["lender_type"] = draw(
                st.sampled_from(["licensed_institution", "small_loan_company", "private", "unlicensed"])
            )
            debt["annual_rate"] = draw(st.decimals(0, 80, places=2))
            debt["lpr_at_signing"] = draw(st.sampled_from(["3.45", "3.85", "4.35"]))
        e["debt"] = debt
    return e


def check(e: dict[str, Any]) -> Decision:
    return GUARD.check(parse_event(json.loads(json.dumps(e, default=str))))


def rules(d: Decision) -> set[str]:
    return {v.rule for v in d.violations}


@SETTINGS
@given(events())
def test_total_and_consistent(e: dict[str, Any]) -> None:
    d = check(e)
    assert d.verdict in ("allow", "deny")
    assert (d.verdict == "deny") == bool(d.violations)
    assert "engine.error" not in rules(d)
    for v in (*d.violations, *d.warnings):
        assert v.message_zh and v.message_en
    for h in d.lint:
        assert e["message"][h.span[0] : h.span[1]] == h.text


@SETTINGS
@given(events())
def test_deterministic_and_fast_path_identical(e: dict[str, Any]) -> None:
    ev = parse_event(json.loads(json.dumps(e, default=str)))
    first = GUARD.check(ev)
    assert GUARD.check(ev) == first
    assert evaluate_json(ev, CN) == first.model_dump_json()


@SETTINGS
@given(events())
def test_skipping_rules_for_absent_features_changes_nothing(e: dict[str, Any]) -> None:
    # The engine leaves out rules that cannot fire without a feature the event lacks; judging
    # with every rule selected must give the same decision.
    ev = parse_event(json.loads(json.dumps(e, default=str)))
    assert CN.evaluate(ev) == CN.evaluate(ev, prune=False)


def _worse(e: dict[str, Any], how: str, k: int) -> dict[str, Any]:
    """``e`` with one more violating fact."""
    w = copy.deepcopy(e)
    hist = w.setdefault("history", {})
    if how == "connected":
        hist["connected_calls_today"] = hist.get("connected_calls_today", 0) + k
    elif how == "attempts":
        hist["attempts_today_same_method"] = hist.get("attempts_today_same_method", 0) + k
    elif how == "prior":
        hist["prior_contacts_with_recipient"] = hist.get("prior_contacts_with_recipient", 0) + k
    elif how == "conduct":
        w["conduct"] = sorted(set(w["conduct"]) | {CONDUCT[k % len(CONDUCT)]})
    elif how == "discloses":
        w["discloses"] = sorted(set(w["discloses"]) | {DISCLOSES[k % len(DISCLOSES)]})
    elif how == "refused":
        w["recipient"]["no_contact_requested"] = True
    elif how == "count":
        w["recipient"]["count"] += k
    elif how == "withdraw":
        # Withdrawing agreed hours is left out on purpose: it restores the default window, which
        # may allow what the agreed window did not (a noon call under an agreed 21:00-07:00).
        consent = w.setdefault("consent", {})
        kind = ["contact_list", "third_party_contact"][k % 2]
        consent["withdrawn"] = sorted(set(consent.get("withdrawn", [])) | {kind})
    elif how == "night":
        w.get("consent", {}).pop("agreed_hours", None)  # into the default quiet hours
        t = datetime.fromisoformat(w["time"])
        w["time"] = t.replace(hour=22 + k % 2, minute=k % 60).isoformat()
    elif how == "illegal" and w.get("debt", {}).get("status", "valid") == "valid":
        w["debt"] = {**w.get("debt", {}), "status": "illegal"}  # a valid debt found to be illegal
    return w


@SETTINGS
@given(
    events(),
    st.sampled_from(
        [
            "connected",
            "attempts",
            "prior",
            "conduct",
            "discloses",
            "refused",
            "count",
            "withdraw",
            "night",
            "illegal",
        ]
    ),
    st.integers(1, 40),
)
def test_adding_a_violating_fact_never_helps(e: dict[str, Any], how: str, k: int) -> None:
    before, after = check(e), check(_worse(e, how, k))
    assert rules(before) <= rules(after), (how, rules(before) - rules(after))
    if before.verdict == "deny":
        assert after.verdict == "deny"


def _ev_at(wall: datetime, tz: Any, **extra: Any) -> dict[str, Any]:
    return {
        "jurisdiction": "CN",
        "channel": "call",
        "time": wall.replace(tzinfo=tz).isoformat(),
        "recipient": {"role": "borrower"},
        **extra,
    }


@SETTINGS
@given(st.datetimes(min_value=datetime(2026, 2, 1), max_value=datetime(2027, 12, 31)), offsets, offsets)
def test_only_the_recipient_wall_clock_counts(wall: datetime, a: timezone, b: timezone) -> None:
    # The same wall-clock time with any offset is judged the same: the offset is not converted.
    assert check(_ev_at(wall, a)) == check(_ev_at(wall, b))


@SETTINGS
@given(
    st.datetimes(min_value=datetime(2026, 2, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(["America/New_York", "Europe/London", "Asia/Shanghai", "Australia/Sydney"]),
)
def test_same_instant_in_different_zones_is_judged_by_each_local_clock(instant: datetime, zone: str) -> None:
    # One instant, expressed in a zone with DST: the verdict follows that zone's wall clock.
    local = instant.astimezone(ZoneInfo(zone))
    d = check(
        {
            "jurisdiction": "CN",
            "channel": "call",
            "time": local.isoformat(),
            "recipient": {"role": "borrower"},
        }
    )
    night = local.hour >= 22 or local.hour < 8
    assert ("cn.quiet_hours" in rules(d)) == night


@SETTINGS
@given(st.times())
def test_quiet_hours_edges(t: Any) -> None:
    wall = datetime(2026, 4, 7, t.hour, t.minute, t.second, t.microsecond)
    d = check(_ev_at(wall, timezone(timedelta(hours=8))))
    assert ("cn.quiet_hours" in rules(d)) == (t.hour >= 22 or t.hour < 8)


@SETTINGS
@given(hhmm, hhmm, st.integers(0, 23), st.integers(0, 59))
def test_agreed_window_is_the_only_window(a: str, b: str, hour: int, minute: int) -> None:
    window = _window(a, b)
    if window is None:
        return
    t = hour * 60 + minute
    start = int(a[:2]) * 60 + int(a[3:])
    end = int(b[:2]) * 60 + int(b[3:])
    inside = start <= t < end if start < end else (t >= start or t < end)
    d = check(
        _ev_at(datetime(2026, 4, 7, hour, minute), timezone(timedelta(hours=8)), consent={"agreed_hours": window})
    )
    assert ("cn.quiet_hours" in rules(d)) == (not inside)
