"""Calendar arithmetic on day numbers (whole days since 1970-01-01), vectorised with integers.

The scalar Appendix J code counts months with ``datetime.date`` (``apr.add_months``,
``apr._months_back``). Doing the same for a million loans with numpy's ``datetime64[M]`` means
several unit conversions per date, each a division with a calendar lookup; here a date is split
once into year, month and day (Howard Hinnant's ``civil_from_days``, exact for every date of the
proleptic Gregorian calendar) and the month counting is integer arithmetic on those parts.

A portfolio's dates span a few decades, so the splitting and the month lengths are computed once
per calendar day or month of that span and then looked up: integer division, the costly part, is
done per day of the calendar rather than per date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Ints = NDArray[np.int64]

__all__ = ["Civil", "add_months", "civil", "days_from_civil", "days_in_month", "month_starts", "months_back"]

# Day 0 of the algorithm's era-based count is 0000-03-01; 1970-01-01 is 719468 days later.
_EPOCH_SHIFT = 719_468
_DAYS_PER_ERA = 146_097  # 400 Gregorian years


@dataclass(frozen=True)
class Civil:
    """Dates as day numbers, year, month (1-12), day of month, months since year 0
    (``year * 12 + month - 1``: differences are calendar-month counts) and the length of the
    date's month; all of the same shape, int64."""

    days: Ints
    year: Ints
    month: Ints
    day: Ints
    month_index: Ints
    month_days: Ints

    def parts(self) -> tuple[Ints, ...]:
        """The arrays in field order (``dataclasses.astuple`` would copy them)."""
        return self.days, self.year, self.month, self.day, self.month_index, self.month_days

    def take(self, rows: Any) -> Civil:
        """The dates at ``rows`` (any numpy index)."""
        return Civil(*(part[rows] for part in self.parts()))


def _split(z: Ints) -> tuple[Ints, Ints, Ints]:
    """Year, month, day of day numbers, by arithmetic (Hinnant's ``civil_from_days``)."""
    import numpy as np

    z = z + _EPOCH_SHIFT
    era = z // _DAYS_PER_ERA  # floor division: dates before year 0 still land in the right era
    doe = z - era * _DAYS_PER_ERA  # day of era, 0..146096
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365  # year of era, 0..399
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # day of the year starting March 1st
    mp = (5 * doy + 2) // 153  # month starting March = 0
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


def _by_table(values: Ints, compute: Any) -> tuple[Ints, ...]:
    """``compute(values)`` (a tuple of arrays), worked out once per distinct value of the span
    min..max and looked up, when that span is shorter than ``values``; directly otherwise."""
    import numpy as np

    if values.size == 0:
        return tuple(compute(values))
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= values.size:
        return tuple(compute(values))
    at = values - lo
    return tuple(part[at] for part in compute(np.arange(lo, hi + 1, dtype=np.int64)))


def civil(days: Ints) -> Civil:
    """Split day numbers into a :class:`Civil` (``datetime.date.fromordinal``, vectorised)."""
    import numpy as np

    def parts(z: Ints) -> tuple[Ints, ...]:
        year, month, day = _split(z)
        mi = year * 12 + (month - 1)
        return year, month, day, mi, days_in_month(mi)

    days = np.asarray(days, dtype=np.int64)
    return Civil(days, *_by_table(days, parts))


def days_from_civil(year: Ints, month: Ints, day: Ints) -> Ints:
    """Day numbers of year, month (1-12) and day (the inverse of :func:`civil`)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    out: Ints = era * _DAYS_PER_ERA + doe - _EPOCH_SHIFT
    return out


def days_in_month(month_index: Ints) -> Ints:
    """Length of the month ``year * 12 + month - 1`` (February 29 days in leap years)."""
    import numpy as np

    year, m0 = np.divmod(month_index, 12)
    base = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)[m0]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    out: Ints = base + ((m0 == 1) & leap)
    return out


def _first_and_length(month_index: Ints) -> tuple[Ints, Ints]:
    import numpy as np

    year, m0 = np.divmod(month_index, 12)
    return days_from_civil(year, m0 + 1, np.ones_like(m0)), days_in_month(month_index)


def month_starts(month_index: Ints) -> tuple[Ints, Ints]:
    """Day number of the first of each month ``year * 12 + month - 1``, and the month's length."""
    import numpy as np

    first, length = _by_table(np.asarray(month_index, dtype=np.int64), _first_and_length)
    return first, length


def add_months(d: Civil, months: Ints | int) -> Ints:
    """Day numbers of ``d`` moved by ``months`` calendar months, the day clamped to the month's end
    (``apr.add_months``)."""
    import numpy as np

    first, length = month_starts(d.month_index + months)
    out: Ints = first + np.minimum(d.day, length) - 1
    return out


def months_back(start: Civil, end: Civil) -> tuple[Ints, Ints]:
    """Whole months measured back from ``end`` toward ``start`` and the days left over
    (``apr._months_back``, for ``end`` on or after ``start``).

    Whole calendar months counted forward from a day clamped at month end (Jan 31 -> Feb 29) are
    whole months, as in the scalar function.
    """
    import numpy as np

    months = end.month_index - start.month_index
    # Moving ``start`` forward by ``months`` lands in ``end``'s month, so it reaches ``end`` exactly
    # when the clamped day matches; likewise moving ``end`` back lands in ``start``'s month.
    whole = np.minimum(start.day, end.month_days) == end.day
    short = ~whole & (np.minimum(end.day, start.month_days) < start.day)
    months = np.where(short, months - 1, months)
    rest = np.where(whole, 0, add_months(end, -months) - start.days)
    return months, rest
