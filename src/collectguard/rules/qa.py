"""QA (质检) of a call or chat transcript: transcript -> ``QaResult``. Pure: no I/O, no clock.

How a transcript is judged (docs/qa.md has the long form):

- **The call as a whole.** The transcript's facts without any text form one event; the guard's
  verdict on it gives the whole-call findings (``turn: null``): quiet hours, caps, the third-party
  gate and purpose, sources, outsourcing, the debt itself. They are judged once, at ``time``.
- **Each collector turn.** The same event with that turn as ``message`` goes through the guard
  (so the lint and the content and conduct rules run on it); what it adds to the verdict of the
  text-less event *in the same conversational state* is that turn's findings, with the span of the
  phrase that caused each. Recipient turns never violate anything. A call is one communication:
  a turn's finding stands only if the collector's turns together still break the rule (words a
  message must contain may come in another turn); in a chat each turn is a message of its own.
- **Conversational state**, read from the recipient's turns (``SIGNALS``): after a request to stop
  (or "wrong number / I am not him" from a third party), a collector turn that keeps pressing is
  contact after refusal — for a third party the pack's own refusal rule (``recipient.no_contact_requested``),
  for a debtor the QA rule in ``PRESSING_RULES``. "I am not him" on a call to the borrower makes
  the listener a third party for the rest of the call, so debt details become disclosure. A third
  party who offers to pay for the debtor may be told what is needed to pay (CN: GB/T 45251).
- **What the lexicons do not yet cover** (``EXTRA``): posing as a lawyer, claiming a summons was
  sent, threatening to call non-stop, asking a third party to pay for the debtor. These add
  reported conduct (or the purpose ``collect``) to the turn's event, so the packs' rules and
  citations decide; nothing here restates the law.

Findings are deduplicated per (rule, turn); severities (``SEVERITY``) are data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from collectguard.domain.event import CollectionEvent, Decision, Violation
from collectguard.domain.transcript import QaFinding, QaResult, QaSignal, Severity, SignalKind, Transcript
from collectguard.policy import loader
from collectguard.rules.engine import CompiledPack
from collectguard.rules.guard import Guard
from collectguard.rules.normalize import normalize

__all__ = ["EXTRA", "PRESSING_RULES", "SEVERITY", "SIGNALS", "qa_check", "severity_of"]

# ---------------------------------------------------------------- data
# Review priority of each rule. critical: threats, violence, impersonation and fake legal process,
# disclosure to third parties, contact after refusal, unlawful sources; major: insults, quiet
# hours, caps, collecting from third parties, fees and new borrowing; minor: everything else.
SEVERITY: Mapping[str, Severity] = {
    **dict.fromkeys(
        ("cn.conduct.threat", "cn.conduct.disclosure_threat", "cn.conduct.violence", "cn.conduct.impersonate_authority",
         "cn.conduct.fake_documents", "cn.conduct.false_legal_claim", "cn.conduct.restrict_liberty",
         "cn.conduct.enter_home", "cn.third_party.disclosure", "cn.public_post", "cn.mass_message",
         "cn.third_party.refused", "cn.qa.pressing_after_stop", "us.qa.pressing_after_stop",
         "cn.contact_list_source", "cn.purchased_data", "cn.illegal_debt.harassment"), "critical"),
    **dict.fromkeys(
        ("cn.conduct.insult", "cn.quiet_hours", "cn.connected_calls_cap", "cn.attempts_same_number_cap",
         "cn.third_party.purpose", "cn.third_party.precondition", "cn.conduct.extra_fees",
         "cn.conduct.induce_borrowing", "cn.conduct.stalking", "cn.illegal_debt.collect", "cn.debt.paid",
         "engine.error", "engine.no_pack"), "major"),
}
# For rules of packs not listed above (a new pack): severity from what the rule is about.
_CRITICAL_CONDUCT = frozenset({"threat", "disclosure_threat", "violence", "impersonate_authority", "fake_documents",
                               "false_legal_claim", "restrict_liberty", "enter_home"})
_MAJOR_KINDS = frozenset({"quiet_hours", "counter_cap"})
_NEVER = 1 << 30  # "no such signal in this turn", later than any position
SCORE_WEIGHT: Mapping[Severity, int] = {"critical": 40, "major": 15, "minor": 5}


class QaRule(NamedTuple):
    """A rule of the QA itself (not of a pack): broken by one turn of a conversation."""

    id: str
    citations: tuple[str, ...]
    message_zh: str
    message_en: str


# Pressing a *debtor* who asked to stop. The packs only warn on a new contact to such a debtor
# (collecting a valid debt from the debtor stays lawful); pressing on in the same conversation
# after the request is what disturbs private-life tranquility (CN) or harasses (US).
PRESSING_RULES: Mapping[str, QaRule] = {
    "CN": QaRule("cn.qa.pressing_after_stop", ("CN:CC:1033",),
                 "对方已明确要求停止通话或不要再联系，催收人员仍继续施压催讨。应记录其诉求、礼貌结束通话，之后通过书面渠道联系。",
                 "The recipient asked to stop or not to be contacted and the collector kept pressing. Record the "
                 "request, end the call politely and use written channels afterwards."),
    "US": QaRule("us.qa.pressing_after_stop", ("US:REGF:1006.14(a)", "US:FDCPA:1692d"),
                 "对方已要求停止，催收人员仍继续施压，可能构成骚扰。",
                 "The consumer asked the collector to stop and the collector kept pressing; conduct whose "
                 "natural consequence is to harass."),
}
# GB/T 45251 (CN-GBT-2): "当联系人明确表示愿意为债务人偿还欠款时，可视情况提供还款所需必要信息".
_VOLUNTEER_MAY_LEARN = frozenset({"CN"})
# Spoken channels: the whole call is one communication; in written ones each turn is a message.
_CONVERSATIONS = frozenset({"call", "visit"})

# Recipient signals, matched on the normalised text (lower case; punctuation dropped next to
# Chinese characters and turned into one space between Latin words: "don't" reads "don t").
SIGNALS: Mapping[SignalKind, tuple[str, ...]] = {
    "stop": (r"(?:不要|别|不许|不准|请勿|请不要|不用)再?(?:给我)?(?:打(?![断折算开车])|联系|骚扰|烦我|催)",
             r"再打(?:我就|就)?报警|我要(?:投诉|报警)|拉黑你",
             r"stop (?:calling|contacting|texting|bothering|harassing)|(?:don t|do not|never) (?:call|contact|text)"
             r" (?:me|this number)|leave me alone|take (?:me|my number) off|cease (?:all )?(?:contact|communication)"),
    "not_debtor": (r"我不是(?:他|她|本人|你要?找的)|打错(?:了|电话)|不认识(?:他|她|这个人|此人)"
                   r"|这不是(?:他|她)的(?:电话|号码|手机)|没有这个人|查无此人",
                   r"wrong number|i (?:m|am) not (?:him|her|that person)"
                   r"|(?:don t|do not) know (?:him|her|who|that person)"),
    "offer_to_pay": (r"(?:今天|明天|后天|这周|下周|周[一二三四五六日天末]|星期[一二三四五六日天]|月底|月初|下个?月"
                     r"|\d+号|发工资[后以]*)"
                     r"(?:之?前)?(?:就|会|再|一定|先|能|可以)?还(?:款|钱|上|清|给|了|吧|$)",
                     r"我(?:会|就|马上|尽快|一定|先|来|可以|能)(?:还款|还钱|还上|还清|转账|付款|打款)",
                     r"我(?:来|可以|先|就)?(?:帮|替|代)(?:他|她)(?:还|付|垫|出)|多少钱我(?:帮|替|给)?(?:他|她)?(?:还|付|出)",
                     r"i (?:will|ll|can|could|am going to|m going to) (?:pay|make a payment|send the money|transfer)"),
    "hardship": (r"失业|没(?:有)?工作|没钱|生病|住院|周转不开|困难",
                 r"lost my job|unemployed|can t afford|in (?:the )?hospital|medical bills"),
}


@dataclass(frozen=True)
class Extra:
    """A phrase family the lexicons lack; adds ``conduct`` / ``discloses`` / purpose ``collect``."""

    category: str
    patterns: tuple[str, ...]
    conduct: tuple[str, ...] = ()
    discloses: tuple[str, ...] = ()
    third_party_only: bool = False  # only looked for when the listener is a third party


EXTRA: tuple[Extra, ...] = (
    Extra("impersonate_lawyer",
          (r"(?:我是|我们是|这里是|这边是|本人是)[^向会将要去到在给依对把被跟和与]{0,12}?(?:律师事务所|律所|律师)",
           r"(?:this is|i am|i m|we are) (?:your |an? |the )?(?:attorney|lawyer|law office|law firm)"),
          conduct=("impersonate_authority",)),
    Extra("summons_claim",
          (r"传票.{0,6}(?:寄|送|发)|(?:寄|送|发|出具)了?.{0,6}传票",
           r"(?:court )?summons (?:has been|was|is being|will be) (?:issued|sent|mailed|served)"
           r"|you (?:have|ve) been served"),
          conduct=("false_legal_claim",)),
    Extra("court_seal", (r"(?:盖|加盖)了?(?:法院|公安局?)的?(?:公章|章)",), conduct=("fake_documents",)),
    Extra("call_bombing",  # an announced campaign of calls, not "we could not get through"
          (r"(?:会|要|就|只能|得|将)(?:继续)?(?:天天|每天|一直|24小时|二十四小时)都?(?:给(?:你|您)打|打给(?:你|您)|打(?:你|您)?|轰炸)"
           r"(?!不通|不进|不上|不着)|打到(?:你|您)(?:还钱|还为止|受不了|接为止)",
           r"(?:will|ll|going to|gonna) (?:keep )?call(?:ing)? you (?:every day|day and night|all day|nonstop)"
           r"|keep calling (?:you )?until"),
          conduct=("threat",)),
    Extra("third_party_pay_request",
          (r"(?:你|您|你们|家里人?|家属)(?:就|先|能不能|能否|可以|得|要|必须|应该|赶紧|最好)?(?:帮|替|代)(?:他|她)"
           r"(?:把(?:钱|欠款|账))?先?(?:还|垫|付|交|出)",
           r"父债子还|夫债妻还|子债父还|(?:他|她)的(?:钱|债|账)(?:你|您)(?:得|要|来)还",
           r"pay (?:it |this |the (?:debt|balance|loan) )?(?:for|on behalf of) (?:him|her)"
           r"|(?:cover|settle|pay off) (?:his|her) (?:debt|loan|balance)"),
          discloses=("debt_existence",), third_party_only=True),
)
_PRESSING_STRONG = (r"必须|(?:马上|立刻|立即|赶紧)(?:还|处理|转|打款|想办法|找)|别挂|不要挂|听我说"
                    r"|躲(?:着|得了|不掉|什么)|跑不了|逃不掉|不还(?:就|的话)|还不还|今天(?:之内|内)?(?:必须|一定)",
                    r"\bmust\b|(?:pay|repay)(?: it| this)? (?:immediately|right now|today)|don t hang up|listen to me"
                    r"|you can t hide")
_PRESSING_WEAK = (r"还款|还钱|还上|欠款|欠的|多少钱|什么时候还|逾期", r"\bpay|payment|\bowe|balance|debt|overdue")
_ACK = (r"好的|明白|理解|抱歉|打扰|不再|记录|再见|尊重",
        r"\bokay\b|\bok\b|sorry|understood|understand|noted|goodbye|\bbye\b|we will not|we won t")


# ---------------------------------------------------------------- matching helpers
class _Hit(NamedTuple):
    category: str
    span: tuple[int, int]
    text: str
    conduct: frozenset[str] = frozenset()
    discloses: frozenset[str] = frozenset()


@cache
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def _find(text: str, patterns: tuple[str, ...]) -> list[tuple[int, int]]:
    """Spans (in ``text``) of the patterns' matches on the normalised text."""
    n = normalize(text)
    return [n.original_span(m.start(), m.end()) for m in _compiled(patterns).finditer(n.text) if m.end() > m.start()]


def severity_of(rule: str, pack: CompiledPack | None = None) -> Severity:
    """The review severity of ``rule``: from ``SEVERITY``, else from the pack rule's kind and conduct."""
    if rule in SEVERITY:
        return SEVERITY[rule]
    spec = _rule_specs(pack).get(rule) if pack is not None else None
    if spec is not None:
        if spec[0] == "discloses" or spec[1] & _CRITICAL_CONDUCT:
            return "critical"
        if spec[0] in _MAJOR_KINDS or "insult" in spec[1]:
            return "major"
    return "minor"


@cache
def _rule_specs(pack: CompiledPack) -> dict[str, tuple[str, frozenset[str], frozenset[str]]]:
    """rule id -> (kind, conduct it bans, disclosures it bans), to tie a finding to its phrase."""
    def names(v: Any) -> frozenset[str]:
        return frozenset(x for x in v if isinstance(x, str)) if isinstance(v, list) else frozenset()

    return {r.id: (r.kind, names(r.params.get("conduct")), names(r.params.get("items"))) for r in pack.spec.rules}


@cache
def _category_effects(pack: CompiledPack) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """lint category -> (conduct, disclosures) it adds, from the pack's lexicons."""
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for name in pack.spec.lexicons:
        for cat, spec in loader.load_lexicon(name).categories.items():
            old = out.get(cat, (frozenset(), frozenset()))
            out[cat] = (old[0] | frozenset(spec.conduct), old[1] | frozenset(spec.discloses))
    return out


# ---------------------------------------------------------------- the QA
def qa_check(transcript: Transcript, guard: Guard | None = None) -> QaResult:
    """Judge one transcript (see the module docstring). Never raises for a valid transcript."""
    guard = guard or Guard.default()
    base = transcript.event()
    pack = guard.packs.get(base.jurisdiction)
    run = _Run(guard, pack, base)
    if base.channel in _CONVERSATIONS:
        run.joined = "\n".join(t.text for t in transcript.turns if t.speaker == "collector" and t.text.strip())
    whole = guard.check(base)
    run.add(whole.violations, turn=None, hits=(), fallback=None, text="")
    run.warn(whole.warnings)
    debtor_roles = pack.debtor_roles if pack is not None else frozenset({"borrower", "guarantor"})
    role = base.recipient.role
    refusals = 0
    volunteer = False
    signals: list[QaSignal] = []
    for i, turn in enumerate(transcript.turns):
        third_party = role not in debtor_roles
        if turn.speaker == "recipient":
            kinds = _signals(i, turn.text)
            signals.extend(kinds)
            found = {s.kind: s.span[0] for s in kinds}
            if "not_debtor" in found and not third_party:
                role = "other_third_party"  # whoever answered is not the debtor
            refused = min(found.get("stop", _NEVER), found.get("not_debtor", _NEVER))
            offer = found.get("offer_to_pay")
            if offer is not None and (refused == _NEVER or offer > refused):
                refusals = 0  # the recipient took the conversation up again (the later word counts)
                volunteer = volunteer or third_party
            elif refused != _NEVER:
                refusals += 1
            continue
        if turn.text.strip():
            run.turn(i, turn.text, role=role, third_party=third_party, refusals=refusals,
                     volunteer=volunteer and base.jurisdiction in _VOLUNTEER_MAY_LEARN)
    findings = tuple(sorted(run.findings.values(), key=lambda f: (-1 if f.turn is None else f.turn)))
    worst = min((f.severity for f in findings), key=list(SCORE_WEIGHT).index, default=None)
    return QaResult(
        verdict="violations" if findings else "clean",
        findings=findings,
        warnings=tuple(run.warnings.values()),
        signals=tuple(signals),
        severity=worst,
        score=max(0, 100 - sum(SCORE_WEIGHT[f.severity] for f in findings)),
        pack=whole.pack,
        pack_version=whole.pack_version,
        id=transcript.id,
        case_id=transcript.case_id,
    )


def _signals(i: int, text: str) -> list[QaSignal]:
    out = []
    for kind, patterns in SIGNALS.items():
        spans = _find(text, patterns)
        if spans:
            a, b = spans[0]
            out.append(QaSignal(turn=i, kind=kind, span=(a, b), text=text[a:b]))
    return out


class _Run:
    """The findings of one transcript as they accumulate, deduplicated per (rule, turn)."""

    def __init__(self, guard: Guard, pack: CompiledPack | None, base: CollectionEvent) -> None:
        self.guard, self.pack, self.base = guard, pack, base
        self.findings: dict[tuple[str, int | None], QaFinding] = {}
        self.warnings: dict[str, QaFinding] = {}
        self._refs: dict[str, frozenset[str]] = {}
        self.joined: str | None = None  # a conversation's collector turns together (see turn())

    def _reference(self, role: str) -> frozenset[str]:
        """Rules the text-less event already breaks with the listener in ``role``: not the turn's doing."""
        if role not in self._refs:
            ev = self.base.model_copy(update={"recipient": self.base.recipient.model_copy(update={"role": role})})
            self._refs[role] = frozenset(v.rule for v in self.guard.check(ev).violations)
        return self._refs[role]

    def turn(self, i: int, text: str, *, role: str, third_party: bool, refusals: int, volunteer: bool) -> None:
        """Judge collector turn ``i`` in the given conversational state."""
        extra = [h for x in EXTRA if not (x.third_party_only and (not third_party or volunteer))
                 for h in _extra_hits(x, text)]
        pressing = _pressing(text, refusals) if refusals else None
        base, recipient = self.base, self.base.recipient
        update: dict[str, Any] = {"message": text}
        conduct = {c for h in extra for c in h.conduct} - set(base.conduct)
        discloses = {d for h in extra for d in h.discloses} - set(base.discloses)
        if conduct:
            update["conduct"] = base.conduct + tuple(sorted(conduct))
        if discloses:
            update["discloses"] = base.discloses + tuple(sorted(discloses))
        if any(h.category == "third_party_pay_request" for h in extra):
            update["purpose"] = "collect"  # a third party asked to pay is being collected from
        flags: dict[str, Any] = {"role": role}
        if pressing is not None and third_party:
            flags["no_contact_requested"] = True
        update["recipient"] = recipient.model_copy(update=flags)
        decision = self.guard.check(base.model_copy(update=update))
        ref = self._reference(role)
        new = [v for v in decision.violations if v.rule not in ref]
        if new and self.joined is not None:
            # A call is one communication: what a message must contain (US: "from a debt collector")
            # may be said in another turn. Keep only what the collector's words together still break.
            together = self.guard.check(base.model_copy(update={**update, "message": self.joined}))
            new = [v for v in new if v.rule in {w.rule for w in together.violations}]
        if volunteer:
            specs = _rule_specs(self.pack) if self.pack is not None else {}
            new = [v for v in new if specs.get(v.rule, ("",))[0] != "discloses"]
        hits = [*self._lint_hits(decision), *extra]
        self.add(new, turn=i, hits=hits, fallback=pressing, text=text)
        rule = PRESSING_RULES.get(base.jurisdiction)
        if pressing is not None and not third_party and rule is not None:
            v = Violation(rule=rule.id, citations=rule.citations, message_zh=rule.message_zh,
                          message_en=rule.message_en)
            self.add([v], turn=i, hits=(), fallback=pressing, text=text)

    def _lint_hits(self, decision: Decision) -> list[_Hit]:
        effects = _category_effects(self.pack) if self.pack is not None else {}
        return [_Hit(h.category, h.span, h.text, *effects.get(h.category, (frozenset(), frozenset())))
                for h in decision.lint]

    def add(self, violations: Iterable[Violation], *, turn: int | None, hits: Iterable[_Hit],
            fallback: _Hit | None, text: str) -> None:
        """Record violations as findings of ``turn``, each with the span of the phrase behind it."""
        hits = list(hits)
        specs = _rule_specs(self.pack) if self.pack is not None else {}
        for v in violations:
            if (v.rule, turn) in self.findings:
                continue
            hit: _Hit | None = None
            if turn is not None:
                _kind, conduct, items = specs.get(v.rule, ("", frozenset(), frozenset()))
                related = sorted((h for h in hits if h.conduct & conduct or h.discloses & items), key=lambda h: h.span)
                # Else what changed the turn's facts: a request to pay, the pressing phrase; else the turn.
                hit = related[0] if related else _purpose_hit(hits) or fallback or _Hit("turn", (0, len(text)), text)
            self.findings[(v.rule, turn)] = QaFinding(
                rule=v.rule, citations=v.citations, turn=turn, span=hit.span if hit else None,
                message_zh=v.message_zh, message_en=v.message_en, severity=severity_of(v.rule, self.pack),
                text=hit.text if hit else None, category=hit.category if hit else None)

    def warn(self, warnings: Iterable[Violation]) -> None:
        """Record the packs' cautions for the whole call (they never change the verdict)."""
        for w in warnings:
            self.warnings.setdefault(w.rule, QaFinding(
                rule=w.rule, citations=w.citations, turn=None, span=None, message_zh=w.message_zh,
                message_en=w.message_en, severity="minor"))


def _purpose_hit(hits: list[_Hit]) -> _Hit | None:
    return next((h for h in hits if h.category == "third_party_pay_request"), None)


def _extra_hits(x: Extra, text: str) -> list[_Hit]:
    return [_Hit(x.category, (a, b), text[a:b], frozenset(x.conduct), frozenset(x.discloses))
            for a, b in _find(text, x.patterns)]


def _pressing(text: str, refusals: int) -> _Hit | None:
    """The phrase by which a collector turn after a refusal keeps pressing, or ``None``.

    Pressing is an insistent phrase, or a demand for payment that does not acknowledge the
    request; after a second refusal any demand for payment is pressing.
    """
    strong = _find(text, _PRESSING_STRONG)
    if strong:
        a, b = strong[0]
        return _Hit("pressing_after_stop", (a, b), text[a:b])
    weak = _find(text, _PRESSING_WEAK)
    if weak and (refusals > 1 or not _find(text, _ACK)):
        a, b = weak[0]
        return _Hit("pressing_after_stop", (a, b), text[a:b])
    return None
