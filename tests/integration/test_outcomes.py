"""Promises to pay, payment plans, disputes and hardship: settlement by the daily run and audit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert, select
from test_daily_seed import NOW, D, seed, simple_loan

from collectguard.adapters.db.models import AuditRecord, Case, Loan, Payment, PaymentPlan, PromiseToPay
from collectguard.errors import BadInput, Conflict, NotFound
from collectguard.services import outcomes
from collectguard.services.daily import daily_run

DAY = dt.timedelta(days=1)


@pytest.fixture
def cases(container):
    """Four loans at DPD 5 (amount 100 each installment), each with an open case from the day before."""
    ids = seed(container, [simple_loan(overdue_days=6, borrower=n) for n in range(4)])
    daily_run(container, as_of=D - 2 * DAY)
    with container.uow(write=False) as s:
        by_loan = {c.loan_id: c for c in s.scalars(select(Case))}
    return [(lid, by_loan[lid]) for lid in ids]


def _pay(c, loan_id, when, amount):
    with c.uow() as s:
        s.execute(
            insert(Payment),
            [{"loan_id": loan_id, "paid_on": when, "amount": Decimal(amount), "created_at": NOW}],
        )


def _actions(c):
    with c.uow(write=False) as s:
        return [r.action for r in s.scalars(select(AuditRecord).order_by(AuditRecord.id))]


def test_promises_settle_kept_partial_broken(container, cases):
    with container.uow() as s:
        ptps = [
            outcomes.ptp_create(
                s,
                tenant_id=case.tenant_id,
                case_id=case.id,
                promised_on=D - 2 * DAY,
                due_date=due,
                amount="100",
                actor="t",
                now=NOW,
            ).id
            for (_, case), due in zip(cases, (D - DAY, D - DAY, D - DAY, D + 3 * DAY), strict=True)
        ]
    _pay(container, cases[0][0], D - DAY, "100")  # kept
    _pay(container, cases[1][0], D - 2 * DAY, "40")  # partial
    _pay(container, cases[2][0], D - 3 * DAY, "100")  # before the promise: does not count -> broken
    _pay(container, cases[3][0], D + DAY, "100")  # after D: does not count yet; not due yet -> open
    out = daily_run(container, as_of=D)
    assert out["ptp"] == {"kept": 1, "partial": 1, "broken": 1, "open": 1}
    with container.uow(write=False) as s:
        got = {p.id: (p.status, p.settled_on) for p in s.scalars(select(PromiseToPay))}
    assert got == {
        ptps[0]: ("kept", D),
        ptps[1]: ("partial", D),
        ptps[2]: ("broken", D),
        ptps[3]: ("open", None),
    }
    assert _actions(container).count("ptp.create") == 4 and "ptp.settled" in _actions(container)
    # Next day the last one is paid in full before its due date: kept at once.
    assert daily_run(container, as_of=D + DAY)["ptp"] == {"kept": 1, "partial": 0, "broken": 0, "open": 0}


def test_a_promise_needs_a_positive_amount_and_an_open_case(container, cases):
    case = cases[0][1]
    with container.uow() as s:
        with pytest.raises(BadInput):
            outcomes.ptp_create(
                s,
                tenant_id=case.tenant_id,
                case_id=case.id,
                promised_on=D,
                due_date=D,
                amount="0",
                actor="t",
                now=NOW,
            )
        with pytest.raises(BadInput):
            outcomes.ptp_create(
                s,
                tenant_id=case.tenant_id,
                case_id=case.id,
                promised_on=D,
                due_date=D - DAY,
                amount="10",
                actor="t",
                now=NOW,
            )
        with pytest.raises(NotFound):
            outcomes.ptp_create(
                s,
                tenant_id=case.tenant_id + 99,
                case_id=case.id,
                promised_on=D,
                due_date=D,
                amount="10",
                actor="t",
                now=NOW,
            )
        outcomes.ptp_create(
            s,
            tenant_id=case.tenant_id,
            case_id=case.id,
            promised_on=D,
            due_date=D,
            amount="10",
            actor="t",
            now=NOW,
        )
        with pytest.raises(Conflict):
            outcomes.ptp_create(
                s,
                tenant_id=case.tenant_id,
                case_id=case.id,
                promised_on=D,
                due_date=D,
                amount="10",
                actor="t",
                now=NOW,
            )


def test_payment_plans_pause_collection_and_settle(container, cases):
    (l0, c0), (l1, c1) = cases[0], cases[1]
    sched = [{"due_date": (D + k * DAY).isoformat(), "amount": "50.00"} for k in (-1, 10)]
    with container.uow() as s:
        p0 = outcomes.payment_plan_propose(
            s, tenant_id=c0.tenant_id, case_id=c0.id, schedule=sched, actor="t", now=NOW
        )
        p1 = outcomes.payment_plan_propose(
            s, tenant_id=c1.tenant_id, case_id=c1.id, schedule=sched, actor="t", now=NOW
        )
        for p in (p0, p1):
            outcomes.payment_plan_decide(
                s,
                tenant_id=c0.tenant_id,
                plan_id=p.id,
                accept=True,
                starts_on=D - 3 * DAY,
                actor="t",
                now=NOW,
            )
        with pytest.raises(Conflict):
            outcomes.payment_plan_decide(
                s, tenant_id=c0.tenant_id, plan_id=p0.id, accept=True, starts_on=D, actor="t", now=NOW
            )
        assert s.get(Case, c0.id).paused_reason == "payment_plan"
    _pay(container, l0, D - DAY, "100")  # the whole plan: completed
    _pay(container, l1, D - 2 * DAY, "20")  # behind its first installment: broken
    out = daily_run(container, as_of=D)
    assert out["plans"] == {"completed": 1, "broken": 1}
    with container.uow(write=False) as s:
        assert {p.id: p.status for p in s.scalars(select(PaymentPlan))} == {
            p0.id: "completed",
            p1.id: "broken",
        }
        assert s.get(Case, c1.id).paused_reason is None  # collection resumes


def test_a_bad_schedule_is_refused(container, cases):
    case = cases[0][1]
    with container.uow() as s:
        for bad in (
            [],
            [{"due_date": "2026-05-01", "amount": "-1"}],
            [{"due_date": "soon", "amount": "1"}],
            [{"due_date": "2026-05-02", "amount": "1"}, {"due_date": "2026-05-01", "amount": "1"}],
        ):
            with pytest.raises(BadInput):
                outcomes.payment_plan_propose(
                    s, tenant_id=case.tenant_id, case_id=case.id, schedule=bad, actor="t", now=NOW
                )


def test_a_dispute_pauses_collection_until_resolved(container, cases):
    (l0, c0), (l1, c1) = cases[0], cases[1]
    with container.uow() as s:
        d0 = outcomes.dispute_open(
            s, tenant_id=c0.tenant_id, case_id=c0.id, reason="金额不对", on=D, actor="t", now=NOW
        )
        d1 = outcomes.dispute_open(
            s, tenant_id=c1.tenant_id, case_id=c1.id, reason="不是我借的", on=D, actor="t", now=NOW
        )
        with pytest.raises(Conflict):
            outcomes.dispute_open(
                s, tenant_id=c0.tenant_id, case_id=c0.id, reason="again", on=D, actor="t", now=NOW
            )
        assert s.get(Loan, l0).debt_status == "disputed"
        outcomes.dispute_resolve(
            s, tenant_id=c0.tenant_id, request_id=d0.id, upheld=False, note="已核实", on=D, actor="t", now=NOW
        )
        outcomes.dispute_resolve(
            s, tenant_id=c1.tenant_id, request_id=d1.id, upheld=True, note="冒名", on=D, actor="t", now=NOW
        )
        assert (s.get(Case, c0.id).paused_reason, s.get(Loan, l0).debt_status) == (None, "valid")
        closed = s.get(Case, c1.id)
        assert (closed.status, closed.close_reason, s.get(Loan, l1).debt_status) == (
            "closed",
            "dispute_upheld",
            "disputed",
        )
    daily_run(container, as_of=D)
    with container.uow(write=False) as s:  # an upheld dispute's loan gets no new case
        assert [c.status for c in s.scalars(select(Case).where(Case.loan_id == l1))] == ["closed"]
    assert {"dispute.open", "dispute.resolve"} <= set(_actions(container))


def test_hardship_pauses_only_when_granted(container, cases):
    c0 = cases[0][1]
    with container.uow() as s:
        r = outcomes.hardship_request(
            s, tenant_id=c0.tenant_id, case_id=c0.id, reason="失业", actor="t", now=NOW
        )
        assert s.get(Case, c0.id).paused_reason is None
        with pytest.raises(Conflict):
            outcomes.case_resume(s, tenant_id=c0.tenant_id, case_id=c0.id, actor="t", now=NOW)
        outcomes.hardship_decide(
            s, tenant_id=c0.tenant_id, request_id=r.id, granted=True, note="", on=D, actor="t", now=NOW
        )
        assert s.get(Case, c0.id).paused_reason == "hardship"
        outcomes.case_resume(s, tenant_id=c0.tenant_id, case_id=c0.id, actor="t", now=NOW)
        assert s.get(Case, c0.id).paused_reason is None
    assert {"hardship.request", "hardship.decide", "case.resume"} <= set(_actions(container))
