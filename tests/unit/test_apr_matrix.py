"""The vectorised ``apr_matrix`` against the scalar ``compute_apr`` on random dated schedules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectguard.domain.apr import Loan, Payment, add_months, compute_apr
from collectguard.domain.apr_matrix import apr_matrix
from collectguard.errors import BadInput

KINDS = ("month", "30days", "week", "2weeks", "semimonth", "quarter", "single", "random", "day", "month-end", "leap")


@st.composite
def schedules(draw: st.DrawFn) -> tuple[dt.date, int, int, list[dt.date], list[Decimal]]:
    adv = dt.date(2023, 1, 1) + dt.timedelta(days=draw(st.integers(0, 1500)))
    kind = draw(st.sampled_from(KINDS))
    n = 1 if kind == "single" else draw(st.integers(1, 14))
    if kind == "leap":  # advanced around a leap day, monthly from a day near the month's end
        adv = dt.date(draw(st.sampled_from([2024, 2028, 2000])), 2, 29) + dt.timedelta(days=draw(st.integers(-3, 3)))
        first = adv + dt.timedelta(days=draw(st.integers(1, 45)))
        dates = [add_months(first, k) for k in range(n)]
    elif kind == "month-end":  # the last day of each month (Jan 31, Feb 28/29, Mar 31, ...)
        start = add_months(adv.replace(day=1), 1)
        dates = [add_months(start, k + 1) - dt.timedelta(days=1) for k in range(n)]
    elif kind == "day":
        dates = [adv + dt.timedelta(days=k + 1 + draw(st.integers(0, 1)) * (k == 0)) for k in range(n)]
    elif kind == "month":
        first = adv + dt.timedelta(days=draw(st.integers(1, 45)))
        dates = [add_months(first, k) for k in range(n)]
    elif kind == "quarter":
        dates = [add_months(adv, 3 * (k + 1)) for k in range(n)]
    elif kind == "single":
        dates = [adv + dt.timedelta(days=draw(st.integers(1, 364)))]
    elif kind == "random":
        gaps = draw(st.lists(st.integers(1, 95), min_size=n, max_size=n))
        dates = [adv + dt.timedelta(days=sum(gaps[: k + 1])) for k in range(n)]
    else:
        step = {"30days": 30, "week": 7, "2weeks": 14, "semimonth": 15}[kind]
        jitter = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        dates = [adv + dt.timedelta(days=step * (k + 1) + jitter[k]) for k in range(n)]
    principal = draw(st.integers(500, 50_000))
    fees = draw(st.sampled_from([0, principal // 10, principal * 3 // 10]))
    # Total repaid above the amount financed (a positive rate), in cents.
    base = draw(st.integers(principal * 105, principal * 400)) // n
    amounts = [Decimal(base + draw(st.integers(0, 5000))) / 100 for _ in dates]
    return adv, principal, fees, dates, amounts


@settings(max_examples=60, deadline=None)
@given(st.lists(schedules(), min_size=1, max_size=40))
def test_the_matrix_method_equals_the_scalar_one(rows):
    width = max(len(r[3]) for r in rows)
    advance = np.array([r[0] for r in rows], dtype="datetime64[D]")
    financed = np.array([r[1] - r[2] for r in rows], dtype=float)
    dates = np.full((len(rows), width), np.datetime64("1970-01-01"), dtype="datetime64[D]")
    amounts = np.zeros((len(rows), width))
    valid = np.zeros((len(rows), width), dtype=bool)
    for i, (_, _, _, ds, am) in enumerate(rows):
        dates[i, : len(ds)], amounts[i, : len(am)], valid[i, : len(ds)] = ds, [float(a) for a in am], True
    got, fallback = apr_matrix(advance, financed, dates, amounts, valid)
    for i, (adv, principal, fees, ds, am) in enumerate(rows):
        try:
            ref = compute_apr(
                Loan(
                    advance=Decimal(principal),
                    advance_date=adv,
                    upfront_fees=Decimal(fees),
                    payments=tuple(Payment(d, a) for d, a in zip(ds, am, strict=True)),
                )
            ).apr
        except BadInput:
            assert fallback[i]  # what the scalar refuses is never priced by the matrix
            continue
        if not fallback[i]:
            # Both round half-up to 2 decimals; a float a hair apart may round the other way.
            assert abs(got[i] - ref) <= 0.0100001, (adv, ds, am, principal, fees, ref, got[i])


@settings(max_examples=30, deadline=None)
@given(st.lists(schedules(), min_size=1, max_size=20))
def test_day_numbers_and_datetime64_dates_give_the_same_aprs(rows):
    width = max(len(r[3]) for r in rows)
    advance = np.array([r[0] for r in rows], dtype="datetime64[D]")
    financed = np.array([r[1] - r[2] for r in rows], dtype=float)
    dates = np.full((len(rows), width), np.datetime64("1970-01-01"), dtype="datetime64[D]")
    amounts = np.zeros((len(rows), width))
    valid = np.zeros((len(rows), width), dtype=bool)
    for i, (_, _, _, ds, am) in enumerate(rows):
        dates[i, : len(ds)], amounts[i, : len(am)], valid[i, : len(ds)] = ds, [float(a) for a in am], True
    by_date = apr_matrix(advance, financed, dates, amounts, valid)
    by_number = apr_matrix(advance.view(np.int64), financed, dates.view(np.int64), amounts, valid)
    assert np.array_equal(by_date[0], by_number[0], equal_nan=True) and (by_date[1] == by_number[1]).all()


def test_rows_it_does_not_model_are_left_to_the_scalar_method():
    adv = np.array(["2025-01-01"] * 3, dtype="datetime64[D]")
    dates = np.array(
        [["2025-02-01", "2025-02-01"], ["2024-12-01", "2025-02-01"], ["2025-02-01", "2025-03-01"]],
        dtype="datetime64[D]",
    )
    amounts = np.array([[600.0, 600.0], [600.0, 600.0], [100.0, 100.0]])  # the last repays less than lent
    got, fallback = apr_matrix(adv, np.array([1000.0, 1000.0, 1000.0]), dates, amounts, np.ones((3, 2), bool))
    assert fallback.tolist() == [True, True, True] and np.isnan(got).all()


def test_a_payday_loan_with_upfront_fees():
    # 1,000 lent, 300 kept upfront, 1,000 back after 7 days: i = 1000/700 - 1 over a 7-day unit-period.
    got, fallback = apr_matrix(
        np.array(["2025-03-01"], dtype="datetime64[D]"),
        np.array([700.0]),
        np.array([["2025-03-08"]], dtype="datetime64[D]"),
        np.array([[1000.0]]),
        np.ones((1, 1), bool),
    )
    assert not fallback[0] and got[0] == round((1000 / 700 - 1) * 365 / 7 * 100, 2)


def test_the_appendix_j_examples_reproduce_through_the_matrix_method():
    from test_apr import APPENDIX_J, MORE_EXAMPLES

    from collectguard.domain.apr import parse_loan

    for name, (data, expected) in {**APPENDIX_J, **MORE_EXAMPLES}.items():
        loan = parse_loan(data)
        got, fallback = apr_matrix(
            np.array([loan.advance_date], dtype="datetime64[D]"),
            np.array([float(loan.amount_financed)]),
            np.array([[p.on for p in loan.payments]], dtype="datetime64[D]"),
            np.array([[float(p.amount) for p in loan.payments]]),
            np.ones((1, len(loan.payments)), dtype=bool),
        )
        assert not fallback[0] and got[0] == expected, name
