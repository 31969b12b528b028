"""Column types: money and rates are stored as exact integers, read back as Decimal.

Storing minor units (cents, 分) as BIGINT keeps SQL arithmetic exact and fast on both SQLite
(which has no decimal type) and PostgreSQL, while the rest of the code only ever sees Decimal.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_CENT = Decimal("0.01")
RATE_SCALE = 10_000  # a rate in percent is stored with 4 decimals: 24.5% -> 245000


class Money(TypeDecorator[Decimal]):
    """A Decimal amount with 2 decimals, stored as integer minor units."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        return int((d.quantize(_CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(_CENT)


class Rate(TypeDecorator[Decimal]):
    """A rate in percent (e.g. 24.0 for 24% a year) with 4 decimals, stored as an integer."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        return int((d * RATE_SCALE).to_integral_value(rounding=ROUND_HALF_UP))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / RATE_SCALE).normalize()
