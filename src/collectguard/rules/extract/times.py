"""Times of day in a description: ``晚上十一点半`` -> 23:30, ``凌晨两点`` -> 02:00, ``at 11:30 pm``.

``find_time`` returns the first time mentioned in a clause as minutes after midnight, and whether
it is an exact clock time or only a part of the day. A part of the day is used only where it
settles the question the rules ask (is it between 22:00 and 08:00?): ``凌晨`` / ``半夜`` /
``深夜`` / "in the middle of the night" are always inside that window, ``下午`` / ``中午`` /
"in the afternoon" always outside it. ``晚上`` ("evening", 18:00-24:00) and ``早上`` (06:00-09:00)
straddle a boundary, so on their own they are not a time at all: the question is then asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectguard.rules.extract.normalise import has_cjk
from collectguard.rules.extract.numerals import number_value

__all__ = ["TimeMention", "find_time"]


@dataclass(frozen=True)
class TimeMention:
    """A time of day: ``minutes`` after midnight; ``exact`` false for a part of the day only."""

    minutes: int
    exact: bool
    text: str

    @property
    def hhmm(self) -> str:
        """``"23:30"``."""
        return f"{self.minutes // 60:02d}:{self.minutes % 60:02d}"


_ZH_NUM = r"[0-9]{1,2}|[零一二两三四五六七八九十]{1,3}"
_ZH_PERIOD = (r"凌晨|半夜|深夜|大半夜|夜里|夜间|晚上|晚间|傍晚|夜晚|晚|早上|早晨|清晨|一早|早|上午|中午|"
              r"午间|下午|白天")
_ZH_CLOCK = re.compile(
    rf"(?P<period>{_ZH_PERIOD})?\s?(?:的)?(?P<hour>{_ZH_NUM})\s?(?:点|:|：|时)"
    rf"(?:\s?(?P<half>半)|\s?(?P<quarter>一刻|三刻)|\s?(?P<minute>{_ZH_NUM})\s?分?)?"
)
# Parts of the day that settle the 22:00-08:00 question on their own.
_ZH_VAGUE = (
    (re.compile(r"凌晨|半夜|深夜|大半夜|三更半夜|夜里[一两三四五]点"), 2 * 60),
    (re.compile(r"下午|中午|午休|午饭|白天|工作时间|上班时间"), 15 * 60),
    (re.compile(r"上午"), 10 * 60),
)
_EN_CLOCK = re.compile(
    r"(?<![\d:])(?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?\s?(?P<ampm>am|pm)\b"
    r"|(?<![\d:])(?P<h24>[01]?\d|2[0-3]):(?P<m24>[0-5]\d)(?![\d:])"
    r"|\bat (?P<hat>\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
    r"(?: o'?clock)? (?P<when>at night|in the evening|in the morning|in the afternoon)"
)
_EN_VAGUE = (
    (re.compile(r"\bmidnight\b"), 0),
    (re.compile(r"middle of the night|late at night|in the night|overnight|before dawn|early hours"), 2 * 60),
    (re.compile(r"\bnoon\b|in the afternoon|during (?:the )?(?:day|work(?:ing)? hours|office hours)|lunch"),
     15 * 60),
)


def _zh_hour(period: str | None, hour: int) -> int | None:
    """24-hour clock hour for a Chinese period word and a 12-hour reading (None if impossible)."""
    if hour > 24:
        return None
    if hour >= 13 or period is None:
        return hour % 24
    if period in ("下午", "傍晚"):
        return hour + 12 if hour < 12 else 12
    if period == "中午":
        return hour + 12 if 1 <= hour <= 3 else 12
    if period in ("晚上", "晚间", "夜晚", "晚", "夜里", "夜间", "深夜", "半夜", "大半夜"):
        # 晚上十点 is 22:00, 晚上十二点 midnight, 晚上一点 / 半夜两点 past midnight.
        if hour == 12:
            return 0
        return hour + 12 if hour >= 6 else hour
    # 凌晨, 早上, 上午 … : morning hours as said (凌晨十二点 is midnight).
    return 0 if hour == 12 and period == "凌晨" else hour


def _zh(text: str) -> TimeMention | None:
    for m in _ZH_CLOCK.finditer(text):
        if re.match(r"\s?[ap]m\b", text[m.end():]):
            continue  # "11:30 pm" is an English clock time
        hour = number_value(m.group("hour"))
        if hour is None:
            continue
        h = _zh_hour(m.group("period"), hour)
        if h is None:
            continue
        minute = 0
        if m.group("half"):
            minute = 30
        elif m.group("quarter"):
            minute = 15 if m.group("quarter") == "一刻" else 45
        elif m.group("minute"):
            minute = number_value(m.group("minute")) or 0
        if minute >= 60:
            continue
        return TimeMention(h * 60 + minute, True, m.group(0))
    for pattern, minutes in _ZH_VAGUE:
        found = pattern.search(text)
        if found:
            return TimeMention(minutes, False, found.group(0))
    return None


def _en(text: str) -> TimeMention | None:
    m = _EN_CLOCK.search(text)
    if m:
        if m.group("hour"):
            hour, minute = int(m.group("hour")), int(m.group("minute") or 0)
            if 1 <= hour <= 12 and minute < 60:
                h = hour % 12 + (12 if m.group("ampm") == "pm" else 0)
                return TimeMention(h * 60 + minute, True, m.group(0))
        elif m.group("h24"):
            return TimeMention(int(m.group("h24")) * 60 + int(m.group("m24")), True, m.group(0))
        else:
            hour = number_value(m.group("hat")) or 0
            when = m.group("when")
            if 1 <= hour <= 12:
                if when == "in the morning":
                    h = hour % 12
                elif when == "at night":  # "at 10 at night" is 22:00, "at 2 at night" 02:00
                    h = 0 if hour == 12 else hour + 12 if hour >= 6 else hour
                else:
                    h = hour % 12 + 12
                return TimeMention(h * 60, True, m.group(0))
    for pattern, minutes in _EN_VAGUE:
        found = pattern.search(text)
        if found:
            return TimeMention(minutes, False, found.group(0))
    return None


def find_time(clause: str) -> TimeMention | None:
    """The first time of day in a normalised clause (Chinese or English), or ``None``."""
    return (_zh(clause) if has_cjk(clause) else None) or _en(clause)
