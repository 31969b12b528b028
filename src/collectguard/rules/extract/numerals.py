"""Numbers as people write them: ``12``, ``十二``, ``两``, ``十几`` (at least 10), ``二十多`` (at least 20).

Every reader returns the *smallest* value the words allow: an extractor must not make a count
bigger than what was said ("十几个电话" is at least 10 calls, not 15).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["AMOUNT", "COUNT", "NUMBER", "amount_value", "count_value", "number_value"]

_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
          "八": 8, "九": 9}
_UNIT = {"十": 10, "百": 100, "千": 1000}
_EN = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
       "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
       "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
       "a dozen": 12, "dozens of": 24, "dozens": 24, "a couple of": 2, "a few": 3, "several": 3}

#: A number in digits, Chinese numerals or (common) English words.
NUMBER = (r"(?:\d+(?:\.\d+)?|[零〇一二两俩三四五六七八九十百千万]+|"
          + "|".join(sorted((re.escape(k) for k in _EN), key=len, reverse=True)) + ")")
#: A count, possibly approximate: 十几 / 二十多 / 几十 / 三四十 / 20多 / 好几 / 上百 / "more than 20".
COUNT = (r"(?:(?:more than|over|at least|about|around|nearly|almost) )?(?:上百|几十|好几|"
         + NUMBER + r"(?:几|多|余|来)?)(?: or so)?")
#: An amount of money: digits with an optional 万/千/k and currency words around it.
AMOUNT = (r"(?:[¥$€£]\s?)?(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?)(?:\s?(?:万|千|k))"
          r"?(?:\s?(?:元|块钱|块|rmb|yuan|dollars|euros))?")


def _chinese(s: str) -> int | None:
    """``二十三`` -> 23, ``十五`` -> 15, ``一百零五`` -> 105, ``三千`` -> 3000, ``两万`` -> 20000."""
    if not s or any(ch not in _DIGIT and ch not in _UNIT and ch != "万" for ch in s):
        return None
    if "万" in s:
        head, _, tail = s.partition("万")
        hi = _chinese(head) if head else 1
        lo = _chinese(tail) if tail else 0
        return None if hi is None or lo is None else hi * 10000 + lo
    total, digit = 0, None
    for ch in s:
        if ch in _DIGIT:
            digit = _DIGIT[ch]
        else:
            total += (1 if digit is None else digit) * _UNIT[ch]
            digit = None
    return total + (digit or 0)


def number_value(s: str) -> int | None:
    """The integer ``s`` names (digits, Chinese numerals or an English word), else ``None``."""
    s = s.strip()
    if s.isdigit():
        return int(s)
    if s in _EN:
        return _EN[s]
    # "七八" (seven or eight) and "三四十" (thirty or forty) -> the smaller reading
    if len(s) == 2 and s[0] in _DIGIT and s[1] in _DIGIT:
        return _DIGIT[s[0]]
    if len(s) >= 3 and s[0] in _DIGIT and s[1] in _DIGIT and s[2] in _UNIT:
        s = s[0] + s[2:]
    return _chinese(s)


def count_value(s: str) -> int | None:
    """The smallest count ``s`` allows: ``十几`` -> 10, ``二十多`` -> 20, ``几十`` -> 20, ``好几`` -> 3."""
    s = re.sub(r"^(?:more than|over|at least|about|around|nearly|almost) ", "", s.strip())
    s = s.removesuffix(" or so")
    if s == "上百":
        return 100
    if s == "几十":
        return 20
    if s == "好几":
        return 3
    s = s.rstrip("几多余来") or s
    return number_value(s)


def amount_value(s: str) -> Decimal | None:
    """``1000`` / ``¥1,000`` / ``1.5万`` / ``2k`` / ``700元`` -> Decimal; ``None`` if no digits."""
    m = re.search(r"\d+(?:[.,]\d+)*", s)
    if m is None:
        return None
    digits = m.group(0)
    # "1,000" groups thousands; "1,5" (a decimal comma) is read as 1.5.
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", digits):
        digits = digits.replace(",", "")
    else:
        digits = digits.replace(",", ".")
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return None
    tail = s[m.end():]
    if "万" in tail:
        value *= 10000
    elif "千" in tail or tail.strip().startswith("k"):
        value *= 1000
    return value
