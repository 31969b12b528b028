"""Only a debtor promises to pay: a PTP outcome on an attempt to a third party, or a promise recorded for
one, is refused with the pack's citations (GB/T 45251, CBA 2026; FDCPA for the US pack). Both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from test_attempts_seed import NOW, seed

from collectguard.adapters.db.models import AuditRecord, Contact, ContactAttempt, PromiseToPay
from collectguard.errors import BadInput
from collectguard.services import outcomes
from collectguard.services.attempts import contact_attempt_outcome


@pytest.fixture
def w(container):
    return seed(container)


def attempt(c, w, *, contact: str | None) -> int:
    """An attempt reserved earlier (as the guard would have allowed it) to the borrower or a stored contact."""
    with c.uow() as s:
        ct = s.get(Contact, w[contact]) if contact else None
        row = ContactAttempt(tenant_id=w["lender"], case_id=w["case"], loan_id=w["loan"], borrower_id=w["borrower"],
                             contact_id=ct.id if ct else None, channel="call",
                             recipient_role=ct.relation if ct else "borrower",
                             recipient_key=ct.phone_hmac if ct else "k", actor="token:1", collector_kind="lender",
                             planned_at=NOW - dt.timedelta(minutes=5), local_date=NOW.date())
        s.add(row)
        s.flush()
        return row.id


def test_a_ptp_outcome_on_a_call_to_a_third_party_is_refused_with_citations(container, w):
    aid = attempt(container, w, contact="emergency")
    with pytest.raises(BadInput) as exc:
        contact_attempt_outcome(container, principal=w["collector"], attempt_id=aid, result="ptp")
    assert exc.value.http_status == 422 and exc.value.field == "result"
    refusal = exc.value.detail["refusal"]
    assert refusal["rule"] == "cn.third_party.purpose"
    assert {"CN:GBT45251", "CN:CBA2026"} <= set(refusal["citations"]) and "第三人" in refusal["message_zh"]
    with container.uow(write=False) as s:  # nothing was recorded: the outcome can still be given
        assert s.get(ContactAttempt, aid).outcome is None
        assert not s.scalars(select(AuditRecord).where(AuditRecord.action == "contact_attempt.outcome")).all()
    out = contact_attempt_outcome(container, principal=w["collector"], attempt_id=aid, result="connected")
    assert out["result"] == "connected"


@pytest.mark.parametrize("who", [None, "guarantor"])
def test_a_debtor_may_promise(container, w, who):
    aid = attempt(container, w, contact=who)
    assert contact_attempt_outcome(container, principal=w["collector"], attempt_id=aid, result="ptp")["result"] == "ptp"


def test_ptp_create_refuses_a_third_party_promise_and_records_a_debtors(container, w):
    with container.uow() as s, pytest.raises(BadInput) as exc:
        outcomes.ptp_create(s, tenant_id=w["lender"], case_id=w["case"], promised_on=NOW.date(),
                            due_date=NOW.date() + dt.timedelta(days=3), amount="100.00", actor="t", now=NOW,
                            recipient_role="colleague")
    assert exc.value.field == "recipient_role"
    with container.uow() as s:
        row = outcomes.ptp_create(s, tenant_id=w["lender"], case_id=w["case"], promised_on=NOW.date(),
                                  due_date=NOW.date() + dt.timedelta(days=3), amount="100.00", actor="t", now=NOW,
                                  recipient_role="borrower")
        assert s.get(PromiseToPay, row.id).status == "open"


def test_each_pack_decides_who_is_a_debtor():
    assert outcomes.ptp_refusal(role="borrower", jurisdiction="CN") is None
    assert outcomes.ptp_refusal(role="guarantor", jurisdiction="CN") is None
    assert outcomes.ptp_refusal(role="spouse", jurisdiction="US") is None  # a consumer under 1006.6 / 1692c(d)
    us = outcomes.ptp_refusal(role="employer", jurisdiction="US")
    assert us["rule"] == "us.third_party.purpose" and "US:FDCPA:1692c(b)" in us["citations"]
    assert outcomes.ptp_refusal(role="spouse", jurisdiction="CN")["citations"]
    assert outcomes.ptp_refusal(role="guarantor", jurisdiction="EU") is not None  # EU pack: the borrower only
    assert outcomes.ptp_refusal(role="relative", jurisdiction="XX")["citations"] == ["CN:GBT45251", "CN:CBA2026"]
