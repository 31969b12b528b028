"""Contact attempts (DESIGN §8): the guard judges each planned contact on stored facts, atomically.

One unit of work does everything: resolve what is contacted (visibility: 404 for anything the
caller may not see), take the borrower lock (``facts.borrower_lock``), read the facts, judge,
record the decision with its audit record, and — when allowed — insert the attempt with its own
audit record. Because the fact query and the insert run under the same per-borrower lock, the
next request for that borrower sees this attempt: no cap can be passed by concurrent requests,
whatever the number of threads, processes or API workers (ADR 0003). A denied contact is
recorded too (decision and audit), then ``Denied`` is raised *after* the commit.

An attempt is a reservation made just before the contact: ``time`` may lie at most
``PAST_SKEW`` before the clock (back-dating would move an attempt out of today's caps) and at
most ``AHEAD`` after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, load_only

from collectguard.adapters.db.models import Borrower, Case, Contact, ContactAttempt, Loan
from collectguard.adapters.db.models_attempts import AttemptMeta, BorrowerFlag
from collectguard.adapters.db.models_ledger import CaseRequest
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, Conflict, Denied, NotFound
from collectguard.rules import Guard
from collectguard.services import outcomes
from collectguard.services.attempts_record import record_judged
from collectguard.services.audit import audit_append
from collectguard.services.authz import Principal, ensure_visible, require, scope_cases
from collectguard.services.facts import DEBTOR_ROLES, Subject, borrower_lock, recipient_key_for, stored_event

__all__ = [
    "AHEAD",
    "PAST_SKEW",
    "RESULTS",
    "contact_attempt_outcome",
    "contact_attempt_read",
    "contact_attempt_request",
    "contact_attempts_of_case",
]

RESULTS = ("connected", "no_answer", "busy", "invalid_number", "ptp", "refused", "no_contact_request", "dispute")
PAST_SKEW = dt.timedelta(minutes=10)
AHEAD = dt.timedelta(days=7)
ROLE_ONLY = ("borrower", "public")  # recipients that need no stored contact


def _when(time: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    when = time or now
    if when.tzinfo is None:
        raise BadInput("must carry a UTC offset, e.g. 2026-03-02T10:00:00+08:00", field="time")
    if when < now - PAST_SKEW:
        raise BadInput("is in the past: an attempt is reserved before the contact is made", field="time")
    if when > now + AHEAD:
        raise BadInput(f"is more than {AHEAD.days} days ahead", field="time")
    return when


_BORROWER_COLUMNS = (
    Borrower.id,
    Borrower.tenant_id,
    Borrower.timezone,
    Borrower.jurisdiction,
    Borrower.status,
    Borrower.phone_hmac,
)
_CASE_COLUMNS = (
    Case.id,
    Case.tenant_id,
    Case.loan_id,
    Case.borrower_id,
    Case.agency_tenant_id,
    Case.status,
    Case.paused_reason,
)
_LOAN_COLUMNS = (
    Loan.id,
    Loan.tenant_id,
    Loan.borrower_id,
    Loan.dpd,
    Loan.apr,
    Loan.annual_rate,
    Loan.lender_type,
    Loan.lpr_at_signing,
    Loan.debt_status,
)


@cache
def _subject_statements(by_case: bool) -> tuple[Any, Any]:
    """The lock and the case-and-loan read, built once with bound values (building them per request
    cost more CPU than running them)."""
    oid = bindparam("id")
    owner = (
        select(Case.borrower_id).where(Case.id == oid) if by_case else select(Loan.borrower_id).where(Loan.id == oid)
    ).scalar_subquery()
    # FOR NO KEY UPDATE on PostgreSQL (facts.borrower_lock); SQLite's BEGIN IMMEDIATE already holds the lock.
    # Only the columns the judgement reads (facts, authz): the driver and the ORM spend CPU per column
    # of every row (an unloaded one would be fetched on access, never read stale: the lock is held).
    lock = (
        select(Borrower)
        .options(load_only(*_BORROWER_COLUMNS))
        .where(Borrower.id == owner)
        .with_for_update(key_share=True)
    )
    case_and_loan = (
        select(Case, Loan)
        .options(load_only(*_CASE_COLUMNS), load_only(*_LOAN_COLUMNS))
        .join(Loan, Loan.id == Case.loan_id)
        .where(Case.id == oid)
    )
    return lock, case_and_loan


def _subject(
    s: Session, p: Principal, *, case_id: int | None, loan_id: int | None, contact_id: int | None, role: str | None
) -> Subject:
    if (case_id is None) == (loan_id is None):
        raise BadInput("give exactly one of case_id and loan_id", field="case_id")
    if (contact_id is None) == (role is None):
        raise BadInput("give exactly one of contact_id and role", field="recipient")
    # Lock first, then load: every row read below is current (facts.borrower_lock) and read once.
    # The lock is taken before the visibility check; a foreign id only ever answers 404.
    # One statement finds the borrower and locks it (what facts.borrower_lock does, in a fresh session).
    lock, case_and_loan = _subject_statements(case_id is not None)
    locked = s.scalar(lock, {"id": case_id if case_id is not None else loan_id})
    if locked is None:
        raise NotFound("no such object")
    if case_id is not None:
        row = s.execute(case_and_loan, {"id": case_id}).first()
        case: Case | None = ensure_visible(row[0] if row else None, p, session=s)
        loan = row[1] if row else None
    else:
        loan = ensure_visible(s.get(Loan, loan_id), p, session=s)
        case = s.scalar(scope_cases(select(Case).where(Case.loan_id == loan.id, Case.status == "open"), p))
    borrower = locked if loan is not None and loan.borrower_id == locked.id else None
    if loan is None or borrower is None:
        raise NotFound("no such object")
    contact = None
    if contact_id is not None:
        contact = s.get(Contact, contact_id)
        if contact is None or contact.borrower_id != borrower.id:
            raise NotFound("no such contact")
        contact = ensure_visible(contact, p, session=s)  # collectors never see contact-list entries
        role = contact.relation
    elif role not in ROLE_ONLY:
        raise BadInput(f"a {role} is named by its stored contact: give recipient.contact_id", field="recipient.role")
    assert role is not None
    return Subject(
        borrower=borrower, loan=loan, case=case, contact=contact, role=role, agency_tenant_id=p.agency_tenant_id
    )


def _check_case(case: Case | None, purpose: str) -> None:
    if case is None:
        return
    if case.status != "open":
        raise Conflict("the case is closed")
    # A dispute is judged by the guard (debt.status = disputed); other pauses stop collection here.
    if case.paused_reason not in (None, "dispute") and purpose != "validation_notice":
        raise Conflict(f"collection on this case is paused ({case.paused_reason})")


def contact_attempt_request(
    c: Container,
    *,
    principal: Principal,
    channel: str,
    case_id: int | None = None,
    loan_id: int | None = None,
    contact_id: int | None = None,
    role: str | None = None,
    time: dt.datetime | None = None,
    purpose: str = "collect",
    message: str | None = None,
    conduct: Sequence[str] = (),
    discloses: Sequence[str] = (),
    visitors: int | None = None,
    opt_out_included: bool = False,
) -> dict[str, Any]:
    """Judge a planned contact on stored facts; allowed -> ``{attempt_id, decision_id, decision}``.

    Denied -> the decision is recorded and committed, then ``Denied`` (403) carries it.
    """
    require(principal, "attempt.create")
    now = c.clock()
    when = _when(time, now)
    with c.uow() as s:
        # _subject takes the borrower lock: from there on every read is current (see facts.borrower_lock)
        subject = _subject(s, principal, case_id=case_id, loan_id=loan_id, contact_id=contact_id, role=role)
        _check_case(subject.case, purpose)
        event = stored_event(
            s,
            subject=subject,
            channel=channel,
            when=when,
            now=now,
            purpose=purpose,
            message=message,
            conduct=conduct,
            discloses=discloses,
            visitors=visitors,
            opt_out_included=opt_out_included,
        )
        decision = Guard.default().check(event)
        result = decision.model_dump(mode="json")
        key = recipient_key_for(event.channel, subject.borrower, subject.contact, subject.role)
        decision_id, attempt_id = record_judged(
            s,
            decided_at=c.clock(),
            now=now,
            event=event,
            decision=decision,
            result=result,
            subject=subject,
            actor=principal.actor,
            recipient_key=key,
        )
        out: dict[str, Any] = {"decision_id": decision_id, "decision": result}
        if attempt_id is not None:
            out = {"attempt_id": attempt_id, **out}
    if "attempt_id" not in out:
        rules = ", ".join(v["rule"] for v in out["decision"]["violations"]) or "fail closed"
        raise Denied(
            f"the guard denied this contact: {rules}", decision=out["decision"], decision_id=out["decision_id"]
        )
    return out


def _attempt(
    s: Session, p: Principal, attempt_id: int, *, own: bool = False
) -> tuple[ContactAttempt, AttemptMeta | None]:
    attempt = ensure_visible(s.get(ContactAttempt, attempt_id), p, session=s)
    meta = s.get(AttemptMeta, attempt.id)
    # An agency sees the history of a borrower it holds a case of, but records outcomes only for
    # attempts it made itself; the lender may record them for its agencies too.
    agency = p.agency_tenant_id
    if own and agency is not None and (meta is None or meta.agency_tenant_id != agency):
        raise NotFound("no such object")
    return attempt, meta


def contact_attempt_outcome(c: Container, *, principal: Principal, attempt_id: int, result: str) -> dict[str, Any]:
    """Record what happened on an attempt, once; refusals, stop requests and disputes act at once."""
    require(principal, "attempt.outcome")
    if result not in RESULTS:
        raise BadInput(f"must be one of {', '.join(RESULTS)}", field="result")
    now = c.clock()
    with c.uow() as s:
        attempt, _meta = _attempt(s, principal, attempt_id, own=True)
        borrower = borrower_lock(s, attempt.borrower_id)
        if attempt.outcome is not None:
            raise Conflict(f"the outcome of this attempt is already recorded ({attempt.outcome})")
        if result in outcomes.PAYING_RESULTS:  # only a debtor promises to pay (GB/T 45251: not contacts)
            outcomes.ptp_recipient_check(role=attempt.recipient_role, jurisdiction=borrower.jurisdiction)
        attempt.outcome, attempt.outcome_at = result, now
        effects = _effects(s, attempt, borrower, result, principal.actor, now)
        audit_append(
            s,
            tenant_id=attempt.tenant_id,
            actor=principal.actor,
            action="contact_attempt.outcome",
            subject=f"contact_attempt:{attempt.id}",
            now=now,
            shard_key=str(attempt.borrower_id),
            payload={
                "borrower_id": attempt.borrower_id,
                "attempt_id": attempt.id,
                "result": result,
                "effects": effects,
            },
        )
    return {"attempt_id": attempt_id, "result": result, "effects": effects}


def _effects(
    s: Session, attempt: ContactAttempt, borrower: Borrower, result: str, actor: str, now: dt.datetime
) -> dict[str, Any]:
    effects: dict[str, Any] = {}
    role = attempt.recipient_role
    stop = result == "no_contact_request" or (result == "refused" and role not in DEBTOR_ROLES)
    if stop and attempt.contact_id is not None:
        # A third party who refuses or asks not to be called is never contacted again (GB/T 45251, CBA).
        contact = s.get(Contact, attempt.contact_id)
        assert contact is not None
        if not contact.no_contact_requested:
            contact.no_contact_requested, contact.no_contact_at = True, now
        effects["contact_no_contact_requested"] = contact.id
    elif stop and role == "borrower":
        # US: a cease request (1692c(c)); CN/EU: recorded, and the pack decides what it means.
        active = s.scalar(
            select(BorrowerFlag.id).where(
                BorrowerFlag.borrower_id == borrower.id,
                BorrowerFlag.kind == "no_contact_request",
                BorrowerFlag.cleared_at.is_(None),
            )
        )
        if active is None:
            s.add(
                BorrowerFlag(
                    tenant_id=borrower.tenant_id,
                    borrower_id=borrower.id,
                    kind="no_contact_request",
                    source=f"contact_attempt:{attempt.id}",
                    set_by=actor[:120],
                    set_at=now,
                )
            )
        effects["borrower_no_contact_request"] = "cease" if borrower.jurisdiction == "US" else "recorded"
    if result == "dispute":
        effects["dispute"] = _dispute(s, attempt, actor, now)
    return effects


def _dispute(s: Session, attempt: ContactAttempt, actor: str, now: dt.datetime) -> str:
    case = s.get(Case, attempt.case_id) if attempt.case_id is not None else None
    if case is None or case.status != "open":
        loan = s.get(Loan, attempt.loan_id)
        assert loan is not None
        if loan.debt_status == "valid":
            loan.debt_status = "disputed"
        return "loan_disputed"
    pending = s.scalar(
        select(CaseRequest.id).where(
            CaseRequest.case_id == case.id, CaseRequest.status == "open", CaseRequest.kind == "dispute"
        )
    )
    if pending is None:
        outcomes.dispute_open(
            s,
            tenant_id=case.tenant_id,
            case_id=case.id,
            on=attempt.local_date,
            actor=actor,
            now=now,
            reason=f"disputed by the recipient of contact attempt {attempt.id}",
        )
    return "case_paused"


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else (t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t).isoformat()


def _view(a: ContactAttempt, m: AttemptMeta | None) -> dict[str, Any]:
    return {
        "id": a.id,
        "case_id": a.case_id,
        "loan_id": a.loan_id,
        "contact_id": a.contact_id,
        "channel": a.channel,
        "recipient_role": a.recipient_role,
        "purpose": m.purpose if m else None,
        "collector_kind": a.collector_kind,
        "agency_tenant_id": m.agency_tenant_id if m else None,
        "actor": a.actor,
        "planned_at": _iso(a.planned_at),
        "local_date": a.local_date.isoformat(),
        "outcome": a.outcome,
        "outcome_at": _iso(a.outcome_at),
        "decision_id": a.decision_id,
    }


def contact_attempt_read(c: Container, *, principal: Principal, attempt_id: int) -> dict[str, Any]:
    """One attempt (without its message or the number reached)."""
    require(principal, "attempt.read")
    with c.uow(write=False) as s:
        return _view(*_attempt(s, principal, attempt_id))


def contact_attempts_of_case(
    c: Container, *, principal: Principal, case_id: int, limit: int = 500, offset: int = 0
) -> list[dict[str, Any]]:
    """A case's attempts, oldest first; an agency sees the whole history of a case it holds."""
    require(principal, "attempt.read")
    with c.uow(write=False) as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        rows = s.execute(
            select(ContactAttempt, AttemptMeta)
            .outerjoin(AttemptMeta, AttemptMeta.attempt_id == ContactAttempt.id)
            .where(ContactAttempt.case_id == case.id)
            .order_by(ContactAttempt.planned_at, ContactAttempt.id)
            .limit(min(limit, 1000))
            .offset(offset)
        )
        return [_view(a, m) for a, m in rows]
