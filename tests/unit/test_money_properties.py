"""Property tests (hypothesis) for money, delinquency and the APR."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from collectguard.domain.apr import Loan, Payment, add_months, compute_apr
from collectguard.domain.delinquency import DEFAULT_BUCKETS, Installment, assess_delinquency
from collectguard.domain.delinquency import Payment as Repayment
from collectguard.domain.money import (
    format_amount,
    from_minor,
    parse_amount,
    parse_decimal,
    quantize,
    to_minor,
)
from collectguard.errors import BadInput

START = date(2024, 1, 1)

cents = st.integers(min_value=0, max_value=10**9).map(lambda c: Decimal(c).scaleb(-2))
days = st.integers(min_value=0, max_value=720)


@st.composite
def installments(draw):
    n = draw(st.integers(min_value=0, max_value=8))
    dues = sorted(draw(st.lists(days, min_size=n, max_size=n)))
    return [Installment(seq, START + timedelta(days=d), draw(cents), draw(cents), draw(cents))
            for seq, d in enumerate(dues, start=1)]


repayments = st.lists(st.builds(lambda d, a: Repayment(START + timedelta(days=d), a), days, cents),
                      max_size=8)
as_of_dates = days.map(lambda d: START + timedelta(days=d))


# --- money -----------------------------------------------------------------------------------------

@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-10**12, max_value=10**12))
def test_plain_decimal_strings_round_trip(x):
    assert parse_decimal(f"{x:f}", field="x") == x


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_always_refused(x):
    with pytest.raises(BadInput):
        parse_decimal(x, field="x")
    with pytest.raises(BadInput):
        parse_decimal(repr(x) if "e" in repr(x) or "n" in repr(x) else "1e5", field="x")


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**9, max_value=10**9))
def test_quantize_is_idempotent_and_within_half_a_cent(x):
    q = quantize(x)
    assert quantize(q) == q
    assert abs(q - x) <= Decimal("0.005")
    assert from_minor(to_minor(x)) == q
    assert parse_amount(format_amount(abs(x)), field="x", currency="CNY") == abs(q)


def test_money_edges():
    assert quantize(Decimal("2.675")) == Decimal("2.68")  # half-up, not banker's rounding
    assert quantize(Decimal("-2.675")) == Decimal("-2.68")
    assert quantize(Decimal("1e30")) == Decimal("1e30")  # beyond the default 28 digits
    assert to_minor(Decimal("12.345"), "CNY") == 1235
    assert format_amount(Decimal("5E+3")) == "5000.00"
    with pytest.raises(BadInput):
        parse_amount("1" + "0" * 16, field="x")
    with pytest.raises(BadInput):
        parse_amount("1.234", field="x", currency="USD")
    with pytest.raises(BadInput):
        parse_amount("1", field="x", currency="JPY")
    assert parse_amount("1.20", field="x", currency="EUR") == Decimal("1.20")


# --- delinquency -----------------------------------------------------------------------------------

@given(installments(), repayments, as_of_dates)
def test_payments_never_create_money(plan, pays, as_of):
    s = assess_delinquency(plan, pays, as_of=as_of)
    applied = sum((i.paid for i in s.installments), Decimal(0))
    paid = sum((p.amount for p in pays if p.paid_on <= as_of), Decimal(0))
    assert applied + s.credit == paid == s.paid_total
    assert applied + s.outstanding == sum((i.total_due for i in plan), Decimal(0))
    assert s.credit == 0 or s.outstanding == 0


@given(installments(), as_of_dates, days)
def test_dpd_never_falls_without_payments(plan, as_of, later):
    before = assess_delinquency(plan, [], as_of=as_of)
    after = assess_delinquency(plan, [], as_of=as_of + timedelta(days=later))
    assert after.dpd >= before.dpd


@given(installments(), repayments, as_of_dates, st.randoms(use_true_random=False))
def test_order_of_payments_does_not_matter(plan, pays, as_of, rnd):
    shuffled = list(pays)
    rnd.shuffle(shuffled)
    a = assess_delinquency(plan, pays, as_of=as_of)
    b = assess_delinquency(plan, shuffled, as_of=as_of)
    assert (a.dpd, a.bucket, a.outstanding_principal, a.outstanding_interest, a.outstanding_fees,
            a.credit) == (b.dpd, b.bucket, b.outstanding_principal, b.outstanding_interest,
                          b.outstanding_fees, b.credit)
    assert [i.paid for i in a.installments] == [i.paid for i in b.installments]


@given(installments(), repayments, as_of_dates, st.integers(min_value=1, max_value=400), cents)
def test_a_payment_after_as_of_changes_nothing(plan, pays, as_of, after, amount):
    late = Repayment(as_of + timedelta(days=after), amount)
    assert assess_delinquency(plan, [*pays, late], as_of=as_of) == assess_delinquency(plan, pays, as_of=as_of)


@given(installments(), repayments, as_of_dates)
def test_every_loan_is_in_exactly_one_bucket(plan, pays, as_of):
    s = assess_delinquency(plan, pays, as_of=as_of)
    assert DEFAULT_BUCKETS.names.count(s.bucket) == 1
    assert (s.bucket == "closed") == (s.outstanding == 0)
    if s.bucket != "closed":
        assert s.bucket == DEFAULT_BUCKETS.bucket(s.dpd)
    assert s.dpd == 0 or (s.oldest_unpaid_due_date is not None and s.oldest_unpaid_due_date < as_of)


# --- APR -------------------------------------------------------------------------------------------

@st.composite
def monthly_loans(draw):
    advance = Decimal(draw(st.integers(min_value=100_00, max_value=1_000_000_00))).scaleb(-2)
    n = draw(st.integers(min_value=1, max_value=60))
    first = add_months(START, 1) + timedelta(days=draw(st.integers(min_value=-20, max_value=40)))
    amounts = draw(st.lists(st.integers(min_value=1, max_value=100_000_00), min_size=n, max_size=n))
    payments = tuple(Payment(add_months(first, k), Decimal(a).scaleb(-2)) for k, a in enumerate(amounts))
    return Loan(advance, START, payments)


@settings(max_examples=60, deadline=None)
@given(monthly_loans(), st.data())
def test_apr_rises_with_payment_amounts(loan, data):
    k = data.draw(st.integers(min_value=0, max_value=len(loan.payments) - 1))
    extra = Decimal(data.draw(st.integers(min_value=1, max_value=1_000_00))).scaleb(-2)
    bigger = list(loan.payments)
    bigger[k] = Payment(bigger[k].on, bigger[k].amount + extra)
    more = Loan(loan.advance, loan.advance_date, tuple(bigger))
    for method in ("actuarial", "irr"):
        try:
            low, high = compute_apr(loan, method=method).apr, compute_apr(more, method=method).apr
        except BadInput:  # an IRR beyond what a float holds (e.g. 10,000 times the loan in days)
            assume(False)
        assume(abs(high) < 1e12)  # beyond that the float APR has no cents left to compare
        assert high >= low


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=120), st.integers(min_value=1, max_value=10**6),
       st.sampled_from(["monthly", "weekly", "day", "irregular"]))
def test_apr_of_a_zero_interest_loan_is_zero(n, each, shape):
    step = {"monthly": None, "weekly": 7, "day": 1, "irregular": 0}[shape]
    dates = [add_months(START, k + 1) if step is None
             else START + timedelta(days=(k + 1) * step if step else 3 * (k + 1) ** 2 % 997 + k + 1)
             for k in range(n)]
    payments = tuple(Payment(d, Decimal(each)) for d in dates)
    loan = Loan(Decimal(each * n), START, payments)
    assert compute_apr(loan).apr == 0.0
    assert compute_apr(loan, method="irr").apr == 0.0
