"""Reads the packaged policy data — rule packs, lint lexicons, golden scenarios — and checks its shape.

The files ship inside the package (``importlib.resources``), so the same data is used by the
CLI, the API and the tests. A pack or lexicon that does not match the schema below raises
``PackError`` at load time: a broken pack must stop the service from starting, never be
half-applied. What each rule *kind* does with its ``params`` is checked when the engine compiles
the pack (``collectguard.rules.compile_pack``), which raises ``PackError`` as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "CategorySpec",
    "CitationSpec",
    "LexiconSpec",
    "PackError",
    "PackSpec",
    "RuleSpec",
    "available_packs",
    "load_lexicon",
    "load_pack",
    "load_yaml_text",
    "scenario_files",
]

_PACKAGE = "collectguard.policy"
# <JURISDICTION>:<INSTRUMENT>[:<article>] as DESIGN.md §5 defines citation ids.
CITATION_RE = re.compile(r"^(CN|US|EU):[A-Z][A-Z0-9]*(?::[0-9A-Za-z.()\-]+)?$")

try:  # the C loader is ~10x faster; fall back to the pure-Python one where libyaml is absent
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


class PackError(ValueError):
    """A rule pack, lexicon or scenario file that is malformed. Raised at load/compile time."""


_STRICT = ConfigDict(extra="forbid", frozen=True)


class CitationSpec(BaseModel):
    """A citation that is only in force from a date (e.g. a statute's revised numbering)."""

    model_config = _STRICT

    id: str
    effective_from: date | None = None
    effective_to: date | None = None

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if not CITATION_RE.match(v):
            raise ValueError(f"citation id {v!r} is not <JURISDICTION>:<INSTRUMENT>[:<article>]")
        return v


class RuleSpec(BaseModel):
    """One rule of a pack, as written in the YAML."""

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z]{2}\.[a-z0-9_.\-]+$")
    kind: str
    effect: Literal["deny", "warn"] = "deny"
    citations: tuple[CitationSpec, ...] = ()
    verification: Literal["Y", "Y2", "policy"]
    source: str = Field(min_length=1)
    effective_from: date | None = None
    effective_to: date | None = None
    applies_when: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    message_zh: str = Field(min_length=1)
    message_en: str = Field(min_length=1)

    @field_validator("citations", mode="before")
    @classmethod
    def _plain_ids(cls, v: Any) -> Any:
        # A citation is written either as a bare id or as {id, effective_from, effective_to}.
        if isinstance(v, list):
            return [{"id": c} if isinstance(c, str) else c for c in v]
        return v

    @model_validator(mode="after")
    def _deny_needs_basis(self) -> RuleSpec:
        if self.effect == "deny" and not self.citations and self.verification != "policy":
            raise ValueError(f"rule {self.id}: a deny rule must cite its basis (or be verification: policy)")
        return self


class PackSpec(BaseModel):
    """A jurisdiction's rule pack."""

    model_config = _STRICT

    pack: str = Field(pattern=r"^[A-Z]{2}$")
    version: str = Field(min_length=1)
    jurisdiction: Literal["CN", "US", "EU"]
    title: str = ""
    debtor_roles: tuple[str, ...] = Field(min_length=1)
    lexicons: tuple[str, ...] = ()
    rules: tuple[RuleSpec, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        # Keys starting with "x-" hold YAML anchors (shared citations) and notes, not rules.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data

    @model_validator(mode="after")
    def _unique_ids(self) -> PackSpec:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise ValueError(f"rule id {r.id} appears twice")
            seen.add(r.id)
        return self


class CategorySpec(BaseModel):
    """One lint category: the phrases that show it and what it adds to the event's facts."""

    model_config = _STRICT

    conduct: tuple[str, ...] = ()
    discloses: tuple[str, ...] = ()
    third_party_only: bool = False
    terms: tuple[str, ...] = ()
    combos: tuple[dict[str, tuple[str, ...]], ...] = ()
    regex: tuple[str, ...] = ()
    negatable: bool = True


class LexiconSpec(BaseModel):
    """A versioned lint lexicon for one language."""

    model_config = _STRICT

    language: str
    version: str
    negators: tuple[str, ...] = ()
    variants: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    categories: dict[str, CategorySpec]


def load_yaml_text(text: str, *, where: str) -> Any:
    """Parse YAML text with the safe loader, turning YAML errors into ``PackError``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - CSafeLoader/SafeLoader only
    except yaml.YAMLError as exc:
        raise PackError(f"{where}: not valid YAML: {exc}") from None


def _read(*parts: str) -> tuple[Any, str]:
    res = resources.files(_PACKAGE).joinpath(*parts)
    where = "/".join(("policy", *parts))
    if not res.is_file():
        raise PackError(f"{where}: no such packaged file")
    return load_yaml_text(res.read_text(encoding="utf-8"), where=where), where


def _first_error(exc: ValidationError) -> str:
    e = exc.errors(include_url=False)[0]
    return f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"


def available_packs() -> list[str]:
    """Names of the rule packs shipped in ``policy/packs`` (file stems, upper-cased), sorted."""
    folder = resources.files(_PACKAGE).joinpath("packs")
    return sorted(p.name[:-5].upper() for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_pack(name: str) -> PackSpec:
    """Load and validate the shipped pack ``name`` (e.g. ``"CN"``). Raises ``PackError`` if malformed."""
    data, where = _read("packs", f"{name.lower()}.yaml")
    try:
        return PackSpec.model_validate(data)
    except ValidationError as exc:
        raise PackError(f"{where}: {_first_error(exc)}") from None


def load_lexicon(name: str) -> LexiconSpec:
    """Load and validate the shipped lint lexicon ``name`` (e.g. ``"zh"``). Raises ``PackError``."""
    data, where = _read("lexicon", f"{name}.yaml")
    try:
        return LexiconSpec.model_validate(data)
    except ValidationError as exc:
        raise PackError(f"{where}: {_first_error(exc)}") from None


def _walk(node: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        name = f"{prefix}/{child.name}" if prefix else child.name
        if child.is_dir():
            yield from _walk(child, name)
        elif child.name.endswith((".yaml", ".yml")):
            yield name, child


def scenario_files() -> list[tuple[str, Any]]:
    """Every golden-scenario YAML under ``policy/scenarios`` (all jurisdictions), parsed, by path."""
    root = resources.files(_PACKAGE).joinpath("scenarios")
    if not root.is_dir():
        return []
    return [
        (name, load_yaml_text(res.read_text(encoding="utf-8"), where=f"policy/scenarios/{name}"))
        for name, res in _walk(root, "")
    ]
