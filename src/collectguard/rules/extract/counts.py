"""How often: dial attempts, connected calls and messages per day, as the smallest count said.

``十几个电话`` -> at least 10 attempts; ``接通了5次`` -> 5 connected; ``一天打了二十多次`` -> at least
20 attempts; ``发了十几条短信`` -> at least 10 messages; "called 12 times a day" -> 12 attempts.

Counts over a longer period ("一周打了30次", "30 calls last month") are not per day and are left
out: the caps are daily and an average would put words in the complainant's mouth. A count with
no period at all is read as one day, which is how such complaints are usually meant; the
extracted facts shown to the user say so, and they can correct it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectguard.rules.extract.numerals import COUNT, count_value

__all__ = ["VAGUE_MANY", "Counts", "find_counts"]


@dataclass(frozen=True)
class Counts:
    """Per-day counts found in a clause (``None``: not said)."""

    attempts: int | None = None
    connected: int | None = None
    messages: int | None = None


_LONG_PERIOD = re.compile(r"(?:一|每|这|上|几|两|半)个?(?:周|星期|礼拜|月|年)|这几天|几天内|连续几天|"
                          r"\b(?:a|per|"
                          r"every|last|this|in a) (?:week|month|year)\b|\bweekly\b|\bmonthly\b")
_CONNECTED = re.compile(rf"(?:接通|接听|接了|通话)了?\s?(?P<n>{COUNT})\s?(?:次|个|通|回)"
                        rf"|(?P<n2>{COUNT})\s?(?:次|个|通)(?:都)?(?:接通|接了|通话)"
                        rf"|\b(?:answered|picked up)\s(?P<n3>{COUNT})\s(?:of them|times|calls)")
_MESSAGES = re.compile(rf"(?P<n>{COUNT})\s?(?:条|封)\s?(?:短信|信息|消息|微信|邮件)"
                       rf"|(?:短信|信息|消息)\s?(?P<n2>{COUNT})\s?条"
                       rf"|\b(?P<n3>{COUNT})\s(?:texts|text messages|messages|emails|sms)\b")
_ATTEMPTS = re.compile(rf"(?P<n>{COUNT})\s?(?:个|通|次|遍|回)\s?(?:电话|来电)?"
                       rf"|\b(?:called|rang|phoned|dialed|dialled)(?: me| my \w+)?\s(?P<n2>{COUNT})\s?times"
                       rf"|\b(?P<n3>{COUNT})\s(?:calls|phone calls|times)\b")
#: Words that say "very often" without a number; they make the frequency worth asking about.
VAGUE_MANY = re.compile(r"轰炸|打爆|狂打|不停地?打|一直打|天天打|反复打|打个不停|疯狂|无数|连环|夺命连环|"
                        r"nonstop|non-stop|constantly|all day|over and over|again and again|bombard")


def _first(m: re.Match[str] | None) -> int | None:
    if m is None:
        return None
    for key in ("n", "n2", "n3"):
        v = m.groupdict().get(key)
        if v:
            return count_value(v)
    return None


def find_counts(clause: str) -> Counts:
    """The per-day counts in one normalised clause (see the module docstring)."""
    if _LONG_PERIOD.search(clause):
        return Counts()
    connected = _first(_CONNECTED.search(clause))
    messages = _first(_MESSAGES.search(clause))
    attempts = None
    # A message count ("十几条短信") is not a call count; look for calls outside it.
    rest = _MESSAGES.sub(" ", clause)
    rest = _CONNECTED.sub(" ", rest)
    m = _ATTEMPTS.search(rest)
    if m is not None and (re.search(r"电话|打|call|rang|phone|dial", clause) or "次" in m.group(0)):
        attempts = _first(m)
    if connected is not None and (attempts is None or attempts < connected):
        attempts = connected  # every connected call was also an attempt
    return Counts(attempts=attempts, connected=connected, messages=messages)
