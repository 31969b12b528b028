"""Stop collection (停催) for a case or for one phone number, from a start date to an optional end;
and holds (留案), which take a case away from every collector and agency.

A stop has a reason (``STOP_REASONS``: a complaint, a dispute, fraud such as identity theft,
litigation, the borrower's death, hardship), a note, and the borrower's local dates it covers
(``starts_on``..``ends_on`` inclusive; no end: until lifted). Lifting sets ``lifted_at``; rows are
never deleted, so who stopped what, when and why stays evidence. Creating and lifting are audited.

What a stop does:
- the guard denies while it is active, through stored facts (``stop_facts``, applied by
  ``services.facts.stored_event`` to the scope its one statement reads; ``stop_apply`` does the
  same with a statement of its own): a case stop turns the debt to ``disputed`` (collect and remind
  are denied, on every pack) and marks third parties ``no_contact_requested`` (no locating either);
  a number stop marks that recipient ``no_contact_requested`` and the debt ``disputed`` for
  contacts to that number. Sending the documents that verify a debt (``validation_notice``) to the
  borrower stays possible, as under a dispute;
- the case's planned work items in the stop's window are cancelled when it is created, and
  ``QUEUE_STOP_FILTER_SQL`` keeps the daily queue from planning new ones.

A number stop matches the keyed hash of the number (what ``facts.recipient_key_for`` returns for
calls, texts, IM and push), for every case of the borrower: the number is the point, not the case.

A hold (``case_hold``) ends the case's assignment, cancels its planned work and pauses it
(``paused_reason = "hold"``, unless a dispute, hardship or plan already pauses it): the daily
assignment and the queue skip paused cases, and ``services.allocation`` skips held ones until
``case_hold_release``.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.models import Borrower, Case, Contact
from collectguard.adapters.db.models_ledger import CaseAssignment, WorkItem
from collectguard.adapters.db.models_ops import CaseHold, CollectionStop
from collectguard.bootstrap import Container
from collectguard.domain import validation as v
from collectguard.domain.event import CollectionEvent
from collectguard.errors import BadInput, Conflict, NotFound
from collectguard.services.audit import audit_append
from collectguard.services.authz import Principal, ensure_visible, require

__all__ = ["QUEUE_STOP_FILTER_SQL", "STOP_REASONS", "case_hold", "case_hold_as", "case_hold_release",
           "case_hold_release_as", "hold_active", "stop_active", "stop_apply", "stop_create", "stop_create_as",
           "stop_lift", "stop_lift_as", "stop_view", "stops_list_as", "stops_of_case"]

STOP_REASONS = ("complaint", "dispute", "fraud", "litigation", "deceased", "hardship")
SCOPES = ("case", "number")
# Who may stop collection (compliance officers, team leads, admins), lift a stop (compliance) and
# hold a case (team leads, admins): services.authz.
PERM_CREATE = "stop.manage"
PERM_LIFT = "stop.lift"
PERM_HOLD = "hold.manage"

# For ``daily_sql.candidates_sql`` (alias ``c`` = the case, ``p.d`` = the as-of date): no queue
# actions for a case under an active case stop.
QUEUE_STOP_FILTER_SQL = (
    "NOT EXISTS (SELECT 1 FROM collection_stop st WHERE st.case_id = c.id AND st.scope = 'case' "
    "AND st.lifted_at IS NULL AND st.starts_on <= p.d AND (st.ends_on IS NULL OR st.ends_on >= p.d))")


def _case(s: Session, tenant_id: int, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None or case.tenant_id != tenant_id:
        raise NotFound("no such case")
    return case


def _number_key(s: Session, cipher: PiiCipher | None, case: Case, contact_id: int | None, phone: str | None) -> tuple[
        str, int | None]:
    """The keyed hash of the number to stop: a contact's, a number given in clear, or the borrower's own."""
    if contact_id is not None and phone is not None:
        raise BadInput("give a contact_id or a phone number, not both", field="phone")
    if contact_id is not None:
        contact = s.get(Contact, contact_id)
        if contact is None or contact.borrower_id != case.borrower_id:
            raise NotFound("no such contact")
        return contact.phone_hmac, contact.id
    borrower = s.get(Borrower, case.borrower_id)
    assert borrower is not None
    if phone is None:
        return borrower.phone_hmac, None
    try:
        e164 = v.phone_e164(phone, jurisdiction=borrower.jurisdiction)
    except v.InvalidValue as exc:
        raise BadInput(exc.reason, field="phone") from None
    if cipher is None:
        raise TypeError("a number given in clear needs the PII cipher to hash it")
    return cipher.lookup_hash(e164), None


def stop_create(s: Session, *, cipher: PiiCipher | None = None, tenant_id: int, case_id: int, reason: str,
                starts_on: dt.date, ends_on: dt.date | None = None, scope: str = "case", contact_id: int | None = None,
                phone: str | None = None, note: str = "", complaint_id: int | None = None, actor: str,
                now: dt.datetime) -> CollectionStop:
    """Stop collection on a case (``scope="case"``) or on one number (``scope="number"``: a contact's,
    ``phone`` in clear, or by default the borrower's own); audited, planned work in its window cancelled."""
    if reason not in STOP_REASONS:
        raise BadInput(f"expected one of {', '.join(STOP_REASONS)}", field="reason")
    if scope not in SCOPES:
        raise BadInput(f"expected one of {', '.join(SCOPES)}", field="scope")
    if ends_on is not None and ends_on < starts_on:
        raise BadInput("the end is before the start", field="ends_on")
    if len(note) > 2000:
        raise BadInput("at most 2000 characters", field="note")
    case = _case(s, tenant_id, case_id)
    key, contact = (None, None)
    if scope == "number":
        key, contact = _number_key(s, cipher, case, contact_id, phone)
    elif contact_id is not None or phone is not None:
        raise BadInput("a case stop names no number; use scope 'number'", field="scope")
    row = CollectionStop(tenant_id=tenant_id, case_id=case.id, borrower_id=case.borrower_id, scope=scope,
                         contact_key=key, contact_id=contact, reason=reason, note=note, starts_on=starts_on,
                         ends_on=ends_on, complaint_id=complaint_id, created_by=actor[:120], created_at=now)
    s.add(row)
    s.flush()
    window = and_(WorkItem.case_id == case.id, WorkItem.status == "planned", WorkItem.as_of >= starts_on)
    if ends_on is not None:
        window = and_(window, WorkItem.as_of <= ends_on)
    if scope == "number":  # the queue names recipients by role or contact, not by number
        window = and_(window, WorkItem.recipient_key == (f"contact:{contact}" if contact else "borrower"))
    cancelled = getattr(s.execute(update(WorkItem).where(window).values(status="cancelled")), "rowcount", 0)
    audit_append(s, tenant_id=tenant_id, actor=actor, action="stop.create", subject=f"case:{case.id}", now=now,
                 payload={"borrower_id": case.borrower_id, "case_id": case.id, "stop_id": row.id, "scope": scope,
                          "contact_id": contact, "reason": reason, "starts_on": starts_on.isoformat(),
                          "ends_on": ends_on.isoformat() if ends_on else None, "complaint_id": complaint_id,
                          "work_items_cancelled": int(cancelled or 0)})
    return row


def stop_lift(s: Session, *, tenant_id: int, stop_id: int, actor: str, now: dt.datetime,
              note: str = "") -> CollectionStop:
    """End a stop now (audited); ``Conflict`` when it was already lifted."""
    row = s.get(CollectionStop, stop_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such stop")
    if row.lifted_at is not None:
        raise Conflict("the stop is already lifted")
    row.lifted_at, row.lifted_by = now, actor[:120]
    audit_append(s, tenant_id=tenant_id, actor=actor, action="stop.lift", subject=f"case:{row.case_id}", now=now,
                 payload={"borrower_id": row.borrower_id, "case_id": row.case_id, "stop_id": row.id,
                          "note": note[:2000]})
    return row


def _local_day(s: Session, at: dt.datetime | dt.date, borrower_id: int | None) -> dt.date:
    if not isinstance(at, dt.datetime):
        return at
    borrower = s.get(Borrower, borrower_id) if borrower_id is not None else None
    try:
        zone = ZoneInfo(borrower.timezone) if borrower is not None else dt.UTC
    except (KeyError, ValueError):  # an unknown stored zone: the borrower's home country is China by default
        zone = ZoneInfo("Asia/Shanghai")
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(zone).date()


def stop_active(session: Session, *, case_id: int | None, contact_key: str | None, at: dt.datetime | dt.date,
                borrower_id: int | None = None) -> CollectionStop | None:
    """The stop in force at ``at`` (an aware time, or the borrower's local date) for a contact about
    ``case_id`` to the number ``contact_key`` (``facts.recipient_key_for``), or ``None``."""
    if borrower_id is None and case_id is not None:
        case = session.get(Case, case_id)
        borrower_id = case.borrower_id if case is not None else None
    day = _local_day(session, at, borrower_id)
    by_case, by_number = case_id is not None, bool(contact_key) and borrower_id is not None
    if not (by_case or by_number):
        return None
    params = {"day": day, "case_id": case_id, "borrower_id": borrower_id, "contact_key": contact_key}
    return session.scalar(stop_statement(by_case, by_number), params)


@cache
def stop_statement(by_case: bool, by_number: bool, *, scope_only: bool = False) -> Any:
    """The active stop (binds ``day``, ``case_id``, ``borrower_id``, ``contact_key``); ``scope_only``:
    just its scope, for the attempt path's one fact statement (``facts._hot_columns``)."""
    # Built once per shape, values bound (the attempt path runs it on every contact).
    S, day = CollectionStop, bindparam("day", type_=Date)
    which = []
    if by_case:
        which.append(and_(S.scope == "case", S.case_id == bindparam("case_id")))
    if by_number:
        which.append(and_(S.scope == "number", S.borrower_id == bindparam("borrower_id"),
                          S.contact_key == bindparam("contact_key")))
    return (select(S.scope if scope_only else S).where(or_(*which), S.lifted_at.is_(None), S.starts_on <= day,
                                                       or_(S.ends_on.is_(None), S.ends_on >= day))
            .order_by(S.id).limit(1))


def stop_apply(session: Session, event: CollectionEvent, *, case_id: int | None, borrower_id: int,
               contact_key: str | None) -> CollectionEvent:
    """``event`` with the facts an active stop implies (see the module docstring); unchanged without one.

    The event's ``time`` is already the recipient's local time, so its date is the day the stop is
    judged on.
    """
    stop = stop_active(session, case_id=case_id, contact_key=contact_key, at=event.time.date(),
                       borrower_id=borrower_id)
    return stop_facts(event, stop.scope if stop is not None else None)


def stop_facts(event: CollectionEvent, scope: str | None) -> CollectionEvent:
    """``event`` with the facts a stop of ``scope`` implies (``None``: no stop, unchanged)."""
    if scope is None:
        return event
    update_: dict[str, Any] = {}
    if event.debt.status == "valid":
        update_["debt"] = event.debt.model_copy(update={"status": "disputed"})
    if scope == "number" or event.recipient.role not in ("borrower", "guarantor"):
        update_["recipient"] = event.recipient.model_copy(update={"no_contact_requested": True})
    return event.model_copy(update=update_)


def stops_of_case(s: Session, *, case_id: int) -> list[CollectionStop]:
    """Every stop of a case, lifted or not, oldest first."""
    return list(s.scalars(select(CollectionStop).where(CollectionStop.case_id == case_id)
                          .order_by(CollectionStop.id)))


def stop_view(row: CollectionStop, *, on: dt.date | None = None) -> dict[str, Any]:
    """A stop as JSON (never the number: only which contact, if any); ``active`` as of ``on``."""
    active = row.lifted_at is None and (on is None or (row.starts_on <= on and (row.ends_on is None
                                                                                or row.ends_on >= on)))
    return {"id": row.id, "case_id": row.case_id, "scope": row.scope, "contact_id": row.contact_id,
            "borrower_number": row.scope == "number" and row.contact_id is None, "reason": row.reason,
            "note": row.note, "starts_on": row.starts_on.isoformat(),
            "ends_on": row.ends_on.isoformat() if row.ends_on else None, "complaint_id": row.complaint_id,
            "active": active, "lifted_at": row.lifted_at.isoformat() if row.lifted_at else None}


# ---------------------------------------------------------------- for the API (principal-checked)

def stop_create_as(c: Container, *, principal: Principal, case_id: int, on: dt.date, **kw: Any) -> dict[str, Any]:
    """``stop_create`` for a caller who may stop collection (``stop.manage``) and see the case; ``starts_on``
    defaults to ``on``."""
    require(principal, PERM_CREATE)
    kw["starts_on"] = kw.get("starts_on") or on
    with c.uow() as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        row = stop_create(s, cipher=c.cipher, tenant_id=case.tenant_id, case_id=case.id, actor=principal.actor,
                          now=c.clock(), **kw)
        return stop_view(row, on=on)


def stop_lift_as(c: Container, *, principal: Principal, stop_id: int, note: str = "") -> dict[str, Any]:
    """``stop_lift`` for a compliance officer of the stop's tenant (``stop.lift``)."""
    require(principal, PERM_LIFT)
    with c.uow() as s:
        row = stop_lift(s, tenant_id=principal.tenant_id, stop_id=stop_id, actor=principal.actor, now=c.clock(),
                        note=note)
        return stop_view(row)


def stops_list_as(c: Container, *, principal: Principal, case_id: int, on: dt.date) -> list[dict[str, Any]]:
    """The stops of a case the caller may see (``case.read``)."""
    require(principal, "case.read")
    with c.uow(write=False) as s:
        case = ensure_visible(s.get(Case, case_id), principal, session=s)
        return [stop_view(r, on=on) for r in stops_of_case(s, case_id=case.id)]


# ---------------------------------------------------------------- holds (留案)

def case_hold(s: Session, *, tenant_id: int, case_id: int, reason: str, on: dt.date, actor: str,
              now: dt.datetime) -> CaseHold:
    """Take an open case away from its collector or agency until released (audited)."""
    case = _case(s, tenant_id, case_id)
    if case.status != "open":
        raise Conflict("the case is closed")
    if not reason.strip() or len(reason) > 2000:
        raise BadInput("a reason of 1–2000 characters is required", field="reason")
    if hold_active(s, case_id=case.id) is not None:
        raise Conflict("the case is already held")
    held_by = {"user_id": case.assignee_user_id, "agency_tenant_id": case.agency_tenant_id}
    s.execute(update(CaseAssignment).where(CaseAssignment.case_id == case.id, CaseAssignment.ended_on.is_(None))
              .values(ended_on=on, end_reason="hold"))
    s.execute(update(WorkItem).where(WorkItem.case_id == case.id, WorkItem.as_of >= on, WorkItem.status == "planned")
              .values(status="cancelled"))
    case.assignee_user_id = case.agency_tenant_id = None
    if case.paused_reason is None:
        case.paused_reason = "hold"
    row = CaseHold(tenant_id=tenant_id, case_id=case.id, reason=reason, held_by=actor[:120], held_at=now)
    s.add(row)
    s.flush()
    audit_append(s, tenant_id=tenant_id, actor=actor, action="case.hold", subject=f"case:{case.id}", now=now,
                 payload={"borrower_id": case.borrower_id, "case_id": case.id, "hold_id": row.id, "reason": reason,
                          "taken_from": held_by})
    return row


def case_hold_release(s: Session, *, tenant_id: int, case_id: int, actor: str, now: dt.datetime) -> CaseHold:
    """Release a held case back to allocation (audited)."""
    case = _case(s, tenant_id, case_id)
    row = hold_active(s, case_id=case.id)
    if row is None:
        raise Conflict("the case is not held")
    row.released_at, row.released_by = now, actor[:120]
    if case.paused_reason == "hold":
        case.paused_reason = None
    audit_append(s, tenant_id=tenant_id, actor=actor, action="case.hold_release", subject=f"case:{case.id}",
                 now=now, payload={"borrower_id": case.borrower_id, "case_id": case.id, "hold_id": row.id})
    return row


def hold_active(s: Session, *, case_id: int) -> CaseHold | None:
    """The case's hold in force, or ``None``."""
    return s.scalar(select(CaseHold).where(CaseHold.case_id == case_id, CaseHold.released_at.is_(None)))


def _holder_case(s: Session, principal: Principal, case_id: int) -> Case:
    require(principal, PERM_HOLD)
    if principal.agency_tenant_id is not None:  # an agency holds nothing of the lender's
        raise NotFound("no such object")
    return ensure_visible(s.get(Case, case_id), principal, session=s)


def case_hold_as(c: Container, *, principal: Principal, case_id: int, reason: str, on: dt.date) -> dict[str, Any]:
    """``case_hold`` for a team lead or admin of the case's lender (``hold.manage``)."""
    with c.uow() as s:
        case = _holder_case(s, principal, case_id)
        row = case_hold(s, tenant_id=case.tenant_id, case_id=case.id, reason=reason, on=on, actor=principal.actor,
                        now=c.clock())
        return {"hold_id": row.id, "case_id": case.id}


def case_hold_release_as(c: Container, *, principal: Principal, case_id: int) -> dict[str, Any]:
    """``case_hold_release`` for a team lead or admin of the case's lender (``hold.manage``)."""
    with c.uow() as s:
        case = _holder_case(s, principal, case_id)
        row = case_hold_release(s, tenant_id=case.tenant_id, case_id=case.id, actor=principal.actor, now=c.clock())
        return {"hold_id": row.id, "case_id": case.id, "released": True}
