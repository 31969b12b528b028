"""Payment plans re-age the schedule: the daily run follows an accepted plan's installments, on SQLite
and PostgreSQL, against the pure domain oracle applied to the plan's schedule (docs/ledger.md)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, text
from test_daily_seed import NOW, D, LoanSpec, random_portfolio, seed, semantic_snapshot, simple_loan, snapshot

from collectguard.adapters.db.models import BucketHistory, Case, Loan, Payment, PaymentPlan
from collectguard.adapters.db.models_ledger import WorkItem
from collectguard.domain import delinquency as dq
from collectguard.services import outcomes
from collectguard.services.daily import STAGES, daily_run

DAY = dt.timedelta(days=1)
START = D - DAY  # the plans below start the day before the as-of date


def _pay(c, loan_id, when, amount):
    with c.uow() as s:
        s.execute(insert(Payment), [{"loan_id": loan_id, "paid_on": when, "amount": Decimal(amount),
                                     "created_at": NOW}])


def _plan(c, case_id, schedule, starts_on=START):
    """Propose and accept a plan ``[(due_date, amount), …]`` for the case; returns the plan id."""
    with c.uow() as s:
        case = s.get(Case, case_id)
        plan = outcomes.payment_plan_propose(
            s, tenant_id=case.tenant_id, case_id=case.id, actor="t", now=NOW,
            schedule=[{"due_date": d.isoformat(), "amount": str(a)} for d, a in schedule])
        outcomes.payment_plan_decide(s, tenant_id=case.tenant_id, plan_id=plan.id, accept=True,
                                     starts_on=starts_on, actor="t", now=NOW)
        return plan.id


def _open_cases(c, as_of):
    daily_run(c, as_of=as_of)
    with c.uow(write=False) as s:
        return {k.loan_id: k.id for k in s.scalars(select(Case).where(Case.status == "open"))}


# Six installments of 100, the oldest unpaid due 40 days before D: DPD 40 (M2) on the contract.
# The plan replaces what is left (600): 150 the day it starts, 150 a month later, 300 after that.
SCHEDULE = [(START, Decimal(150)), (START + 30 * DAY, Decimal(150)), (START + 60 * DAY, Decimal(300))]


@pytest.fixture
def world(container):
    ids = seed(container, [simple_loan(overdue_days=40, borrower=n) for n in range(5)])
    cases = _open_cases(container, D - 2 * DAY)
    plans = [_plan(container, cases[lid], SCHEDULE) for lid in ids[:4]]  # the fifth loan has no plan
    return ids, [cases[lid] for lid in ids], plans


def _state(c, loan_id):
    with c.uow(write=False) as s:
        loan = s.get(Loan, loan_id)
        case = s.scalars(select(Case).where(Case.loan_id == loan_id).order_by(Case.id.desc())).first()
        return (loan.bucket, loan.dpd, loan.outstanding, loan.overdue_amount, loan.debt_status), (
            case.status, case.close_reason, case.paused_reason)


def _plan_status(c, plan_id):
    with c.uow(write=False) as s:
        return s.get(PaymentPlan, plan_id).status


def test_plan_kept_broken_completed_and_late_payments(container, world):
    ids, cases, plans = world
    _pay(container, ids[0], START, "150")  # kept: the first plan installment is paid
    # ids[1]: nothing paid, broken
    _pay(container, ids[2], START, "600")  # the whole plan: completed, the loan is paid off
    _pay(container, ids[3], D + DAY, "150")  # paid after D: does not count on D
    out = daily_run(container, as_of=D)

    # Kept: current on the plan's schedule although the contract says DPD 40; the case stays open,
    # paused, and gets no actions; the rest of the plan is outstanding.
    assert _state(container, ids[0]) == (("M0", 0, Decimal(450), Decimal(0), "valid"),
                                         ("open", None, "payment_plan"))
    assert _plan_status(container, plans[0]) == "active"
    # Broken: DPD counts from the missed plan installment (1 day), not from the contract (40).
    broken = ("M1", 1, Decimal(600), Decimal(150), "valid"), ("open", None, None)
    assert _state(container, ids[1]) == broken
    assert _plan_status(container, plans[1]) == "broken"
    # Completed: the loan is closed and so is its case.
    assert _state(container, ids[2]) == (("closed", 0, Decimal(0), Decimal(0), "paid"), ("closed", "paid", None))
    assert _plan_status(container, plans[2]) == "completed"
    # A payment dated after D does not count on D.
    assert _state(container, ids[3]) == broken
    assert _plan_status(container, plans[3]) == "broken"
    # No plan: the contract's schedule.
    assert _state(container, ids[4])[0] == ("M2", 40, Decimal(600), Decimal(200), "valid")

    assert out["buckets"]["M0"] == 1 and out["buckets"]["M1"] == 2 and out["buckets"]["closed"] == 1
    assert out["plans"] == {"completed": 1, "broken": 2}
    assert out["cases_closed"] == 1  # only the paid-off one: a kept plan is not counted as a cure
    with container.uow(write=False) as s:
        hist = {(h.loan_id, h.from_bucket, h.to_bucket) for h in
                s.scalars(select(BucketHistory).where(BucketHistory.as_of == D))}
        queued = {w.case_id for w in s.scalars(select(WorkItem).where(WorkItem.as_of == D))}
    assert hist == {(ids[0], "M2", "M0"), (ids[1], "M2", "M1"), (ids[2], "M2", "closed"), (ids[3], "M2", "M1")}
    assert cases[0] not in queued

    # The next day the late payment counts: the borrower is back on the (broken) plan's schedule,
    # and the resumed case closes as cured; the kept plan's loan stays current.
    nxt = daily_run(container, as_of=D + DAY)
    assert _state(container, ids[3]) == (("M0", 0, Decimal(450), Decimal(0), "valid"), ("closed", "cured", None))
    assert _state(container, ids[1])[0][:2] == ("M1", 2)
    assert _state(container, ids[0])[0][:2] == ("M0", 0)
    assert nxt["cases_closed"] == 1


def test_a_plan_governs_from_its_start_and_the_latest_one_wins(container):
    ids = seed(container, [simple_loan(overdue_days=40, borrower=n) for n in range(2)])
    cases = _open_cases(container, D - 2 * DAY)
    # Starts after D: the contract still governs on D.
    _plan(container, cases[ids[0]], [(D + 5 * DAY, Decimal(600))], starts_on=D + DAY)
    # Two accepted plans: the one that started last governs (its installment is not due yet).
    _plan(container, cases[ids[1]], [(D - 10 * DAY, Decimal(600))], starts_on=D - 12 * DAY)
    _plan(container, cases[ids[1]], [(D + 10 * DAY, Decimal(600))], starts_on=D - 5 * DAY)
    daily_run(container, as_of=D)
    assert _state(container, ids[0])[0][:2] == ("M2", 40)
    assert _state(container, ids[1])[0][:4] == ("M0", 0, Decimal(600), Decimal(0))


def test_payments_before_the_plan_went_to_the_contract(container):
    ids = seed(container, [simple_loan(overdue_days=40)])
    cases = _open_cases(container, D - 2 * DAY)
    _pay(container, ids[0], START - DAY, "250")  # before the plan: not toward its installments
    _plan(container, cases[ids[0]], [(START, Decimal(100)), (D + 20 * DAY, Decimal(250))])
    daily_run(container, as_of=D)
    assert _state(container, ids[0])[0][:4] == ("M1", 1, Decimal(350), Decimal(100))


def test_what_a_plan_does_not_cover_falls_due_with_its_last_installment(container):
    ids = seed(container, [simple_loan(overdue_days=40)])  # 600 owed
    cases = _open_cases(container, D - 2 * DAY)
    plan = _plan(container, cases[ids[0]], [(START, Decimal(100)), (D + 10 * DAY, Decimal(100))])
    _pay(container, ids[0], START, "100")
    daily_run(container, as_of=D)
    assert _state(container, ids[0])[0][:4] == ("M0", 0, Decimal(500), Decimal(0))  # 400 not forgiven
    _pay(container, ids[0], D + 10 * DAY, "100")
    out = daily_run(container, as_of=D + 11 * DAY)
    assert out["plans"] == {"completed": 1}
    assert _plan_status(container, plan) == "completed"
    assert _state(container, ids[0]) == (("M1", 1, Decimal(400), Decimal(400), "valid"), ("open", None, None))


def _effective(spec: LoanSpec, plan: tuple[dt.date, list[tuple[dt.date, Decimal]]] | None, as_of: dt.date):
    """The oracle: §13 on the contract, or on [what was paid before the plan] + the plan's installments
    + the rest of the contractual balance the plan does not cover, due with its last installment."""
    if spec.disbursed_on > as_of:
        return None
    pays = [dq.Payment(paid_on=d, amount=a) for d, a in spec.payments]
    if plan is None or plan[0] > as_of:
        inst = [dq.Installment(seq=q, due_date=d, principal_due=p, interest_due=i, fee_due=f)
                for q, d, p, i, f in spec.installments]
        return dq.assess_delinquency(inst, pays, as_of=as_of)
    starts, rows = plan
    before = sum((a for d, a in spec.payments if d < starts), Decimal(0))
    inst = [dq.Installment(seq=0, due_date=dt.date(2000, 1, 1), principal_due=before, interest_due=Decimal(0),
                           fee_due=Decimal(0))]
    dues = sum((p + i + f for _q, _d, p, i, f in spec.installments), Decimal(0))
    rest = max(Decimal(0), dues - before - sum((a for _d, a in rows), Decimal(0)))
    rows = [*rows, (rows[-1][0], rest)]
    inst += [dq.Installment(seq=k, due_date=d, principal_due=a, interest_due=Decimal(0), fee_due=Decimal(0))
             for k, (d, a) in enumerate(rows, 1)]
    return dq.assess_delinquency(inst, pays, as_of=as_of)


@pytest.mark.parametrize("seed_value", [1, 2])
def test_plans_match_the_domain_oracle_on_random_portfolios(container, seed_value):
    rng = random.Random(seed_value)
    specs = random_portfolio(rng, 150)
    ids = seed(container, specs)
    cases = _open_cases(container, D - 30 * DAY)
    plans: dict[int, tuple[dt.date, list[tuple[dt.date, Decimal]]]] = {}
    for lid in sorted(cases):
        if rng.random() < 0.6:
            starts = D + rng.randint(-29, 2) * DAY  # a few start after D: not yet in force
            first = starts + rng.randint(-5, 10) * DAY
            rows = [(first + 30 * k * DAY, Decimal(rng.randint(1, 40000)) / 100) for k in range(rng.randint(1, 4))]
            _plan(container, cases[lid], rows, starts_on=starts)
            plans[lid] = (starts, rows)
    assert plans
    for lid in rng.sample(sorted(plans), k=len(plans) // 3):  # plan payments, some after D
        starts, rows = plans[lid]
        _pay(container, lid, starts + rng.randint(0, 40) * DAY, str(rows[0][1] * rng.choice([1, 1, 2])))
        specs[ids.index(lid)].payments.append(_payments(container, lid)[-1])
    summary = daily_run(container, as_of=D, chunk=41)
    with container.uow(write=False) as s:
        rows = {r.id: r for r in s.scalars(select(Loan).where(Loan.id.in_(ids)))}
    expected: dict[str, int] = {}
    for lid, spec in zip(ids, specs, strict=True):
        want = _effective(spec, plans.get(lid), D)
        if want is None:
            continue
        expected[want.bucket] = expected.get(want.bucket, 0) + 1
        got = rows[lid]
        assert (got.bucket, got.dpd, got.outstanding, got.overdue_amount) == (
            want.bucket, want.dpd, want.outstanding, want.overdue_amount), (lid, spec, plans.get(lid))
    assert {k: v for k, v in summary["buckets"].items() if v} == expected


def _payments(c, loan_id):
    with c.uow(write=False) as s:
        return [(p.paid_on, p.amount) for p in s.scalars(select(Payment).where(Payment.loan_id == loan_id)
                                                          .order_by(Payment.id))]


class Crash(RuntimeError):
    pass


def _plan_world(c):
    ids = seed(c, [simple_loan(overdue_days=40, borrower=n) for n in range(4)])
    cases = _open_cases(c, D - 2 * DAY)
    for lid in ids[:3]:
        _plan(c, cases[lid], SCHEDULE)
    _pay(c, ids[0], START, "150")
    _pay(c, ids[2], START, "600")


def test_a_forced_rerun_with_plans_writes_the_same_rows(container):
    _plan_world(container)
    daily_run(container, as_of=D)
    tables = ("loan", "bucket_history", "collection_case", "work_item", "case_assignment")
    before = snapshot(container, tables)
    daily_run(container, as_of=D, force=True)  # the plans are settled now: broken, completed
    assert snapshot(container, tables) == before


@pytest.mark.parametrize("stage", STAGES)
def test_a_crash_with_plans_is_finished_by_the_next_run(container, stage):
    _plan_world(container)
    clean_point = container.connection.begin_nested()
    daily_run(container, as_of=D)
    reference = semantic_snapshot(container)
    clean_point.rollback()

    def hook(name):
        if name == stage:
            raise Crash(name)

    with pytest.raises(Crash):
        daily_run(container, as_of=D, stage_hook=hook)
    daily_run(container, as_of=D)
    assert semantic_snapshot(container) == reference
    with container.uow(write=False) as s:
        assert s.execute(text("SELECT COUNT(*) FROM payment_plan WHERE status = 'active'")).scalar_one() == 1
