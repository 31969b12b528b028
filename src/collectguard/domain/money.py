"""Money as :class:`~decimal.Decimal`: strict parsing, quantising, currency minor units.

Amounts are never floats here. A float that reaches a parser is refused rather than converted,
because ``0.1 + 0.2`` style errors in a debt amount are a compliance problem, not a rounding one.
Rounding is half-up (四舍五入), the convention of Chinese and US consumer-lending statements.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from collectguard.errors import BadInput

#: Digits after the decimal point per ISO 4217 currency (the ones collectguard handles).
MINOR_UNITS: dict[str, int] = {"CNY": 2, "USD": 2, "EUR": 2}

ZERO = Decimal(0)
CENT = Decimal("0.01")
#: Largest amount accepted from input (10^15, a quadrillion): far above any loan, and small enough
#: that sums of amounts in cents stay exact in the default 28-digit decimal context.
MAX_AMOUNT = Decimal(10) ** 15
# Quantising needs as many digits as the integer part plus the places; this fits any Decimal input.
_WIDE = Context(prec=1000)

# Plain decimal notation only: an optional sign, digits, an optional fraction. No exponent,
# no thousands separators, no NaN/Infinity, no surrounding whitespace.
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def minor_units(currency: str) -> int:
    """Return the number of decimal places of ``currency`` (e.g. 2 for CNY); BadInput if unknown."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise BadInput(f"unknown currency {currency!r}; expected one of {sorted(MINOR_UNITS)}",
                       field="currency") from None


def quantize(amount: Decimal, currency: str | None = None) -> Decimal:
    """Round ``amount`` half-up to the currency's minor unit (cents when ``currency`` is None)."""
    places = 2 if currency is None else minor_units(currency)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=_WIDE)


def to_minor(amount: Decimal, currency: str | None = None) -> int:
    """Return ``amount`` as an integer count of minor units (fen, cents), rounding half-up."""
    places = 2 if currency is None else minor_units(currency)
    return int(quantize(amount, currency).scaleb(places, context=_WIDE))


def from_minor(units: int, currency: str | None = None) -> Decimal:
    """Return the Decimal amount of ``units`` minor units (``150`` fen -> ``Decimal('1.50')``)."""
    places = 2 if currency is None else minor_units(currency)
    return Decimal(units).scaleb(-places, context=_WIDE)


def format_amount(amount: Decimal, currency: str | None = None) -> str:
    """Return the amount as a plain decimal string with the currency's places (``'1234.50'``)."""
    return f"{quantize(amount, currency):f}"


def parse_decimal(value: object, *, field: str) -> Decimal:
    """Parse an int, a finite Decimal or a plain decimal string; anything else is BadInput.

    Floats are refused (they are already inexact), and so are booleans, NaN, infinities and
    exponent notation such as ``'1e3'``; ``field`` names the input in the error.
    """
    if isinstance(value, bool):
        raise BadInput("expected a decimal number, got a boolean", field=field)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise BadInput(f"expected a finite decimal number, got {value}", field=field)
        return value
    if isinstance(value, str):
        if not _DECIMAL_RE.fullmatch(value):
            raise BadInput(f"expected a plain decimal number such as '1234.56', got {value!r}",
                           field=field)
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
            raise BadInput(f"not a decimal number: {value!r}", field=field) from None
    if isinstance(value, float):
        raise BadInput("floats are not accepted for money; send a decimal string such as '12.34'",
                       field=field)
    raise BadInput(f"expected a decimal number, got {type(value).__name__}", field=field)


def parse_amount(
    value: object,
    *,
    field: str,
    currency: str | None = None,
    positive: bool = False,
) -> Decimal:
    """Parse a non-negative money amount (strictly positive when ``positive``) up to MAX_AMOUNT.

    With ``currency`` the amount may not have more decimal places than its minor unit: a
    statement in fen cannot carry a tenth of a fen.
    """
    amount = parse_decimal(value, field=field)
    if amount < 0 or (positive and amount == 0):
        raise BadInput(f"must be {'greater than zero' if positive else 'zero or more'}, got {amount}",
                       field=field)
    if amount > MAX_AMOUNT:
        raise BadInput(f"must be at most {MAX_AMOUNT:,f}", field=field)
    if currency is not None:
        places = minor_units(currency)
        exponent = amount.as_tuple().exponent
        assert isinstance(exponent, int)  # finite, checked by parse_decimal
        if -exponent > places:
            raise BadInput(f"{currency} amounts have at most {places} decimal places, got {amount}",
                           field=field)
    return amount
