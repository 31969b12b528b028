"""The daily run against the pure domain oracle (DESIGN §13), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from test_daily_seed import D, LoanSpec, oracle, random_portfolio, seed, simple_loan

from collectguard.adapters.db.models import BucketHistory, Case, DailyRun, Loan
from collectguard.errors import Conflict
from collectguard.services.daily import daily_run


def _loans(c, ids):
    with c.uow(write=False) as s:
        rows = s.scalars(select(Loan).where(Loan.id.in_(ids))).all()
        return {r.id: r for r in rows}


@pytest.mark.parametrize("seed_value", [1, 2, 3])
def test_buckets_match_the_domain_oracle_on_random_portfolios(container, seed_value):
    rng = random.Random(seed_value)
    specs = random_portfolio(rng, 150)
    ids = seed(container, specs)
    summary = daily_run(container, as_of=D, chunk=37)  # small chunks: chunk edges are exercised too
    rows = _loans(container, ids)
    expected_buckets: dict[str, int] = {}
    for lid, spec in zip(ids, specs, strict=True):
        want = oracle(spec)
        got = rows[lid]
        if want is None:  # disbursed after D: not part of the run, untouched
            assert got.as_of is None
            continue
        expected_buckets[want.bucket] = expected_buckets.get(want.bucket, 0) + 1
        assert (got.bucket, got.dpd) == (want.bucket, want.dpd), (lid, spec)
        assert got.outstanding == want.outstanding
        assert got.overdue_amount == want.overdue_amount
        assert got.as_of == D
    assert summary["loans"] == sum(expected_buckets.values())
    assert {k: v for k, v in summary["buckets"].items() if v} == expected_buckets
    assert set(summary["buckets"]) == {"M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+", "closed"}


def test_dpd_edges_and_payment_timing(container):
    specs = [
        simple_loan(overdue_days=0),  # next due in 5 days: M0
        simple_loan(overdue_days=1),  # M1
        simple_loan(overdue_days=30),  # M1 upper edge
        simple_loan(overdue_days=31),  # M2
        simple_loan(overdue_days=181),  # M6+
        simple_loan(overdue_days=180),  # M6
        LoanSpec(
            disbursed_on=D - dt.timedelta(days=40),  # due today is not yet overdue
            installments=[(1, D, Decimal(100), Decimal(0), Decimal(0))],
        ),
        LoanSpec(
            disbursed_on=D - dt.timedelta(days=40),  # paid after D: does not count
            installments=[(1, D - dt.timedelta(days=3), Decimal(100), Decimal(0), Decimal(0))],
            payments=[(D + dt.timedelta(days=1), Decimal(100))],
        ),
        LoanSpec(
            disbursed_on=D - dt.timedelta(days=40),  # paid on D: counts, closed
            installments=[(1, D - dt.timedelta(days=3), Decimal(100), Decimal(0), Decimal(0))],
            payments=[(D, Decimal(100))],
        ),
        LoanSpec(disbursed_on=D - dt.timedelta(days=5)),  # no installments: nothing outstanding
    ]
    ids = seed(container, specs)
    daily_run(container, as_of=D)
    rows = _loans(container, ids)
    got = [(rows[i].bucket, rows[i].dpd) for i in ids]
    assert got == [
        ("M0", 0),
        ("M1", 1),
        ("M1", 30),
        ("M2", 31),
        ("M6+", 181),
        ("M6", 180),
        ("M0", 0),
        ("M1", 3),
        ("closed", 0),
        ("closed", 0),
    ]
    assert rows[ids[8]].debt_status == "paid"


def test_history_cases_and_the_next_day(container):
    ids = seed(container, [simple_loan(overdue_days=30), simple_loan(overdue_days=5), simple_loan()])
    first = daily_run(container, as_of=D)
    assert first["cases_opened"] == 2 and first["cases_closed"] == 0
    # Next day: the 30-DPD loan rolls into M2; the 5-DPD one is paid off.
    with container.uow() as s:
        s.execute(
            text("INSERT INTO payment (loan_id, paid_on, amount, created_at) VALUES (:l, :d, 60000, :n)"),
            {"l": ids[1], "d": D + dt.timedelta(days=1), "n": D},
        )
    second = daily_run(container, as_of=D + dt.timedelta(days=1))
    assert second["cases_opened"] == 0 and second["cases_closed"] == 1
    with container.uow(write=False) as s:
        hist = [
            (h.loan_id, h.as_of, h.from_bucket, h.to_bucket)
            for h in s.scalars(select(BucketHistory).order_by(BucketHistory.as_of, BucketHistory.loan_id))
        ]
        cases = {c.loan_id: c for c in s.scalars(select(Case))}
    d1 = D + dt.timedelta(days=1)
    # The first run sets each loan's baseline; history holds the changes from there on.
    assert hist == [
        (ids[0], d1, "M1", "M2"),
        (ids[1], d1, "M1", "closed"),
    ]
    assert cases[ids[0]].status == "open" and (cases[ids[0]].bucket, cases[ids[0]].dpd) == ("M2", 31)
    assert cases[ids[1]].status == "closed" and cases[ids[1]].close_reason == "paid"
    assert ids[2] not in cases


def test_a_cured_loan_closes_its_case_as_cured(container):
    ids = seed(container, [simple_loan(overdue_days=3)])
    daily_run(container, as_of=D)
    with container.uow() as s:  # pays the overdue installment only: current again
        s.execute(
            text("INSERT INTO payment (loan_id, paid_on, amount, created_at) VALUES (:l, :d, 10000, :n)"),
            {"l": ids[0], "d": D, "n": D},
        )
    out = daily_run(container, as_of=D + dt.timedelta(days=1))
    assert out["cases_closed"] == 1
    with container.uow(write=False) as s:
        case = s.scalars(select(Case)).one()
    assert (case.status, case.close_reason, case.bucket) == ("closed", "cured", "M0")


def test_runs_go_forward_in_time(container):
    seed(container, [simple_loan(overdue_days=3)])
    daily_run(container, as_of=D)
    with pytest.raises(Conflict):
        daily_run(container, as_of=D - dt.timedelta(days=1))


def test_default_as_of_is_today_in_shanghai(container):
    seed(container, [simple_loan(overdue_days=3)])
    out = daily_run(container)
    assert out["as_of"] == "2026-04-07"


def test_an_empty_ledger(container):
    out = daily_run(container, as_of=D)
    assert out["loans"] == 0 and out["queue"] == 0
    assert out["buckets"]["closed"] == 0


def test_runs_on_later_days_match_the_oracle_each_day(container):
    """A run only rewrites loans whose values change: checked over several days, with payments
    falling due in between, a new installment reopening a closed loan and a due date moved."""
    rng = random.Random(4)
    specs = random_portfolio(rng, 150)
    ids = seed(container, specs)
    days = [D - dt.timedelta(days=n) for n in (45, 31, 30, 2)] + [D]
    for n, day in enumerate(days):
        if n == 3:  # between runs: reopen a closed loan, move an unpaid installment's due date
            rows = _loans(container, ids)
            closed = next(i for i, sp in zip(ids, specs, strict=True)  # paid exactly: no credit left
                          if rows[i].bucket == "closed" and sp.installments and oracle(sp, day).credit == 0)
            spec = specs[ids.index(closed)]
            extra = (99, D - dt.timedelta(days=1), Decimal("12.34"), Decimal(0), Decimal(0))
            spec.installments.append(extra)
            late = next(i for i in ids if rows[i].dpd > 0)
            lspec = specs[ids.index(late)]
            moved = [(q, d + dt.timedelta(days=20), p, i, f) for q, d, p, i, f in lspec.installments]
            lspec.installments[:] = moved
            with container.uow() as s:
                s.execute(text("INSERT INTO installment (loan_id, seq, due_date, principal_due, interest_due, "
                               "fee_due) VALUES (:l, 99, :d, 1234, 0, 0)"), {"l": closed, "d": extra[1]})
                s.execute(text("UPDATE installment SET due_date = :d WHERE loan_id = :l AND seq = :q"),
                          [{"d": d, "l": late, "q": q} for q, d, *_ in moved])
        summary = daily_run(container, as_of=day, chunk=53)
        rows = _loans(container, ids)
        expected: dict[str, int] = {}
        for lid, spec in zip(ids, specs, strict=True):
            want = oracle(spec, day)
            if want is None:
                continue
            expected[want.bucket] = expected.get(want.bucket, 0) + 1
            got = rows[lid]
            assert (got.bucket, got.dpd, got.outstanding, got.overdue_amount) == (
                want.bucket, want.dpd, want.outstanding, want.overdue_amount), (day, lid, spec)
            assert got.debt_status == ("paid" if want.bucket == "closed" else "valid")
        assert {k: v for k, v in summary["buckets"].items() if v} == expected, day
    assert rows[closed].bucket == "M1"
    with container.uow(write=False) as s:
        stage = s.scalar(select(DailyRun.summary).where(DailyRun.as_of == D))["stages"]["positions"]
    assert stage["rederived"] < stage["loans"]  # loans whose values cannot change were left as they are
    values = {i: (r.bucket, r.dpd, r.outstanding, r.overdue_amount, r.debt_status) for i, r in rows.items()}
    again = daily_run(container, as_of=D, force=True)  # --force recomputes every loan, to the same values
    rows = _loans(container, ids)
    assert again["buckets"] == summary["buckets"]
    assert {i: (r.bucket, r.dpd, r.outstanding, r.overdue_amount, r.debt_status) for i, r in rows.items()} == values


def test_force_recomputes_a_loan_corrected_by_hand(container):
    ids = seed(container, [simple_loan(paid_installments=6, overdue_days=200)])  # paid off long ago
    daily_run(container, as_of=D - dt.timedelta(days=1))
    assert _loans(container, ids)[ids[0]].bucket == "closed"
    with container.uow() as s:  # a correction no application path makes: a due raised in place
        s.execute(text("UPDATE installment SET principal_due = principal_due + 5000 WHERE loan_id = :l AND seq = 6"),
                  {"l": ids[0]})
    daily_run(container, as_of=D)
    daily_run(container, as_of=D, force=True)  # --force: every loan computed again, closed ones too
    got = _loans(container, ids)[ids[0]]
    assert (got.bucket, got.dpd, got.outstanding, got.debt_status) == ("M6+", 230, Decimal(50), "valid")


def test_a_closed_loan_whose_status_went_back_to_valid_is_paid_again(container):
    ids = seed(container, [simple_loan(paid_installments=6, overdue_days=200)])  # paid off
    daily_run(container, as_of=D - dt.timedelta(days=1))
    with container.uow() as s:  # e.g. a dispute rejected after the loan was paid off
        s.execute(text("UPDATE loan SET debt_status = 'valid' WHERE id = :l"), {"l": ids[0]})
    daily_run(container, as_of=D)
    assert _loans(container, ids)[ids[0]].debt_status == "paid"
