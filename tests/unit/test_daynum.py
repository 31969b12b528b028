"""The integer calendar of the batch APR (``domain.daynum``) against ``datetime.date`` and the scalar
Appendix J counting (``apr.add_months``, ``apr._months_back``, ``apr.periods_between``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collectguard.domain.apr import UNIT_PERIODS, _months_back, add_months, periods_between
from collectguard.domain.apr_matrix import _UNITS, _periods
from collectguard.domain.daynum import add_months as add_months_np
from collectguard.domain.daynum import civil, days_from_civil, month_starts, months_back

EPOCH = dt.date(1970, 1, 1)


def _day(d: dt.date) -> int:
    return (d - EPOCH).days


# Month ends, the days around them and leap days are where calendar code goes wrong.
month_end = st.builds(
    lambda y, m, back: add_months(dt.date(y, m, 1), 1) - dt.timedelta(days=1 + back),
    st.integers(1896, 2104),
    st.integers(1, 12),
    st.integers(0, 3),
)
leap_day = st.sampled_from([1896, 1904, 2000, 2024, 2028, 2096, 2104]).map(lambda y: dt.date(y, 2, 29))
dates = st.one_of(
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)),
    month_end,
    leap_day,
    st.dates(dt.date(1999, 1, 1), dt.date(2031, 12, 31)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(dates, min_size=1, max_size=50))
def test_civil_and_its_inverse_agree_with_datetime(ds):
    days = np.array([_day(d) for d in ds], dtype=np.int64)
    c = civil(days)
    assert c.year.tolist() == [d.year for d in ds] and c.month.tolist() == [d.month for d in ds]
    assert c.day.tolist() == [d.day for d in ds]
    assert c.month_days.tolist() == [(add_months(d.replace(day=1), 1) - d.replace(day=1)).days for d in ds]
    assert days_from_civil(c.year, c.month, c.day).tolist() == days.tolist()
    first, length = month_starts(c.month_index)
    assert (first + c.day - 1).tolist() == days.tolist() and length.tolist() == c.month_days.tolist()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(month_end, leap_day, st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1))), st.integers(-60, 60)
        ),
        min_size=1,
        max_size=50,
    )
)
def test_add_months_clamps_at_month_end_like_the_scalar_function(pairs):
    days = np.array([_day(d) for d, _ in pairs], dtype=np.int64)
    months = np.array([m for _, m in pairs], dtype=np.int64)
    assert add_months_np(civil(days), months).tolist() == [_day(add_months(d, m)) for d, m in pairs]


def _intervals() -> st.SearchStrategy[tuple[dt.date, dt.date]]:
    starts = st.one_of(month_end, leap_day, st.dates(dt.date(1990, 1, 1), dt.date(2060, 1, 1)))
    return st.one_of(
        starts.flatmap(lambda a: st.integers(0, 800).map(lambda n: (a, a + dt.timedelta(days=n)))),
        # whole months forward from a month end, and a few days either side: the clamping cases
        starts.flatmap(
            lambda a: st.tuples(st.integers(0, 40), st.integers(-3, 3)).map(
                lambda mk: (a, max(a, add_months(a, mk[0]) + dt.timedelta(days=mk[1])))
            )
        ),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_intervals(), min_size=1, max_size=50))
def test_months_back_equals_the_scalar_count(pairs):
    start = civil(np.array([_day(a) for a, _ in pairs], dtype=np.int64))
    end = civil(np.array([_day(b) for _, b in pairs], dtype=np.int64))
    months, rest = months_back(start, end)
    assert list(zip(months.tolist(), rest.tolist(), strict=True)) == [_months_back(a, b) for a, b in pairs]


@settings(max_examples=200, deadline=None)
@given(st.lists(_intervals(), min_size=1, max_size=40), st.sampled_from(sorted(UNIT_PERIODS)))
def test_full_periods_and_fractions_equal_the_scalar_ones_for_every_unit(pairs, unit):
    # day, week, 2weeks, 4weeks (days), semimonth, month .. 6months (30-day months), year
    start = civil(np.array([_day(a) for a, _ in pairs], dtype=np.int64))
    end = civil(np.array([_day(b) for _, b in pairs], dtype=np.int64))
    t, f = _periods(start, end, [u.name for u in _UNITS].index(unit))
    expected = [periods_between(a, b, UNIT_PERIODS[unit]) for a, b in pairs]
    assert list(zip(t.tolist(), f.tolist(), strict=True)) == [(float(tt), ff) for tt, ff in expected]


def test_a_span_too_wide_for_a_table_is_computed_directly():
    far = np.array([_day(dt.date(1, 1, 1)), _day(dt.date(9999, 12, 31))], dtype=np.int64)
    c = civil(far)
    assert c.year.tolist() == [1, 9999] and c.day.tolist() == [1, 31] and c.month_days.tolist() == [31, 31]
    assert civil(np.zeros(0, dtype=np.int64)).days.size == 0
