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

Rows it does not model come back NaN with ``fallback`` set, for the caller to price one by one
with the scalar ``compute_apr``: payments not strictly after the advance or not strictly
increasing, a negative rate (payments below the amount financed), a single payment a year or
more after the advance, and anything that did not converge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collectguard.domain.apr import _STEP_TOLERANCE, UNIT_PERIODS, _add_months_np, _first_period_np

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["apr_matrix"]

_UNITS = sorted(UNIT_PERIODS.values(), key=lambda u: u.approx_days)
_INDEX = {u.name: k for k, u in enumerate(_UNITS)}
_MONTHLY = {1: "month", 2: "2months", 3: "quarter", 6: "6months", 12: "year"}
_DAILY = {1: "day", 7: "week", 14: "2weeks", 28: "4weeks"}


def _interval_units(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.int64]:
    """The standard unit each interval a -> b is exactly (index into ``_UNITS``), -1 for none."""
    import numpy as np

    out = np.full(a.shape, -1, dtype=np.int64)
    months = (b.astype("datetime64[M]") - a.astype("datetime64[M]")).astype(np.int64)
    days = (b - a).astype(np.int64)
    for m, name in _MONTHLY.items():
        mm = np.full(a.shape, m, dtype=np.int64)
        exact = (months == m) & ((_add_months_np(a, mm) == b) | (_add_months_np(b, -mm) == a))
        out = np.where((out < 0) & exact, _INDEX[name], out)
    for d, name in _DAILY.items():
        out = np.where((out < 0) & (days == d), _INDEX[name], out)
    return np.where((out < 0) & (days >= 13) & (days <= 16), _INDEX["semimonth"], out)


def _infer_units(advance: NDArray[Any], dates: NDArray[Any], valid: NDArray[np.bool_]) -> NDArray[np.int64]:
    """(b)(4)(i) for every row (index into ``_UNITS``)."""
    import numpy as np

    starts = np.concatenate([advance[:, None], dates[:, :-1]], axis=1)
    units = np.where(valid, _interval_units(starts, dates), -1)
    counts = np.stack([(units == k).sum(axis=1) for k in range(len(_UNITS))], axis=1)
    common = np.where(counts >= 2, counts, 0)
    best = common.max(axis=1)
    # The first index reaching the best count is the smaller unit (``_UNITS`` is by length).
    by_common = np.argmax((common == best[:, None]) & (common > 0), axis=1)
    n = valid.sum(axis=1)
    last = np.take_along_axis(dates, np.maximum(n - 1, 0)[:, None], axis=1)[:, 0]
    average = (last - advance).astype(np.int64) / np.maximum(n, 1)
    approx = np.array([u.approx_days for u in _UNITS])
    # Nearest unit, the lower on a tie: argmin over (distance, length) with units sorted by length.
    by_average = np.argmin(np.abs(approx[None, :] - average[:, None]), axis=1)
    chosen: NDArray[np.int64] = np.where(best >= 2, by_common, by_average)
    return chosen


def _solve(amounts: NDArray[np.float64], t: NDArray[np.float64], f: NDArray[np.float64],
           target: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rates i > 0 with sum P / ((1 + f i)(1 + i)^t) = target per row (NaN: not converged)."""
    import numpy as np

    def pv(i: NDArray[np.float64], rows: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x = i[:, None]
        tt, ff = t[rows], f[rows]
        term = amounts[rows] * np.exp(np.minimum(700.0, -tt * np.log1p(x) - np.log1p(ff * x)))
        return term.sum(axis=1), -(term * (tt / (1 + x) + ff / (1 + ff * x))).sum(axis=1)

    n_rows = target.shape[0]
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
            tight = np.where(newton, np.abs(new - x) <= _STEP_TOLERANCE * np.abs(new) + 1e-15,
                             hi[active] - lo[active] <= 1e-15 * np.abs(mid) + 1e-18)
            new = np.where(newton, new, mid)
            done = exact | tight
            out[active[done]] = np.where(exact, x, new)[done]
            i[active] = new
            active = active[~done]
    return out


def apr_matrix(advance: NDArray[Any], financed: NDArray[np.float64], dates: NDArray[Any],
               amounts: NDArray[np.float64], valid: NDArray[np.bool_]) -> tuple[NDArray[np.float64],
                                                                                 NDArray[np.bool_]]:
    """APRs in percent (2 decimals, half-up) and the rows left to the scalar method.

    ``advance`` (N, datetime64[D]), ``financed`` (N: the amount financed, advance less upfront fees),
    ``dates`` (N x K, datetime64[D], ascending within a row), ``amounts`` (N x K) and ``valid``
    (N x K: which cells are payments; a row's payments come first). Padding cells are ignored.
    """
    import numpy as np

    n = valid.sum(axis=1)
    pad = advance[:, None] + np.timedelta64(1, "D")
    dates = np.where(valid, dates, pad)
    amounts = np.where(valid, amounts, 0.0)
    prev = np.concatenate([advance[:, None], dates[:, :-1]], axis=1)
    increasing = np.where(valid, dates > prev, True).all(axis=1)
    total = amounts.sum(axis=1)
    ok = (n >= 1) & increasing & (financed > 0) & (amounts >= 0).all(axis=1) & (total > financed)
    percent = np.full(n.shape, np.nan)
    # A single payment within a year: its own unit-period, i = P / financed - 1.
    first = dates[:, 0]
    months = (first.astype("datetime64[M]") - advance.astype("datetime64[M]")).astype(np.int64)
    whole = _add_months_np(advance, months) == first
    months = np.where(~whole & (_add_months_np(first, -months) < advance), months - 1, months)
    single = ok & (n == 1) & (months < 12)
    if single.any():
        days = (first - advance).astype(np.int64)
        rest = (_add_months_np(first, -months) - advance).astype(np.int64)
        per_year = np.where(whole | (rest == 0), 12 / np.maximum(months, 1), 365 / days)
        percent = np.where(single, (total / financed - 1) * per_year * 100, percent)
    general = np.flatnonzero(ok & (n >= 2))
    if general.size:
        adv_g, dates_g, valid_g = advance[general], dates[general], valid[general]
        units = _infer_units(adv_g, dates_g, valid_g)
        t = np.zeros(dates_g.shape)
        f = np.zeros(dates_g.shape)
        per_year = np.zeros(general.size)
        for k in np.unique(units):
            rows = units == k
            unit = _UNITS[int(k)]
            start = np.broadcast_to(adv_g[rows][:, None], dates_g[rows].shape)
            tk, fk = _first_period_np(start, dates_g[rows], unit)
            t[rows], f[rows], per_year[rows] = tk, fk, unit.per_year
        rate = _solve(amounts[general], t, f, financed[general])
        percent[general] = rate * per_year * 100
    rounded = np.sign(percent) * np.floor(np.abs(percent) * 100 + 0.5) / 100
    return rounded, ~np.isfinite(rounded)
