"""The EU pack (GDPR): lawful basis per role, third parties, objections, and what it leaves out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectguard.domain.event import Decision, parse_event
from collectguard.policy import loader
from collectguard.rules import Guard
from collectguard.rules.engine import evaluate_json

GUARD = Guard.default()
EU = GUARD.packs["EU"]
SETTINGS = settings(max_examples=200, deadline=None)

# The GDPR provisions the catalogue (§1f, cases 21 and 22) supports, in DESIGN §5 form.
CATALOGUE_IDS = {
    "EU:GDPR:6(1)(b)",
    "EU:GDPR:6(1)(f)",
    "EU:GDPR:7(3)",
    "EU:GDPR:14(3)(b)",
    "EU:GDPR:21(1)",
    "EU:GDPR:21(4)",
}
THIRD_PARTIES = ["guarantor", "spouse", "emergency_contact", "relative", "colleague", "employer", "other_third_party"]


def ev(**changes: Any) -> Any:
    base: dict[str, Any] = {
        "jurisdiction": "EU",
        "channel": "call",
        "time": "2026-04-07T10:00:00+02:00",
        "recipient": {"role": "borrower"},
    }
    return parse_event({**base, **changes})


def rules_of(d: Decision) -> set[str]:
    return {v.rule for v in d.violations}


def warnings_of(d: Decision) -> set[str]:
    return {w.rule for w in d.warnings}


def test_pack_loads_and_only_the_borrower_is_a_debtor() -> None:
    assert EU.version == "2026.1" and EU.name == "EU" and "EU" in loader.available_packs()
    assert EU.debtor_roles == frozenset({"borrower"})


def test_every_rule_is_sourced_and_cites_only_catalogue_ids() -> None:
    for r in loader.load_pack("EU").rules:
        assert r.id.startswith("eu.") and r.source and r.message_zh and r.message_en
        ids = {c.id for c in r.citations}
        assert ids <= CATALOGUE_IDS, (r.id, ids - CATALOGUE_IDS)
        if r.effect == "deny" and r.verification != "policy":
            assert ids, r.id


def test_no_invented_hours_frequency_or_conduct_rules() -> None:
    # The GDPR has no contact-hours or frequency rule and does not itself ban threats: none here.
    kinds = {r.kind for r in loader.load_pack("EU").rules}
    assert not kinds & {"quiet_hours", "counter_cap", "conduct_ban", "within_days"}


def test_there_are_at_least_20_eu_scenarios() -> None:
    count = sum(len(doc["scenarios"]) for name, doc in loader.scenario_files() if name.startswith("eu/"))
    assert count >= 20


@pytest.mark.parametrize("hour", [0, 3, 7, 8, 12, 21, 22, 23])
def test_any_hour_is_the_same_to_the_gdpr(hour: int) -> None:
    assert GUARD.check(ev(time=f"2026-04-07T{hour:02d}:00:00+02:00")).verdict == "allow"


@pytest.mark.parametrize("role", THIRD_PARTIES)
@pytest.mark.parametrize("purpose", ["collect", "relay_message", "reminder", "validation_notice"])
def test_third_parties_only_to_locate(role: str, purpose: str) -> None:
    d = GUARD.check(ev(purpose=purpose, recipient={"role": role, "source": "borrower_designated"}))
    assert "eu.third_party.purpose" in rules_of(d)
    assert "EU:GDPR:6(1)(f)" in {c for v in d.violations for c in v.citations}


def test_case21_contact_from_the_phone_asked_to_remind_the_borrower() -> None:
    d = GUARD.check(
        ev(
            channel="sms",
            recipient={"role": "contact_list_entry", "source": "contact_list"},
            collector={"kind": "agency"},
            message="Please remind him to pay €500.",
        )
    )
    assert d.verdict == "deny"
    assert {"eu.third_party.contact_list", "eu.third_party.purpose", "eu.third_party.disclosure"} <= rules_of(d)
    assert "eu.third_party.art14" in warnings_of(d)


def test_first_contact_with_a_third_party_flags_art14_and_art21() -> None:
    first = GUARD.check(
        ev(purpose="locate", recipient={"role": "relative", "source": "borrower_designated"},
           history={"borrower_unreachable": True})
    )
    later = GUARD.check(
        ev(purpose="locate", recipient={"role": "relative", "source": "borrower_designated"},
           history={"borrower_unreachable": True, "prior_contacts_with_recipient": 1})
    )
    assert first.verdict == "allow" and "eu.third_party.art14" in warnings_of(first)
    art14 = next(w for w in first.warnings if w.rule == "eu.third_party.art14")
    assert set(art14.citations) == {"EU:GDPR:14(3)(b)", "EU:GDPR:21(4)"}
    assert later.verdict == "allow" and "eu.third_party.art14" not in warnings_of(later)


def test_objection_stops_third_parties_but_not_contract_collection() -> None:
    third = GUARD.check(ev(purpose="locate", recipient={"role": "relative", "no_contact_requested": True}))
    borrower = GUARD.check(ev(recipient={"role": "borrower", "no_contact_requested": True}))
    assert "eu.third_party.objection" in rules_of(third)
    assert borrower.verdict == "allow" and "eu.borrower.objection" in warnings_of(borrower)


def test_withdrawn_consent_relied_on_is_refused() -> None:
    d = GUARD.check(
        ev(purpose="locate", recipient={"role": "emergency_contact", "source": "borrower_designated"},
           consent={"third_party_contact": "separate", "withdrawn": ["third_party_contact"]})
    )
    assert "eu.consent_withdrawn" in rules_of(d)
    # The borrower's own collection does not rest on that consent.
    assert GUARD.check(ev(consent={"withdrawn": ["third_party_contact"]})).verdict == "allow"


# ---------------------------------------------------------------- properties

ROLES = ["borrower", *THIRD_PARTIES, "contact_list_entry", "public"]
CHANNELS = ["call", "sms", "email", "im", "app_push", "visit", "letter", "public_post"]
PURPOSES = ["collect", "locate", "relay_message", "reminder", "validation_notice"]
MESSAGES = [None, "Could you ask Jan to call us?", "He owes us €500.", "Your instalment of €120 is overdue."]
times = st.builds(
    lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))).isoformat(),
    st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from([0, 60, 120, 180]),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Random well-formed EU events covering every field the EU rules read."""
    e: dict[str, Any] = {
        "jurisdiction": "EU",
        "channel": draw(st.sampled_from(CHANNELS)),
        "time": draw(times),
        "purpose": draw(st.sampled_from(PURPOSES)),
        "recipient": {
            "role": draw(st.sampled_from(ROLES)),
            "count": draw(st.integers(1, 3)),
            "no_contact_requested": draw(st.booleans()),
        },
        "discloses": draw(st.lists(st.sampled_from(["debt_existence", "personal_info"]), unique=True)),
    }
    source = draw(st.sampled_from([None, "borrower_designated", "contact_list", "public_record", "purchased"]))
    if source:
        e["recipient"]["source"] = source
    message = draw(st.sampled_from(MESSAGES))
    if message:
        e["message"] = message
    if draw(st.booleans()):
        e["history"] = {"borrower_unreachable": draw(st.booleans()),
                        "prior_contacts_with_recipient": draw(st.integers(0, 2))}
    if draw(st.booleans()):
        e["consent"] = {"withdrawn": draw(st.lists(st.sampled_from(["contact_list", "third_party_contact"]),
                                                   unique=True))}
    if draw(st.booleans()):
        e["debt"] = {"status": draw(st.sampled_from(["valid", "disputed", "paid", "illegal"]))}
    return e


@SETTINGS
@given(events())
def test_total_deterministic_and_prune_safe(e: dict[str, Any]) -> None:
    event = parse_event(e)
    d = GUARD.check(event)
    assert (d.verdict == "deny") == bool(d.violations)
    assert "engine.error" not in rules_of(d)
    assert EU.evaluate(event) == EU.evaluate(event, prune=False)
    assert evaluate_json(event, EU) == d.model_dump_json()


@SETTINGS
@given(events())
def test_the_time_of_day_never_changes_an_eu_decision(e: dict[str, Any]) -> None:
    noon = {**e, "time": e["time"][:11] + "12:00:00" + e["time"][19:]}
    assert GUARD.check(parse_event(e)) == GUARD.check(parse_event(noon))
