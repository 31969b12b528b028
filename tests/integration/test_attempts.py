"""Contact attempts on stored facts: caps from stored history, recipients, outcomes, bad input (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from test_attempts_seed import DAY, NOW, at, seed

from collectguard.adapters.db.models import AuditRecord, Case, Contact, ContactAttempt, Decision, Loan
from collectguard.adapters.db.models_attempts import BorrowerFlag
from collectguard.adapters.db.models_ledger import AgencyContract
from collectguard.errors import BadInput, Conflict, Denied, Forbidden, NotFound
from collectguard.services.attempts import (
    contact_attempt_outcome,
    contact_attempt_read,
    contact_attempt_request,
    contact_attempts_of_case,
)
from collectguard.services.authz import Principal

BJ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def w(container):
    return seed(container)


def call(c, w, who="collector", **kw):
    kw.setdefault("case_id", w["case"])
    if "contact_id" not in kw:
        kw.setdefault("role", "borrower")
    return contact_attempt_request(c, principal=w[who], channel=kw.pop("channel", "call"), **kw)


def denied_rules(c, w, **kw):
    with pytest.raises(Denied) as exc:
        call(c, w, **kw)
    decision = exc.value.decision
    assert decision["verdict"] == "deny" and exc.value.detail["decision_id"]
    return {v["rule"] for v in decision["violations"]}


def count(c, model, *where):
    with c.uow(write=False) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_an_allowed_call_is_stored_with_its_decision_and_audit(container, w):
    out = call(container, w)
    assert out["decision"]["verdict"] == "allow" and out["decision"]["pack"] == "CN"
    with container.uow(write=False) as s:
        a = s.get(ContactAttempt, out["attempt_id"])
        assert (a.local_date, a.recipient_role, a.collector_kind, a.decision_id) == (
            dt.date(2026, 4, 7), "borrower", "lender", out["decision_id"])
        event = s.get(Decision, out["decision_id"]).event
        assert event["time"] == "2026-04-07T10:00:00+08:00"  # the borrower's wall clock, with its offset
        actions = set(s.scalars(select(AuditRecord.action)))
    assert {"contact_attempt.check", "contact_attempt.reserve"} <= actions


def test_the_seventh_dial_to_one_number_is_denied_and_recorded(container, w):
    for _ in range(6):
        call(container, w)
    assert "cn.attempts_same_number_cap" in denied_rules(container, w)
    assert count(container, ContactAttempt) == 6
    assert count(container, Decision, Decision.verdict == "deny") == 1
    # The cap is per number and per day: tomorrow the borrower may be called again.
    assert call(at(container, NOW + DAY), w)["attempt_id"]


def test_connected_calls_by_lender_and_agency_count_together(container, w):
    with container.uow() as s:
        s.add(AgencyContract(lender_tenant_id=w["lender"], agency_tenant_id=w["agency"], capacity=10,
                             processing_contract=True, active=True, created_at=NOW))
        s.get(Case, w["case"]).agency_tenant_id = w["agency"]
    contact_attempt_request_consent(container, w)
    for who in ("collector", "agent", "collector"):
        out = call(container, w, who=who)
        contact_attempt_outcome(container, principal=w[who], attempt_id=out["attempt_id"], result="connected")
    assert "cn.connected_calls_cap" in denied_rules(container, w, who="agent")


def contact_attempt_request_consent(c, w):
    from collectguard.services.consents import consent_give

    with c.uow() as s:
        from collectguard.adapters.db.models import Borrower

        consent_give(s, borrower=s.get(Borrower, w["borrower"]), kind="outsourcing_notice", form="separate",
                     channel="app", actor="t", now=NOW)


def test_an_agency_needs_a_contract_and_a_notice(container, w):
    with container.uow() as s:
        s.get(Case, w["case"]).agency_tenant_id = w["agency"]
    assert {"cn.outsourcing.notice", "cn.outsourcing.contract"} <= denied_rules(container, w, who="agent")
    with container.uow() as s:
        s.add(AgencyContract(lender_tenant_id=w["lender"], agency_tenant_id=w["agency"], capacity=10,
                             processing_contract=True, active=True, created_at=NOW))
    assert denied_rules(container, w, who="agent") == {"cn.outsourcing.notice"}
    contact_attempt_request_consent(container, w)
    out = call(container, w, who="agent")
    assert contact_attempt_read(container, principal=w["collector"], attempt_id=out["attempt_id"])[
        "agency_tenant_id"] == w["agency"]


def test_quiet_hours_use_the_borrowers_zone_whatever_offset_is_sent(container, w):
    late = dt.datetime(2026, 4, 7, 14, 30, tzinfo=dt.UTC)  # 22:30 in Beijing
    assert "cn.quiet_hours" in denied_rules(container, w, time=late)
    assert call(container, w, time=dt.datetime(2026, 4, 7, 21, 59, tzinfo=BJ))["attempt_id"]


def test_a_us_borrower_is_judged_by_the_us_pack_at_new_york_time(container):
    w = seed(container, jurisdiction="US", timezone="America/New_York")
    try:
        out = call(container, w)
        decision = out["decision"]
    except Denied as exc:  # the US pack may not be shipped yet: then the guard fails closed
        decision = exc.decision
    assert decision["pack"] == "US"
    with container.uow(write=False) as s:
        event = s.scalars(select(Decision.event)).all()[-1]
    assert event["jurisdiction"] == "US" and event["time"] == "2026-04-06T22:00:00-04:00"


def test_third_parties_only_when_the_borrower_is_unreachable_then_never_after_a_refusal(container, w):
    assert "cn.third_party.precondition" in denied_rules(container, w, contact_id=w["emergency"], purpose="locate")
    # Tried on each of the three days before, nobody answered: 失联 derived from the records.
    for days in (3, 2, 1):
        when = NOW - days * DAY
        out = call(at(container, when), w, time=when)
        contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"], result="no_answer")
    out = call(container, w, contact_id=w["emergency"], purpose="locate")
    assert any(x["rule"] == "cn.third_party.log" for x in out["decision"]["warnings"])
    res = contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"], result="refused")
    assert res["effects"] == {"contact_no_contact_requested": w["emergency"]}
    assert "cn.third_party.refused" in denied_rules(container, w, contact_id=w["emergency"], purpose="locate")


@pytest.mark.parametrize("how", ["invalid_number", "deceased"])
def test_an_invalid_number_or_a_deceased_borrower_make_the_borrower_unreachable(container, how):
    w = seed(container, status="deceased" if how == "deceased" else "active")
    if how == "invalid_number":
        out = call(container, w)
        contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"],
                                result="invalid_number")
    assert call(container, w, contact_id=w["emergency"], purpose="relay_message")["attempt_id"]


def test_a_borrowers_stop_request_is_recorded_and_read_back(container, w):
    out = call(container, w)
    res = contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"],
                                  result="no_contact_request")
    assert res["effects"] == {"borrower_no_contact_request": "recorded"}
    assert count(container, BorrowerFlag, BorrowerFlag.kind == "no_contact_request") == 1
    again = call(container, w, channel="sms", message="您好，请及时还款。")  # CN: the pack warns, it does not bar
    assert "cn.debtor.no_contact_requested" in {x["rule"] for x in again["decision"]["warnings"]}


def test_a_dispute_pauses_the_case_and_stops_collection(container, w):
    out = call(container, w)
    res = contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"], result="dispute")
    assert res["effects"] == {"dispute": "case_paused"}
    with container.uow(write=False) as s:
        assert s.get(Case, w["case"]).paused_reason == "dispute"
        assert s.get(Loan, w["loan"]).debt_status == "disputed"
    assert "cn.debt.disputed" in denied_rules(container, w)
    assert call(container, w, channel="letter", purpose="validation_notice")["attempt_id"]


def test_an_outcome_is_recorded_once(container, w):
    out = call(container, w)
    contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"], result="busy")
    with pytest.raises(Conflict):
        contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"], result="busy")
    with pytest.raises(BadInput) as exc:
        contact_attempt_outcome(container, principal=w["collector"], attempt_id=out["attempt_id"], result="maybe")
    assert exc.value.field == "result"


def test_loan_id_finds_the_open_case_and_the_case_lists_its_attempts(container, w):
    out = call(container, w, case_id=None, loan_id=w["loan"])
    rows = contact_attempts_of_case(container, principal=w["officer"], case_id=w["case"])
    assert [r["id"] for r in rows] == [out["attempt_id"]] and rows[0]["purpose"] == "collect"
    assert "recipient_key" not in rows[0] and "message" not in rows[0]


@pytest.mark.parametrize("kw, error, field", [
    ({"case_id": 10**9}, NotFound, None),
    ({"case_id": None, "loan_id": 10**9}, NotFound, None),
    ({"case_id": "case2"}, NotFound, None),                        # another tenant's case
    ({"case_id": None, "loan_id": "loan2"}, NotFound, None),        # another tenant's loan
    ({"contact_id": "contact2"}, NotFound, None),                   # a contact of another borrower
    ({"contact_id": 10**9}, NotFound, None),
    ({"contact_id": "listed"}, NotFound, None),                     # collectors never see contact lists
    ({"loan_id": "loan"}, BadInput, "case_id"),                     # both case_id and loan_id
    ({"role": "emergency_contact"}, BadInput, "recipient.role"),    # a third party needs its contact_id
    ({"time": dt.datetime(2026, 4, 7, 10, 0)}, BadInput, "time"),   # no offset
    ({"time": NOW - dt.timedelta(hours=1)}, BadInput, "time"),      # back-dated out of today's caps
    ({"time": NOW + 8 * DAY}, BadInput, "time"),
    ({"channel": "pigeon"}, BadInput, "channel"),
])
def test_bad_input_and_foreign_ids(container, w, kw, error, field):
    kw = {k: w[v] if isinstance(v, str) and v in w else v for k, v in kw.items()}
    with pytest.raises(error) as exc:
        call(container, w, **kw)
    if field:
        assert exc.value.field == field
    assert count(container, Decision) == 0


def test_a_case_paused_for_hardship_or_closed_refuses_collection(container, w):
    with container.uow() as s:
        s.get(Case, w["case"]).paused_reason = "hardship"
    with pytest.raises(Conflict, match="paused"):
        call(container, w)
    with container.uow() as s:
        case = s.get(Case, w["case"])
        case.paused_reason, case.status = None, "closed"
    with pytest.raises(Conflict, match="closed"):
        call(container, w)


def test_roles_and_agencies_see_only_their_scope(container, w):
    borrower = Principal(tenant_id=w["lender"], tenant_code="lender-a", role="borrower", borrower_id=w["borrower"])
    with pytest.raises(Forbidden):
        contact_attempt_request(container, principal=borrower, channel="call", case_id=w["case"], role="borrower")
    with pytest.raises(NotFound):  # the agency holds no case of this borrower
        call(container, w, who="agent")
    out = call(container, w)
    with pytest.raises(NotFound):
        contact_attempt_outcome(container, principal=w["outsider"], attempt_id=out["attempt_id"], result="busy")
    with pytest.raises(NotFound):
        contact_attempts_of_case(container, principal=w["outsider"], case_id=w["case"])


def _history(c, w, rows, *, contact_id=None, channel="call"):
    """Insert attempts as (days before NOW, channel, outcome, contact_id, loan) and read the event's history."""
    from collectguard.services.facts import Subject, borrower_lock, recipient_key_for, stored_event

    with c.uow() as s:
        b = borrower_lock(s, w["borrower"])
        contacts = {ct.id: ct for ct in s.scalars(select(Contact).where(Contact.borrower_id == b.id))}
        for n, (days, ch, outcome, cid, loan) in enumerate(rows):
            cid = w[cid] if cid else None
            when = NOW - days * DAY + n * dt.timedelta(minutes=1)
            ct = contacts.get(cid)
            s.add(ContactAttempt(
                tenant_id=w["lender"], case_id=w["case"], loan_id=w[loan], borrower_id=b.id, contact_id=cid,
                channel=ch, recipient_role=ct.relation if ct else "borrower",
                recipient_key=recipient_key_for(ch, b, ct, ct.relation if ct else "borrower"), planned_at=when,
                local_date=when.astimezone(BJ).date(), outcome=outcome, actor="seed", collector_kind="lender"))
        s.flush()
        ct = contacts.get(contact_id)
        subject = Subject(borrower=b, loan=s.get(Loan, w["loan"]), case=s.get(Case, w["case"]), contact=ct,
                          role=ct.relation if ct else "borrower", agency_tenant_id=None)
        return stored_event(s, subject=subject, channel=channel, when=NOW, now=NOW).history


def test_stored_history_counts_per_person_number_debt_and_day(container, w):
    with container.uow() as s:  # a second loan of the same borrower: per-debt counters must leave it out
        first = s.get(Loan, w["loan"])
        other = Loan(tenant_id=first.tenant_id, ext_id="L2", borrower_id=first.borrower_id, lender_type="private",
                  principal=first.principal, currency="CNY", annual_rate=first.annual_rate,
                  disbursed_on=first.disbursed_on, created_at=NOW)
        s.add(other)
        s.flush()
        w["loan_b"] = other.id
    h = _history(container, w, [
        (9, "call", "connected", None, "loan"),     # outside the 7-day window
        (5, "call", "connected", None, "loan"),     # last conversation about this debt
        (4, "call", "connected", None, "loan_b"),   # another debt: not in calls_7d / last_conversation_at
        (0, "call", "connected", None, "loan"),     # today, connected
        (0, "call", "no_answer", None, "loan"),
        (0, "call", "busy", None, "loan"),
        (0, "call", None, None, "loan"),            # reserved, outcome not known yet: still counts
        (0, "sms", None, None, "loan"),
        (0, "call", "no_answer", "emergency", "loan"),  # another person
    ])
    assert h.connected_calls_today == 1
    assert h.attempts_today_same_method == 4        # every call today to this number, whatever happened
    assert h.messages_today == 1
    assert h.calls_7d == 5                          # day -5 and the four calls today, about this debt
    assert h.last_conversation_at == dt.date(2026, 4, 7)
    assert h.consecutive_failed_attempts == 2       # busy, no_answer (newest first), then connected
    assert h.prior_contacts_with_recipient == 0 and not h.borrower_unreachable


def test_unreachable_needs_three_consecutive_days_without_an_answer(container, w):
    failed = [(d, "call", "no_answer", None, "loan") for d in (3, 2, 1)]
    assert _history(container, w, failed).borrower_unreachable
    answered_today = [(0, "call", "connected", None, "loan")]
    assert not _history(container, w, answered_today).borrower_unreachable
    h = _history(container, w, [], contact_id=w["emergency"])
    assert h.prior_contacts_with_recipient == 0


def test_a_gap_day_breaks_the_unreachable_run(container, w):
    assert not _history(container, w, [(d, "call", "no_answer", None, "loan") for d in (4, 2, 1)]
                        ).borrower_unreachable


def test_the_contact_row_is_read_after_the_lock(container, w):
    # A refusal committed by another request is seen: flags are read inside the locked unit of work.
    with container.uow() as s:
        s.get(Contact, w["guarantor"]).no_contact_requested = True
    out = call(container, w, contact_id=w["guarantor"])  # a guarantor is a debtor: the pack only warns
    assert "cn.debtor.no_contact_requested" in {x["rule"] for x in out["decision"]["warnings"]}
