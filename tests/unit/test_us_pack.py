"""The US pack (Regulation F / FDCPA) and the kinds it adds: edges, citations, properties."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collectguard.domain.event import Decision, parse_event
from collectguard.policy import loader
from collectguard.policy.loader import PackError, PackSpec
from collectguard.rules import Guard, compile_pack
from collectguard.rules.engine import evaluate_json
from collectguard.rules.kinds import KINDS

EXAMPLES = Path("/work/shared/examples/events.jsonl")
GUARD = Guard.default()
US = GUARD.packs["US"]
SETTINGS = settings(max_examples=200, deadline=None)

# Every citation id the pack may use: the ids the catalogue (§1d, the US appendix, cases 13–20)
# gives, in DESIGN §5 form. A citation outside this list is an invented one.
CATALOGUE_IDS = {
    "US:REGF:1006.6(b)(1)(i)",
    "US:REGF:1006.6(b)(2)",
    "US:REGF:1006.6(c)(1)",
    "US:REGF:1006.6(d)",
    "US:REGF:1006.6(e)",
    "US:REGF:1006.10",
    "US:REGF:1006.14(a)",
    "US:REGF:1006.14(b)(2)(i)(A)",
    "US:REGF:1006.14(b)(2)(i)(B)",
    "US:REGF:1006.14(b)(2)(ii)",
    "US:REGF:1006.18",
    "US:REGF:1006.18(b)(3)",
    "US:REGF:1006.18(e)",
    "US:REGF:1006.34(a)(1)(i)(B)",
    "US:REGF:1006.34(a)(2)",
    "US:FDCPA:1692b",
    "US:FDCPA:1692b(2)",
    "US:FDCPA:1692b(3)",
    "US:FDCPA:1692c(a)(2)",
    "US:FDCPA:1692c(a)(3)",
    "US:FDCPA:1692c(b)",
    "US:FDCPA:1692c(c)",
    "US:FDCPA:1692d",
    "US:FDCPA:1692e(11)",
}


def ev(**changes: Any) -> Any:
    base: dict[str, Any] = {
        "jurisdiction": "US",
        "channel": "call",
        "time": "2026-04-07T10:00:00-04:00",
        "recipient": {"role": "borrower"},
    }
    return parse_event({**base, **changes})


def rules_of(d: Decision) -> set[str]:
    return {v.rule for v in d.violations}


def warnings_of(d: Decision) -> set[str]:
    return {w.rule for w in d.warnings}


# ---------------------------------------------------------------- the pack as data


def test_pack_loads_with_version_and_consumer_roles() -> None:
    assert US.version == "2026.1" and US.name == "US" and "US" in loader.available_packs()
    assert {"borrower", "spouse"} <= US.debtor_roles
    assert "relative" not in US.debtor_roles and "employer" not in US.debtor_roles


def test_every_rule_is_sourced_and_cites_only_catalogue_ids() -> None:
    spec = loader.load_pack("US")
    for r in spec.rules:
        assert r.id.startswith("us.") and r.source and r.message_zh and r.message_en
        assert r.verification in ("Y", "Y2", "policy")
        ids = {c.id for c in r.citations}
        assert ids <= CATALOGUE_IDS, (r.id, ids - CATALOGUE_IDS)
        if r.effect == "deny" and r.verification != "policy":
            assert ids, r.id
        if r.verification == "policy":
            assert "not a statute" in r.message_en or "Platform policy" in r.message_en or r.effect == "warn", r.id


def test_unverified_rows_are_not_cited() -> None:
    cited = {c.id for r in loader.load_pack("US").rules for c in r.citations}
    # 1006.14(b)(3) exclusions and 1006.6(b)(3) as the workplace number are N in the catalogue.
    unverified = ("US:REGF:1006.14(b)(3)", "US:REGF:1006.6(b)(3)", "US:REGF:1006.6(b)(4)")
    assert not any(c.startswith(unverified) for c in cited)


def test_no_rule_depends_on_the_collector_kind() -> None:
    # DESIGN §6: the pack binds every collector, lender or agency alike.
    for r in loader.load_pack("US").rules:
        assert "collector.kind" not in r.applies_when, r.id


def test_shared_us_examples_agree() -> None:
    for line in EXAMPLES.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if case["event"]["jurisdiction"] != "US":
            continue
        d = GUARD.check(parse_event(case["event"]))
        assert d.verdict == case["expect"], case["id"]
        cites = {c for v in d.violations for c in v.citations}
        want = case["citations_include_any_of"]
        assert not want or any(c == w or c.startswith(w + "(") for c in cites for w in want), case["id"]


def test_there_are_at_least_40_us_scenarios() -> None:
    count = sum(len(doc["scenarios"]) for name, doc in loader.scenario_files() if name.startswith("us/"))
    assert count >= 40


def test_case18_recordings_are_kept_three_years_by_the_retention_policy() -> None:
    # Case 18 (1006.100(b)) is the retention job's: a recorded call of 2024-03-01 is kept until
    # at least 2027-03-01. Not a contact rule, so it is checked here against the retention data.
    text = resources.files("collectguard.policy").joinpath("retention.yaml").read_text(encoding="utf-8")
    periods = yaml.safe_load(text)["jurisdictions"]["US"]["periods"]
    recordings = [p for p in periods if "US:REGF:1006.100(b)" in p["citations"]]
    assert recordings and all(p["years"] >= 3 for p in recordings)


# ---------------------------------------------------------------- edges


@pytest.mark.parametrize(
    ("clock", "verdict"),
    [
        ("07:59:59", "deny"),
        ("08:00:00", "allow"),
        ("12:00:00", "allow"),
        ("20:59:59", "allow"),
        ("21:00:00", "allow"),
        ("21:00:01", "deny"),
        ("21:01:00", "deny"),
        ("23:59:59", "deny"),
        ("00:00:00", "deny"),
    ],
)
def test_inconvenient_time_edges(clock: str, verdict: str) -> None:
    for offset in ("-04:00", "-05:00", "-07:00", "-10:00"):
        d = GUARD.check(ev(time=f"2026-04-07T{clock}{offset}"))
        assert d.verdict == verdict, (clock, offset)
        assert (verdict == "deny") == ("us.inconvenient_time" in rules_of(d))


@pytest.mark.parametrize(("earlier", "verdict"), [(0, "allow"), (6, "allow"), (7, "deny"), (20, "deny")])
def test_seven_calls_in_seven_days(earlier: int, verdict: str) -> None:
    d = GUARD.check(ev(history={"calls_7d": earlier}))
    assert d.verdict == verdict
    if verdict == "deny":
        cites = {c for v in d.violations for c in v.citations}
        assert "US:REGF:1006.14(b)(2)(i)(A)" in cites


def test_seven_in_seven_counts_calls_only() -> None:
    for channel in ("sms", "email", "im", "letter"):
        d = GUARD.check(ev(channel=channel, history={"calls_7d": 9}, collector={"opt_out_included": True}))
        assert "us.calls_7_in_7" not in rules_of(d), channel


@pytest.mark.parametrize("day", range(1, 11))
def test_conversation_day_is_day_one(day: int) -> None:
    conversation = date(2026, 4, 6)
    when = conversation + timedelta(days=day - 1)
    d = GUARD.check(ev(time=f"{when.isoformat()}T10:00:00-04:00", history={"last_conversation_at": "2026-04-06"}))
    assert ("us.call_after_conversation" in rules_of(d)) == (day <= 7), day


def test_conversation_rule_reads_the_local_date_not_utc() -> None:
    # 2026-04-12 20:30 in Los Angeles is 2026-04-13 03:30 UTC: day 7 locally, so still refused.
    d = GUARD.check(ev(time="2026-04-12T20:30:00-07:00", history={"last_conversation_at": "2026-04-06"}))
    assert "us.call_after_conversation" in rules_of(d)


def test_validation_notice_warnings_by_day() -> None:
    for day in range(0, 9):
        when = date(2026, 4, 1) + timedelta(days=day)
        d = GUARD.check(ev(time=f"{when.isoformat()}T10:00:00-04:00", debt={"first_communication_at": "2026-04-01"}))
        assert d.verdict == "allow"
        assert ("us.validation_notice.due" in warnings_of(d)) == (day <= 5), day
        assert ("us.validation_notice.overdue" in warnings_of(d)) == (day > 5), day
    sent = GUARD.check(ev(debt={"first_communication_at": "2026-03-01", "validation_notice_sent": True}))
    paid = GUARD.check(ev(purpose="validation_notice", debt={"first_communication_at": "2026-03-01"}))
    assert not warnings_of(sent) and not warnings_of(paid)


def test_texts_warn_never_deny() -> None:
    for n in range(0, 30):
        d = GUARD.check(ev(channel="sms", history={"messages_today": n}, collector={"opt_out_included": True}))
        assert d.verdict == "allow"
        assert ("us.texts.harassment" in warnings_of(d)) == (n >= 3)


def test_disclosure_needed_only_when_the_message_is_about_a_debt() -> None:
    limited = GUARD.check(ev(message="Hi, this is Sam Jones for Maria. Please call me back at 555-0100."))
    about_debt = GUARD.check(ev(message="Hi Maria, your balance of $420 is past due."))
    disclosed = GUARD.check(ev(message="This is a debt collector. Your balance of $420 is past due."))
    assert limited.verdict == "allow" and disclosed.verdict == "allow"
    assert rules_of(about_debt) == {"us.collector_disclosure"}


def test_a_location_contact_must_not_say_debt_collector() -> None:
    locate = {"purpose": "locate", "recipient": {"role": "relative"}}
    clean = GUARD.check(ev(**locate, message="Hi, I'm Ann. I'm confirming location information for John."))
    said = GUARD.check(ev(**locate, message="Hi, I'm Ann, a debt collector looking for John."))
    assert clean.verdict == "allow"
    assert "us.location.collector_identity" in rules_of(said)


@pytest.mark.parametrize("role", ["relative", "colleague", "employer", "emergency_contact", "other_third_party"])
@pytest.mark.parametrize("purpose", ["collect", "relay_message", "reminder", "validation_notice"])
def test_third_parties_only_for_location(role: str, purpose: str) -> None:
    d = GUARD.check(ev(purpose=purpose, recipient={"role": role}))
    assert "us.third_party.purpose" in rules_of(d)


def test_before_regulation_f_the_pack_refuses_to_judge() -> None:
    d = GUARD.check(ev(time="2021-11-29T10:00:00-05:00"))
    assert rules_of(d) == {"us.before_regf"}
    assert GUARD.check(ev(time="2021-11-30T10:00:00-05:00")).verdict == "allow"


# ---------------------------------------------------------------- the kinds (kinds_intl.py)


def _pack(*rules: dict[str, Any]) -> PackSpec:
    base = {"pack": "US", "version": "t", "jurisdiction": "US", "debtor_roles": ["borrower"]}
    full = [
        {
            "id": f"us.t{i}",
            "citations": ["US:REGF:1006.10"],
            "verification": "Y",
            "source": "test",
            "message_zh": "测试",
            "message_en": "test",
            **r,
        }
        for i, r in enumerate(rules)
    ]
    return PackSpec.model_validate({**base, "rules": full})


def test_intl_kinds_are_registered() -> None:
    assert {"within_days", "days_elapsed", "message_phrases"} <= set(KINDS)


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"kind": "within_days", "params": {"fact": "history.calls_7d", "days": 7}}, "not a date fact"),
        ({"kind": "within_days", "params": {"fact": "time", "days": 7}}, "not a date fact"),
        ({"kind": "within_days", "params": {"fact": "history.nope", "days": 7}}, "unknown fact"),
        ({"kind": "within_days", "params": {"fact": "history.last_conversation_at", "days": 0}}, "bad value"),
        ({"kind": "days_elapsed", "params": {"fact": "debt.first_communication_at", "more_than": -1}}, "bad value"),
        ({"kind": "days_elapsed", "params": {"fact": "debt.first_communication_at"}}, "missing param"),
        ({"kind": "message_phrases", "params": {"mode": "has", "phrases": ["x"]}}, "mode"),
        ({"kind": "message_phrases", "params": {"mode": "lacks", "phrases": []}}, "non-empty"),
        (
            {"kind": "message_phrases", "params": {"mode": "lacks", "phrases": ["x"], "only_if_regex": ["("]}},
            "bad regex",
        ),
        ({"kind": "message_phrases", "params": {"mode": "lacks", "phrases": ["x"], "typo": 1}}, "unknown params"),
    ],
)
def test_intl_kinds_refuse_bad_params(rule: dict[str, Any], error: str) -> None:
    with pytest.raises(PackError, match=error):
        compile_pack(_pack(rule))


def test_within_days_follows_a_dated_threshold() -> None:
    compiled = compile_pack(
        _pack(
            {
                "kind": "within_days",
                "params": {
                    "fact": "history.last_conversation_at",
                    "days": [
                        {"value": 7, "effective_from": date(2026, 1, 1)},
                        {"value": 3, "effective_from": date(2026, 6, 1)},
                    ],
                },
            }
        )
    )
    day5_before = ev(time="2026-04-10T10:00:00-04:00", history={"last_conversation_at": "2026-04-06"})
    day5_after = ev(time="2026-06-10T10:00:00-04:00", history={"last_conversation_at": "2026-06-06"})
    not_yet = ev(time="2025-04-10T10:00:00-04:00", history={"last_conversation_at": "2025-04-06"})
    assert compiled.evaluate(day5_before).verdict == "deny"
    assert compiled.evaluate(day5_after).verdict == "allow"
    assert compiled.evaluate(not_yet).verdict == "allow"


def test_message_phrases_match_words_not_fragments() -> None:
    compiled = compile_pack(_pack({"kind": "message_phrases", "params": {"mode": "contains", "phrases": ["owe"]}}))
    assert compiled.evaluate(ev(message="You OWE us.")).verdict == "deny"
    assert compiled.evaluate(ev(message="Power outage, call back.")).verdict == "allow"
    assert compiled.evaluate(ev()).verdict == "allow"  # no message: nothing to judge


# ---------------------------------------------------------------- properties

ROLES = ["borrower", "guarantor", "spouse", "emergency_contact", "relative", "colleague", "employer",
         "contact_list_entry", "public", "other_third_party"]
CHANNELS = ["call", "sms", "email", "im", "app_push", "visit", "letter", "public_post"]
PURPOSES = ["collect", "locate", "relay_message", "reminder", "validation_notice"]
CONDUCT = ["threat", "insult", "violence", "impersonate_authority", "false_legal_claim", "fake_documents",
           "stalking", "restrict_liberty", "enter_home", "extra_fees", "induce_borrowing"]
MESSAGES = [None, "Please call me back at 555-0100.", "This is a debt collector. Your balance is $420.",
            "You owe $500. We'll have you arrested.", "Hi, I'm confirming location information for John.",
            "Reminder: your loan payment is due.", "We are with the government."]
offsets = st.sampled_from([-4 * 60, -5 * 60, -6 * 60, -7 * 60, -10 * 60]).map(
    lambda m: timezone(timedelta(minutes=m))
)
times = st.builds(
    lambda d, off: d.replace(tzinfo=off).isoformat(),
    st.datetimes(min_value=datetime(2021, 6, 1), max_value=datetime(2027, 12, 31)),
    offsets,
)
days = st.dates(min_value=date(2021, 6, 1), max_value=date(2027, 12, 31)).map(date.isoformat)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Random well-formed US events covering every field the US rules read."""
    e: dict[str, Any] = {
        "jurisdiction": "US",
        "channel": draw(st.sampled_from(CHANNELS)),
        "time": draw(times),
        "purpose": draw(st.sampled_from(PURPOSES)),
        "recipient": {
            "role": draw(st.sampled_from(ROLES)),
            "count": draw(st.integers(1, 3)),
            "no_contact_requested": draw(st.booleans()),
            "represented_by_attorney": draw(st.booleans()),
            "employer_prohibits": draw(st.booleans()),
        },
        "conduct": draw(st.lists(st.sampled_from(CONDUCT), unique=True, max_size=2)),
    }
    message = draw(st.sampled_from(MESSAGES))
    if message:
        e["message"] = message
    if draw(st.booleans()):
        e["history"] = {
            "calls_7d": draw(st.integers(0, 9)),
            "messages_today": draw(st.integers(0, 5)),
            "prior_contacts_with_recipient": draw(st.integers(0, 2)),
        }
        if draw(st.booleans()):
            e["history"]["last_conversation_at"] = draw(days)
    if draw(st.booleans()):
        e["collector"] = {"kind": draw(st.sampled_from(["lender", "agency"])), "opt_out_included": draw(st.booleans())}
    if draw(st.booleans()):
        e["debt"] = {
            "status": draw(st.sampled_from(["valid", "disputed", "paid", "illegal"])),
            "validation_notice_sent": draw(st.booleans()),
        }
        if draw(st.booleans()):
            e["debt"]["first_communication_at"] = draw(days)
    if draw(st.booleans()):
        e["consent"] = {"agreed_hours": draw(st.sampled_from(["09:00-17:00", "18:00-20:00", "21:00-07:00"]))}
    return e


@SETTINGS
@given(events())
def test_total_deterministic_and_prune_safe(e: dict[str, Any]) -> None:
    event = parse_event(e)
    d = GUARD.check(event)
    assert (d.verdict == "deny") == bool(d.violations)
    assert "engine.error" not in rules_of(d)
    assert US.evaluate(event) == US.evaluate(event, prune=False)
    assert evaluate_json(event, US) == d.model_dump_json()


@SETTINGS
@given(events())
def test_lender_and_agency_are_judged_alike(e: dict[str, Any]) -> None:
    lender = {**e, "collector": {**e.get("collector", {}), "kind": "lender"}}
    agency = {**e, "collector": {**e.get("collector", {}), "kind": "agency"}}
    assert GUARD.check(parse_event(lender)).violations == GUARD.check(parse_event(agency)).violations
