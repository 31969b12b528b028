"""Synthetic loans for the demo: products, equal-instalment schedules and payment behaviour.

Each loan is drawn with a target delinquency state on the reference date (closed, M0, M1 … M6+)
and its disbursement date is placed so that the schedule and the payments produce that state under
DESIGN §13 (payments cover installments oldest first; DPD counts from the oldest unpaid due date).
All amounts are Decimal; the maths is that of 等额本息 (equal instalments of principal and interest).
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)

# One-year LPR by the date it took effect (PBOC announcements); private lenders' cap is 4 × this.
LPR_HISTORY = ((dt.date(2023, 8, 21), Decimal("3.45")), (dt.date(2024, 7, 22), Decimal("3.35")),
               (dt.date(2024, 10, 21), Decimal("3.10")), (dt.date(2025, 5, 20), Decimal("3.00")))

TARGETS = ("closed", "M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")
TARGET_WEIGHTS = (14, 46, 12, 7, 5, 4, 3, 3, 6)
DPD_RANGES = {"M1": (1, 30), "M2": (31, 60), "M3": (61, 90), "M4": (91, 120), "M5": (121, 150),
              "M6": (151, 180), "M6+": (181, 720)}

# (product, unit, term, principal low, high, step, weight) per lender type, CN loans.
CN_PRODUCTS = {
    "licensed_institution": (
        ("消费贷-12期", "month", 12, 10_000, 100_000, 1000, 3),
        ("消费贷-24期", "month", 24, 20_000, 200_000, 1000, 2),
        ("分期-3期", "month", 3, 1000, 10_000, 100, 3),
        ("分期-6期", "month", 6, 2000, 20_000, 100, 3),
        ("分期-12期", "month", 12, 3000, 30_000, 100, 2),
        ("现金贷-30天", "day", 30, 500, 5000, 100, 2),
    ),
    "small_loan_company": (
        ("现金贷-7天", "day", 7, 500, 3000, 100, 2),
        ("现金贷-14天", "day", 14, 500, 5000, 100, 2),
        ("现金贷-30天", "day", 30, 1000, 8000, 100, 3),
        ("分期-3期", "month", 3, 1000, 10_000, 100, 2),
        ("分期-6期", "month", 6, 2000, 20_000, 100, 2),
    ),
    "private": (
        ("民间借贷-6期", "month", 6, 5000, 50_000, 1000, 1),
        ("民间借贷-12期", "month", 12, 10_000, 100_000, 1000, 1),
    ),
    "unlicensed": (
        ("现金贷-7天", "day", 7, 500, 2000, 100, 3),
        ("现金贷-14天", "day", 14, 800, 3000, 100, 2),
    ),
}
LENDER_TYPES = ("licensed_institution", "small_loan_company", "private", "unlicensed")
LENDER_WEIGHTS = (55, 32, 6, 7)


@dataclass
class Loan:
    product: str
    lender_type: str
    currency: str
    principal: Decimal
    annual_rate: Decimal
    upfront_fees: Decimal
    fee_per_period: Decimal
    unit: str  # day | month
    term: int
    disbursed_on: dt.date = dt.date.min
    lpr_at_signing: Decimal | None = None


def add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def lpr_on(day: dt.date) -> Decimal:
    rate = LPR_HISTORY[0][1]
    for since, value in LPR_HISTORY:
        if day >= since:
            rate = value
    return rate


def _q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def schedule(loan: Loan) -> list[tuple[dt.date, Decimal, Decimal, Decimal]]:
    """(due_date, principal_due, interest_due, fee_due) per installment.

    Day loans are one bullet repayment with interest on a 360-day year (日利率 = 年利率 / 360);
    monthly loans amortise in equal instalments, the last one absorbing the rounding.
    """
    p, rate, fee = loan.principal, loan.annual_rate / 100, loan.fee_per_period
    if loan.unit == "day":
        due = loan.disbursed_on + dt.timedelta(days=loan.term)
        return [(due, p, _q(p * rate * loan.term / 360), fee)]
    r, n = rate / 12, loan.term
    payment = _q(p / n) if r == 0 else _q(p * r * (1 + r) ** n / ((1 + r) ** n - 1))
    rows, balance = [], p
    for i in range(1, n + 1):
        interest = _q(balance * r)
        principal = balance if i == n else min(balance, payment - interest)
        balance -= principal
        rows.append((add_months(loan.disbursed_on, i), principal, interest, fee))
    return rows


def draw_loan(rng: random.Random, jurisdiction: str) -> Loan:
    """Product, lender type and price of one loan (without dates)."""
    if jurisdiction != "CN":
        term = rng.choice((6, 12, 24))
        rate = Decimal(rng.choice(("9.99", "14.99", "24.99", "35.99") if jurisdiction == "US"
                                  else ("4.9", "6.9", "9.9", "14.9")))
        return Loan(f"installment-{term}m", "licensed_institution", "USD" if jurisdiction == "US" else "EUR",
                    Decimal(rng.randrange(1000, 15_001, 100)), rate, ZERO, ZERO, "month", term)
    lender = rng.choices(LENDER_TYPES, weights=LENDER_WEIGHTS)[0]
    products = CN_PRODUCTS[lender]
    name, unit, term, lo, hi, step, _ = rng.choices(products, weights=[p[6] for p in products])[0]
    principal = Decimal(rng.randrange(lo, hi + 1, step))
    fees = fee_period = ZERO
    if lender == "licensed_institution":
        rate = Decimal(rng.choice(("7.2", "9.9", "12.0", "15.4", "18.0", "21.6", "23.9")))
    elif lender == "small_loan_company":
        rate = Decimal(rng.choice(("18.0", "21.6", "23.9", "24.0")))
        if rng.random() < 0.4:  # a monthly "service fee" on top of interest, common in 小贷 pricing
            fee_period = _q(principal * Decimal(rng.choice(("0.003", "0.005", "0.01"))))
    elif lender == "private":
        # Some above 4 × LPR: the guard should find the illegal part.
        rate = Decimal(rng.choice(("8.0", "10.8", "12.0", "14.6", "18.0", "24.0")))
    else:
        # Unlicensed 714 高炮: 砍头息 deducted up front plus a usurious nominal rate.
        rate = Decimal(rng.choice(("36", "48", "72", "120", "365")))
        fees = _q(principal * Decimal(rng.choice(("0.2", "0.25", "0.3"))))
        fee_period = _q(principal * Decimal(rng.choice(("0", "0.05", "0.1"))))
    return Loan(name, lender, "CNY", principal, rate, fees, fee_period, unit, term)


def _paid_on(rng: random.Random, due: dt.date, *, start: dt.date, ref: dt.date) -> dt.date:
    """On time mostly, some early, some late; never before disbursement nor on/after the reference date."""
    roll = rng.random()
    day = due if roll < 0.7 else (due - dt.timedelta(days=rng.randint(1, 5)) if roll < 0.82
                                  else due + dt.timedelta(days=rng.randint(1, 25)))
    return max(start, min(day, ref - dt.timedelta(days=1)))


def place(rng: random.Random, loan: Loan, ref: dt.date) -> tuple[
        str, list[tuple[dt.date, Decimal, Decimal, Decimal]], list[tuple[dt.date, Decimal]]]:
    """Draw a target state, set ``loan.disbursed_on`` for it; return (target, schedule, payments)."""
    target = rng.choices(TARGETS, weights=TARGET_WEIGHTS)[0]
    n = 1 if loan.unit == "day" else loan.term
    unpaid_from = n + 1  # 1-based index of the first installment left unpaid
    payoff = False
    if target in DPD_RANGES:
        lo, hi = DPD_RANGES[target]
        k = rng.randint(1, n)
        for _ in range(20):  # month ends would shift the due date: keep the day ≤ 28
            due_k = ref - dt.timedelta(days=rng.randint(lo, hi))
            if loan.unit == "day" or due_k.day <= 28:
                break
        loan.disbursed_on = (due_k - dt.timedelta(days=loan.term) if loan.unit == "day"
                             else add_months(due_k, -k))
        unpaid_from = k
    elif target == "M0" or (target == "closed" and n > 1 and rng.random() < 0.35):
        payoff = target == "closed"
        if loan.unit == "day":
            loan.disbursed_on = ref - dt.timedelta(days=rng.randint(0, loan.term))
        else:
            done = rng.randint(1 if payoff else 0, n - 1)
            loan.disbursed_on = add_months(ref - dt.timedelta(days=rng.randint(1, 27)), -done)
    else:  # closed at maturity
        last = ref - dt.timedelta(days=rng.randint(1, 400))
        loan.disbursed_on = (last - dt.timedelta(days=loan.term) if loan.unit == "day"
                             else add_months(last, -n))
    if loan.lender_type == "private":
        loan.lpr_at_signing = lpr_on(loan.disbursed_on)
    rows = schedule(loan)
    payments: list[tuple[dt.date, Decimal]] = []
    for i, (due, p, interest, fee) in enumerate(rows, start=1):
        total = p + interest + fee
        if i < unpaid_from and (target in DPD_RANGES or due < ref):
            payments.append((_paid_on(rng, due, start=loan.disbursed_on, ref=ref), total))
        elif i == unpaid_from and target in DPD_RANGES and rng.random() < 0.35:
            # A partial payment leaves the installment unpaid: it still counts for DPD.
            day = max(loan.disbursed_on, due - dt.timedelta(days=5))
            day += dt.timedelta(days=rng.randint(0, max(0, (ref - day).days - 1)))
            payments.append((day, _q(total * rng.randint(10, 80) / 100)))
    if payoff:
        last_paid = max((d for d, *_ in rows if d < ref), default=loan.disbursed_on)
        on = min(ref - dt.timedelta(days=1), last_paid + dt.timedelta(days=rng.randint(1, 20)))
        # Early settlement: the remaining principal is paid at once, later interest and fees waived.
        rows = [(d, p, i, f) if d < ref else (d, p, ZERO, ZERO) for d, p, i, f in rows]
        owed = sum((p for d, p, _, _ in rows if d >= ref), ZERO)
        if owed > 0:
            payments.append((max(on, loan.disbursed_on), owed))
    return target, rows, payments
