"""The self-check's data: consequences, next steps, questions, explanations and article texts.

Law as data, like the rule packs: the YAML files beside this module say which consequences a
finding carries (with citations), what a person can do next, how to ask for a missing fact and
how each rule and cited article reads to a borrower. ``load_catalogue()`` reads and checks them
once; a malformed file raises ``PackError`` (a broken catalogue must stop the service, not be
half-applied). Selection is pure: ``consequences_for``, ``steps_for``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collectguard.policy.loader import CITATION_RE, PackError, load_yaml_text

__all__ = ["AssessCatalogue", "ConsequenceSpec", "PracticeSpec", "QuoteSpec", "StepSpec", "load_catalogue"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
Cite = tuple[str, ...]


class ConsequenceSpec(BaseModel):
    """A legal consequence a finding may carry (civil, administrative or criminal)."""

    model_config = _STRICT
    id: str
    kind: Literal["civil", "administrative", "criminal"]
    jurisdiction: Literal["CN", "US", "EU"]
    citations: Cite = ()
    title_zh: str
    title_en: str
    text_zh: str
    text_en: str


class _Consequences(BaseModel):
    model_config = _STRICT
    version: str
    consequences: tuple[ConsequenceSpec, ...]
    by_rule: dict[str, tuple[str, ...]]
    by_prefix: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class StepWhen(BaseModel):
    """When a next step applies: every given condition must hold (an absent one always does)."""

    model_config = _STRICT
    jurisdiction: tuple[str, ...] | None = None
    verdict: tuple[str, ...] | None = None
    rules_any: tuple[str, ...] | None = None
    rule_prefixes_any: tuple[str, ...] | None = None


class StepSpec(BaseModel):
    """Something the person can do next."""

    model_config = _STRICT
    id: str
    when: StepWhen = StepWhen()
    citations: Cite = ()
    text_zh: str
    text_en: str


class _Steps(BaseModel):
    model_config = _STRICT
    version: str
    steps: tuple[StepSpec, ...]


class QuestionSpec(BaseModel):
    """How to ask for one missing fact."""

    model_config = _STRICT
    question_zh: str
    question_en: str


class _Questions(BaseModel):
    model_config = _STRICT
    version: str
    questions: dict[str, QuestionSpec]


class RuleText(BaseModel):
    """A rule as the borrower reads it, and which quoted text stands for each of its citations."""

    model_config = _STRICT
    title_zh: str
    title_en: str
    explain_zh: str
    explain_en: str
    quotes: dict[str, str] = Field(default_factory=dict)


class PracticeSpec(BaseModel):
    """A finding about the lending practice itself (not a contact), e.g. "no contact list, no loan"."""

    model_config = _STRICT
    citations: Cite
    title_zh: str
    title_en: str
    message_zh: str
    message_en: str
    explain_zh: str
    explain_en: str
    quotes: dict[str, str] = Field(default_factory=dict)


class _Explanations(BaseModel):
    model_config = _STRICT
    version: str
    rules: dict[str, RuleText]
    practices: dict[str, PracticeSpec]


class InstrumentSpec(BaseModel):
    """How to name an instrument and one of its articles."""

    model_config = _STRICT
    zh: str
    en: str
    article_zh: str = "第{n}条"
    article_en: str = "art. {n}"


class QuoteSpec(BaseModel):
    """An article's text: ``quoted`` when it is the catalogue's own quotation, else a paraphrase."""

    model_config = _STRICT
    zh: str
    en: str
    quoted: bool
    ver: Literal["Y", "Y2"]


class _Articles(BaseModel):
    model_config = _STRICT
    version: str
    instruments: dict[str, InstrumentSpec]
    texts: dict[str, QuoteSpec]
    articles: dict[str, str]


_M = TypeVar("_M", bound=BaseModel)


def _load(name: str, model: type[_M]) -> _M:
    where = f"policy/assess/{name}"
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    try:
        return model.model_validate(load_yaml_text(text, where=where))
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        raise PackError(f"{where}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}") from None


def _check_ids(where: str, ids: Iterable[str]) -> None:
    for cid in ids:
        if not CITATION_RE.match(cid):
            raise PackError(f"{where}: citation id {cid!r} is not <JURISDICTION>:<INSTRUMENT>[:<article>]")


@dataclass(frozen=True)
class AssessCatalogue:
    """The loaded, cross-checked assessment data."""

    consequences: Mapping[str, ConsequenceSpec]
    by_rule: Mapping[str, tuple[str, ...]]
    by_prefix: Mapping[str, tuple[str, ...]]
    steps: tuple[StepSpec, ...]
    questions: Mapping[str, QuestionSpec]
    rules: Mapping[str, RuleText]
    practices: Mapping[str, PracticeSpec]
    instruments: Mapping[str, InstrumentSpec]
    texts: Mapping[str, QuoteSpec]
    articles: Mapping[str, str]

    def consequences_for(self, rules: Iterable[str]) -> list[tuple[ConsequenceSpec, list[str]]]:
        """The consequences the rules carry, each with the rules that brought it (civil first)."""
        found: dict[str, list[str]] = {}
        for rule in rules:
            ids = self.by_rule.get(rule) or next(
                (v for p, v in self.by_prefix.items() if rule.startswith(p)), ())
            for cid in ids:
                found.setdefault(cid, [])
                if rule not in found[cid]:
                    found[cid].append(rule)
        order = {"civil": 0, "administrative": 1, "criminal": 2}
        items = [(self.consequences[c], because) for c, because in found.items()]
        return sorted(items, key=lambda cb: order[cb[0].kind])

    def steps_for(self, *, jurisdiction: str, verdict: str, rules: Iterable[str]) -> list[StepSpec]:
        """The next steps whose conditions hold, in file order."""
        ruleset = set(rules)
        out = []
        for s in self.steps:
            w = s.when
            if w.jurisdiction is not None and jurisdiction not in w.jurisdiction:
                continue
            if w.verdict is not None and verdict not in w.verdict:
                continue
            if w.rules_any is not None and ruleset.isdisjoint(w.rules_any):
                continue
            if w.rule_prefixes_any is not None and not any(
                    r.startswith(p) for r in ruleset for p in w.rule_prefixes_any):
                continue
            out.append(s)
        return out

    def citation_label(self, cid: str, lang: str = "zh") -> str:
        """``CN:PIPL:10`` -> ``《中华人民共和国个人信息保护法》第10条`` (zh) / ``… art. 10`` (en)."""
        parts = cid.split(":", 2)
        inst = self.instruments.get(parts[1]) if len(parts) > 1 else None
        if inst is None:
            return cid
        name = inst.zh if lang.startswith("zh") else inst.en
        if len(parts) < 3:
            return name
        n = parts[2]
        if lang.startswith("zh"):
            n = re.sub(r"^(\d+)-1$", r"\1条之一", n)
            article = inst.article_zh.format(n=n).replace("条之一条", "条之一")
        else:
            article = inst.article_en.format(n=n)
        return f"{name}{article}" if lang.startswith("zh") else f"{name} {article}"

    def citation_text(self, cid: str, rule: str | None = None) -> QuoteSpec | None:
        """The text shown for ``cid`` when ``rule`` cites it (the rule's own quote, else the article's)."""
        key = None
        if rule is not None:
            spec: RuleText | PracticeSpec | None = self.rules.get(rule) or self.practices.get(rule)
            key = spec.quotes.get(cid) if spec is not None else None
        key = key or self.articles.get(cid)
        return self.texts.get(key) if key else None


@cache
def load_catalogue() -> AssessCatalogue:
    """Load and cross-check the four data files (cached per process)."""
    cons = _load("consequences.yaml", _Consequences)
    steps = _load("next_steps.yaml", _Steps)
    questions = _load("questions.yaml", _Questions)
    expl = _load("explanations.yaml", _Explanations)
    arts = _load("articles.yaml", _Articles)
    by_id = {c.id: c for c in cons.consequences}
    for rule, ids in [*cons.by_rule.items(), *cons.by_prefix.items()]:
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise PackError(f"policy/assess/consequences.yaml: {rule}: unknown consequences {unknown}")
    _check_ids("consequences.yaml", (c for x in cons.consequences for c in x.citations))
    _check_ids("next_steps.yaml", (c for x in steps.steps for c in x.citations))
    _check_ids("explanations.yaml", (c for x in expl.practices.values() for c in x.citations))
    _check_ids("articles.yaml", arts.articles)
    keys: list[tuple[str, str]] = [(f"articles {c}", k) for c, k in arts.articles.items()]
    keys += [(f"rules {r}", k) for r, t in expl.rules.items() for k in t.quotes.values()]
    keys += [(f"practices {r}", k) for r, t in expl.practices.items() for k in t.quotes.values()]
    missing = [(where, k) for where, k in keys if k not in arts.texts]
    if missing:
        raise PackError(f"policy/assess: unknown text keys {missing}")
    return AssessCatalogue(by_id, cons.by_rule, cons.by_prefix, steps.steps, questions.questions, expl.rules,
                           expl.practices, arts.instruments, arts.texts, arts.articles)

