"""The clause lint: standard terms and privacy policies -> findings (DESIGN §7 ``clauses lint``).

Pure: text in, report out; the patterns are data (``policy/clauses/*.yaml``, see ``spec.py``).

Units. A *paragraph* is one line of the text (contracts and policies put one clause per line; a
hard-wrapped paragraph is read as several). A *sentence* is a paragraph cut after 。！？；!?; or a
full stop followed by a space. Spans are ``[start, end)`` code-point offsets into the ORIGINAL
text, with surrounding whitespace trimmed, and ``text`` is exactly ``text[start:end]``.

Rule kinds (what the code does; the YAML says with which patterns):

- ``cooccur``: every pattern group of ``all_of`` matches within one unit, and none of the
  ``unless``/``unless_markers`` patterns does (a separate-consent marker, a named recipient).
  ``unless_in_sentence`` markers (a negation such as "我们不会读取您的通讯录") are judged on the
  sentence of each match of the first group: the unit is cleared only when every such sentence is.
  ``unless_title_markers`` are judged on the document's first line (a separate consent form as a
  whole). One finding per unit.
- ``document_missing``: the document is of the kind ``applies_if`` recognises (a privacy policy)
  and some group of ``all_of`` matches nowhere in it (no retention period, no rights). The finding
  is about the whole document: its span is ``[0, 0]`` and its ``text`` is empty.
- ``conspicuous`` (Civil Code 496 "提请注意"): a sentence containing a key term (contacts, fees,
  disclosure, liability) must be emphasised. The heuristic: the term lies inside an emphasised
  region (【…】, **…**, <b>…</b>, <strong>…</strong>), or its paragraph carries a marker such as
  "【重要】", "（加粗）" or "IMPORTANT:", or the sentence is in capitals (English practice).
  Headings (a line of at most 40 characters without sentence punctuation) are not clauses.
  Plain text cannot carry bold type, so a document pasted without its marks is flagged: the answer
  is to keep the marks when linting, not to trust unmarked text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from collectguard.rules.clauses.spec import ClauseRuleSpec, ClauseSpec, compile_patterns, load_clause_spec

__all__ = ["ClauseFinding", "ClauseLinter", "ClauseReport", "lint_clauses"]

_SENTENCE_END = re.compile(r"[。！？；!?;]+|\.(?=\s|$)")
_LINE = re.compile(r"[^\r\n]+")
_NEVER = re.compile(r"(?!x)x")


class ClauseFinding(BaseModel):
    """One problem: the rule, its legal basis, where it is, and what to do (zh and en)."""

    model_config = ConfigDict(frozen=True)

    rule: str
    citations: tuple[str, ...]
    span: tuple[int, int]
    text: str
    message_zh: str
    message_en: str


class ClauseReport(BaseModel):
    """The lint's answer: ``clean`` exactly when there are no findings."""

    model_config = ConfigDict(frozen=True)

    verdict: Literal["clean", "problems"]
    findings: tuple[ClauseFinding, ...] = ()


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    paragraph: tuple[int, int]


@dataclass(frozen=True)
class _Rule:
    spec: ClauseRuleSpec
    groups: tuple[re.Pattern[str], ...]
    applies_if: re.Pattern[str]
    terms: re.Pattern[str]
    unless: re.Pattern[str]
    unless_sentence: re.Pattern[str]
    unless_title: re.Pattern[str]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    for m in _LINE.finditer(text):
        span = _trim(text, m.start(), m.end())
        if span:
            yield span


def _sentences(text: str, p_start: int, p_end: int) -> Iterator[tuple[int, int]]:
    cut = p_start
    for m in _SENTENCE_END.finditer(text, p_start, p_end):
        span = _trim(text, cut, m.end())
        if span:
            yield span
        cut = m.end()
    span = _trim(text, cut, p_end)
    if span:
        yield span


def _units(text: str, unit: str) -> Iterator[_Unit]:
    for p in _paragraphs(text):
        if unit == "paragraph":
            yield _Unit(p[0], p[1], p)
        else:
            for a, b in _sentences(text, *p):
                yield _Unit(a, b, p)


def _either(markers: dict[str, re.Pattern[str]], names: tuple[str, ...], where: str) -> re.Pattern[str]:
    if not names:
        return _NEVER
    return compile_patterns(tuple(markers[n].pattern for n in names), where=where)


def _heading(text: str, u: _Unit) -> bool:
    line = text[u.paragraph[0] : u.paragraph[1]]
    return len(line) <= 40 and _SENTENCE_END.search(line) is None


class ClauseLinter:
    """Lints contract and policy texts with one compiled pattern file."""

    def __init__(self, spec: ClauseSpec) -> None:
        self.version = spec.version
        markers = {name: compile_patterns(p, where=f"markers.{name}") for name, p in spec.markers.items()}
        c = spec.conspicuous
        self._regions = compile_patterns(c.regions, where="conspicuous.regions")
        self._para_marks = (
            compile_patterns(c.paragraph_markers, where="conspicuous") if c.paragraph_markers else _NEVER
        )
        self._caps = (c.caps_ratio, c.caps_min_letters)
        self._rules: list[_Rule] = []
        for r in spec.rules:
            where = f"rules.{r.id}"
            unless = [markers[m].pattern for m in r.unless_markers]
            if r.unless:
                unless.append(compile_patterns(r.unless, where=where).pattern)

            self._rules.append(
                _Rule(
                    spec=r,
                    groups=tuple(compile_patterns(g, where=where) for g in r.all_of),
                    applies_if=compile_patterns(r.applies_if, where=where) if r.applies_if else _NEVER,
                    terms=compile_patterns(r.terms, where=where) if r.terms else _NEVER,
                    unless=compile_patterns(tuple(unless), where=where) if unless else _NEVER,
                    unless_sentence=_either(markers, r.unless_in_sentence, where),
                    unless_title=_either(markers, r.unless_title_markers, where),
                )
            )

    @classmethod
    def default(cls) -> ClauseLinter:
        """The linter with the shipped pattern file (loaded and compiled once per process)."""
        return _default()

    def lint(self, text: str) -> ClauseReport:
        """All findings of every rule on ``text``, ordered by position, then by rule order."""
        found: list[tuple[int, int, ClauseFinding]] = []
        regions = [(m.start(), m.end()) for m in self._regions.finditer(text)]
        for order, rule in enumerate(self._rules):
            for span in self._broken(rule, text, regions):
                found.append((span[0], order, self._finding(rule.spec, text, span)))
        found.sort(key=lambda f: (f[0], f[1]))
        findings = tuple(f for _, _, f in found)
        return ClauseReport(verdict="problems" if findings else "clean", findings=findings)

    def _broken(self, rule: _Rule, text: str, regions: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        kind = rule.spec.kind
        if kind == "document_missing":
            if rule.applies_if.search(text) and not all(g.search(text) for g in rule.groups):
                yield (0, 0)
            return
        title = next(_paragraphs(text), (0, 0))
        if rule.unless_title.search(text, *title):
            return
        for u in _units(text, rule.spec.unit):
            if rule.unless.search(text, u.start, u.end):
                continue
            if kind == "cooccur":
                if all(g.search(text, u.start, u.end) for g in rule.groups) and self._asserted(rule, text, u):
                    yield (u.start, u.end)
            else:  # conspicuous: the unit is a sentence
                m = rule.terms.search(text, u.start, u.end)
                if (
                    m
                    and not _heading(text, u)
                    and not rule.unless_sentence.search(text, u.start, u.end)
                    and not self._emphasised(text, u, m.start(), regions)
                ):
                    yield (u.start, u.end)

    @staticmethod
    def _asserted(rule: _Rule, text: str, u: _Unit) -> bool:
        """Whether some match of the first group sits in a sentence no ``unless_in_sentence`` clears."""
        sentences = list(_sentences(text, u.start, u.end))
        for m in rule.groups[0].finditer(text, u.start, u.end):
            a, b = next(((a, b) for a, b in sentences if a <= m.start() < b), (u.start, u.end))
            if not rule.unless_sentence.search(text, a, b):
                return True
        return False

    def _emphasised(self, text: str, u: _Unit, at: int, regions: list[tuple[int, int]]) -> bool:
        if any(a <= at < b for a, b in regions):
            return True
        if self._para_marks.search(text, *u.paragraph):
            return True
        letters = [ch for ch in text[u.start : u.end] if ch.isalpha() and ch.isascii()]
        ratio, least = self._caps
        return len(letters) >= least and sum(ch.isupper() for ch in letters) >= ratio * len(letters)

    @staticmethod
    def _finding(r: ClauseRuleSpec, text: str, span: tuple[int, int]) -> ClauseFinding:
        return ClauseFinding(
            rule=r.id,
            citations=r.citations,
            span=span,
            text=text[span[0] : span[1]],
            message_zh=r.message_zh,
            message_en=r.message_en,
        )


@cache
def _default() -> ClauseLinter:
    return ClauseLinter(load_clause_spec("cn"))


def lint_clauses(text: str) -> ClauseReport:
    """``ClauseLinter.default().lint(text)``: a contract or policy text -> report."""
    return ClauseLinter.default().lint(text)
