"""Normalisation and number reading for free-text extraction (rules/extract/normalise, numerals)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from collectguard.rules.extract.normalise import has_cjk, normalise, split_clauses
from collectguard.rules.extract.numerals import amount_value, count_value, number_value


@pytest.mark.parametrize(("raw", "expected"), [
    ("他們給我通訊錄裡的人發簡訊", "他们给我通讯录里的人发短信"),  # Traditional -> Simplified, 簡訊 -> 短信
    ("２３：３０打電話", "23:30打电话"),  # full-width digits and colon
    ("通迅录", "通讯录"), ("通讯禄", "通讯录"), ("电话本", "通讯录"), ("TXL", "通讯录"),  # typos, pinyin
    ("緊急聯絡人", "紧急联系人"), ("短息", "短信"), ("老癞", "老赖"),
    ("Called  at 10 P.M. today", "called at 10 pm today"),  # case, spaces, p.m.
    ("“你再不还”", '"你再不还"'),  # curly quotes become plain quotes
])
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_txl_only_as_a_word() -> None:
    assert "通讯录" not in normalise("atxlb")


def test_has_cjk() -> None:
    assert has_cjk("我") and has_cjk("abc 通") and not has_cjk("they called me at 11 pm")


@pytest.mark.parametrize(("text", "clauses"), [
    ("他们打电话，说我欠钱。", ["他们打电话", "说我欠钱"]),
    ("晚上十一点给我打电话还给我妈发短信", ["晚上十一点给我打电话", "还给我妈发短信"]),
    ("借1,000到手700", ["借1,000到手700"]),  # a thousands comma is not a clause break
    ("打了1.5小时", ["打了1.5小时"]),  # nor a decimal point
    ("they called me at 11 pm and texted my sister", ["they called me at 11 pm", "texted my sister"]),
    ("my sister and my boss were called", ["my sister and my boss were called"]),
    ("", []),
])
def test_split_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(normalise(text)) == clauses


@pytest.mark.parametrize(("s", "n"), [
    ("12", 12), ("十", 10), ("十五", 15), ("二十三", 23), ("一百零五", 105), ("两万", 20000), ("两", 2),
    ("七八", 7), ("三四十", 30), ("twelve", 12), ("a dozen", 12), ("abc", None),
])
def test_number_value(s: str, n: int | None) -> None:
    assert number_value(s) == n


@pytest.mark.parametrize(("s", "n"), [
    ("十几", 10), ("二十多", 20), ("20多", 20), ("几十", 20), ("好几", 3), ("上百", 100), ("一两", 1),
    ("more than 20", 20), ("about 12", 12), ("30 or so", 30),
])
def test_count_value_is_the_smallest_reading(s: str, n: int) -> None:
    assert count_value(s) == n


@pytest.mark.parametrize(("s", "v"), [
    ("1000", "1000"), ("¥1,000", "1000"), ("1.5万", "15000"), ("2k", "2000"), ("700元", "700"),
    ("$1,200.50", "1200.50"), ("无", None),
])
def test_amount_value(s: str, v: str | None) -> None:
    assert amount_value(s) == (None if v is None else Decimal(v))
