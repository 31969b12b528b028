"""The clause-lint pattern file (``policy/clauses/*.yaml``): its schema, loading and compiling.

A pattern file holds named *markers* (pattern lists reused by several rules: "separate consent is
asked for", "this is a negation", "the recipient is named") and *rules*. Each rule has a ``kind``
(what the code does, see ``rules/clauses/lint.py``), its citations (DESIGN §5 ids), zh and en
messages, and regular expressions as data. Every pattern is compiled at load time: a bad pattern or
an unknown marker raises ``PackError`` and stops the service, never half-applies a pattern file.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collectguard.policy.loader import CITATION_RE, PackError, load_yaml_text

__all__ = ["ClauseRuleSpec", "ClauseSpec", "compile_patterns", "load_clause_spec"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
# Case-insensitive for English; DOTALL is not used so that "." never runs across a line (a clause).
FLAGS = re.IGNORECASE


def compile_patterns(patterns: tuple[str, ...], *, where: str) -> re.Pattern[str]:
    """One alternation of ``patterns`` (each a regular expression), or ``PackError`` naming the bad one."""
    for p in patterns:
        try:
            re.compile(p, FLAGS)
        except re.error as exc:
            raise PackError(f"{where}: bad pattern {p!r}: {exc}") from None
    return re.compile("|".join(f"(?:{p})" for p in patterns), FLAGS)


class ClauseRuleSpec(BaseModel):
    """One rule as written in the YAML."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z]{2}\.clause\.[a-z0-9_]+$")
    kind: Literal["cooccur", "document_missing", "conspicuous"]
    unit: Literal["paragraph", "sentence"] = "paragraph"
    # cooccur: every group must match in one unit. document_missing: every group must match
    # somewhere in the document (a group is a list of alternatives).
    all_of: tuple[tuple[str, ...], ...] = ()
    # document_missing: the rule applies only to documents matching one of these (e.g. a privacy policy).
    applies_if: tuple[str, ...] = ()
    # conspicuous: the key terms that must be made conspicuous.
    terms: tuple[str, ...] = ()
    # The rule is not broken in a unit that matches one of these markers / extra patterns.
    unless_markers: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    # Markers judged on the sentence of each match of the first group (cooccur) or of the key term
    # (conspicuous) only: a negation speaks about its own sentence, not its neighbours.
    unless_in_sentence: tuple[str, ...] = ()
    # Markers judged on the document's title (its first line): a whole document that is a separate
    # consent form ("位置信息单独授权书") is a separate consent for every clause in it.
    unless_title_markers: tuple[str, ...] = ()
    citations: tuple[str, ...] = Field(min_length=1)
    source: str = Field(min_length=1)
    message_zh: str = Field(min_length=1)
    message_en: str = Field(min_length=1)

    @field_validator("citations")
    @classmethod
    def _citation_ids(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for c in v:
            if not CITATION_RE.match(c):
                raise ValueError(f"citation id {c!r} is not <JURISDICTION>:<INSTRUMENT>[:<article>]")
        return v

    @model_validator(mode="after")
    def _shape(self) -> ClauseRuleSpec:
        if self.kind == "cooccur" and not self.all_of:
            raise ValueError("a cooccur rule needs all_of")
        if self.kind == "document_missing" and not (self.all_of and self.applies_if):
            raise ValueError("a document_missing rule needs applies_if and all_of")
        if self.kind == "conspicuous" and not self.terms:
            raise ValueError("a conspicuous rule needs terms")
        return self


class ConspicuousSpec(BaseModel):
    """What makes a term conspicuous (CC 496 "提请注意"): the documented heuristic, as data."""

    model_config = _STRICT

    regions: tuple[str, ...] = Field(min_length=1)  # spans that are emphasised: 【…】, **…**, <b>…</b>
    paragraph_markers: tuple[str, ...] = ()  # a paragraph carrying one of these is emphasised as a whole
    caps_ratio: float = Field(0.8, gt=0, le=1)  # an English sentence this upper-case is emphasised
    caps_min_letters: int = Field(12, ge=1)


class ClauseSpec(BaseModel):
    """A whole pattern file."""

    model_config = _STRICT

    version: str
    title: str
    markers: dict[str, tuple[str, ...]]
    conspicuous: ConspicuousSpec
    rules: tuple[ClauseRuleSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> ClauseSpec:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise ValueError(f"rule {r.id} appears twice")
            seen.add(r.id)
            missing = {*r.unless_markers, *r.unless_in_sentence, *r.unless_title_markers} - set(self.markers)
            if missing:
                raise ValueError(f"rule {r.id}: unknown markers {sorted(missing)}")
        return self


def load_clause_spec(name: str = "cn") -> ClauseSpec:
    """Load and validate ``policy/clauses/<name>.yaml``; ``PackError`` when malformed."""
    where = f"policy/clauses/{name}.yaml"
    res = resources.files("collectguard.policy").joinpath("clauses", f"{name}.yaml")
    if not res.is_file():
        raise PackError(f"{where}: no such packaged file")
    data = load_yaml_text(res.read_text(encoding="utf-8"), where=where)
    try:
        return ClauseSpec.model_validate(data)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        raise PackError(f"{where}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}") from None
