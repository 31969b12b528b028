"""Annual percentage rate: Regulation Z Appendix J actuarial method, and the annualised IRR.

The actuarial APR solves the Appendix J (b)(8) general equation for a single advance

    A = sum_k P_k / ((1 + f_k * i) * (1 + i) ** t_k)

where A is the amount financed (the advance less upfront fees, 砍头息), P_k the payments, t_k the
number of full unit-periods from the advance to payment k and f_k the remaining fraction, counted
per (b)(5): month-based unit-periods count whole months back from the payment date, then days
(30 to a month, so 15 to a semimonth, 90 to a quarter); day- and week-based ones divide the day
count by the period length; a year counts whole years back, then months / 12 or days / 365.
APR = i * unit-periods per year, in percent, rounded half-up to 2 decimals.

Conventions where the regulation leaves room (see also ``_infer_unit``):
* a single payment loan without an explicit ``unit_period`` uses the term as the unit-period
  ((b)(5)(vi)-(vii)): 12 / months when the term is whole months, else 365 / days (reported as
  ``"unit_period": "term"``); a term of a year or more uses the year;
* an interval that is whole calendar months counted forward from a day clamped at month end
  (Jan 31 -> Feb 29) is whole months, though measuring back from Feb 29 would reach Jan 29;
* besides DESIGN §7's unit-periods, ``6months`` is accepted (a multiple of a month, (b)(5)(iii));
* ``method="irr"`` is the effective annual rate R with sum_k P_k (1 + R) ** (-d_k / 365) = A, d_k
  the exact days from the advance: the daily IRR compounded over 365 days, (1 + r_d) ** 365 - 1.

``apr_batch`` computes the same APR for a million regular loans at once with numpy (imported
lazily, so the CLI starts fast).
"""

from __future__ import annotations

import math
import re
from calendar import monthrange
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from collectguard.domain.money import ZERO, format_amount, parse_amount
from collectguard.errors import BadInput

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

Method = Literal["actuarial", "irr"]

#: Largest number of payments accepted: 40 years of weekly payments, to bound the work per input.
MAX_PAYMENTS = 2100


@dataclass(frozen=True)
class UnitPeriod:
    """A Regulation Z unit-period: how (b)(5) counts it and how many make a year."""

    name: str
    kind: Literal["days", "months30", "year"]
    length: int  # days (kind "days"), 30-day-month days (kind "months30"), months (kind "year")
    per_year: int
    approx_days: float  # calendar length, to round an average period to the nearest unit


UNIT_PERIODS: dict[str, UnitPeriod] = {
    u.name: u
    for u in (
        UnitPeriod("day", "days", 1, 365, 1.0),
        UnitPeriod("week", "days", 7, 52, 7.0),
        UnitPeriod("2weeks", "days", 14, 26, 14.0),
        UnitPeriod("semimonth", "months30", 15, 24, 365 / 24),
        UnitPeriod("4weeks", "days", 28, 13, 28.0),
        UnitPeriod("month", "months30", 30, 12, 365 / 12),
        UnitPeriod("2months", "months30", 60, 6, 365 / 6),
        UnitPeriod("quarter", "months30", 90, 4, 365 / 4),
        UnitPeriod("6months", "months30", 180, 2, 365 / 2),
        UnitPeriod("year", "year", 12, 1, 365.0),
    )
}
FREQUENCIES: dict[str, str] = {
    "monthly": "month", "semimonthly": "semimonth", "weekly": "week", "biweekly": "2weeks",
    "quarterly": "quarter",
}
_MONTHLY_UNITS = {1: "month", 2: "2months", 3: "quarter", 6: "6months", 12: "year"}
_DAILY_UNITS = {1: "day", 7: "week", 14: "2weeks", 28: "4weeks"}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INPUT_FIELDS = {"advance", "advance_date", "payments", "schedule", "upfront_fees", "unit_period"}


@dataclass(frozen=True)
class Payment:
    """One payment of ``amount`` on ``on``."""

    on: date
    amount: Decimal


@dataclass(frozen=True)
class Loan:
    """A single-advance loan: what the borrower was lent, when, and what they pay back."""

    advance: Decimal
    advance_date: date
    payments: tuple[Payment, ...]
    upfront_fees: Decimal = ZERO
    unit_period: str | None = None

    @property
    def amount_financed(self) -> Decimal:
        """The money actually in the borrower's hands: the advance less upfront fees."""
        return self.advance - self.upfront_fees

    @property
    def total_of_payments(self) -> Decimal:
        """Everything the borrower pays back."""
        return sum((p.amount for p in self.payments), ZERO)


@dataclass(frozen=True)
class AprResult:
    """An APR with the Truth-in-Lending figures it was computed from."""

    apr: float  # percent, rounded half-up to 2 decimals
    method: Method
    unit_period: str
    unit_periods_per_year: float
    amount_financed: Decimal
    finance_charge: Decimal
    total_of_payments: Decimal

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape of DESIGN §7 (amounts as decimal strings, the APR a number)."""
        per_year = self.unit_periods_per_year
        return {
            "apr": self.apr,
            "method": self.method,
            "unit_period": self.unit_period,
            "unit_periods_per_year": int(per_year) if per_year == int(per_year) else round(per_year, 6),
            "amount_financed": format_amount(self.amount_financed),
            "finance_charge": format_amount(self.finance_charge),
            "total_of_payments": format_amount(self.total_of_payments),
        }


# --- calendar -------------------------------------------------------------------------------------

def add_months(d: date, months: int) -> date:
    """Return ``d`` moved by ``months`` calendar months, the day clamped to the month's end."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, monthrange(year, month)[1]))


def _months_back(start: date, end: date) -> tuple[int, int]:
    """Whole months measured back from ``end`` toward ``start``, and the days left over.

    An interval that is whole calendar months counted forward (Jan 31 -> Feb 29, a date clamped
    at month end) is whole months, though measuring back from Feb 29 would stop at Jan 29.
    """
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) == end:
        return months, 0
    if add_months(end, -months) < start:
        months -= 1
    return months, (add_months(end, -months) - start).days


def periods_between(start: date, end: date, unit: UnitPeriod) -> tuple[int, float]:
    """Full unit-periods ``t`` and the fraction ``f`` from ``start`` to ``end`` per (b)(5)."""
    if unit.kind == "days":
        t, rest = divmod((end - start).days, unit.length)
        return t, rest / unit.length
    months, days = _months_back(start, end)
    if unit.kind == "months30":
        t, rest = divmod(30 * months + days, unit.length)
        return t, rest / unit.length
    years, rest_months = divmod(months, 12)
    if days == 0:
        return years, rest_months / 12
    return years, (add_months(end, -12 * years) - start).days / 365


def _day_in_month(d: date, months: int, day: int) -> date:
    """The ``day`` (clamped to the month's end) of the month ``months`` after ``d``'s month."""
    first = add_months(d.replace(day=1), months)
    return first.replace(day=min(day, monthrange(first.year, first.month)[1]))


def schedule_dates(first: date, count: int, frequency: str) -> list[date]:
    """The due dates of a regular schedule (``frequency`` as in DESIGN §7).

    Monthly and quarterly dates keep the first date's day of month (clamped at month end);
    semimonthly dates fall on that day and on the day 15 days later (1st and 16th, 15th and 30th,
    clamped) or, for a first day after the 15th, 15 days earlier in the next month (20th, 5th).
    """
    if frequency in ("weekly", "biweekly"):
        step = 7 if frequency == "weekly" else 14
        return [first + timedelta(days=step * k) for k in range(count)]
    if frequency in ("monthly", "quarterly"):
        step = 1 if frequency == "monthly" else 3
        return [add_months(first, step * k) for k in range(count)]
    out = []
    for k in range(count):
        half, second = divmod(k, 2)
        if first.day <= 15:
            out.append(_day_in_month(first, half, first.day + 15 if second else first.day))
        else:
            out.append(_day_in_month(first, half + second, first.day - 15 if second else first.day))
    return out


# --- input ----------------------------------------------------------------------------------------

def _parse_date(value: object, *, field: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise BadInput(f"expected a date as YYYY-MM-DD, got {value!r}", field=field)


def _parse_count(value: object, *, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"expected a whole number, got {value!r}", field=field)
    if not 1 <= value <= MAX_PAYMENTS:
        raise BadInput(f"must be between 1 and {MAX_PAYMENTS}, got {value}", field=field)
    return value


def parse_loan(data: Mapping[str, Any]) -> Loan:
    """Validate an APR input (DESIGN §7) into a :class:`Loan`; BadInput names the bad field."""
    if not isinstance(data, Mapping):
        raise BadInput("expected a JSON object")
    unknown = sorted(set(data) - _INPUT_FIELDS)
    if unknown:
        raise BadInput(f"unknown field; expected {sorted(_INPUT_FIELDS)}", field=str(unknown[0]))
    for required in ("advance", "advance_date"):
        if required not in data:
            raise BadInput("is required", field=required)
    advance = parse_amount(data["advance"], field="advance", positive=True)
    advance_date = _parse_date(data["advance_date"], field="advance_date")
    fees = parse_amount(data.get("upfront_fees", 0), field="upfront_fees")
    if fees >= advance:
        raise BadInput("upfront fees must be less than the advance", field="upfront_fees")
    unit = data.get("unit_period")
    if unit is not None and (not isinstance(unit, str) or unit not in UNIT_PERIODS):
        raise BadInput(f"expected one of {list(UNIT_PERIODS)}, got {unit!r}", field="unit_period")
    if ("payments" in data) == ("schedule" in data):
        raise BadInput("give either payments or schedule", field="payments")
    payments = (_parse_payments(data["payments"]) if "payments" in data
                else _parse_schedule(data["schedule"]))
    for n, p in enumerate(payments):
        if p.on < advance_date:
            raise BadInput("a payment is dated before the advance",
                           field=f"payments[{n}].date" if "payments" in data else "schedule.first_date")
    if not any(p.amount > 0 and p.on > advance_date for p in payments):
        raise BadInput("no payment after the advance date", field="payments" if "payments" in data
                       else "schedule.first_date")
    return Loan(advance, advance_date, tuple(sorted(payments, key=lambda p: p.on)), fees, unit)


def _parse_payments(raw: object) -> list[Payment]:
    if not isinstance(raw, list) or not raw:
        raise BadInput("expected a non-empty list of {date, amount}", field="payments")
    if len(raw) > MAX_PAYMENTS:
        raise BadInput(f"at most {MAX_PAYMENTS} payments", field="payments")
    out = []
    for n, item in enumerate(raw):
        where = f"payments[{n}]"
        if not isinstance(item, Mapping):
            raise BadInput("expected an object {date, amount}", field=where)
        for key in ("date", "amount"):
            if key not in item:
                raise BadInput("is required", field=f"{where}.{key}")
        out.append(Payment(_parse_date(item["date"], field=f"{where}.date"),
                           parse_amount(item["amount"], field=f"{where}.amount")))
    return out


def _parse_schedule(raw: object) -> list[Payment]:
    if not isinstance(raw, Mapping):
        raise BadInput("expected an object {count, amount, first_date, frequency}", field="schedule")
    for key in ("count", "amount", "first_date", "frequency"):
        if key not in raw:
            raise BadInput("is required", field=f"schedule.{key}")
    count = _parse_count(raw["count"], field="schedule.count")
    amount = parse_amount(raw["amount"], field="schedule.amount", positive=True)
    first = _parse_date(raw["first_date"], field="schedule.first_date")
    if not isinstance(raw["frequency"], str) or raw["frequency"] not in FREQUENCIES:
        raise BadInput(f"expected one of {list(FREQUENCIES)}, got {raw['frequency']!r}",
                       field="schedule.frequency")
    return [Payment(d, amount) for d in schedule_dates(first, count, raw["frequency"])]


# --- unit-period ----------------------------------------------------------------------------------

def _interval_unit(a: date, b: date) -> str | None:
    """The standard unit-period the interval from ``a`` to ``b`` is exactly, if any."""
    months = (b.year - a.year) * 12 + b.month - a.month
    # Either direction, so month-end schedules (Jan 31 -> Feb 28 -> Mar 31) stay monthly.
    if months in _MONTHLY_UNITS and (add_months(a, months) == b or add_months(b, -months) == a):
        return _MONTHLY_UNITS[months]
    days = (b - a).days
    if days in _DAILY_UNITS:
        return _DAILY_UNITS[days]
    return "semimonth" if 13 <= days <= 16 else None


def _infer_unit(advance_date: date, dates: Sequence[date]) -> UnitPeriod:
    """(b)(4)(i): the common period occurring most often (the smaller on a tie); with no common
    period, the average period rounded to the nearest standard unit (the lower on a tie).

    A period is "common" when it occurs at least twice; the advance-to-first-payment interval
    counts like any other.
    """
    points = sorted({advance_date, *dates})
    intervals = list(pairwise(points))
    counts = Counter(u for a, b in intervals if (u := _interval_unit(a, b)) is not None)
    common = {name: n for name, n in counts.items() if n >= 2}
    if common:
        best = max(common.values())
        return min((UNIT_PERIODS[name] for name, n in common.items() if n == best),
                   key=lambda u: u.approx_days)
    average = sum((b - a).days for a, b in intervals) / len(intervals)
    return min(UNIT_PERIODS.values(), key=lambda u: (abs(u.approx_days - average), u.approx_days))


# --- solver ---------------------------------------------------------------------------------------

Term = tuple[float, float, float]  # payment P, fraction f, full periods t
# Newton converges quadratically: once a Newton step is this small relative to the rate, the rate
# after it is good to about the square, machine precision; asking for steps near one ulp instead
# would never end (rounding noise). A bisection step only counts once the bracket is that tight.
_STEP_TOLERANCE = 1e-8


def _present_value(terms: Sequence[Term], i: float) -> tuple[float, float]:
    """Sum of P / ((1 + f i)(1 + i)^t) and its derivative in i (logs keep high rates finite)."""
    log_growth = math.log1p(i)
    value = slope = 0.0
    for p, f, t in terms:
        term = p * math.exp(min(700.0, -t * log_growth - math.log1p(f * i)))
        value += term
        slope -= term * (t / (1 + i) + f / (1 + f * i))
    return value, slope


def solve_rate(terms: Sequence[Term], target: float) -> float:
    """The rate i > -1 at which the payments' present value equals ``target``.

    The present value falls and is convex in i, so Newton, started at the simple-interest rate,
    lands left of the root and then climbs to it without overshooting; a bracket is kept anyway
    and a step that leaves it is replaced by bisection, so very high rates (payday loans) converge.
    """
    def excess(i: float) -> float:
        return _present_value(terms, i)[0] - target

    total = sum(p for p, _, _ in terms)
    if total == target:
        return 0.0
    if total > target:
        lo, hi = 0.0, 1.0
        while excess(hi) > 0:
            lo, hi = hi, hi * 2
            if hi > 1e15:
                raise BadInput("no finite rate repays this loan", field="payments")
    else:
        lo, hi = -0.5, 0.0
        while excess(lo) < 0:
            lo, hi = -1 + (1 + lo) / 16, lo
            if lo <= -1 + 1e-12:
                raise BadInput("no rate above -100% matches these payments", field="payments")
    mean_time = sum(p * (t + f) for p, f, t in terms) / total
    guess = (total / target - 1) / mean_time if mean_time > 0 else lo
    i = guess if lo <= guess <= hi else (lo + hi) / 2
    for step in range(400):
        value, slope = _present_value(terms, i)
        if value == target:
            return i
        if value > target:
            lo = i
        else:
            hi = i
        new = i - (value - target) / slope if slope < 0 and step < 100 else math.nan
        if lo <= new <= hi:  # a bound may be the root itself
            if abs(new - i) <= _STEP_TOLERANCE * abs(new) + 1e-15:
                return new
        else:
            new = (lo + hi) / 2
            if hi - lo <= 1e-15 * abs(new) + 1e-18:
                return new
        i = new
    return i


def _round_percent(x: float) -> float:
    # The float's shortest repr, rounded half-up in decimal; the context fits any finite float.
    exact = Context(prec=400, rounding=ROUND_HALF_UP)
    return float(Decimal(repr(x)).quantize(Decimal("0.01"), context=exact))


# --- APR ------------------------------------------------------------------------------------------

def _actuarial_terms(loan: Loan) -> tuple[str, float, list[Term]]:
    """Unit-period name, unit-periods per year and (P, f, t) per payment for (b)(8)."""
    dated = loan.payments  # zero payments still mark the schedule's dates for the unit-period
    if loan.unit_period is None and len(dated) == 1:
        # (b)(5)(vi)-(vii): a single payment's term is one unit-period, when shorter than a year.
        (only,) = dated
        months, days = _months_back(loan.advance_date, only.on)
        if months < 12:
            per_year = 12 / months if days == 0 else 365 / (only.on - loan.advance_date).days
            return "term", per_year, [(float(only.amount), 0.0, 1.0)]
    unit = (UNIT_PERIODS[loan.unit_period] if loan.unit_period
            else _infer_unit(loan.advance_date, [p.on for p in dated]))
    terms = []
    for p in dated:
        t, f = periods_between(loan.advance_date, p.on, unit)
        terms.append((float(p.amount), f, float(t)))
    return unit.name, float(unit.per_year), terms


def compute_apr(loan: Loan, *, method: Method = "actuarial") -> AprResult:
    """The APR of ``loan`` in percent (2 decimals) by the Appendix J actuarial method or the IRR."""
    financed = loan.amount_financed
    if financed <= 0 or any(p.on < loan.advance_date or p.amount < 0 for p in loan.payments) or not any(
            p.amount > 0 and p.on > loan.advance_date for p in loan.payments):
        raise BadInput("need a positive amount financed, payments of zero or more none of them before "
                       "the advance, and one after it", field="payments")
    on_advance_date = sum((p.amount for p in loan.payments if p.on == loan.advance_date), ZERO)
    if on_advance_date >= financed:
        raise BadInput("payments on the advance date already repay the amount financed",
                       field="payments")
    if method == "actuarial":
        unit_name, per_year, terms = _actuarial_terms(loan)
        rate = solve_rate(terms, float(financed)) * per_year
    elif method == "irr":
        unit_name, per_year = "day", 365.0
        terms = [(float(p.amount), 0.0, float((p.on - loan.advance_date).days))
                 for p in loan.payments if p.amount > 0]
        try:  # the daily rate compounded over a year: the effective annual rate
            rate = math.expm1(365 * math.log1p(solve_rate(terms, float(financed))))
        except OverflowError:
            rate = math.inf
    else:
        raise BadInput(f"expected 'actuarial' or 'irr', got {method!r}", field="method")
    if not math.isfinite(rate * 100):
        raise BadInput("the rate is too large to represent (try the actuarial APR)", field="payments")
    total = loan.total_of_payments
    return AprResult(
        apr=_round_percent(rate * 100),
        method=method,
        unit_period=unit_name,
        unit_periods_per_year=per_year,
        amount_financed=financed,
        finance_charge=total - financed,
        total_of_payments=total,
    )


def apr(data: Mapping[str, Any], *, method: str = "actuarial") -> dict[str, Any]:
    """Parse an APR input (DESIGN §7) and return the result as a JSON-ready dict."""
    if method not in ("actuarial", "irr"):
        raise BadInput(f"expected 'actuarial' or 'irr', got {method!r}", field="method")
    return compute_apr(parse_loan(data), method="irr" if method == "irr" else "actuarial").to_dict()


# --- batch ----------------------------------------------------------------------------------------

def apr_batch(
    *,
    advance: ArrayLike,
    count: ArrayLike,
    amount: ArrayLike,
    unit_period: str | ArrayLike = "month",
    upfront_fees: ArrayLike = 0,
    advance_date: ArrayLike | None = None,
    first_date: ArrayLike | None = None,
    on_invalid: Literal["raise", "nan"] = "raise",
) -> NDArray[np.float64]:
    """Actuarial APRs (percent, 2 decimals; a 1-D array) of many regular loans, vectorised.

    Loan k lends ``advance[k]`` less ``upfront_fees[k]`` and is repaid by ``count[k]`` payments of
    ``amount[k]``, one ``unit_period`` apart (a unit name or a frequency such as ``"monthly"``,
    one for all loans or one per loan). Amounts are integer minor units (fen, cents), so no money
    is ever a float. Without dates the first payment falls one unit-period after the advance;
    with ``advance_date`` and ``first_date`` the odd first period is counted as in the scalar
    :func:`compute_apr` and each later payment one full unit-period after the one before (exactly
    the scalar answer whenever the schedule keeps its day of month, i.e. days up to the 28th).
    Invalid rows raise BadInput naming the first (``on_invalid="nan"``: they come back NaN).
    """
    import numpy as np

    if (advance_date is None) != (first_date is None):
        raise BadInput("give both advance_date and first_date, or neither", field="first_date")
    fields = {"advance": advance, "upfront_fees": upfront_fees, "count": count, "amount": amount}
    arrays = {}
    for name, value in fields.items():
        arr = np.atleast_1d(np.asarray(value))
        if arr.dtype.kind not in "iu":
            raise BadInput("expected integers (minor units)", field=name)
        arrays[name] = arr.astype(np.int64)
    try:
        adv, fees, n, pay = np.broadcast_arrays(*arrays.values())
        units = np.broadcast_to(np.asarray(unit_period), adv.shape)
    except ValueError:
        raise BadInput("expected one value per loan, or one for all", field="advance") from None
    dates = []
    for name, raw in (("advance_date", advance_date), ("first_date", first_date)):
        try:
            if raw is not None:
                dates.append(np.broadcast_to(np.asarray(raw, dtype="datetime64[D]"), adv.shape))
        except ValueError as exc:  # an unparsable date, or not one per loan
            raise BadInput(f"expected dates, one per loan or one for all ({exc})", field=name) from None
    bad = {"advance": (adv <= 0, "must be greater than zero"),
           "upfront_fees": ((fees < 0) | (fees >= adv), "must be zero or more and less than the advance"),
           "count": ((n < 1) | (n > MAX_PAYMENTS), f"must be between 1 and {MAX_PAYMENTS}"),
           "amount": (pay <= 0, "must be greater than zero"),
           "unit_period": (np.zeros(adv.shape, dtype=bool), f"expected one of {list(UNIT_PERIODS)}")}
    if dates:
        bad["first_date"] = (dates[1] <= dates[0], "must be after the advance date")
    t0 = np.ones(adv.shape, dtype=np.float64)
    frac = np.zeros(adv.shape, dtype=np.float64)
    per_year = np.full(adv.shape, np.nan)
    for name in np.unique(units):
        unit = UNIT_PERIODS.get(FREQUENCIES.get(str(name), str(name)))
        mask = units == name
        if unit is None:
            bad["unit_period"][0][mask] = True
            continue
        per_year[mask] = unit.per_year
        if dates:
            t0[mask], frac[mask] = _first_period_np(dates[0][mask], dates[1][mask], unit)
    invalid = np.zeros(adv.shape, dtype=bool)
    for name, (rows, message) in bad.items():
        if on_invalid == "raise" and rows.any():
            raise BadInput(message, field=f"{name}[{int(np.flatnonzero(rows)[0])}]")
        invalid |= rows
    financed = (adv - fees).astype(np.float64)
    rate = _solve_regular_np(pay.astype(np.float64) / np.where(invalid, 1, financed),
                             np.where(invalid, 1, n).astype(np.float64), t0, frac)
    percent = rate * per_year * 100
    rounded = np.sign(percent) * np.floor(np.abs(percent) * 100 + 0.5) / 100
    return np.where(invalid, np.nan, rounded)


def _add_months_np(d: NDArray[Any], months: NDArray[np.int64]) -> NDArray[Any]:
    import numpy as np

    month = d.astype("datetime64[M]")
    day = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + months.astype("timedelta64[M]")
    last = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64) - 1
    moved: NDArray[Any] = target.astype("datetime64[D]") + np.minimum(day, last).astype("timedelta64[D]")
    return moved


def _first_period_np(
    start: NDArray[Any], end: NDArray[Any], unit: UnitPeriod
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised :func:`periods_between` (same (b)(5) counting)."""
    import numpy as np

    if unit.kind == "days":
        t, rest = np.divmod((end - start).astype(np.int64), unit.length)
        return t.astype(np.float64), rest / unit.length
    months = (end.astype("datetime64[M]") - start.astype("datetime64[M]")).astype(np.int64)
    whole = _add_months_np(start, months) == end
    months = np.where(~whole & (_add_months_np(end, -months) < start), months - 1, months)
    days = np.where(whole, 0, (_add_months_np(end, -months) - start).astype(np.int64))
    if unit.kind == "months30":
        t, rest = np.divmod(30 * months + days, unit.length)
        return t.astype(np.float64), rest / unit.length
    years, rest_months = np.divmod(months, 12)
    by_days = (_add_months_np(end, -12 * years) - start).astype(np.int64) / 365
    return years.astype(np.float64), np.where(days == 0, rest_months / 12, by_days)


def _solve_regular_np(
    ratio: NDArray[np.float64], n: NDArray[np.float64], t0: NDArray[np.float64], f: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Rates i solving ratio * sum_{k<n} (1+i)^-(t0+k) / (1 + f i) = 1 (ratio = payment / financed).

    Newton on g(i), the log of the present value, which is convex and falling in i, so that from
    either side of the root it converges without leaving a bracket built from closed-form bounds
    (a step that would leave it bisects instead). The start is the simple-interest rate.
    """
    import numpy as np

    total = ratio * n
    positive = total >= 1
    # Right bound: the present value is at most total / (1 + i) (t0 >= 1) or total / (1 + f i).
    hi = np.where(positive, (total - 1) / np.where(t0 >= 1, 1.0, np.maximum(f, 1e-12)), 0.0)
    # Left bound for a negative rate: the last payment alone is worth ratio * (1 + i)^-(t0+n-1).
    # A single payment inside the first unit-period (t0 = 0) is worth ratio / (1 + f i): solved
    # outright, and without a rate above -100% when that would need i <= -1.
    single = (t0 + n - 1) < 1
    by_last = np.power(np.minimum(ratio, 1.0), 1 / np.maximum(t0 + n - 1, 1)) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(positive, 0.0, np.where(single, (ratio - 1) / f, by_last))
    no_root = ~positive & single & ~(lo > -1)
    lo = np.where(no_root, -0.5, lo)
    guess = (total - 1) / (t0 + f + (n - 1) / 2)
    i = np.where((guess >= lo) & (guess <= hi), guess, (lo + hi) / 2)
    log_ratio = np.log(ratio)
    any_fraction = bool((f != 0).any())
    active = np.flatnonzero((total != 1) & ~no_root)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for step in range(200):
            if active.size == 0:
                break
            x, nn, tt = i[active], n[active], t0[active]
            big_l = np.log1p(x)
            growing = big_l > 0
            y = np.abs(big_l)
            a = -np.expm1(-nn * y)  # 1 - (1+i)^-n for i > 0
            # log of sum_{k<n} (1+i)^-k, and the mean k weighted by those terms (for the slope)
            log_sum = np.log(a) - np.log(-np.expm1(-y)) + np.where(growing, 0.0, (nn - 1) * y)
            mean_k = 1 / x - np.where(growing, nn * (1 - a) / a, -nn / a)
            small = np.abs(nn * big_l) < 1e-6  # near i = 0 the closed forms cancel; use the series
            log_sum = np.where(y == 0, np.log(nn), log_sum)
            mean_k = np.where(small, (nn - 1) / 2 + (1 - nn * nn) * big_l / 12, mean_k)
            g = log_ratio[active] - tt * big_l + log_sum
            slope = -(tt + mean_k) / (1 + x)
            if any_fraction:
                ff = f[active]
                g -= np.log1p(ff * x)
                slope -= ff / (1 + ff * x)
            above = g > 0
            lo[active] = np.where(above, x, lo[active])
            hi[active] = np.where(above, hi[active], x)
            new = x - g / slope if step < 100 else np.full(x.shape, np.nan)
            newton = (new >= lo[active]) & (new <= hi[active])  # a bound may be the root itself
            new = np.where(newton, new, (lo[active] + hi[active]) / 2)
            tight = np.where(newton, np.abs(new - x) <= _STEP_TOLERANCE * np.abs(new) + 1e-15,
                             hi[active] - lo[active] <= 1e-15 * np.abs(new) + 1e-18)
            done = tight | (g == 0)
            i[active] = np.where(g == 0, x, new)
            active = active[~done]
    return np.where(total == 1, 0.0, np.where(no_root, np.nan, i))
