"""Message lint: finds threats, insults, impersonation, disclosure threats … in a message.

The lexicons are data (``policy/lexicon/*.yaml``): per category the phrases (``terms``),
phrase families (``combos``: every prefix × every stem), regular expressions (``regex``), the
conduct the category adds to the event's facts and what it discloses. ``variants`` lists
homophone and pinyin evasions of a canonical piece (``通讯录`` → ``通迅录``, ``txl``) and every
phrase containing the piece is also matched with each variant.

Matching: the message is normalised (``normalize.py``), all phrases are found in one pass with
an Aho-Corasick automaton (``pyahocorasick``), then the regexes run. A hit is dropped when the
normalised text right before it ends with a negator (``不会通知你家人`` is a promise, not a
threat). Latin phrases must sit on word boundaries (``owe`` does not match in ``power``).
Results are cached per message template (digits masked): collection messages come from a few
templates with different amounts and dates.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic_core import to_json

from collectguard.domain.event import LintHit
from collectguard.policy.loader import LexiconSpec, PackError
from collectguard.rules.kinds import DERIVED_CONDUCT
from collectguard.rules.normalize import normalize, normalize_all

__all__ = ["LintResult", "LintView", "Linter"]

_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class LintResult:
    """What the lint found in one message."""

    hits: tuple[LintHit, ...]  # every hit, in message order
    hits_for_debtor: tuple[LintHit, ...]  # without the categories that only matter for third parties
    conduct: frozenset[str]  # conduct the hits add to the event
    discloses: frozenset[str]  # disclosures the hits add to the event


class LintView:
    """The part of a ``LintResult`` one recipient sees, with the hits pre-serialised for the engine.

    ``hits_json`` is the hits as JSON array items (no brackets), the text ``model_dump_json``
    gives. For a message that shares its template with a cached one, ``hits`` (the ``LintHit``
    objects) are only built when asked for: the JSON fast path never needs them.
    """

    __slots__ = ("_hits", "_message", "_template", "conduct", "discloses", "hits_json")

    def __init__(
        self,
        conduct: frozenset[str],
        discloses: frozenset[str],
        hits: tuple[LintHit, ...] | None,
        hits_json: str,
        template: _Template | None = None,
        message: str = "",
    ) -> None:
        self.conduct = conduct
        self.discloses = discloses
        self.hits_json = hits_json
        self._hits = hits
        self._template = template
        self._message = message

    @property
    def hits(self) -> tuple[LintHit, ...]:
        """Every hit this recipient sees, in message order; spans point into the message."""
        if self._hits is None:
            assert self._template is not None
            m = self._message
            self._hits = tuple(
                h if m[a:b] == h.text else LintHit(category=h.category, span=(a, b), text=m[a:b])
                for h, _, _ in self._template.hits
                for a, b in (h.span,)
            )
        return self._hits


class _Template(NamedTuple):
    """A cached view of one message template: per hit (the hit, its JSON, its JSON up to the text)."""

    view: LintView
    hits: tuple[tuple[LintHit, str, str], ...]


# Digits are masked for the cache key: "应还860元" and "应还1200元" share one template's lint work.
# Lexicon phrases therefore may not contain digits (regexes see every digit as 0; use \d).
_MASK = bytes.maketrans(b"123456789", b"000000000")  # bytes.translate: ~10x faster than str's


@dataclass(frozen=True, slots=True)
class _Entry:
    category: str
    negatable: bool
    latin_start: bool
    latin_end: bool


def _is_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _join(prefix: str, stem: str) -> str:
    """Prefix + stem; Latin words get a space between them ("tell your" + "employer")."""
    if prefix and stem and _is_word(prefix[-1]) and _is_word(stem[0]):
        return f"{prefix} {stem}"
    return prefix + stem


def _expand(term: str, variants: dict[str, tuple[str, ...]]) -> set[str]:
    """``term`` plus every spelling with canonical pieces swapped for their variants."""
    keys = [k for k in variants if k in term]
    if not keys:
        return {term}
    out: set[str] = set()
    for choice in itertools.product(*[(k, *variants[k]) for k in keys]):
        t = term
        for k, v in zip(keys, choice, strict=True):
            t = t.replace(k, v)
        out.add(t)
    return out


class Linter:
    """A compiled set of lexicons. ``lint(message)`` is pure and cached."""

    def __init__(self, lexicons: Iterable[LexiconSpec]) -> None:
        import ahocorasick  # imported here: only a pack that lints messages pays for it

        self._automaton: Any = ahocorasick.Automaton()
        self._regex: list[tuple[re.Pattern[str], _Entry]] = []
        self._negators: list[str] = []
        self._conduct: dict[str, frozenset[str]] = {}
        self._discloses: dict[str, frozenset[str]] = {}
        self._third_party_only: set[str] = set()
        self._cache: dict[str, tuple[_Template, _Template]] = {}
        spellings: list[tuple[str, str, bool]] = []  # (phrase as spelled, category, negatable)
        for lex in lexicons:
            self._negators += [n.text for n in normalize_all(lex.negators)]
            for name, cat in lex.categories.items():
                bad = set(cat.conduct) - _known_conduct()
                if bad:
                    raise PackError(f"lexicon {lex.language}: category {name}: unknown conduct {sorted(bad)}")
                self._conduct[name] = self._conduct.get(name, frozenset()) | frozenset(cat.conduct)
                self._discloses[name] = self._discloses.get(name, frozenset()) | frozenset(cat.discloses)
                if cat.third_party_only:
                    self._third_party_only.add(name)
                phrases = set(cat.terms)
                for combo in cat.combos:
                    if set(combo) != {"prefix", "stem"}:
                        raise PackError(f"lexicon {lex.language}: {name}: combos need prefix and stem")
                    phrases |= {_join(a, b) for a, b in itertools.product(combo["prefix"], combo["stem"])}
                for phrase in phrases:
                    if any(map(str.isdigit, phrase)):
                        raise PackError(f"lexicon {lex.language}: {name}: {phrase!r} has digits; use a regex")
                    spellings += [(spelled, name, cat.negatable) for spelled in _expand(phrase, lex.variants)]
                for rx in cat.regex:
                    try:
                        self._regex.append((re.compile(rx), _Entry(name, cat.negatable, False, False)))
                    except re.error as exc:
                        raise PackError(f"lexicon {lex.language}: {name}: bad regex {rx!r}: {exc}") from None
        keys: dict[str, list[_Entry]] = {}
        for (_, name, negatable), n in zip(spellings, normalize_all([x[0] for x in spellings]), strict=True):
            key = n.text
            if key:
                keys.setdefault(key, []).append(_Entry(name, negatable, _is_word(key[0]), _is_word(key[-1])))
        for key, entries in keys.items():
            self._automaton.add_word(key, (len(key), tuple(dict.fromkeys(entries))))
        if keys:
            self._automaton.make_automaton()
        self._has_words = bool(keys)

    @property
    def categories(self) -> frozenset[str]:
        """Every category the lexicons define."""
        return frozenset(self._conduct)

    def lint(self, message: str) -> LintResult:
        """Lint one message; spans in the result point into ``message`` itself. Not cached."""
        return self._lint(message)

    def view(self, message: str, *, third_party: bool) -> LintView:
        """What the lint adds for one recipient (cached per message template)."""
        key = message.encode().translate(_MASK).decode()
        pair = self._cache.get(key)
        if pair is None:
            r = self._lint(key)
            pair = (_template(r, r.hits), _template(r, r.hits_for_debtor))
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # crude but bounded; the templates refill it at once
            self._cache[key] = pair
        t = pair[0] if third_party else pair[1]
        v = t.view
        if key == message or not t.hits:
            return v
        # Same template, other digits: the spans are the same, the hit texts may differ. The
        # JSON is assembled from the template's fragments; the hits themselves wait until asked.
        parts = []
        changed = False
        for h, j, head in t.hits:
            text = message[h.span[0] : h.span[1]]
            if text == h.text:
                parts.append(j)
            else:
                parts.append(head + to_json(text).decode() + "}")
                changed = True
        if not changed:
            return v
        return LintView(v.conduct, v.discloses, None, ",".join(parts), t, message)

    def _negated(self, norm: str, start: int) -> bool:
        head = norm[max(0, start - 10) : start].rstrip(" ")
        for n in self._negators:
            if head.endswith(n):
                # A Latin negator must be a whole word: "casino" does not end in the word "no".
                before = len(head) - len(n) - 1
                if not (_is_word(n[0]) and before >= 0 and _is_word(head[before])):
                    return True
        return False

    def _lint(self, message: str) -> LintResult:
        n = normalize(message)
        text = n.text
        found: set[tuple[str, int, int]] = set()
        if self._has_words and text:
            for end_idx, (length, entries) in self._automaton.iter(text):
                start, end = end_idx - length + 1, end_idx + 1
                for e in entries:
                    if e.latin_start and start > 0 and _is_word(text[start - 1]):
                        continue
                    if e.latin_end and end < len(text) and _is_word(text[end]):
                        continue
                    if e.negatable and self._negated(text, start):
                        continue
                    found.add((e.category, start, end))
        for rx, e in self._regex:
            for m in rx.finditer(text):
                if m.end() > m.start() and not (e.negatable and self._negated(text, m.start())):
                    found.add((e.category, m.start(), m.end()))
        kept = _merge(found)
        hits: list[LintHit] = []
        for cat, a, b in sorted(kept, key=lambda h: (h[1], h[2], h[0])):
            oa, ob = n.original_span(a, b)
            hits.append(LintHit(category=cat, span=(oa, ob), text=message[oa:ob]))
        cats = {h.category for h in hits}
        conduct = frozenset().union(*(self._conduct[c] for c in cats)) if cats else frozenset()
        discloses = frozenset().union(*(self._discloses[c] for c in cats)) if cats else frozenset()
        debtor = tuple(h for h in hits if h.category not in self._third_party_only)
        return LintResult(tuple(hits), debtor, conduct, discloses)


def _template(r: LintResult, hits: tuple[LintHit, ...]) -> _Template:
    parts = []
    for h in hits:
        j = h.model_dump_json()
        # The JSON up to the text's value: '{"category":"amount","span":[3,8],"text":'.
        head = LintHit.model_construct(category=h.category, span=h.span, text="").model_dump_json()[:-3]
        assert j.startswith(head) and head.endswith('"text":'), head
        parts.append((h, j, head))
    return _Template(LintView(r.conduct, r.discloses, hits, ",".join(j for _, j, _ in parts)), tuple(parts))


def _merge(found: set[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Within one category, merge overlapping hits into one (``爆你通讯录`` over ``通讯录``;
    ``¥8,000`` and ``8,000元`` into ``¥8,000元``)."""
    kept: list[tuple[str, int, int]] = []
    by_cat: dict[str, list[tuple[int, int]]] = {}
    for cat, a, b in found:
        by_cat.setdefault(cat, []).append((a, b))
    for cat, spans in by_cat.items():
        spans.sort()
        start, end = spans[0]
        for a, b in spans[1:]:
            if a < end:
                end = max(end, b)
            else:
                kept.append((cat, start, end))
                start, end = a, b
        kept.append((cat, start, end))
    return kept


def _known_conduct() -> frozenset[str]:
    from typing import get_args

    from collectguard.domain.event import Conduct

    return frozenset(get_args(Conduct)) | DERIVED_CONDUCT
