"""Text normalisation for fact extraction: one canonical spelling to match against.

Unlike ``rules/normalize.py`` (the message lint), punctuation is kept: the extractor needs it to
split a description into clauses. Steps, in order:

1. Traditional -> Simplified (OpenCC ``t2s``): ``通訊錄`` -> ``通讯录``.
2. NFKC: full-width digits, letters and punctuation become ASCII (``２３：３０`` -> ``23:30``).
3. Lower case (English matching is case-insensitive).
4. Common typos and regional words are rewritten to one spelling (``通迅录`` -> ``通讯录``,
   ``简讯`` -> ``短信``): descriptions are typed in a hurry, often with pinyin input slips.
5. Runs of whitespace become one space.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Protocol

__all__ = ["has_cjk", "normalise", "split_clauses"]


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


_converter: _Converter | None = None


def _t2s(text: str) -> str:
    # Loaded on first use: OpenCC's dictionaries take a moment and English text never needs them.
    global _converter
    if _converter is None:
        import opencc

        conv: Any = opencc.OpenCC("t2s")
        _converter = conv
    assert _converter is not None
    return _converter.convert(text)


# Typos and regional variants seen in complaints -> the spelling the extractors look for.
# Order matters only where one key contains another; longer keys come first.
_REWRITES: tuple[tuple[str, str], ...] = (
    ("紧急联络人", "紧急联系人"),
    ("联络人", "联系人"),
    ("通迅录", "通讯录"),
    ("通讯禄", "通讯录"),
    ("通迅禄", "通讯录"),
    ("通汛录", "通讯录"),
    ("通讯路", "通讯录"),
    ("通信录", "通讯录"),
    ("通讯簿", "通讯录"),
    ("通讯薄", "通讯录"),
    ("电话簿", "通讯录"),
    ("电话薄", "通讯录"),
    ("电话本", "通讯录"),
    ("tongxunlu", "通讯录"),
    ("简讯", "短信"),
    ("短讯", "短信"),
    ("短息", "短信"),
    ("讯息", "信息"),
    ("电活", "电话"),
    ("老癞", "老赖"),
    ("坐劳", "坐牢"),
    ("做牢", "坐牢"),
    ("群组", "群"),
    ("老闆", "老板"),
)
_TXL = re.compile(r"(?<![a-z])txl(?![a-z])")
_SPACES = re.compile(r"\s+")
_AM_PM = re.compile(r"\b([ap])\.\s?m\.")


def has_cjk(text: str) -> bool:
    """Whether ``text`` contains any CJK ideograph (then it is read as Chinese)."""
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def normalise(text: str) -> str:
    """The canonical form of ``text`` for matching (see the module docstring)."""
    out = _t2s(text) if has_cjk(text) else text
    out = unicodedata.normalize("NFKC", out).lower()
    # Curly quotes survive NFKC; make them plain so quoted speech has one shape.
    out = out.translate({0x201C: 0x22, 0x201D: 0x22, 0x2018: 0x27, 0x2019: 0x27})
    for old, new in _REWRITES:
        if old in out:
            out = out.replace(old, new)
    out = _TXL.sub("通讯录", out)
    out = _AM_PM.sub(r"\1m", out)  # "p.m." would otherwise end a sentence
    return _SPACES.sub(" ", out).strip()


# Clause boundaries: sentence ends, semicolons, commas (Chinese and ASCII; not inside a number such
# as "1,000") and line breaks; also where a new action starts without punctuation
# ("…打电话还给我通讯录的人发短信", "…called me and texted my sister"), because complaints run
# several contacts together and each contact must keep its own facts.
_CLAUSE = re.compile(
    r"[。.!?;！？；\n]+(?!\d)"
    r"|(?<!\d),|,(?!\d)"
    r"|(?=(?:然后|接着|而且|并且|甚至|还|又|也)(?:给|发|打|到|上门|把|在|找|去|跑|群发|通知|联系|骂|威胁))"
    r"|\band (?=(?:also |then |even )?(?:called|texted|messaged|sent|emailed|posted|came|showed|visited"
    r"|threatened|told|phoned|rang|contacted|called|said|posted)\b)"
)
_DOT_IN_NUMBER = re.compile(r"(?<=\d)\.(?=\d)")


def split_clauses(text: str) -> list[str]:
    """Split normalised ``text`` into clauses (non-empty, stripped), keeping order."""
    # Protect decimal points ("1.5万", "11.30 pm") from the sentence-end split.
    guarded = _DOT_IN_NUMBER.sub("\x00", text)
    return [c.replace("\x00", ".").strip() for c in _CLAUSE.split(guarded) if c and c.strip()]
