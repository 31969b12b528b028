"""Actuarial APRs (Regulation Z Appendix J) of many loans with *any* dated schedule, vectorised.

``apr_matrix`` is :func:`collectguard.domain.apr.compute_apr` for a whole portfolio at once: the
schedules come as an N x K matrix of due dates (one row per loan, padded) and amounts, and every
step of the scalar method is done for all loans together with numpy:

* the unit-period of each loan by (b)(4)(i), as ``_infer_unit`` does: the common period (one
  occurring at least twice among the intervals advance -> 1st payment -> 2nd ...) occurring most
  often, the smaller on a tie; with none, the average interval rounded to the nearest unit;
* each payment's full unit-periods ``t`` and fraction ``f`` from the advance by (b)(5);
* the rate solving sum P / ((1 + f i)(1 + i)^t) = amount financed, by Newton's method kept inside a
  bracket (bisection when a step would leave it), started at the simple-interest rate;
* a single payment within a year is its own unit-period ((b)(5)(vi)-(vii)).

Dates are day numbers (whole days since 1970-01-01; ``datetime64[D]`` arrays are accepted too),
and the month counting of (b)(4)-(b)(5) is integer arithmetic on year, month and day
(``domain.daynum``): the same ``t`` and ``f`` as the scalar code's ``datetime.date`` arithmetic,
exactly, and several times faster than numpy's ``datetime64[M]`` conversions.

Rows it does not model come back NaN with ``fallback`` set, for the caller to price one by one
with the scalar ``compute_apr``: payments not strictly after the advance or not strictly
increasing, a negative rate (payments below the amount financed), a single payment a year or
more after the advance, and anything that did not converge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collectguard.domain.apr import _STEP_TOLERANCE, UNIT_PERIODS
from collectguard.domain.daynum import Civil, add_months, civil, months_back

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["apr_matrix"]

_UNITS = sorted(UNIT_PERIODS.values(), key=lambda u: u.approx_days)
_INDEX = {u.name: k for k, u in enumerate(_UNITS)}
_MONTHLY = {1: "month", 2: "2months", 3: "quarter", 6: "6months", 12: "year"}
_DAILY = {1: "day", 7: "week", 14: "2weeks", 28: "4weeks"}


def _day_numbers(x: NDArray[Any]) -> NDArray[np.int64]:
    """Day numbers from day numbers or ``datetime64`` dates."""
    import numpy as np

    arr = np.asarray(x)
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[D]").view(np.int64)
    out: NDArray[np.int64] = arr.astype(np.int64, copy=False)
    return out


def _interval_units(a: Civil, b: Civil) -> NDArray[np.int64]:
    """The standard unit each interval a -> b is exactly (index into ``_UNITS``), -1 for none
    (``apr._interval_unit``)."""
    import numpy as np

    months = b.month_index - a.month_index
    days = b.days - a.days
    # m whole months forward from a lands in b's month (and back from b in a's): the interval is
    # exactly m months when the day, clamped at that month's end, matches, either way round.
    exact = (np.minimum(a.day, b.month_days) == b.day) | (np.minimum(b.day, a.month_days) == a.day)
    by_months = np.full(13, -1, dtype=np.int64)
    for m, name in _MONTHLY.items():
        by_months[m] = _INDEX[name]
    out = np.where(exact & (months >= 0) & (months <= 12), by_months[np.clip(months, 0, 12)], -1)
    for d, name in _DAILY.items():
        out = np.where((out < 0) & (days == d), _INDEX[name], out)
    result: NDArray[np.int64] = np.where((out < 0) & (days >= 13) & (days <= 16), _INDEX["semimonth"], out)
    return result


def _infer_units(advance: Civil, dates: Civil, valid: NDArray[np.bool_]) -> NDArray[np.int64]:
    """(b)(4)(i) for every row (index into ``_UNITS``)."""
    import numpy as np

    starts = Civil(
        *(
            np.concatenate([first[:, None], later[:, :-1]], axis=1)
            for first, later in zip(advance.parts(), dates.parts(), strict=True)
        )
    )
    units = np.where(valid, _interval_units(starts, dates), -1)
    # How often each unit occurs per row: one bincount over (row, unit + 1), -1 landing in column 0.
    width = len(_UNITS) + 1
    keys = (np.arange(units.shape[0])[:, None] * width + units + 1).ravel()
    counts = np.bincount(keys, minlength=units.shape[0] * width).reshape(-1, width)[:, 1:]
    common = np.where(counts >= 2, counts, 0)
    best = common.max(axis=1)
    # The first index reaching the best count is the smaller unit (``_UNITS`` is by length).
    by_common = np.argmax((common == best[:, None]) & (common > 0), axis=1)
    n = valid.sum(axis=1)
    last = np.take_along_axis(dates.days, np.maximum(n - 1, 0)[:, None], axis=1)[:, 0]
    average = (last - advance.days) / np.maximum(n, 1)
    approx = np.array([u.approx_days for u in _UNITS])
    # Nearest unit, the lower on a tie: argmin over (distance, length) with units sorted by length.
    by_average = np.argmin(np.abs(approx[None, :] - average[:, None]), axis=1)
    chosen: NDArray[np.int64] = np.where(best >= 2, by_common, by_average)
    return chosen


def _periods(start: Civil, end: Civil, unit_index: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Full unit-periods t and the fraction f from ``start`` to ``end`` (``apr.periods_between``)."""
    import numpy as np

    unit = _UNITS[unit_index]
    if unit.kind == "days":
        t, rest = np.divmod(end.days - start.days, unit.length)
        return t.astype(np.float64), rest / unit.length
    months, days = months_back(start, end)
    if unit.kind == "months30":
        t, rest = np.divmod(30 * months + days, unit.length)
        return t.astype(np.float64), rest / unit.length
    years, rest_months = np.divmod(months, 12)
    by_days = (add_months(end, -12 * years) - start.days) / 365
    return years.astype(np.float64), np.where(days == 0, rest_months / 12, by_days)


def _solve(
    amounts: NDArray[np.float64], t: NDArray[np.float64], f: NDArray[np.float64], target: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Rates i > 0 with sum P / ((1 + f i)(1 + i)^t) = target per row (NaN: not converged)."""
    import numpy as np

    n_rows = target.shape[0]
    minus_t = -t

    def pv(i: NDArray[np.float64], rows: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        # Every row at first: no copies of the matrices; f * x is formed once (the same floats).
        every = rows.size == n_rows
        x = i[:, None]
        tt, mt, ff, pp = (t, minus_t, f, amounts) if every else (t[rows], minus_t[rows], f[rows], amounts[rows])
        fx = ff * x
        term = pp * np.exp(np.minimum(700.0, mt * np.log1p(x) - np.log1p(fx)))
        return term.sum(axis=1), -(term * (tt / (1 + x) + ff / (1 + fx))).sum(axis=1)

    rows_all = np.arange(n_rows)
    total = amounts.sum(axis=1)
    lo, hi = np.zeros(n_rows), np.ones(n_rows)
    grow = rows_all.copy()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(60):  # hi doubles until the present value falls below the target
            if grow.size == 0:
                break
            value, _slope = pv(hi[grow], grow)
            up = value > target[grow]
            lo[grow[up]], hi[grow[up]] = hi[grow[up]], hi[grow[up]] * 2
            grow = grow[up]
        mean_time = (amounts * (t + f)).sum(axis=1) / total
        guess = np.where(mean_time > 0, (total / target - 1) / np.where(mean_time > 0, mean_time, 1), lo)
        i = np.where((guess >= lo) & (guess <= hi), guess, (lo + hi) / 2)
        out = np.full(n_rows, np.nan)
        active = np.setdiff1d(rows_all, grow)  # rows whose bracket never closed stay NaN
        for step in range(400):
            if active.size == 0:
                break
            x = i[active]
            value, slope = pv(x, active)
            exact = value == target[active]
            above = value > target[active]
            lo[active] = np.where(above, x, lo[active])
            hi[active] = np.where(above, hi[active], x)
            new = x - (value - target[active]) / slope if step < 100 else np.full(x.shape, np.nan)
            newton = (slope < 0) & (new >= lo[active]) & (new <= hi[active])
            mid = (lo[active] + hi[active]) / 2
            tight = np.where(
                newton,
                np.abs(new - x) <= _STEP_TOLERANCE * np.abs(new) + 1e-15,
                hi[active] - lo[active] <= 1e-15 * np.abs(mid) + 1e-18,
            )
            new = np.where(newton, new, mid)
            done = exact | tight
            out[active[done]] = np.where(exact, x, new)[done]
            i[active] = new
            active = active[~done]
    return out


def apr_matrix(
    advance: NDArray[Any],
    financed: NDArray[np.float64],
    dates: NDArray[Any],
    amounts: NDArray[np.float64],
    valid: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """APRs in percent (2 decimals, half-up) and the rows left to the scalar method.

    ``advance`` (N day numbers or ``datetime64[D]``), ``financed`` (N: the amount financed, advance
    less upfront fees), ``dates`` (N x K, the same, ascending within a row), ``amounts`` (N x K)
    and ``valid`` (N x K: which cells are payments; a row's payments come first). Padding cells
    are ignored.
    """
    import numpy as np

    adv = _day_numbers(advance)
    n = valid.sum(axis=1)
    days = np.where(valid, _day_numbers(dates), adv[:, None] + 1)
    amounts = np.where(valid, amounts, 0.0)
    prev = np.concatenate([adv[:, None], days[:, :-1]], axis=1)
    increasing = np.where(valid, days > prev, True).all(axis=1)
    total = amounts.sum(axis=1)
    ok = (n >= 1) & increasing & (financed > 0) & (amounts >= 0).all(axis=1) & (total > financed)
    percent = np.full(n.shape, np.nan)
    start, due = civil(adv), civil(days)
    # A single payment within a year: its own unit-period, i = P / financed - 1.
    months, rest = months_back(start, due.take((slice(None), 0)))
    single = ok & (n == 1) & (months < 12)
    if single.any():
        elapsed = days[:, 0] - adv
        with np.errstate(divide="ignore"):  # rows that are not single payments may not be later
            per_year = np.where(rest == 0, 12 / np.maximum(months, 1), 365 / elapsed)
        percent = np.where(single, (total / financed - 1) * per_year * 100, percent)
    general = np.flatnonzero(ok & (n >= 2))
    if general.size:
        start_g, due_g, valid_g = start.take(general), due.take(general), valid[general]
        units = _infer_units(start_g, due_g, valid_g)
        t = np.zeros(valid_g.shape)
        f = np.zeros(valid_g.shape)
        per_year = np.zeros(general.size)
        for k in np.unique(units):
            rows = units == k
            sub = due_g.take(rows)
            begin = Civil(*(np.broadcast_to(part[rows][:, None], sub.days.shape) for part in start_g.parts()))
            t[rows], f[rows] = _periods(begin, sub, int(k))
            per_year[rows] = _UNITS[int(k)].per_year
        rate = _solve(amounts[general], t, f, financed[general])
        percent[general] = rate * per_year * 100
    rounded = np.sign(percent) * np.floor(np.abs(percent) * 100 + 0.5) / 100
    return rounded, ~np.isfinite(rounded)
