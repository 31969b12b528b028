"""Times of day and per-day counts in a description (rules/extract/times, counts)."""

from __future__ import annotations

import pytest

from collectguard.rules.extract.counts import find_counts
from collectguard.rules.extract.normalise import normalise
from collectguard.rules.extract.times import find_time


@pytest.mark.parametrize(("text", "hhmm"), [
    ("晚上十一点半给我打电话", "23:30"), ("凌晨两点", "02:00"), ("下午三点", "15:00"), ("早上七点", "07:00"),
    ("晚上十点整", "22:00"), ("晚上十二点", "00:00"), ("半夜一点", "01:00"), ("中午一点", "13:00"),
    ("晚上10点20分", "22:20"), ("上午9点半", "09:30"), ("下午三点一刻", "15:15"), ("23:30", "23:30"),
    ("晚上１１點半", "23:30"), ("凌晨兩點多", "02:00"),
    ("at 11:30 pm", "23:30"), ("10 p.m.", "22:00"), ("at 2am", "02:00"), ("at 10 at night", "22:00"),
    ("at 7 in the morning", "07:00"), ("at 3 in the afternoon", "15:00"), ("they called at 23:30", "23:30"),
    ("12 pm", "12:00"), ("12 am", "00:00"),
])
def test_exact_times(text: str, hhmm: str) -> None:
    t = find_time(normalise(text))
    assert t is not None and t.exact and t.hhmm == hhmm


@pytest.mark.parametrize(("text", "night"), [
    ("凌晨", True), ("半夜", True), ("深夜", True), ("in the middle of the night", True), ("around midnight", True),
    ("下午", False), ("中午", False), ("白天", False), ("上午", False), ("in the afternoon", False),
])
def test_parts_of_the_day_that_settle_the_quiet_hours(text: str, night: bool) -> None:
    t = find_time(normalise(text))
    assert t is not None and not t.exact
    assert (t.minutes < 8 * 60 or t.minutes >= 22 * 60) is night


@pytest.mark.parametrize("text", ["晚上", "早上", "昨天", "in the morning", "this evening", "打了十几个电话"])
def test_parts_of_the_day_that_straddle_a_boundary_are_no_time(text: str) -> None:
    assert find_time(normalise(text)) is None


def test_an_impossible_clock_is_skipped() -> None:
    assert find_time("25点") is None and find_time("晚上十点七十分") is None


@pytest.mark.parametrize(("text", "attempts", "connected", "messages"), [
    ("他们打了十几个电话", 10, None, None),
    ("接通了5次", 5, 5, None),
    ("一天打了二十多次", 20, None, None),
    ("打了3次电话，接通了2次", 3, 2, None),
    ("每天打七八个电话", 7, None, None),
    ("打了二十幾通電話", 20, None, None),
    ("发了十几条短信", None, None, 10),
    ("called me 12 times a day", 12, None, None),
    ("sent 20 texts", None, None, 20),
    ("they called dozens of times", 24, None, None),
])
def test_counts(text: str, attempts: int | None, connected: int | None, messages: int | None) -> None:
    c = find_counts(normalise(text))
    assert (c.attempts, c.connected, c.messages) == (attempts, connected, messages)


@pytest.mark.parametrize("text", ["一周打了30次", "这个月打了上百个电话", "30 calls last month", "借1000到手700",
                                  "7天还1000", "逾期第3天"])
def test_no_daily_count(text: str) -> None:
    c = find_counts(normalise(text))
    assert c.attempts is None and c.connected is None
