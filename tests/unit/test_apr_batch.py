"""The vectorised apr_batch against the scalar compute_apr (differential), and its input checks."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from collectguard.domain.apr import (
    UNIT_PERIODS,
    Loan,
    Payment,
    add_months,
    apr_batch,
    compute_apr,
    schedule_dates,
)
from collectguard.errors import BadInput

MONTHS = {"month": 1, "2months": 2, "quarter": 3, "6months": 6, "year": 12}


def due_dates(first: date, n: int, unit: str) -> list[date]:
    u = UNIT_PERIODS[unit]
    if u.kind == "days":
        return [first + timedelta(days=u.length * k) for k in range(n)]
    if unit == "semimonth":
        return schedule_dates(first, n, "semimonthly")
    return [add_months(first, MONTHS[unit] * k) for k in range(n)]


def scalar(advance, fees, n, amount, unit, advance_date, first_date) -> float:
    payments = tuple(Payment(d, Decimal(amount) / 100) for d in due_dates(first_date, n, unit))
    loan = Loan(Decimal(advance) / 100, advance_date, payments, Decimal(fees) / 100, unit)
    return compute_apr(loan).apr


def random_loan(rng: random.Random, *, odd_first_period: bool):
    unit = rng.choice(list(UNIT_PERIODS))
    advance = rng.randint(10_000, 10_000_000)
    fees = rng.choice([0, rng.randint(0, advance // 3)])
    n = rng.randint(1, 72)
    # mostly 5%-150% over cost, some zero-interest and some below the amount financed
    amount = max(1, int((advance - fees) * rng.choice([1.0, rng.uniform(0.9, 2.5)]) / n))
    start = date(2019, 1, 1) + timedelta(days=rng.randint(0, 2500))
    kind = UNIT_PERIODS[unit].kind
    if kind != "days":
        start = start.replace(day=rng.randint(1, 13) if unit == "semimonth" else min(start.day, 28))
    if not odd_first_period:
        first = due_dates(start, 2, unit)[1]
    elif kind == "days":
        first = start + timedelta(days=rng.randint(1, 3 * UNIT_PERIODS[unit].length + 5))
    else:
        # payments keep their day of month (up to the 28th); semimonthly ones on days d and d+15
        # with the advance on or before day d, where (b)(5) counts every payment alike
        first = add_months(start, rng.randint(0, 4))
        day = rng.randint(start.day, 13) if unit == "semimonth" else rng.randint(1, 28)
        first = first.replace(day=day)
        if first <= start:
            first = add_months(first, 1)
    return advance, fees, n, amount, unit, start, first


@pytest.mark.parametrize("odd_first_period", [False, True], ids=["regular", "odd-first-period"])
def test_batch_equals_scalar_on_random_loans(odd_first_period):
    rng = random.Random(20260301 + odd_first_period)
    loans = [random_loan(rng, odd_first_period=odd_first_period) for _ in range(1500)]
    columns = list(zip(*loans, strict=True))
    kwargs = {"advance": columns[0], "upfront_fees": columns[1], "count": columns[2],
              "amount": columns[3], "unit_period": np.array(columns[4])}
    if odd_first_period:
        kwargs |= {"advance_date": np.array(columns[5], dtype="datetime64[D]"),
                   "first_date": np.array(columns[6], dtype="datetime64[D]")}
    got = apr_batch(**kwargs)
    expected = np.array([scalar(*loan) for loan in loans])
    mismatched = [(loan, g, e) for loan, g, e in zip(loans, got, expected, strict=True) if g != e]
    assert not mismatched, mismatched[:5]
    assert (expected < 0).any() and (expected == 0).any() and (expected > 100).any()


def test_appendix_j_examples_in_one_batch():
    got = apr_batch(
        advance=[500_000, 600_000, 500_000, 1_000_000, 50_000],
        amount=[23_000, 20_000, 21_917, 38_500, 1_760],
        count=[24, 36, 24, 40, 30],
        unit_period=["monthly", "monthly", "semimonthly", "quarterly", "weekly"],
        advance_date=["1978-01-10", "1978-02-10", "1978-02-23", "1978-05-23", "1978-03-20"],
        first_date=["1978-02-10", "1978-04-01", "1978-03-01", "1978-10-01", "1978-04-21"],
    )
    assert got.tolist() == [9.69, 11.82, 10.34, 8.97, 14.96]


def test_regular_schedule_without_dates():
    got = apr_batch(advance=[120_000, 100_000, 100_000], upfront_fees=[0, 30_000, 0],
                    count=[12, 1, 1], amount=[10_000, 100_000, 110_000], unit_period="month")
    assert got.tolist() == [0.0, pytest.approx(514.29), 120.0]
    assert apr_batch(advance=100_000, upfront_fees=30_000, count=1, amount=100_000,
                     unit_period="week").tolist() == [2228.57]


def test_single_payment_inside_first_period_without_a_rate_is_nan():
    # 1000 lent, 100 repaid 1 day later with a monthly unit: value 100 / (1 + i/30) never reaches 1000
    got = apr_batch(advance=100_000, count=1, amount=10_000, unit_period="month",
                    advance_date="2024-01-01", first_date="2024-01-02", on_invalid="nan")
    assert np.isnan(got)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"advance": [0]}, "advance[0]"),
    ({"advance": [100, -1]}, "advance[1]"),
    ({"upfront_fees": [100_000]}, "upfront_fees[0]"),
    ({"count": [0]}, "count[0]"),
    ({"count": [100_000]}, "count[0]"),
    ({"amount": [0]}, "amount[0]"),
    ({"unit_period": "fortnight"}, "unit_period[0]"),
    ({"advance": [1000.5]}, "advance"),
    ({"advance_date": ["2024-01-01"]}, "first_date"),
    ({"advance_date": ["2024-01-01"], "first_date": ["2024-01-01"]}, "first_date[0]"),
])
def test_invalid_rows(kwargs, field):
    base = {"advance": [100_000], "count": [12], "amount": [9_000], "unit_period": "month"}
    with pytest.raises(BadInput) as info:
        apr_batch(**(base | kwargs))
    assert info.value.field == field


def test_invalid_rows_as_nan():
    got = apr_batch(advance=[100_000, 0, 100_000], count=[12, 12, 12], amount=[9_000, 9_000, 9_000],
                    unit_period=["month", "month", "fortnight"], on_invalid="nan")
    assert got[0] > 0 and np.isnan(got[1]) and np.isnan(got[2])
