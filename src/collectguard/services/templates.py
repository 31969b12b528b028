"""Message templates (话术/短信模板): versioned, linted by the guard's lint, approved by compliance.

Workflow of one version: ``draft`` → ``template_lint`` → ``linted`` (clean) or ``lint_failed``
(findings) → ``template_review`` by someone other than the author → ``approved`` or ``rejected``.
Approving a version supersedes the earlier approved version of the same code and language. Changing
an approved template means creating the next version: what was approved is never edited.

Only an approved template can be sent: ``template_render_approved`` refuses anything else, fills
the variables (exactly the template's, from ``VARIABLES`` — a masked name, never the clear name or
a number) and lints the result again, so a variable value cannot smuggle in what the template
would not have passed.

Legal wording (``policy/allocation/templates.yaml``: 起诉, 律师函, lawsuit …) is allowed in an
approved template, but it renders only for a case with a legal action on record
(``legal_action_record``: filed on, court, case number): announcing a lawsuit nobody filed or
intends is a false legal claim. The lint's own ``false_legal_claim`` category (arrest, prison,
harm to the family) never passes: no lawsuit makes those true.
"""

from __future__ import annotations

import datetime as dt
import string
from functools import cache
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from collectguard.adapters.db.models import Case
from collectguard.adapters.db.models_ops import LegalAction, MessageTemplate
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, Conflict, Forbidden, NotFound, Unavailable
from collectguard.rules.normalize import normalize
from collectguard.services.audit import audit_append
from collectguard.services.authz import Principal, ensure_visible, require

__all__ = ["VARIABLES", "legal_action_active", "legal_action_record", "legal_action_record_as", "legal_wording",
           "template_act_as", "template_create", "template_lint", "template_render_approved", "template_render_as",
           "template_review", "template_view", "templates_list_as"]

VARIABLES = ("name_masked", "amount", "due_date", "app", "dpd", "pay_code", "pay_link", "court", "case_number")
LANGUAGES, AUDIENCES = ("zh", "en"), ("debtor", "third_party")
CHANNELS = ("sms", "im", "app_push", "email", "letter", "call")
LEGAL_KINDS = ("lawsuit", "arbitration")
_SAMPLE = {"zh": {"name_masked": "张*", "amount": "860.00", "due_date": "2026-04-01", "app": "示例金融", "dpd": "12",
                  "pay_code": "AB23CD45", "pay_link": "https://pay.example/p/x", "court": "某某区人民法院",
                  "case_number": "（2026）某0101民初1号"},
           "en": {"name_masked": "Z***", "amount": "860.00", "due_date": "2026-04-01", "app": "Example Finance",
                  "dpd": "12", "pay_code": "AB23CD45", "pay_link": "https://pay.example/p/x",
                  "court": "Example County Court", "case_number": "2026-CV-1"}}
# services.authz: authors are admins, team leads and compliance officers; reviewers compliance officers;
# legal actions are recorded by compliance or an admin (the legal system's feed).
PERM_AUTHOR = "template.write"
PERM_REVIEW = "template.approve"
PERM_LEGAL = "legal_action.record"


@cache
def _legal_terms() -> dict[str, tuple[str, ...]]:
    res = resources.files("collectguard.policy").joinpath("allocation", "templates.yaml")
    data = yaml.safe_load(res.read_text(encoding="utf-8"))["legal_wording"]
    return {lang: tuple(normalize(t).text for t in terms) for lang, terms in data.items()}


def legal_wording(text: str, language: str) -> list[str]:
    """The legal-action phrases in ``text`` (normalised the way the lint normalises)."""
    norm = normalize(text).text
    return [t for t in _legal_terms().get(language, ()) if t in norm]


def _linter(jurisdiction: str) -> Any:
    from collectguard.rules import Guard

    pack = Guard.default().packs.get(jurisdiction)
    if pack is None:  # fail closed: a template nobody can lint is never approved or sent
        raise Unavailable(f"no rule pack for {jurisdiction}: its templates cannot be linted")
    return pack.linter


def _findings(text: str, *, jurisdiction: str, audience: str) -> list[dict[str, Any]]:
    result = _linter(jurisdiction).lint(text)
    hits = result.hits if audience == "third_party" else result.hits_for_debtor
    return [{"category": h.category, "text": h.text, "span": list(h.span)} for h in hits]


def _variables(body: str) -> list[str]:
    try:
        names = [f for _, f, spec, conv in string.Formatter().parse(body) if f is not None]
    except ValueError as exc:  # an unmatched brace
        raise BadInput(f"not a template: {exc}", field="body") from None
    bad = sorted({n for n in names if n not in VARIABLES})
    if bad:
        raise BadInput(f"unknown variables {bad}; allowed: {', '.join(VARIABLES)}", field="body")
    return sorted(set(names))


def template_create(s: Session, *, tenant_id: int, code: str, language: str, body: str, actor: str,
                    now: dt.datetime, channel: str = "sms", jurisdiction: str = "CN",
                    audience: str = "debtor") -> MessageTemplate:
    """A new draft: the next version of ``code`` in ``language`` (version 1 for a new code)."""
    for value, allowed, field in ((language, LANGUAGES, "language"), (channel, CHANNELS, "channel"),
                                  (audience, AUDIENCES, "audience")):
        if value not in allowed:
            raise BadInput(f"expected one of {', '.join(allowed)}", field=field)
    if not code.strip() or len(code) > 64 or not code.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise BadInput("1–64 letters, digits, '-', '_' or '.'", field="code")
    if not body.strip() or len(body) > 2000:
        raise BadInput("1–2000 characters", field="body")
    names = _variables(body)
    last = s.scalar(select(func.max(MessageTemplate.version)).where(
        MessageTemplate.tenant_id == tenant_id, MessageTemplate.code == code, MessageTemplate.language == language))
    row = MessageTemplate(tenant_id=tenant_id, code=code, language=language, version=(last or 0) + 1,
                          jurisdiction=jurisdiction, channel=channel, audience=audience, body=body, variables=names,
                          status="draft", legal_wording=bool(legal_wording(body, language)), created_by=actor[:120],
                          created_at=now, review_note="")
    s.add(row)
    s.flush()
    _audit(s, row, actor, "template.create", now, body=body)
    return row


def _get(s: Session, tenant_id: int, template_id: int) -> MessageTemplate:
    row = s.get(MessageTemplate, template_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such template")
    return row


def template_lint(s: Session, *, tenant_id: int, template_id: int, actor: str, now: dt.datetime) -> MessageTemplate:
    """Run the guard's lint on a draft rendered with sample values: ``linted`` or ``lint_failed``."""
    row = _get(s, tenant_id, template_id)
    if row.status not in ("draft", "lint_failed"):
        raise Conflict(f"the template is {row.status}; create a new version to change it")
    sample = row.body.format_map(_SAMPLE[row.language])
    row.lint = _findings(sample, jurisdiction=row.jurisdiction, audience=row.audience)
    row.legal_wording = bool(legal_wording(row.body, row.language))
    row.status = "lint_failed" if row.lint else "linted"
    _audit(s, row, actor, "template.lint", now, findings=row.lint, legal_wording=row.legal_wording)
    return row


def template_review(s: Session, *, tenant_id: int, template_id: int, approve: bool, note: str, reviewer: str,
                    now: dt.datetime) -> MessageTemplate:
    """Approve or reject a linted version; never by its author (maker-checker)."""
    row = _get(s, tenant_id, template_id)
    if row.status != "linted":
        raise Conflict(f"only a linted template can be reviewed; this one is {row.status}")
    if reviewer == row.created_by:
        raise Forbidden("maker-checker: the author cannot approve their own template")
    if approve:
        s.execute(update(MessageTemplate).where(
            MessageTemplate.tenant_id == tenant_id, MessageTemplate.code == row.code,
            MessageTemplate.language == row.language, MessageTemplate.status == "approved").values(status="superseded"))
    row.status = "approved" if approve else "rejected"
    row.reviewed_by, row.reviewed_at, row.review_note = reviewer[:120], now, note[:2000]
    _audit(s, row, reviewer, f"template.{row.status}", now, note=note[:2000])
    return row


def legal_action_record(s: Session, *, tenant_id: int, case_id: int, kind: str, filed_on: dt.date, court: str,
                        case_number: str, actor: str, now: dt.datetime) -> LegalAction:
    """Record a lawsuit or arbitration filed for a case (audited)."""
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    if kind not in LEGAL_KINDS:
        raise BadInput(f"expected one of {', '.join(LEGAL_KINDS)}", field="kind")
    for value, field, most in ((court, "court", 200), (case_number, "case_number", 100)):
        if not value.strip() or len(value) > most:
            raise BadInput(f"1–{most} characters", field=field)
    if filed_on > now.date() + dt.timedelta(days=1):
        raise BadInput("a legal action on record was filed already", field="filed_on")
    row = LegalAction(tenant_id=tenant_id, case_id=case.id, kind=kind, filed_on=filed_on, court=court.strip(),
                      case_number=case_number.strip(), created_by=actor[:120], created_at=now)
    s.add(row)
    s.flush()
    audit_append(s, tenant_id=tenant_id, actor=actor, action="legal_action.record", subject=f"case:{case.id}", now=now,
                 payload={"borrower_id": case.borrower_id, "case_id": case.id, "legal_action_id": row.id, "kind": kind,
                          "filed_on": filed_on.isoformat(), "court": row.court, "case_number": row.case_number})
    return row


def legal_action_active(s: Session, *, case_id: int) -> LegalAction | None:
    """The latest legal action of a case that was not withdrawn."""
    return s.scalar(select(LegalAction).where(LegalAction.case_id == case_id, LegalAction.withdrawn_at.is_(None))
                    .order_by(LegalAction.filed_on.desc(), LegalAction.id.desc()).limit(1))


def template_render_approved(session: Session, *, template_id: int, variables: dict[str, str],
                             case_id: int | None = None, tenant_id: int | None = None) -> str:
    """The approved template filled with ``variables``; raises unless it is approved, the variables
    are exactly its own, legal wording has a legal action on ``case_id``, and the result lints clean.
    With ``tenant_id`` a template of another tenant is not found."""
    row = session.get(MessageTemplate, template_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound("no such template")
    if row.status != "approved":
        raise Conflict(f"only approved templates can be sent; this one is {row.status}")
    if set(variables) != set(row.variables):
        raise BadInput(f"expected exactly the variables {row.variables}", field="variables")
    if any(not isinstance(v, str) or len(v) > 200 for v in variables.values()):
        raise BadInput("each value is text of at most 200 characters", field="variables")
    if row.legal_wording:
        case = session.get(Case, case_id) if case_id is not None else None
        if case is None or case.tenant_id != row.tenant_id or legal_action_active(session, case_id=case.id) is None:
            raise Forbidden("this template speaks of legal action: it can only be sent on a case with a legal "
                            "action on record", detail={"legal_wording": legal_wording(row.body, row.language)})
    text = row.body.format_map(variables)
    found = _findings(text, jurisdiction=row.jurisdiction, audience=row.audience)
    if found:
        raise BadInput(f"the filled-in message fails the lint ({found[0]['category']})", field="variables",
                       detail={"findings": found})
    return text


def template_view(row: MessageTemplate) -> dict[str, Any]:
    """A template version as JSON."""
    return {"id": row.id, "code": row.code, "language": row.language, "version": row.version,
            "jurisdiction": row.jurisdiction, "channel": row.channel, "audience": row.audience, "body": row.body,
            "variables": row.variables, "status": row.status, "legal_wording": row.legal_wording, "lint": row.lint,
            "created_by": row.created_by, "reviewed_by": row.reviewed_by, "review_note": row.review_note}


def _audit(s: Session, row: MessageTemplate, actor: str, action: str, now: dt.datetime, **payload: Any) -> None:
    audit_append(s, tenant_id=row.tenant_id, actor=actor, action=action, subject=f"template:{row.id}", now=now,
                 payload={"template_id": row.id, "code": row.code, "language": row.language,
                          "version": row.version, **payload})


# ---------------------------------------------------------------- for the API (principal-checked)

def template_act_as(c: Container, *, principal: Principal, action: str, template_id: int | None = None,
                    **kw: Any) -> dict[str, Any]:
    """``create`` / ``lint`` (authors) and ``review`` (compliance) for the caller's tenant."""
    require(principal, PERM_REVIEW if action == "review" else PERM_AUTHOR)
    with c.uow() as s:
        common = {"tenant_id": principal.tenant_id, "now": c.clock()}
        if action == "create":
            row = template_create(s, actor=principal.actor, **common, **kw)
        elif action == "lint" and template_id is not None:
            row = template_lint(s, template_id=template_id, actor=principal.actor, **common)
        elif action == "review" and template_id is not None:
            row = template_review(s, template_id=template_id, reviewer=principal.actor, **common, **kw)
        else:
            raise BadInput(f"unknown template action {action!r}", field="action")
        return template_view(row)


def templates_list_as(c: Container, *, principal: Principal, code: str | None = None,
                      status: str | None = None) -> list[dict[str, Any]]:
    """The tenant's template versions (``case.read``: every staff member sends them), newest first."""
    require(principal, "case.read")
    if principal.role == "borrower":
        raise Forbidden("templates are staff business")
    stmt = select(MessageTemplate).where(MessageTemplate.tenant_id == principal.tenant_id)
    if code is not None:
        stmt = stmt.where(MessageTemplate.code == code)
    if status is not None:
        stmt = stmt.where(MessageTemplate.status == status)
    with c.uow(write=False) as s:
        return [template_view(r) for r in s.scalars(stmt.order_by(MessageTemplate.code, MessageTemplate.language,
                                                                  MessageTemplate.version.desc()).limit(500))]


def legal_action_record_as(c: Container, *, principal: Principal, case_id: int, **kw: Any) -> dict[str, Any]:
    """``legal_action_record`` on a visible case, by compliance or an admin."""
    require(principal, PERM_LEGAL)
    with c.uow() as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        row = legal_action_record(s, tenant_id=case.tenant_id, case_id=case.id, actor=principal.actor,
                                  now=c.clock(), **kw)
        return {"id": row.id, "case_id": row.case_id, "kind": row.kind, "filed_on": row.filed_on.isoformat(),
                "court": row.court, "case_number": row.case_number}


def template_render_as(c: Container, *, principal: Principal, template_id: int, variables: dict[str, str],
                       case_id: int | None = None) -> dict[str, Any]:
    """The text an approved template gives for a case the caller sees (``guard.check``: a preview)."""
    require(principal, "guard.check")
    with c.uow(write=False) as s:
        tenant = principal.tenant_id
        if case_id is not None:  # an agency sends the lender's templates on the lender's cases
            tenant = ensure_visible(s.get(Case, case_id), principal, session=s).tenant_id
        text = template_render_approved(s, template_id=template_id, variables=variables, case_id=case_id,
                                        tenant_id=tenant)
        return {"template_id": template_id, "text": text}
