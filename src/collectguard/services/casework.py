"""Collection operations on one case, for the workbench (docs/operations.md, "On the workbench").

``case_ops`` is the read model of the case page's operations panel: stops and the hold, complaints
with the borrower's complaint-risk tag, approval requests, live repayment links, the approved
templates the caller may send, the legal action on record, and what the caller may do (``may``,
from ``services.authz``: the page hides what a role may not do, the services refuse it anyway).

The actions the page posts go to the operations services' principal-checked entry points
(``stops.stop_create_as`` …). What lives here is what only the workbench needs: revealing the
number of *this* case's borrower or one of *their* contacts (``case_reveal``), and the text of an
approved template filled in for the case (``case_template_text``): the variables come from the
case itself — masked name, overdue amount, oldest unpaid due date, the lender's name, DPD, the
latest live repayment link and code, the legal action on record — never from the form, so a
collector cannot type a clear name or a number into a template.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import mask_name
from collectguard.adapters.db.models import Borrower, Case, Complaint, Contact, Tenant
from collectguard.adapters.db.models_ops import ApprovalRequest, ComplaintMeta, MessageTemplate, PayLink
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, Forbidden, NotFound
from collectguard.services import approvals, paylinks, reveal, stops, templates
from collectguard.services.authz import STAFF_ROLES, Principal, can, ensure_visible, require
from collectguard.services.complaints import complaint_risk

__all__ = ["MAY", "case_ops", "case_reveal", "case_template_text"]

# What the case page offers, by the permission each action needs (services.authz).
MAY = {"stop": "stop.manage", "lift": "stop.lift", "hold": "hold.manage", "request": "plan.request",
       "decide": "approval.decide", "paylink": "ptp.create", "reveal": "pii.read", "complain": "complaint.create",
       "complaints": "complaint.read", "legal": "legal_action.record", "send": "attempt.create"}


def _staff_case(s: Session, principal: Principal, case_id: int) -> Case:
    require(principal, "case.read")
    if principal.role not in STAFF_ROLES:
        raise Forbidden("the workbench is for staff", detail={"permission": "case.read"})
    return ensure_visible(s.get(Case, case_id), principal, session=s)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t  # SQLite hands back naive UTC


def _complaints(s: Session, case: Case, *, with_text: bool) -> list[dict[str, Any]]:
    rows = s.execute(select(Complaint, ComplaintMeta)
                     .outerjoin(ComplaintMeta, ComplaintMeta.complaint_id == Complaint.id)
                     .where(Complaint.case_id == case.id).order_by(Complaint.id.desc()).limit(50))
    return [{"id": r.id, "category": r.category, "channel": r.channel, "status": r.status,
             "risk": m.risk if m else None, "received_at": _utc(m.received_at if m else r.created_at),
             "text": r.text if with_text else None} for r, m in rows]


def _links(s: Session, secret: str, case: Case, now: dt.datetime) -> list[dict[str, Any]]:
    rows = s.scalars(select(PayLink).where(PayLink.case_id == case.id, PayLink.revoked_at.is_(None))
                     .order_by(PayLink.id.desc()).limit(20))
    return [{"id": x.id, "code": x.code, "path": f"/pay/{paylinks.paylink_token(secret, x)}",
             "expires_at": _utc(x.expires_at)} for x in rows if _utc(x.expires_at) > now]


def case_ops(c: Container, *, principal: Principal, case_id: int, on: dt.date) -> dict[str, Any]:
    """The operations panel of one case (see the module docstring); ``on`` is the borrower's today."""
    now = c.clock()
    with c.uow(write=False) as s:
        case = _staff_case(s, principal, case_id)
        borrower = s.get(Borrower, case.borrower_id)
        assert borrower is not None
        hold = stops.hold_active(s, case_id=case.id)
        stop_rows = [stops.stop_view(r, on=on) for r in stops.stops_of_case(s, case_id=case.id)]
        requests = s.scalars(select(ApprovalRequest).where(ApprovalRequest.case_id == case.id)
                             .order_by(ApprovalRequest.id.desc()).limit(50))
        sendable = s.scalars(select(MessageTemplate).where(
            MessageTemplate.tenant_id == case.tenant_id, MessageTemplate.status == "approved",
            MessageTemplate.jurisdiction == borrower.jurisdiction).order_by(MessageTemplate.code,
                                                                            MessageTemplate.language))
        legal = templates.legal_action_active(s, case_id=case.id)
        return {
            "stops": sorted(stop_rows, key=lambda x: (not x["active"], -x["id"])),
            "stopped": any(x["active"] and x["scope"] == "case" for x in stop_rows),
            "hold": None if hold is None else {"reason": hold.reason, "held_by": hold.held_by,
                                                "held_at": _utc(hold.held_at)},
            "complaints": _complaints(s, case, with_text=can(principal, "complaint.read")),
            "risk": complaint_risk(s, borrower_id=borrower.id, at=now),
            "approvals": [{**approvals.approval_view(r), "mine": r.maker == principal.actor} for r in requests],
            "links": _links(s, c.settings.secret_key, case, now),
            "templates": [{"id": t.id, "code": t.code, "language": t.language, "version": t.version,
                           "channel": t.channel, "audience": t.audience, "body": t.body} for t in sendable],
            "legal": None if legal is None else {"kind": legal.kind, "filed_on": legal.filed_on,
                                                 "court": legal.court, "case_number": legal.case_number},
            "may": {k: can(principal, perm) and (k not in ("hold", "legal") or principal.agency_tenant_id is None)
                    for k, perm in MAY.items()},
            "stop_reasons": stops.STOP_REASONS,
        }


def case_reveal(c: Container, *, principal: Principal, case_id: int, target: str, reason: str) -> dict[str, Any]:
    """The clear number of the case's borrower (``target="borrower"``) or of one of their contacts
    (``"contact:<id>"``), through ``reveal.reveal_phone``: ``pii.read``, a reason, an audit record."""
    with c.uow(write=False) as s:
        case = _staff_case(s, principal, case_id)
        borrower_id: int | None = case.borrower_id
        contact_id: int | None = None
        if target != "borrower":
            kind, _, raw = target.partition(":")
            if kind != "contact" or not raw.isdigit():
                raise BadInput("choose the borrower or one of the listed contacts", field="target")
            contact = s.get(Contact, int(raw))
            if contact is None or contact.borrower_id != case.borrower_id:
                raise NotFound("no such contact")
            borrower_id, contact_id = None, contact.id
    phone = reveal.reveal_phone(c, principal=principal, borrower_id=borrower_id, contact_id=contact_id, reason=reason)
    return {"target": target, "phone": phone}


def _case_variables(s: Session, c: Container, case: Case, borrower: Borrower, needed: list[str],
                    on: dt.date, now: dt.datetime) -> dict[str, str]:
    """The values of ``needed`` for ``case`` (see the module docstring); ``BadInput`` when one is missing."""
    values: dict[str, str] = {}
    if "name_masked" in needed:
        try:
            values["name_masked"] = mask_name(c.cipher.decrypt(borrower.name_enc))
        except ValueError:  # anonymised by retention
            values["name_masked"] = "*"
    if "amount" in needed:
        values["amount"] = str(approvals.loan_balance(s, loan_id=case.loan_id, on=on)["overdue"])
    if "due_date" in needed:
        oldest = approvals.oldest_unpaid_due(s, loan_id=case.loan_id)
        values["due_date"] = oldest.isoformat() if oldest else ""
    if "app" in needed:
        tenant = s.get(Tenant, case.tenant_id)
        values["app"] = tenant.name if tenant is not None else ""
    if "dpd" in needed:
        values["dpd"] = str(case.dpd)
    if {"pay_code", "pay_link"} & set(needed):
        links = _links(s, c.settings.secret_key, case, now)
        if not links:
            raise BadInput("this template needs a repayment link: create one for the case first", field="template_id")
        values["pay_code"], values["pay_link"] = links[0]["code"], links[0]["path"]
    if {"court", "case_number"} & set(needed):
        legal = templates.legal_action_active(s, case_id=case.id)
        if legal is None:
            raise Forbidden("this template speaks of legal action: it can only be sent on a case with a legal "
                            "action on record", detail={"field": "template_id"})
        values["court"], values["case_number"] = legal.court, legal.case_number
    return {k: values.get(k, "") for k in needed}


def case_template_text(c: Container, *, principal: Principal, case_id: int, template_id: int,
                       on: dt.date) -> str:
    """The text of an approved template of the case's lender, filled in for the case and linted again
    (``templates.template_render_approved``); anything but an approved template is refused."""
    require(principal, "guard.check")
    now = c.clock()
    with c.uow(write=False) as s:
        case = _staff_case(s, principal, case_id)
        borrower = s.get(Borrower, case.borrower_id)
        row = s.get(MessageTemplate, template_id)
        if borrower is None or row is None or row.tenant_id != case.tenant_id:
            raise NotFound("no such template")
        variables = _case_variables(s, c, case, borrower, list(row.variables), on, now)
        return templates.template_render_approved(s, template_id=row.id, variables=variables, case_id=case.id,
                                                  tenant_id=case.tenant_id)
