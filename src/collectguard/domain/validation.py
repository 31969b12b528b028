"""Field validators for data entering collectguard (CSV imports, forms, the demo generator).

Pure: no database, no clock (``today`` is an argument). Each validator takes the raw text of one
field and returns the normalised value, or raises :class:`InvalidValue` whose ``reason`` says what
is wrong in words a data clerk can act on. Callers add the row and column.

The enumerations here are the vocabularies of DESIGN §5 and §9; other modules import them from here
so that an import, a form and the guard agree on what a valid value is.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from decimal import Decimal
from functools import lru_cache
from zoneinfo import available_timezones

import phonenumbers
from babel import Locale, UnknownLocaleError

from collectguard.errors import BadInput

JURISDICTIONS = ("CN", "US", "EU")
LENDER_TYPES = ("licensed_institution", "small_loan_company", "private", "unlicensed")
CURRENCIES = ("CNY", "USD", "EUR")
RECIPIENT_ROLES = ("borrower", "guarantor", "spouse", "emergency_contact", "relative", "colleague",
                   "employer", "contact_list_entry", "public", "other_third_party")
# A stored contact is a third party: never the borrower, never "the public".
CONTACT_RELATIONS = tuple(r for r in RECIPIENT_ROLES if r not in ("borrower", "public"))
CONTACT_SOURCES = ("borrower_designated", "contact_list", "public_record", "purchased")
CONSENT_KINDS = ("contact_list", "third_party_contact", "data_sharing_agency", "outsourcing_notice",
                 "agreed_hours", "marketing", "public_disclosure")
CONSENT_FORMS = ("separate", "bundled")

# First two digits of a resident ID: the province-level division (GB/T 2260).
_CN_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82", "83", "91",
})
_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"

_AMOUNT_RE = re.compile(r"\d{1,13}(?:\.\d{1,2})?", re.ASCII)
_RATE_RE = re.compile(r"\d{1,6}(?:\.\d{1,4})?", re.ASCII)
_INT_RE = re.compile(r"\d{1,9}", re.ASCII)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?",
                          re.ASCII)
_EXT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", re.ASCII)
_HOURS_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)", re.ASCII)
_LANG_RE = re.compile(r"([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?", re.ASCII)
# Digits are ASCII only: str.isdigit() and \d also accept e.g. Arabic-Indic or Myanmar digits.
_CN_ID_RE = re.compile(r"[0-9]{17}[0-9X]")
_CN_ID_FIRST17_RE = re.compile(r"[0-9]{17}")
_CN_ID_15_RE = re.compile(r"[0-9]{15}")
_CN_MOBILE_RE = re.compile(r"(?:\+86)?(1[0-9]{10})")
_LETTER_RE = re.compile(r"[^\W\d_]")  # any letter, in any script
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]", re.ASCII)


class InvalidValue(BadInput):
    """One field's value is unusable; ``reason`` explains why (without echoing personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def required_text(value: str, *, max_len: int = 200) -> str:
    """Strip ``value``; refuse it when empty, longer than ``max_len`` or holding control characters."""
    v = value.strip()
    if not v:
        raise InvalidValue("required")
    if len(v) > max_len:
        raise InvalidValue(f"longer than {max_len} characters")
    if _CONTROL_RE.search(v):
        raise InvalidValue("contains control characters (tabs, line breaks)")
    return v


def ext_id(value: str) -> str:
    """An external identifier (borrower_id, loan_id, contact_id): 1–64 letters, digits, ``. _ : -``."""
    v = value.strip()
    if not v:
        raise InvalidValue("required")
    if not _EXT_ID_RE.fullmatch(v):
        raise InvalidValue("an id is 1–64 letters, digits, '.', '_', ':' or '-', starting with a letter "
                           "or digit")
    return v


def choice(value: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed`` (case-insensitive), returned in its canonical spelling."""
    v = value.strip()
    if v in allowed:
        return v
    for a in allowed:
        if a.lower() == v.lower():
            return a
    shown = repr(v) if v else "nothing"
    raise InvalidValue(f"expected one of {', '.join(allowed)}; got {shown}")


def phone_e164(value: str, *, jurisdiction: str) -> str:
    """Parse a phone number for a borrower of ``jurisdiction`` and return it in E.164 (+8613800001234).

    CN and US numbers may be written nationally (the region is CN or US); an EU number must carry
    its country code (+49…, +33…) because the EU has no single numbering plan. The number must be
    valid, not merely well formed, by libphonenumber's metadata.
    """
    v = value.strip()
    if not v:
        raise InvalidValue("required")
    if _LETTER_RE.search(v):
        # phonenumbers would read letters as a keypad (1-800-FLOWERS); a debtor's number never has them.
        raise InvalidValue("letters are not allowed in a phone number")
    region: str | None
    if jurisdiction == "EU":
        if not v.startswith("+"):
            raise InvalidValue("an EU number must be written with its country code, e.g. +49 30 …")
        region = None
    elif jurisdiction in ("CN", "US"):
        region = jurisdiction
    else:
        raise InvalidValue(f"unknown jurisdiction {jurisdiction!r} for the phone number")
    mobile = _CN_MOBILE_RE.fullmatch(v)
    if mobile and (region == "CN" or v.startswith("+")):
        # The bulk of imported numbers: parse() costs ~45 µs normalising arbitrary text, which
        # this canonical shape does not need. Validity is still phonenumbers' verdict below, and a
        # property test holds the result equal to parse().
        number = phonenumbers.PhoneNumber(country_code=86, national_number=int(mobile.group(1)))
    else:
        try:
            number = phonenumbers.parse(v, region)
        except phonenumbers.NumberParseException:
            raise InvalidValue("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        where = region or phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
        raise InvalidValue(f"not a valid {where} phone number (wrong length or an unassigned prefix)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_name(value: str) -> str:
    """An IANA time zone name such as ``Asia/Shanghai``; a wrongly cased name gets a suggestion."""
    v = value.strip()
    if not v:
        raise InvalidValue("required")
    zones = _zones()
    if v in zones:
        return v
    near = [z for z in zones if z.lower() == v.lower()]
    hint = f"; did you mean {near[0]}?" if near else " (e.g. Asia/Shanghai, America/New_York)"
    raise InvalidValue(f"not an IANA time zone{hint}")


@lru_cache(maxsize=256)
def language_tag(value: str) -> str:
    """A language tag such as ``zh-CN``, ``en``, ``de-DE``: normalised case, hyphens, known to CLDR."""
    v = value.strip()
    m = _LANG_RE.fullmatch(v)
    if not m:
        raise InvalidValue(f"not a language tag such as zh-CN or en; got {v!r}")
    lang, script, region = m.group(1).lower(), m.group(2), m.group(3)
    parts = [lang] + ([script.title()] if script else []) + ([region.upper()] if region else [])
    try:
        Locale.parse("_".join(parts))
    except (UnknownLocaleError, ValueError):
        raise InvalidValue(f"unknown language {'-'.join(parts)!r}") from None
    return "-".join(parts)


def iso_date(value: str, *, not_after: dt.date | None = None) -> dt.date:
    """A calendar date written YYYY-MM-DD; optionally not later than ``not_after``."""
    v = value.strip()
    if not _DATE_RE.fullmatch(v):
        raise InvalidValue(f"expected a date as YYYY-MM-DD; got {v!r}")
    try:
        d = dt.date.fromisoformat(v)
    except ValueError:
        raise InvalidValue(f"no such calendar date: {v}") from None
    if not_after is not None and d > not_after:
        raise InvalidValue(f"{v} is in the future")
    return d


def iso_datetime(value: str, *, date_tz: dt.tzinfo, not_after: dt.datetime | None = None) -> dt.datetime:
    """An instant: ISO-8601 with a UTC offset (``2026-03-02T21:30:00+08:00`` or ``…Z``).

    A bare date means the start of that day in ``date_tz`` (the borrower's zone): the paper
    consent forms collectguard imports carry only a date. A time without an offset is refused,
    because guessing the zone of a consent's timestamp could move it across a withdrawal.
    """
    v = value.strip()
    if _DATE_RE.fullmatch(v):
        d = iso_date(v)
        result = dt.datetime.combine(d, dt.time(), tzinfo=date_tz)
    else:
        if not _DATETIME_RE.fullmatch(v):
            raise InvalidValue(f"expected an ISO-8601 time such as 2026-03-02T21:30:00+08:00; got {v!r}")
        try:
            result = dt.datetime.fromisoformat(v)
        except ValueError:
            raise InvalidValue(f"no such time: {v}") from None
        if result.tzinfo is None:
            raise InvalidValue("the time needs a UTC offset such as +08:00 or Z")
    if not_after is not None and result > not_after:
        raise InvalidValue(f"{v} is in the future")
    return result


def _decimal(value: str, pattern: re.Pattern[str], places: int, what: str) -> Decimal:
    v = value.strip()
    if not v:
        raise InvalidValue("required")
    if pattern.fullmatch(v):
        return Decimal(v)
    if v.startswith("-"):
        raise InvalidValue(f"{what} must not be negative")
    if "," in v:
        raise InvalidValue(f"{what} is written without thousands separators, e.g. 12345.67")
    if "e" in v.lower():
        raise InvalidValue(f"{what} is written without exponent notation, e.g. 12345.67")
    if re.fullmatch(r"\d+\.\d+", v, re.ASCII):
        if len(v.split(".")[1]) > places:
            raise InvalidValue(f"{what} has at most {places} decimals")
        raise InvalidValue(f"{what} is too large")
    if re.fullmatch(r"\d+", v, re.ASCII):
        raise InvalidValue(f"{what} is too large")
    raise InvalidValue(f"{what} must be a plain decimal number such as 12345.67; got {v!r}")


def amount(value: str, *, positive: bool = False) -> Decimal:
    """A money amount: plain decimal, at most 2 decimals, ≥ 0 (> 0 with ``positive``). No floats."""
    d = _decimal(value, _AMOUNT_RE, 2, "an amount")
    if positive and d == 0:
        raise InvalidValue("an amount here must be greater than 0")
    return d


def rate_percent(value: str) -> Decimal:
    """An annual rate in percent (``24`` = 24 %), plain decimal, at most 4 decimals, ≥ 0."""
    v = value.strip()
    if v.endswith("%"):
        raise InvalidValue("write the rate as a number in percent without the % sign, e.g. 24.0")
    return _decimal(v, _RATE_RE, 4, "a rate")


def positive_int(value: str) -> int:
    """A whole number ≥ 1 (an installment's sequence number)."""
    v = value.strip()
    if not _INT_RE.fullmatch(v) or int(v) < 1:
        raise InvalidValue(f"expected a whole number ≥ 1; got {v!r}")
    return int(v)


def hours_range(value: str) -> str:
    """Agreed contact hours ``HH:MM-HH:MM`` (24 h clock, may wrap past midnight, 24:00 allowed at the end)."""
    v = value.strip()
    m = _HOURS_RE.fullmatch(v)
    if not m or (m.group(3) == "24" and m.group(4) != "00"):
        raise InvalidValue(f"expected hours as HH:MM-HH:MM, e.g. 09:00-20:00; got {v!r}")
    if m.group(1, 2) == m.group(3, 4):
        raise InvalidValue("the agreed hours start and end at the same time")
    return v


def cn_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character (0–9 or X) of the first 17 digits of a resident ID."""
    if not _CN_ID_FIRST17_RE.fullmatch(first17):
        raise InvalidValue("the check character needs exactly 17 digits")
    total = sum(map(operator.mul, map(int, first17), _CN_ID_WEIGHTS))
    return _CN_ID_CHECK[total % 11]


def cn_id_birth_date(id_number: str) -> dt.date:
    """The birth date embedded in an 18-digit resident ID (digits 7–14, YYYYMMDD)."""
    try:
        return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        raise InvalidValue("the embedded birth date (digits 7–14) is not a calendar date") from None


def cn_resident_id(value: str, *, today: dt.date | None = None) -> str:
    """An 18-digit PRC resident identity card number (GB 11643), upper-case X; checksum verified."""
    v = value.strip().upper()
    if _CN_ID_15_RE.fullmatch(v):
        raise InvalidValue("15-digit ID numbers (issued before 1999) are not accepted; give the 18-digit one")
    if not _CN_ID_RE.fullmatch(v):
        raise InvalidValue("a resident ID number has 17 digits and a final digit or X")
    if v[:2] not in _CN_PROVINCES:
        raise InvalidValue("the first two digits are not a province code")
    born = cn_id_birth_date(v)
    if born.year < 1900 or (today is not None and born > today):
        raise InvalidValue("the embedded birth date is implausible")
    if cn_id_check_char(v[:17]) != v[17]:
        raise InvalidValue("the check digit does not match (ISO 7064 MOD 11-2): a digit is mistyped")
    return v


def other_id_number(value: str) -> str:
    """A non-PRC identity document number, kept opaque: 4–64 letters, digits, spaces or dashes."""
    v = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]{2,62}[A-Za-z0-9]", v, re.ASCII):
        raise InvalidValue("an identity number is 4–64 letters, digits, spaces or dashes")
    return v
