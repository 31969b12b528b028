"""Self-check use cases: assess a past contact described as an event, as free text, or in the form.

Public and stateless: nothing is stored, the description included (it is a stranger's account
of their debt and of their family). The guard and the catalogue are loaded once per process.

    assessment_from_request(body, now=...)          # API / CLI: an event, or {"text", "jurisdiction"}
    assessment_from_text(text=..., jurisdiction=..., now=...)
    assessment_from_event(event, now=...)
    assessment_from_form(answers, text=..., now=...) # the /self-check questionnaire
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from collectguard.domain.assessment import (
    Assessment,
    Case,
    Finding,
    Note,
    assess_cases,
    practice_finding,
    stated_paths,
)
from collectguard.domain.event import CollectionEvent, parse_event
from collectguard.errors import BadInput
from collectguard.policy.assess import AssessCatalogue, load_catalogue
from collectguard.rules import Guard
from collectguard.rules.extract import ExtractedCase, Lending, extract
from collectguard.rules.extract.form import form_cases

__all__ = ["MAX_TEXT", "assessment_from_event", "assessment_from_form", "assessment_from_request",
           "assessment_from_text", "finding_articles"]

MAX_TEXT = 5000  # characters: a long complaint fits; a pasted novel does not
JURISDICTIONS = ("CN", "US", "EU")
_TEXT_KEYS = frozenset({"text", "jurisdiction"})


def _run(cases: Sequence[Case], *, jurisdiction: str, practices: Sequence[Finding] = (),
         extra_missing: Sequence[str] = (), lending: Lending | None = None,
         notes: Sequence[Note] = ()) -> Assessment:
    guard = Guard.default()
    pack = guard.packs.get(jurisdiction)
    non_legal = [r.id for r in pack.spec.rules if r.verification == "policy"] if pack is not None else []
    roles = tuple(pack.debtor_roles) if pack is not None else ("borrower", "guarantor")
    return assess_cases(cases, check=guard.check, catalogue=load_catalogue(), jurisdiction=jurisdiction,
                        debtor_roles=roles, non_legal_rules=non_legal, practices=practices,
                        extra_missing=extra_missing, lending=lending.to_dict() if lending else None,
                        notes=notes)


def assessment_from_event(event: Mapping[str, Any] | CollectionEvent, *,
                          stated: frozenset[str] | None = None) -> Assessment:
    """Assess one structured event (DESIGN §5). Fields absent from the input count as unknown."""
    if isinstance(event, CollectionEvent):
        ev = event
        given = event.model_dump(mode="json", exclude_unset=True)
        known = stated if stated is not None else stated_paths(given)
    else:
        ev = parse_event(dict(event))
        known = stated if stated is not None else stated_paths(dict(event))
    return _run([Case(ev, known)], jurisdiction=ev.jurisdiction)


def _lending_parts(lending: Lending | None, catalogue: AssessCatalogue, *, jurisdiction: str,
                   has_contacts: bool) -> tuple[list[Finding], list[str], list[Note]]:
    """Practice findings, missing facts and notes about the loan itself (CN rules only)."""
    if lending is None or jurisdiction != "CN":
        return [], [], []
    practices, missing, notes = [], [], []
    if lending.contact_list_required:
        practices.append(practice_finding(catalogue, "cn.practice.contact_list_required"))
    rate = None if lending.apr is None else Decimal(str(lending.apr))
    if rate is not None and rate > 36:
        if lending.lender_type == "unlicensed":
            practices.append(practice_finding(catalogue, "cn.practice.illegal_lending_rate"))
        elif lending.lender_type is None and not has_contacts:
            missing.append("debt.lender_type")
        if lending.lender_type is None:
            notes.append(Note(
                code="lending.lender_type_unknown",
                message_zh=f"这笔借款的实际年化成本约为 {lending.apr}%（按到手金额和还款金额计算）。"
                           "放贷方类型未说明："
                           "如果是没有放贷资质的机构或个人，超过36%即属于非法债务；如果是持牌机构，"
                           "法院可能把成本调减到24%。",
                message_en=f"This loan's actual annual cost is about {lending.apr}% (from the amount "
                           "received and the "
                           "amount repaid). The lender's type was not stated: an unlicensed lender above "
                           "36% makes it an "
                           "illegal debt; for a licensed lender a court may cut the cost to 24%."))
    licensed = lending.lender_type in ("licensed_institution", "small_loan_company")
    if rate is not None and rate > 24 and licensed:
        notes.append(Note(code="lending.judicial_adjustment",
                          message_zh=f"实际年化成本约 {lending.apr}%，超过24%：诉讼中法院可能调减至24%。",
                          message_en=f"The actual annual cost is about {lending.apr}%, above 24%: a court "
                                     "may cut "
                                     "it to 24%."))
    return practices, missing, notes


def _assess_extracted(cases: Sequence[ExtractedCase], *, jurisdiction: str, jurisdiction_source: str,
                      lending: Lending | None) -> Assessment:
    parsed = []
    for i, c in enumerate(cases):
        try:
            parsed.append(Case(parse_event(c.facts), c.stated, c.hints, c.evidence))
        except BadInput as exc:  # an extractor bug must not become a 422 for the user's text
            raise RuntimeError(f"extracted contact {i} is not a valid event: {exc.message}") from None
    catalogue = load_catalogue()
    practices, missing, notes = _lending_parts(lending, catalogue, jurisdiction=jurisdiction,
                                               has_contacts=bool(cases))
    if jurisdiction_source == "assumed":
        notes.insert(0, Note(code="jurisdiction.assumed",
                             message_zh="描述中看不出所在地区，已按中国大陆的规则检查；如在美国或欧盟，"
                                        "请选择相应地区。",
                             message_en="The description does not say where this happened, so it was checked "
                                        "against mainland China's rules; choose US or EU if that is where "
                                        "you are."))
    return _run(parsed, jurisdiction=jurisdiction, practices=practices, extra_missing=missing,
                lending=lending, notes=notes)


def _check_text(text: Any, jurisdiction: Any) -> tuple[str, str | None]:
    if not isinstance(text, str) or not text.strip():
        raise BadInput("describe what happened (a non-empty string)", field="text")
    if len(text) > MAX_TEXT:
        raise BadInput(f"too long: at most {MAX_TEXT} characters", field="text")
    if jurisdiction is not None and jurisdiction not in JURISDICTIONS:
        raise BadInput(f"expected one of {', '.join(JURISDICTIONS)}", field="jurisdiction")
    return text, jurisdiction


def assessment_from_text(*, text: str, jurisdiction: str | None = None, now: datetime) -> Assessment:
    """Assess a free-text description (zh or en); ``now`` dates the contacts it describes."""
    text, jurisdiction = _check_text(text, jurisdiction)
    x = extract(text, as_of=now.date(), jurisdiction=jurisdiction)
    return _assess_extracted(x.cases, jurisdiction=x.jurisdiction, jurisdiction_source=x.jurisdiction_source,
                             lending=x.lending)


def assessment_from_request(body: Any, *, now: datetime) -> Assessment:
    """``{"text": "...", "jurisdiction": "CN"}`` or a structured event; ``BadInput`` naming the field."""
    if not isinstance(body, Mapping):
        raise BadInput("expected a JSON object: an event, or {\"text\": \"...\"}", field="body")
    if "text" in body:
        unknown = sorted(set(body) - _TEXT_KEYS)
        if unknown:
            raise BadInput("unknown field (a text request takes only text and "
                           "jurisdiction)", field=unknown[0])
        return assessment_from_text(text=body["text"], jurisdiction=body.get("jurisdiction"), now=now)
    return assessment_from_event(body)


def assessment_from_form(answers: Mapping[str, Any], *, text: str = "", jurisdiction: str | None = None,
                         now: datetime) -> Assessment:
    """The /self-check questionnaire, with an optional free-text description read alongside."""
    if jurisdiction is not None and jurisdiction not in JURISDICTIONS:
        raise BadInput(f"expected one of {', '.join(JURISDICTIONS)}", field="jurisdiction")
    as_of = now.date()
    juris, source = jurisdiction or "CN", "given" if jurisdiction else "assumed"
    lending: Lending | None = None
    text_cases: Sequence[ExtractedCase] = ()
    if text.strip():
        text, _ = _check_text(text, jurisdiction)
        x = extract(text, as_of=as_of, jurisdiction=jurisdiction)
        juris, source, lending, text_cases = x.jurisdiction, x.jurisdiction_source, x.lending, x.cases
    cases = form_cases(answers, as_of=as_of, jurisdiction=juris, text_cases=text_cases)
    return _assess_extracted(cases, jurisdiction=juris,
                             jurisdiction_source="given" if jurisdiction else source, lending=lending)


def finding_articles(finding: Finding | Mapping[str, Any], lang: str = "zh") -> list[dict[str, Any]]:
    """Each citation of a finding with its name and the text shown for it (quote or paraphrase)."""
    catalogue = load_catalogue()
    rule = finding.rule if isinstance(finding, Finding) else str(finding["rule"])
    cites = finding.citations if isinstance(finding, Finding) else tuple(finding["citations"])
    out = []
    for cid in cites:
        text = catalogue.citation_text(cid, rule)
        out.append({"citation": cid, "label": catalogue.citation_label(cid, lang),
                    "text": None if text is None else (text.zh if lang.startswith("zh") else text.en),
                    "quoted": bool(text and text.quoted), "ver": text.ver if text else None})
    return out


#: Display names of event values (zh, en), shared by the CLI report and the /self-check page.
LABELS: dict[str, tuple[str, str]] = {
    "call": ("电话", "phone call"), "sms": ("短信", "SMS"), "im": ("微信等即时通讯", "chat app"),
    "email": ("电子邮件", "e-mail"), "app_push": ("App推送", "app notification"), "visit": ("上门", "visit"),
    "letter": ("信件", "letter"), "public_post": ("公开发布（群聊、"
                                                  "朋友圈等）", "public post (group chat, social media)"),
    "borrower": ("您本人", "you"), "guarantor": ("担保人", "the "
                                                           "guarantor"), "spouse": ("配偶", "your spouse"),
    "emergency_contact": ("紧急联系人", "your emergency contact"), "relative": ("亲属", "a relative"),
    "colleague": ("同事", "a colleague"), "employer": ("单位或领导", "your employer"),
    "contact_list_entry": ("通讯录里的联系人", "people in your contact "
                                               "list"), "public": ("公众", "the public"),
    "other_third_party": ("朋友等其他人", "someone else"),
    "debt_existence": ("欠款的事", "that you owe money"), "debt_amount": ("欠款金额", "the amount"),
    "overdue_dates": ("逾期时间", "the overdue dates"), "personal_info": ("个人信息", "personal information"),
    "threat": ("威胁", "threats"), "insult": ("辱骂", "insults"), "violence": ("暴力", "violence"),
    "impersonate_authority": ("冒充公检法或律师", "posing as police, court or lawyer"),
    "false_legal_claim": ("虚构坐牢、抓人等后果", "false claims of jail or arrest"),
    "fake_documents": ("伪造文书", "fake documents"), "stalking": ("跟踪", "stalking"),
    "restrict_liberty": ("堵门、不让离开", "blocking you or not letting you leave"),
    "enter_home": ("闯入住宅", "entering your home"), "extra_fees": ("收取额外费用", "extra fees"),
    "induce_borrowing": ("诱导借新还旧", "pushing you to borrow elsewhere"),
    "collect": ("催还款", "to demand payment"), "locate": ("打听您的联系方式", "to find you"),
    "relay_message": ("请其转告", "to pass on a message"), "reminder": ("还款提醒", "a payment reminder"),
    "validation_notice": ("债务核实通知", "a validation notice"),
    "contact_list": ("手机通讯录", "your phone's contact list"),
    "borrower_designated": ("您填写的联系人", "a contact you designated"),
    "public_record": ("公开信息", "public records"), "purchased": ("购买的数据", "purchased data"),
}


def label(value: str, lang: str = "zh") -> str:
    """The display name of an event value (the value itself when unknown)."""
    pair = LABELS.get(value)
    return value if pair is None else pair[0 if lang.startswith("zh") else 1]


def describe_event(facts: Mapping[str, Any], unknown: set[str] | frozenset[str], lang: str = "zh") -> str:
    """One line saying what a contact was, as understood: who, how, when, what was said or done."""
    zh = lang.startswith("zh")
    rec = facts.get("recipient", {})
    who = label(rec.get("role", ""), lang)
    count = rec.get("count", 1)
    if count > 1:
        who += f"（{count}人以上）" if zh else f" ({count}+ people)"
    when = "未说明" if zh else "not said"
    if "time" not in unknown and facts.get("time"):
        when = str(facts["time"])[11:16]
    parts = [f"{label(facts.get('channel', 'call'), lang)} → {who}", ("时间：" if zh else "time: ") + when]
    if facts.get("purpose") and "purpose" not in unknown:
        parts.append(("目的：" if zh else "purpose: ") + label(facts["purpose"], lang))
    if rec.get("source"):
        parts.append(("号码来源：" if zh else "number from: ") + label(rec["source"], lang))
    if facts.get("discloses"):
        revealed = "、".join(label(d, lang) for d in facts["discloses"])
        parts.append(("透露了：" if zh else "revealed: ") + revealed)
    conduct = list(facts.get("conduct", []))
    if conduct:
        parts.append(("行为：" if zh else "conduct: ") + "、".join(label(c, lang) for c in conduct))
    history = facts.get("history", {})
    if "attempts_today_same_method" in history:
        n = history["attempts_today_same_method"] + 1
        parts.append(f"一天拨打约{n}次以上" if zh else f"{n}+ calls a day")
    if "connected_calls_today" in history:
        n = history["connected_calls_today"] + 1
        parts.append(f"一天接通{n}次以上" if zh else f"{n}+ answered a day")
    if "borrower_unreachable" in history and "history.borrower_unreachable" not in unknown:
        parts.append(("您当时联系不上" if history["borrower_unreachable"] else "您当时可以联系上") if zh else
                     ("you could not be "
                      "reached" if history["borrower_unreachable"] else "you could be reached"))
    if facts.get("collector", {}).get("visitors"):
        n = facts["collector"]["visitors"]
        parts.append(f"上门{n}人" if zh else f"{n} visitor(s)")
    if facts.get("message"):
        parts.append(("原话：" if zh else "words: ") + f"“{facts['message']}”")
    return ("；" if zh else "; ").join(parts)
