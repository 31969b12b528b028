"""The collection event and decision models (DESIGN §5): defaults, refusals, serialisation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from collectguard.domain.event import (
    CollectionEvent,
    Decision,
    LintHit,
    Violation,
    parse_event,
    parse_event_json,
)
from collectguard.errors import BadInput

MINIMAL = {
    "jurisdiction": "CN",
    "channel": "call",
    "time": "2026-04-07T10:00:00+08:00",
    "recipient": {"role": "borrower"},
}


def event(**changes: object) -> dict[str, object]:
    return {**MINIMAL, **changes}


def test_minimal_event_gets_the_documented_defaults() -> None:
    e = parse_event(MINIMAL)
    assert e.purpose == "collect"
    assert e.recipient.count == 1 and e.recipient.source is None and e.recipient.no_contact_requested is False
    assert e.collector.kind == "lender" and e.collector.outsourcing_notified is False and e.collector.visitors is None
    assert e.consent.contact_list == "none" and e.consent.third_party_contact == "none"
    assert e.consent.agreed_hours is None and e.consent.withdrawn == ()
    assert e.history.connected_calls_today == 0 and e.history.borrower_unreachable is False
    assert e.debt.status == "valid" and e.debt.annual_rate is None
    assert e.discloses == () and e.conduct == () and e.message is None


def test_full_event_parses() -> None:
    e = parse_event_json(
        json.dumps(
            event(
                purpose="locate",
                recipient={"role": "emergency_contact", "count": 1, "source": "borrower_designated"},
                message="请转告他联系我们",
                discloses=["personal_info"],
                conduct=["threat", "stalking"],
                consent={
                    "contact_list": "separate",
                    "third_party_contact": "bundled",
                    "agreed_hours": "21:00-07:00",
                    "withdrawn": ["contact_list"],
                },
                history={
                    "connected_calls_today": 2,
                    "attempts_today_same_method": 5,
                    "consecutive_failed_attempts": 3,
                    "borrower_unreachable": True,
                    "calls_7d": 4,
                    "last_conversation_at": "2026-04-01",
                    "prior_contacts_with_recipient": 1,
                    "messages_today": 2,
                },
                collector={
                    "kind": "agency",
                    "outsourcing_notified": True,
                    "processing_contract": True,
                    "visitors": 2,
                    "opt_out_included": True,
                },
                debt={
                    "days_past_due": 45,
                    "annual_rate": 24,
                    "lender_type": "private",
                    "lpr_at_signing": 3.45,
                    "status": "disputed",
                    "validation_notice_sent": True,
                    "first_communication_at": "2026-03-01",
                },
            )
        )
    )
    assert e.consent.withdrawn == ("contact_list",)
    assert e.debt.lpr_at_signing is not None and e.debt.lpr_at_signing * 4 == Decimal("13.8")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (event(colour="red"), "colour"),
        (event(recipient={"role": "borrower", "nickname": "x"}), "recipient.nickname"),
        (event(history={"connected_call_today": 1}), "history.connected_call_today"),
        (event(recipient={"role": "boss"}), "recipient.role"),
        (event(channel="fax"), "channel"),
        (event(jurisdiction="JP"), "jurisdiction"),
        (event(conduct=["threat", "bribery"]), "conduct.1"),
        (event(consent={"withdrawn": ["everything"]}), "consent.withdrawn.0"),
        (event(history={"connected_calls_today": "3"}), "history.connected_calls_today"),
        (event(history={"connected_calls_today": -1}), "history.connected_calls_today"),
        (event(history={"borrower_unreachable": "yes"}), "history.borrower_unreachable"),
        (event(history={"borrower_unreachable": 1}), "history.borrower_unreachable"),
        (event(recipient={"role": "borrower", "count": 0}), "recipient.count"),
        (event(debt={"annual_rate": -1}), "debt.annual_rate"),
        (event(debt={"annual_rate": "NaN"}), "debt.annual_rate"),
        (event(collector={"visitors": True}), "collector.visitors"),
    ],
)
def test_bad_facts_are_refused_naming_the_dotted_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_event(payload)
    assert err.value.field == field
    with pytest.raises(BadInput) as err2:
        parse_event_json(json.dumps(payload), line=7)
    assert err2.value.field == field and err2.value.line == 7
    assert "line 7" in err2.value.message and field in err2.value.message


@pytest.mark.parametrize("missing", ["jurisdiction", "channel", "time", "recipient"])
def test_required_fields(missing: str) -> None:
    payload = {k: v for k, v in MINIMAL.items() if k != missing}
    with pytest.raises(BadInput) as err:
        parse_event(payload)
    assert err.value.field == missing and "missing" in err.value.message


def test_recipient_role_is_required() -> None:
    with pytest.raises(BadInput) as err:
        parse_event(event(recipient={"count": 2}))
    assert err.value.field == "recipient.role"


@pytest.mark.parametrize(
    "bad_time",
    ["2026-04-07T10:00:00", "2026-04-07", "10:00", 1775530800, "tomorrow", None],
)
def test_time_needs_an_offset(bad_time: object) -> None:
    with pytest.raises(BadInput) as err:
        parse_event(event(time=bad_time))
    assert err.value.field == "time"


@pytest.mark.parametrize(
    "good_time", ["2026-04-07T10:00:00Z", "2026-04-07T10:00:00-04:00", "2026-04-07T10:00:00.5+05:30"]
)
def test_time_with_offset_is_kept_as_given(good_time: str) -> None:
    e = parse_event(event(time=good_time))
    assert e.time.utcoffset() is not None
    assert e.time.hour == 10  # the recipient's wall clock, never converted


@pytest.mark.parametrize("hours", ["09:00-21:00", "21:00-07:00", "20:00-24:00", "00:00-08:00"])
def test_agreed_hours_accepted(hours: str) -> None:
    assert parse_event(event(consent={"agreed_hours": hours})).consent.agreed_hours == hours


@pytest.mark.parametrize(
    "hours", ["9:00-21:00", "09:00–21:00", "25:00-07:00", "08:00-08:00", "00:00-24:00", "24:00-08:00", ""]
)
def test_agreed_hours_refused(hours: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_event(event(consent={"agreed_hours": hours}))
    assert err.value.field == "consent.agreed_hours"


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(BadInput) as err:
        parse_event_json('{"jurisdiction": "CN",', line=3)
    assert err.value.line == 3 and "not valid JSON" in err.value.message
    with pytest.raises(BadInput) as err:
        parse_event_json("[1, 2]")
    assert "JSON object" in err.value.message


def test_events_are_immutable() -> None:
    e = parse_event(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        e.channel = "sms"  # type: ignore[misc]


def test_json_schema_is_published_and_closed() -> None:
    schema = CollectionEvent.model_json_schema()
    assert set(schema["required"]) == {"jurisdiction", "channel", "time", "recipient"}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["time"]["format"] == "date-time"
    recipient = schema["$defs"]["Recipient"]
    assert recipient["additionalProperties"] is False
    assert "contact_list_entry" in recipient["properties"]["role"]["enum"]
    json.dumps(schema)  # serialisable as it is served


def test_decision_serialises_exactly_as_the_contract() -> None:
    d = Decision(
        verdict="deny",
        pack="CN",
        pack_version="2026.1",
        violations=(
            Violation(
                rule="cn.quiet_hours",
                citations=("CN:GBT45251", "CN:CBA2026"),
                message_zh="禁止",
                message_en="no",
            ),
        ),
        lint=(LintHit(category="threat", span=(5, 9), text="讓你坐牢"),),
    )
    out = d.model_dump_json()
    assert out == (
        '{"verdict":"deny","pack":"CN","pack_version":"2026.1","violations":[{"rule":"cn.quiet_hours",'
        '"citations":["CN:GBT45251","CN:CBA2026"],"message_zh":"禁止","message_en":"no"}],"warnings":[],'
        '"lint":[{"category":"threat","span":[5,9],"text":"讓你坐牢"}]}'
    )
    assert list(json.loads(out)) == ["verdict", "pack", "pack_version", "violations", "warnings", "lint"]
