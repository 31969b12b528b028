"""Text normalisation for the message lint, keeping a map back to the original offsets.

Evasions the lint must see through, in the order they are undone:

1. Traditional characters (``再不還錢就讓你坐牢``): OpenCC ``t2s``.
2. Full-width forms (``ｔｘｌ``, ``８０００元``): NFKC, one character at a time.
3. Case (``TXL``): lower-cased.
4. Separators slipped between characters (``爆你通-讯-录``, ``通 讯 录``, ``通\u200b讯录``):
   a run of whitespace, punctuation, symbols or format characters is removed when it touches a
   CJK character, and collapsed to one space between two Latin letters or digits, so English
   word boundaries survive. Currency signs are kept (``¥8000``).

Homophone and pinyin evasions (``通迅录``, ``坐劳``, ``txl``) are lexicon data (``variants``),
expanded into extra patterns rather than rewritten here, so every normalised character still
comes from exactly one original character.

The result keeps, for each normalised character, the ``[start, end)`` of the original
characters it came from, so lint spans point into the ORIGINAL message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Normalized", "normalize", "normalize_all"]


class _Converter(Protocol):
    def convert(self, text: str) -> str: ...


_converter: _Converter | None = None


def _t2s() -> _Converter:
    # OpenCC is loaded on first use: the `check` path pays for it only when a message is linted.
    global _converter
    if _converter is None:
        import opencc

        conv: Any = opencc.OpenCC("t2s")
        _converter = conv
    assert _converter is not None
    return _converter


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x20000 <= o <= 0x2FFFF
        or 0xF900 <= o <= 0xFAFF
        or 0x3040 <= o <= 0x30FF  # kana, rarely used as look-alikes
    )


# A run of anything that is neither a letter/digit (``\w`` minus ``_``) nor a currency sign
# the amount patterns need: whitespace, punctuation, symbols, emoji, format characters.
_SEPARATORS = re.compile(r"(?:[^\w¥$€£]|_)+")


_FULL_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}


class Normalized:
    """A normalised text and, per character, the index of the original character it came from."""

    __slots__ = ("starts", "text")

    def __init__(self, text: str, starts: list[int]) -> None:
        self.text = text
        self.starts = starts

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map ``[start, end)`` of the normalised text to ``[start, end)`` of the original."""
        return self.starts[start], self.starts[end - 1] + 1


def _aligned(original: str, converted: str | None = None) -> tuple[str, list[int] | None]:
    """Steps 1–3; returns the text and, unless it is aligned 1:1 with ``original``, an index map.
    ``converted``: ``original`` already converted by OpenCC, if the caller has it."""
    if original.isascii():
        return original.lower(), None
    conv = _t2s()
    text = conv.convert(original) if converted is None else converted
    if len(text) == len(original):
        if not unicodedata.is_normalized("NFKC", text):
            # Full-width ASCII forms (almost every Chinese message has ，！？) by table, which is
            # far cheaper than NFKC; NFKC itself only for what is left (①, ㎏, …).
            text = text.translate(_FULL_WIDTH)
            if not unicodedata.is_normalized("NFKC", text):
                text = unicodedata.normalize("NFKC", text)
        low = text.lower()
        # Equal lengths all the way: take the characters as aligned one to one (a composition
        # and an expansion cancelling out could shift a span by one; that is harmless).
        if len(low) == len(original):
            return low, None
    # Slow path: a conversion changed the length somewhere; go character by character.
    chars: list[str] = []
    index: list[int] = []
    for i, c in enumerate(original):
        for ch in unicodedata.normalize("NFKC", conv.convert(c) or c).lower():
            chars.append(ch)
            index.append(i)
    return "".join(chars), index


def normalize_all(texts: Sequence[str]) -> list[Normalized]:
    """``[normalize(t) for t in texts]`` with one OpenCC call for all of them (building a lexicon
    normalises a few thousand phrases). Converting phrases joined by newlines converts each as
    itself: no dictionary entry spans a line break."""
    wide = [t for t in texts if not t.isascii()]
    converted: dict[str, str] = {}
    if wide and not any("\n" in t for t in wide):
        parts = _t2s().convert("\n".join(wide)).split("\n")
        if len(parts) == len(wide):
            converted = dict(zip(wide, parts, strict=True))
    return [normalize(t, _converted=converted.get(t)) for t in texts]


def normalize(original: str, *, _converted: str | None = None) -> Normalized:
    """Normalise ``original`` for matching (see the module docstring) with an offset map."""
    text, index = _aligned(original, _converted)
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    n = len(text)
    for m in _SEPARATORS.finditer(text):
        a, b = m.span()
        if a > pos:
            parts.append(text[pos:a])
            starts.extend(range(pos, a))
        # Between two Latin letters/digits keep one space (word boundary); elsewhere drop the run.
        if 0 < a and b < n and not _is_cjk(text[a - 1]) and not _is_cjk(text[b]):
            parts.append(" ")
            starts.append(a)
        pos = b
    if pos < n:
        parts.append(text[pos:])
        starts.extend(range(pos, n))
    if index is not None:
        starts = [index[i] for i in starts]
    return Normalized("".join(parts), starts)
