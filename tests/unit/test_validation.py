"""Field validators of ``collectguard.domain.validation`` (pure) and the CSV text decoder."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectguard.domain import validation as v
from collectguard.domain.validation import InvalidValue
from collectguard.errors import BadInput
from collectguard.services.importer import decode_csv_bytes

PROVINCES = sorted(v._CN_PROVINCES)


def reason(fn, *args, **kwargs) -> str:
    with pytest.raises(InvalidValue) as exc:
        fn(*args, **kwargs)
    return exc.value.reason


# --- resident ID numbers (GB 11643, ISO 7064 MOD 11-2) ---------------------------------------------

@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(PROVINCES)) + draw(st.from_regex(r"[0-9]{4}", fullmatch=True))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)))
    first17 = f"{region}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return first17 + v.cn_id_check_char(first17)


@given(resident_ids())
def test_generated_valid_ids_pass(id_number: str) -> None:
    assert v.cn_resident_id(id_number, today=dt.date(2026, 4, 7)) == id_number
    assert v.cn_resident_id(f" {id_number.lower()} ") == id_number  # x is normalised to X


@given(resident_ids(), st.integers(0, 17), st.data())
def test_any_single_character_change_fails(id_number: str, pos: int, data: st.DataObject) -> None:
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    new = data.draw(st.sampled_from([ch for ch in alphabet if ch != id_number[pos]]))
    with pytest.raises(InvalidValue):
        v.cn_resident_id(id_number[:pos] + new + id_number[pos + 1:])


def test_known_id_numbers() -> None:
    assert v.cn_id_check_char("11010519491231002") == "X"  # the GB 11643 worked example
    assert v.cn_resident_id("11010519491231002X") == "11010519491231002X"
    assert v.cn_id_birth_date("11010519491231002X") == dt.date(1949, 12, 31)


@pytest.mark.parametrize(("value", "expected"), [
    ("110105491231002", "15-digit"),
    ("11010519491231002", "17 digits"),
    ("1101051949123100XX", "17 digits"),
    ("991051194912310020", "province"),
    ("", "17 digits"),
])
def test_id_number_shape_errors(value: str, expected: str) -> None:
    assert expected in reason(v.cn_resident_id, value)


def test_id_number_with_an_impossible_birth_date_is_refused_even_with_a_right_check_digit() -> None:
    first17 = "11010519490230002"  # 30 February
    assert "calendar date" in reason(v.cn_resident_id, first17 + v.cn_id_check_char(first17))
    future = "11010520300101002"
    later = future + v.cn_id_check_char(future)
    assert "implausible" in reason(v.cn_resident_id, later, today=dt.date(2026, 4, 7))


# --- phone numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "jurisdiction", "e164"), [
    ("13800001234", "CN", "+8613800001234"),
    ("138 0000 1234", "CN", "+8613800001234"),
    ("+86 138-0000-1234", "CN", "+8613800001234"),
    ("008613800001234", "CN", "+8613800001234"),
    ("010 6552 9988", "CN", "+861065529988"),  # a Beijing landline
    ("(212) 555-0142", "US", "+12125550142"),
    ("+1 312 555 0199", "US", "+13125550199"),
    ("+12125550142", "CN", "+12125550142"),  # a CN borrower with a US number: the + decides
    ("+49 30 23125001", "EU", "+493023125001"),
    ("+33 1 99 00 12 34", "EU", "+33199001234"),
])
def test_phone_numbers_normalise_to_e164(raw: str, jurisdiction: str, e164: str) -> None:
    assert v.phone_e164(raw, jurisdiction=jurisdiction) == e164


@pytest.mark.parametrize(("raw", "jurisdiction", "expected"), [
    ("", "CN", "required"),
    ("1380000123", "CN", "not a valid CN"),  # one digit short
    ("23800001234", "CN", "not a valid CN"),
    ("1-800-FLOWERS", "US", "letters"),
    ("12345", "US", "not a valid US"),
    ("030 23125001", "EU", "country code"),
    ("+49 30 1", "EU", "not a valid"),
    ("++", "CN", "not a phone number"),
    ("13800001234", "XX", "unknown jurisdiction"),
])
def test_phone_number_errors(raw: str, jurisdiction: str, expected: str) -> None:
    assert expected in reason(v.phone_e164, raw, jurisdiction=jurisdiction)


def _reference_e164(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=500)
@given(st.from_regex(r"1[0-9]{10}", fullmatch=True), st.sampled_from(["", "+86"]),
       st.sampled_from(["CN", "US"]))
def test_the_mobile_shortcut_agrees_with_phonenumbers_parse(digits: str, prefix: str,
                                                            jurisdiction: str) -> None:
    raw = prefix + digits
    expected = _reference_e164(raw, jurisdiction)
    if expected is None:
        with pytest.raises(InvalidValue):
            v.phone_e164(raw, jurisdiction=jurisdiction)
    else:
        assert v.phone_e164(raw, jurisdiction=jurisdiction) == expected


def test_demo_test_ranges_are_valid_numbers() -> None:
    for number in ("+8613800000000", "+8613809999999", "+12125550100", "+13235550199", "+493023125000",
                   "+493023125999", "+33199000000", "+33199009999"):
        assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number


# --- decimals -----------------------------------------------------------------------------------------

@given(st.decimals(min_value=0, max_value=Decimal("9999999999999.99"), places=2))
def test_amounts_round_trip_exactly(d: Decimal) -> None:
    assert v.amount(f"{d:f}") == d


@pytest.mark.parametrize(("raw", "expected"), [
    ("1e3", "exponent"), ("1E-2", "exponent"), ("1,234.00", "thousands"), ("-5", "negative"),
    ("12.345", "at most 2 decimals"), ("", "required"), ("NaN", "plain decimal"), ("inf", "plain decimal"),
    (".5", "plain decimal"), ("5.", "plain decimal"), ("¥100", "plain decimal"),
    ("12345678901234", "too large"),
])
def test_amount_errors(raw: str, expected: str) -> None:
    assert expected in reason(v.amount, raw)


def test_amounts_and_rates() -> None:
    assert v.amount(" 1234.5 ") == Decimal("1234.5")
    assert v.amount("0") == 0
    assert "greater than 0" in reason(v.amount, "0.00", positive=True)
    assert v.rate_percent("24.1234") == Decimal("24.1234")
    assert v.rate_percent("365") == Decimal(365)
    assert "at most 4 decimals" in reason(v.rate_percent, "24.12345")
    assert "% sign" in reason(v.rate_percent, "24%")
    assert v.positive_int("3") == 3
    assert "≥ 1" in reason(v.positive_int, "0")
    assert "≥ 1" in reason(v.positive_int, "1.0")


# --- dates, times, zones, languages, enumerations -----------------------------------------------------

def test_dates() -> None:
    assert v.iso_date("2026-02-28") == dt.date(2026, 2, 28)
    assert "no such calendar date" in reason(v.iso_date, "2026-02-30")
    assert "YYYY-MM-DD" in reason(v.iso_date, "2026/02/01")
    assert "YYYY-MM-DD" in reason(v.iso_date, "20260201")  # fromisoformat would take it; we do not
    assert "future" in reason(v.iso_date, "2026-04-08", not_after=dt.date(2026, 4, 7))


def test_datetimes_need_an_offset_and_a_bare_date_is_local_midnight() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    assert v.iso_datetime("2026-03-02T21:30:00+08:00", date_tz=dt.UTC) == dt.datetime(
        2026, 3, 2, 13, 30, tzinfo=dt.UTC)
    assert v.iso_datetime("2026-03-02T13:30Z", date_tz=dt.UTC).utcoffset() == dt.timedelta(0)
    assert v.iso_datetime("2026-03-02", date_tz=shanghai) == dt.datetime(2026, 3, 2, tzinfo=shanghai)
    assert "UTC offset" in reason(v.iso_datetime, "2026-03-02T21:30:00", date_tz=dt.UTC)
    assert "ISO-8601" in reason(v.iso_datetime, "yesterday", date_tz=dt.UTC)
    now = dt.datetime(2026, 4, 7, 2, tzinfo=dt.UTC)
    assert "future" in reason(v.iso_datetime, "2026-04-07T11:00+08:00", date_tz=dt.UTC, not_after=now)


def test_time_zones() -> None:
    assert v.timezone_name("Asia/Urumqi") == "Asia/Urumqi"
    assert "did you mean Asia/Shanghai" in reason(v.timezone_name, "asia/shanghai")
    assert "IANA" in reason(v.timezone_name, "Beijing")
    assert "required" in reason(v.timezone_name, " ")


@pytest.mark.parametrize(("raw", "tag"), [("zh-CN", "zh-CN"), ("zh_cn", "zh-CN"), ("EN", "en"),
                                          ("de-de", "de-DE"), ("zh-hant-tw", "zh-Hant-TW"), ("ug", "ug")])
def test_language_tags(raw: str, tag: str) -> None:
    assert v.language_tag(raw) == tag


@pytest.mark.parametrize("raw", ["xx", "english", "zh-CN-extra", "", "en-XX"])
def test_bad_language_tags(raw: str) -> None:
    with pytest.raises(InvalidValue):
        v.language_tag(raw)


def test_enumerations() -> None:
    assert v.choice("cn", v.JURISDICTIONS) == "CN"
    assert v.choice(" separate ", v.CONSENT_FORMS) == "separate"
    assert "expected one of CN, US, EU" in reason(v.choice, "HK", v.JURISDICTIONS)
    assert "borrower" not in v.CONTACT_RELATIONS and "public" not in v.CONTACT_RELATIONS
    kinds = {"contact_list", "third_party_contact", "agreed_hours", "outsourcing_notice"}
    assert kinds <= set(v.CONSENT_KINDS)
    assert v.hours_range("09:00-20:00") == "09:00-20:00"
    assert v.hours_range("20:00-24:00") == "20:00-24:00"
    for bad in ("9-20", "25:00-26:00", "09:00-09:00", "20:00-24:30"):
        with pytest.raises(InvalidValue):
            v.hours_range(bad)


def test_ids_and_text() -> None:
    assert v.ext_id(" B-0001 ") == "B-0001"
    assert "an id is" in reason(v.ext_id, "B 0001")
    assert "required" in reason(v.ext_id, "")
    assert v.required_text(" 王建国 ") == "王建国"
    assert "control" in reason(v.required_text, "王\t建国")
    assert "longer than" in reason(v.required_text, "x" * 201)
    assert v.other_id_number("X1234567") == "X1234567"


def test_only_ascii_digits_count() -> None:
    # str.isdigit() and a plain \\d accept Arabic-Indic or Myanmar digits; the validators must not.
    assert "plain decimal" in reason(v.amount, "١٢٣")
    assert "17 digits" in reason(v.cn_resident_id, "11႕000200001010005")
    assert "YYYY-MM-DD" in reason(v.iso_date, "２０２６-01-01")


def test_invalid_value_is_bad_input() -> None:
    # Escaping a caller, it still maps to exit code 2 / HTTP 422, never to an internal error.
    assert issubclass(InvalidValue, BadInput)


# --- CSV text: UTF-8 with or without BOM, nothing else -------------------------------------------------

def test_utf8_with_and_without_bom() -> None:
    text = "borrower_id,name\nB1,王建国\n"
    assert decode_csv_bytes(text.encode()) == text
    assert decode_csv_bytes(b"\xef\xbb\xbf" + text.encode()) == text


def test_gbk_is_refused_with_the_line_and_a_hint() -> None:
    with pytest.raises(BadInput) as exc:
        decode_csv_bytes("borrower_id,name\nB1,王建国\n".encode("gbk"))
    assert exc.value.line == 2
    assert "GBK" in exc.value.message and "CSV UTF-8" in exc.value.message


def test_utf16_is_refused() -> None:
    with pytest.raises(BadInput, match="UTF-16"):
        decode_csv_bytes("borrower_id,name\n".encode("utf-16"))
