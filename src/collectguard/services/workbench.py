"""The collector workbench (DESIGN §8 ``/work``): today's queue, one case's file, and acting on it.

Read models return plain dicts with personal data already masked (138****1234, 张**): the
workbench never needs the clear text, so it never leaves this module. Visibility follows
``services.authz``: ``scope_cases`` for the queue, ``ensure_visible`` for a case (404 for anything
else), ``visible_contacts`` so that collectors and agencies never see contact-list (通讯录) entries.

``case_check`` is the guard's answer before an action: the planned contact judged on stored facts
(``services.facts.stored_event``), exactly as ``contact_attempt_request`` would judge it, but
nothing is reserved; the decision is recorded with its audit record like every guard check.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher, mask_name, mask_phone
from collectguard.adapters.db.models import (
    AuditRecord,
    Borrower,
    Case,
    Contact,
    ContactAttempt,
    Decision,
    Installment,
    Loan,
    Payment,
    PromiseToPay,
)
from collectguard.adapters.db.models_ledger import CaseRequest, WorkItem
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, Forbidden, NotFound
from collectguard.rules import Guard
from collectguard.services import outcomes
from collectguard.services.attempts import contact_attempt_request
from collectguard.services.audit import audit_append
from collectguard.services.authz import (
    STAFF_ROLES,
    Principal,
    ensure_visible,
    require,
    scope_cases,
    visible_contacts,
)
from collectguard.services.daily import daily_default_as_of
from collectguard.services.facts import Subject, local_time, stored_event
from collectguard.services.guard import decision_record

__all__ = ["NOTE_MAX", "case_attempt_record", "case_check", "case_file", "case_note_add", "case_ptp_add",
           "work_queue"]

NOTE_MAX = 2000
HISTORY_MAX = 200
_WORKERS_OWN_QUEUE = ("collector",)  # lender collectors see their own items first; leads see the tenant's


def _plain(cipher: PiiCipher, blob: bytes | None) -> str:
    if not blob:
        return ""
    try:
        return cipher.decrypt(blob)
    except ValueError:  # a row anonymised by retention, or encrypted under a retired key
        return ""


def _staff(principal: Principal) -> None:
    # case.read is everyone's (a borrower reads their own case in the portal); the workbench is staff's.
    require(principal, "case.read")
    if principal.role not in STAFF_ROLES:
        raise Forbidden("the workbench is for staff", detail={"permission": "case.read"})


def work_queue(c: Container, *, principal: Principal, as_of: dt.date | None = None, mine: bool | None = None,
               limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """The planned work items of ``as_of`` (default today) the caller may see, by planned time.

    ``mine`` (default: true for lender collectors) keeps the items assigned to the caller.
    """
    _staff(principal)
    day = as_of or daily_default_as_of(c)
    if mine is None:
        mine = principal.role in _WORKERS_OWN_QUEUE
    stmt = (select(WorkItem, Case, Borrower.name_enc)
            .join(Case, Case.id == WorkItem.case_id).join(Borrower, Borrower.id == WorkItem.borrower_id)
            .where(WorkItem.as_of == day, WorkItem.status == "planned"))
    stmt = scope_cases(stmt, principal)
    if mine and principal.user_id is not None and principal.agency_tenant_id is None:
        stmt = stmt.where(WorkItem.assignee_user_id == principal.user_id)
    with c.uow(write=False) as s:
        total = int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = s.execute(stmt.order_by(WorkItem.planned_at, WorkItem.id).limit(min(limit, 200)).offset(offset))
        items = [{"id": w.id, "case_id": w.case_id, "local_time": w.local_time, "timezone": w.timezone,
                  "channel": w.channel, "recipient_role": w.recipient_role, "purpose": w.purpose, "step": w.step,
                  "name": mask_name(_plain(c.cipher, name)), "dpd": case.dpd, "bucket": case.bucket,
                  "paused": case.paused_reason} for w, case, name in rows]
    return {"as_of": day.isoformat(), "mine": mine, "total": total, "offset": offset, "items": items}


def _case(s: Session, p: Principal, case_id: int) -> tuple[Case, Loan, Borrower]:
    case = ensure_visible(s.get(Case, case_id), p, session=s)
    loan, borrower = s.get(Loan, case.loan_id), s.get(Borrower, case.borrower_id)
    if loan is None or borrower is None:
        raise NotFound("no such object")
    return case, loan, borrower


def _contacts(s: Session, p: Principal, borrower: Borrower) -> list[Contact]:
    rows = s.scalars(select(Contact).where(Contact.borrower_id == borrower.id).order_by(Contact.id))
    return visible_contacts(rows, p)


def _history(s: Session, case: Case, borrower: Borrower) -> list[dict[str, Any]]:
    """Attempts of the case with their decisions, and the checks and denials without an attempt."""
    attempts = list(s.scalars(select(ContactAttempt).where(ContactAttempt.case_id == case.id)
                              .order_by(ContactAttempt.planned_at.desc()).limit(HISTORY_MAX)))
    by_decision = {a.decision_id: a for a in attempts if a.decision_id is not None}
    decisions = s.scalars(select(Decision).where(Decision.borrower_id == borrower.id,
                                                 Decision.tenant_id == case.tenant_id)
                          .order_by(Decision.id.desc()).limit(HISTORY_MAX))
    out: list[dict[str, Any]] = []
    for d in decisions:
        a = by_decision.pop(d.id, None)
        ev: dict[str, Any] = d.event or {}
        result: dict[str, Any] = d.result or {}
        out.append({"at": _utc(d.created_at), "kind": "attempt" if a else "check", "decision_id": d.id,
                    "verdict": d.verdict, "channel": ev.get("channel"), "local": ev.get("time"),
                    "role": (ev.get("recipient") or {}).get("role"), "purpose": ev.get("purpose", "collect"),
                    "violations": list(result.get("violations") or []),
                    "attempt_id": a.id if a else None, "outcome": a.outcome if a else None})
    for a in by_decision.values():  # attempts whose decision is older than the decisions listed
        out.append({"at": _utc(a.planned_at), "kind": "attempt", "decision_id": a.decision_id, "verdict": "allow",
                    "channel": a.channel, "local": None, "role": a.recipient_role, "purpose": None,
                    "violations": [], "attempt_id": a.id, "outcome": a.outcome})
    return sorted(out, key=lambda h: h["at"], reverse=True)[:HISTORY_MAX]


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def case_file(c: Container, *, principal: Principal, case_id: int) -> dict[str, Any]:
    """Everything the workbench shows about one case, personal data masked."""
    _staff(principal)
    now = c.clock()
    with c.uow(write=False) as s:
        case, loan, b = _case(s, principal, case_id)
        contacts = [{"id": x.id, "relation": x.relation, "source": x.source,
                     "name": mask_name(_plain(c.cipher, x.name_enc)),
                     "phone": mask_phone(_plain(c.cipher, x.phone_enc)),
                     "no_contact": x.no_contact_requested} for x in _contacts(s, principal, b)]
        installments = list(s.scalars(select(Installment).where(Installment.loan_id == loan.id)
                                      .order_by(Installment.seq)))
        payments = list(s.scalars(select(Payment).where(Payment.loan_id == loan.id).order_by(Payment.paid_on)))
        ptps = list(s.scalars(select(PromiseToPay).where(PromiseToPay.case_id == case.id)
                              .order_by(PromiseToPay.id.desc())))
        requests = list(s.scalars(select(CaseRequest).where(CaseRequest.case_id == case.id)
                                  .order_by(CaseRequest.id.desc())))
        notes = [{"at": _utc(r.time), "actor": r.actor, "text": json.loads(r.payload).get("text", "")}
                 for r in s.scalars(select(AuditRecord).where(AuditRecord.subject == f"case:{case.id}",
                                                              AuditRecord.action == "case.note")
                                    .order_by(AuditRecord.time.desc()).limit(100))]
        local_now = local_time(b, now)
        return {
            "case": {"id": case.id, "status": case.status, "bucket": case.bucket, "dpd": case.dpd,
                     "opened_on": case.opened_on, "paused": case.paused_reason,
                     "assignee_user_id": case.assignee_user_id, "agency_tenant_id": case.agency_tenant_id},
            "borrower": {"id": b.id, "ext_id": b.ext_id, "name": mask_name(_plain(c.cipher, b.name_enc)),
                         "phone": mask_phone(_plain(c.cipher, b.phone_enc)), "jurisdiction": b.jurisdiction,
                         "timezone": b.timezone, "language": b.language, "status": b.status},
            "loan": {"id": loan.id, "ext_id": loan.ext_id, "product": loan.product, "principal": loan.principal,
                     "currency": loan.currency, "annual_rate": loan.annual_rate, "apr": loan.apr,
                     "outstanding": loan.outstanding, "overdue": loan.overdue_amount, "dpd": loan.dpd,
                     "bucket": loan.bucket, "debt_status": loan.debt_status, "disbursed_on": loan.disbursed_on,
                     "lender_type": loan.lender_type},
            "installments": [{"seq": i.seq, "due_date": i.due_date, "principal": i.principal_due,
                              "interest": i.interest_due, "fee": i.fee_due,
                              "total": i.principal_due + i.interest_due + i.fee_due} for i in installments],
            "payments": [{"paid_on": p.paid_on, "amount": p.amount} for p in payments],
            "contacts": contacts,
            "history": _history(s, case, b),
            "ptps": [{"id": p.id, "promised_on": p.promised_on, "due_date": p.due_date, "amount": p.amount,
                      "status": p.status} for p in ptps],
            "requests": [{"kind": r.kind, "status": r.status, "reason": r.reason} for r in requests],
            "notes": notes,
            "local_now": local_now.strftime("%Y-%m-%dT%H:%M"),
        }


def _recipient(s: Session, p: Principal, borrower: Borrower, recipient: str) -> tuple[Contact | None, str]:
    """``borrower`` or ``contact:<id>`` -> the stored contact (visible to the caller) and its role."""
    if recipient == "borrower":
        return None, "borrower"
    kind, _, raw = recipient.partition(":")
    if kind != "contact" or not raw.isdigit():
        raise BadInput("choose the borrower or one of the listed contacts", field="recipient")
    contact = s.get(Contact, int(raw))
    if contact is None or contact.borrower_id != borrower.id:
        raise NotFound("no such contact")
    contact = ensure_visible(contact, p, session=s)  # a contact-list entry is invisible to collectors
    return contact, contact.relation


def _aware(when: dt.datetime, zone: str) -> dt.datetime:
    # The form gives the recipient's wall-clock time: that is what the quiet-hours rules are about.
    return when if when.tzinfo is not None else when.replace(tzinfo=ZoneInfo(zone))


def case_check(c: Container, *, principal: Principal, case_id: int, channel: str, recipient: str,
               when: dt.datetime, purpose: str = "collect", message: str | None = None) -> dict[str, Any]:
    """The guard's answer for a planned contact on a case (dry run on stored facts, recorded).

    ``when`` without an offset is the recipient's local time. Returns ``{decision_id, decision, event}``.
    """
    require(principal, "guard.check")
    now = c.clock()
    with c.uow() as s:
        case, loan, b = _case(s, principal, case_id)
        contact, role = _recipient(s, principal, b, recipient)
        subject = Subject(borrower=b, loan=loan, case=case, contact=contact, role=role,
                          agency_tenant_id=principal.agency_tenant_id)
        event = stored_event(s, subject=subject, channel=channel, when=_aware(when, b.timezone), now=now,
                             purpose=purpose, message=message or None)
        decision = Guard.default().check(event)
        row = decision_record(s, c=c, event=event, decision=decision, tenant_id=loan.tenant_id,
                              borrower_id=b.id, actor=principal.actor, action="guard.check")
        return {"decision_id": row.id, "decision": decision.model_dump(mode="json"),
                "event": event.model_dump(mode="json", exclude_none=True)}


def case_attempt_record(c: Container, *, principal: Principal, case_id: int, channel: str, recipient: str,
                        when: dt.datetime | None, purpose: str = "collect",
                        message: str | None = None) -> dict[str, Any]:
    """Reserve the contact through ``contact_attempt_request`` (``Denied`` when the guard says no)."""
    with c.uow(write=False) as s:
        _kase, _loan, b = _case(s, principal, case_id)
        contact, _role = _recipient(s, principal, b, recipient)
        zone = b.timezone
    return contact_attempt_request(
        c, principal=principal, channel=channel, case_id=case_id,
        contact_id=contact.id if contact is not None else None, role=None if contact is not None else "borrower",
        time=_aware(when, zone) if when is not None else None, purpose=purpose, message=message or None)


def case_ptp_add(c: Container, *, principal: Principal, case_id: int, due_date: dt.date,
                 amount: Any) -> dict[str, Any]:
    """Record the borrower's promise to pay ``amount`` by ``due_date``, made today."""
    require(principal, "ptp.create")
    with c.uow() as s:
        case, _loan, _b = _case(s, principal, case_id)
        row = outcomes.ptp_create(s, tenant_id=case.tenant_id, case_id=case.id, amount=amount,
                                  promised_on=daily_default_as_of(c), due_date=due_date, actor=principal.actor,
                                  now=c.clock())
        return {"ptp_id": row.id, "status": row.status}


def case_note_add(c: Container, *, principal: Principal, case_id: int, text: str) -> None:
    """Add a free-text note to a case; a note is an audit record (``case.note``), so it cannot be edited."""
    # Working a case is what "attempt.create" grants (collectors, agency collectors, team leads).
    require(principal, "attempt.create")
    text = text.strip()
    if not text or len(text) > NOTE_MAX:
        raise BadInput(f"a note is 1–{NOTE_MAX} characters", field="text")
    with c.uow() as s:
        case, _loan, b = _case(s, principal, case_id)
        audit_append(s, tenant_id=case.tenant_id, actor=principal.actor, action="case.note",
                     subject=f"case:{case.id}", payload={"borrower_id": b.id, "case_id": case.id, "text": text},
                     now=c.clock())
