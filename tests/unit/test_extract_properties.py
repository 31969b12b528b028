"""Properties of extraction: any text yields valid events, deterministically, and never an error."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from collectguard.domain.event import parse_event
from collectguard.rules.extract import extract
from collectguard.services.assess import assessment_from_text

NOW = dt.datetime(2026, 4, 7, 4, 0, tzinfo=dt.UTC)
# Pieces of real complaints, shuffled together: the extractor must survive any combination.
PIECES = ["他们", "给我", "我妈", "通讯录里的人", "紧急联系人", "同事", "领导", "晚上十一点半", "凌晨两点", "下午三点",
          "打电话", "发短信", "上门", "一个人", "堵门不走", "说我欠钱不还", "骂我是老赖", "自称是法院的", "要抓你坐牢",
          "没有", "我没同意", "别再打了", "接通了5次", "十几个电话", "借1000到手700", "7天还1000", "没有放贷资质",
          "不授权通讯录就不让借", "“再不还就爆你通讯录”", "，", "。", "！", "they called me", "at 11:30 pm",
          "my sister", "my contacts", "I owe $500", " and ", "texted", "通訊錄", "１１點", "txl"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=14))
def test_any_combination_of_complaint_pieces(pieces: list[str]) -> None:
    text = "".join(pieces)
    x = extract(text, as_of=NOW.date())
    for case in x.cases:
        parse_event(case.facts)
        assert {"jurisdiction", "recipient.role"} <= case.stated
    assert extract(text, as_of=NOW.date()) == x
    if text.strip():
        assert assessment_from_text(text=text, now=NOW).verdict in ("unlawful", "lawful", "undetermined")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    for case in extract(text, as_of=NOW.date()).cases:
        parse_event(case.facts)
