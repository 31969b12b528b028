"""Stored facts -> the collection event the guard judges (DESIGN §5, stored-fact mode).

Everything the guard reads comes from the database, never from the caller: the borrower's
jurisdiction (which pack applies) and time zone (the event time is the recipient's wall clock),
the history of stored attempts and their outcomes, the consent ledger, the contact's flags, the
loan's debt facts and, for an agency, its contract and the borrower's notice of the outsourcing.
The caller only says what it plans: channel, recipient, purpose, message, conduct, visitors.

Counting (``_attempt_stats``); *today* is the recipient-local date of the contact, D:
- an attempt counts from the moment it is reserved (outcome still unknown) — a cap must hold for
  attempts in flight, and a reservation that is never dialled errs on the safe side;
- *connected*: outcome ``connected``, ``ptp``, ``refused``, ``dispute`` or ``no_contact_request``
  (someone answered); *failed*: ``no_answer``, ``busy``, ``invalid_number``;
- per debtor (``connected_calls_today``): calls to this person on D, by the lender and every
  agency together (attempts are stored against the borrower whichever tenant made them);
- per number (``attempts_today_same_method``): attempts on D on this channel to this number;
- per person and debt (``calls_7d``, ``last_conversation_at``): calls about this loan on D-6…D,
  and the last day such a call connected;
- ``borrower_unreachable`` (失联) is derived, never asserted: the borrower is deceased or lacks
  capacity (``borrower.status``); or the last recorded call to the borrower's number (the only one
  on record) came back ``invalid_number``; or the borrower was tried on each of the three days
  before D and no attempt to them connected on those days or on D. "3 failed dials" alone is not
  a trigger (CATALOGUE appendix).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Date, and_, bindparam, case, distinct, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from collectguard.adapters.db.models import Borrower, Case, Consent, Contact, ContactAttempt, Loan
from collectguard.adapters.db.models_attempts import AttemptMeta, BorrowerFlag
from collectguard.adapters.db.models_ledger import AgencyContract, CaseAssignment
from collectguard.domain.event import CollectionEvent, ConsentFacts, History, bad_input_from
from collectguard.errors import Conflict, NotFound

__all__ = [
    "CONNECTED",
    "DEBTOR_ROLES",
    "FAILED",
    "Subject",
    "borrower_lock",
    "consent_facts",
    "local_time",
    "recipient_key_for",
    "stored_event",
]

CONNECTED = ("connected", "ptp", "refused", "dispute", "no_contact_request")
FAILED = ("no_answer", "busy", "invalid_number")
DEBTOR_ROLES = frozenset({"borrower", "guarantor"})
_EVENT_CONSENTS = ("contact_list", "third_party_contact", "agreed_hours")  # kinds the event can carry
_PHONE_CHANNELS = frozenset({"call", "sms", "im", "app_push"})
A = ContactAttempt


@dataclass(frozen=True)
class Subject:
    """Who is contacted about what: loaded, visibility-checked rows of one planned contact."""

    borrower: Borrower
    loan: Loan
    case: Case | None
    contact: Contact | None  # None: the borrower, or a role without a stored person (public)
    role: str
    agency_tenant_id: int | None  # set when an agency acts


def _utc(t: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def _date(v: Any) -> dt.date | None:
    return dt.date.fromisoformat(v) if isinstance(v, str) else v  # SQLite: an aggregate's date is text


def borrower_lock(s: Session, borrower_id: int) -> Borrower:
    """Serialise writers about one borrower until the transaction ends, and reload what was read.

    PostgreSQL: a row lock on the borrower (FOR NO KEY UPDATE, which leaves inserts referencing the
    row unblocked); statements after it see every transaction committed before it was granted.
    SQLite: the unit of work's BEGIN IMMEDIATE already holds the database's single write lock.
    Objects loaded before the lock are expired so that nothing stale is judged.
    """
    s.expire_all()
    b = s.scalar(
        select(Borrower)
        .where(Borrower.id == borrower_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if b is None:
        raise NotFound("no such borrower")
    return b


def local_time(borrower: Borrower, when: dt.datetime) -> dt.datetime:
    """``when`` as the wall-clock time in the borrower's IANA zone (aware, with its offset)."""
    try:
        zone = ZoneInfo(borrower.timezone)
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise Conflict(f"the borrower's stored time zone {borrower.timezone!r} is unknown") from exc
    return _utc(when).astimezone(zone)


def recipient_key_for(channel: str, borrower: Borrower, contact: Contact | None, role: str) -> str:
    """The number (keyed hash) or address an attempt reaches: what the per-number cap counts by."""
    if role == "public":
        return f"public:b{borrower.id}"
    if channel in _PHONE_CHANNELS:
        return contact.phone_hmac if contact is not None else borrower.phone_hmac
    who = f"c{contact.id}" if contact is not None else f"b{borrower.id}"
    return f"{channel}:{who}"  # no address is stored for e-mail, visits or letters: one per person


@cache
def _consents_statement() -> Any:
    # Columns, not entities: the judgement reads five of them, and loading ORM objects (identity map,
    # every column) cost more CPU than the statement on the attempt path.
    C = Consent
    return (
        select(C.kind, C.form, C.given_at, C.withdrawn_at, C.detail)
        .where(C.borrower_id == bindparam("bid"))
        .order_by(C.given_at, C.id)
    )


def consent_facts(s: Session, *, borrower_id: int, now: dt.datetime) -> tuple[ConsentFacts, set[str]]:
    """The borrower's consents as they stand at ``now``, and every kind currently given.

    A kind is withdrawn when a row of it was withdrawn and none was given again since (a new row).
    """
    rows = list(s.execute(_consents_statement(), {"bid": borrower_id}))
    active = [r for r in rows if r.withdrawn_at is None and _utc(r.given_at) <= _utc(now)]

    def form(kind: str) -> str:
        forms = {r.form for r in active if r.kind == kind}
        return "separate" if "separate" in forms else "bundled" if "bundled" in forms else "none"

    kinds = {r.kind for r in active}
    withdrawn = tuple(
        k for k in _EVENT_CONSENTS if k not in kinds and any(r.kind == k and r.withdrawn_at is not None for r in rows)
    )
    hours = [r.detail.get("hours") for r in active if r.kind == "agreed_hours" and isinstance(r.detail, dict)]
    try:
        facts = ConsentFacts.model_validate(
            {
                "contact_list": form("contact_list"),
                "third_party_contact": form("third_party_contact"),
                "agreed_hours": hours[-1] if hours else None,
                "withdrawn": withdrawn,
            }
        )
    except ValidationError as exc:  # written through consent_give, so only a hand-edited row gets here
        msg = exc.errors()[0]["msg"]
        raise Conflict(f"a stored consent of borrower {borrower_id} is malformed: {msg}") from exc
    return facts, kinds


def _n(cond: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


@cache
def _stats_statement(with_contact: bool, stop_case: bool, stop_number: bool) -> Any:
    """The one statement of ``_attempt_stats``, built once: values are bound, never baked in
    (building the expression tree per request cost more CPU than the database's work).

    Besides the counters it carries, as subqueries, what used to take three more statements: the
    flags in force, the failed-call streak and the scope of an active stop (``_hot_columns``).
    ``stop_case``/``stop_number``: which stops can apply (``stops.stop_active``).
    """
    day, channel, key = bindparam("day", type_=Date), bindparam("channel"), bindparam("key")
    bid, loan_id, phone = bindparam("bid"), bindparam("loan_id"), bindparam("phone")
    week_from, since3_from = bindparam("week_from", type_=Date), bindparam("since3_from", type_=Date)
    to_borrower = and_(A.contact_id.is_(None), A.recipient_role == "borrower")
    person = A.contact_id == bindparam("cid") if with_contact else to_borrower
    call, today, connected = A.channel == "call", A.local_date == day, A.outcome.in_(CONNECTED)
    debt_calls = and_(person, A.loan_id == loan_id, call)
    week = and_(A.local_date >= week_from, A.local_date <= day)
    since3 = A.local_date >= since3_from
    # Correlated on their own aliases (not on the aggregate's rows): each is one value per statement.
    num, noticed, meta = aliased(ContactAttempt), aliased(ContactAttempt), AttemptMeta
    last_to_number = (
        select(num.outcome)
        .where(num.borrower_id == bid, num.outcome.is_not(None), num.recipient_key == phone, num.channel == "call")
        .order_by(num.planned_at.desc(), num.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    notice = exists().where(
        meta.attempt_id == noticed.id, noticed.loan_id == loan_id, meta.purpose == "validation_notice"
    )
    stats = select(
        _n(and_(person, today, call, connected)),
        _n(and_(today, A.channel == channel, A.recipient_key == key)),
        _n(and_(person, today, A.channel.in_(("sms", "im")))),
        _n(and_(debt_calls, week)),
        func.count(distinct(case((and_(to_borrower, since3, A.local_date < day), A.local_date)))),
        _n(and_(to_borrower, since3, A.local_date <= day, connected)),
        func.max(case((and_(debt_calls, connected, A.local_date <= day), A.local_date))),
        _n(A.contact_id == bindparam("cid")) if with_contact else literal(0),
        func.min(case((and_(A.loan_id == loan_id, to_borrower), A.local_date))),
        last_to_number,
        notice,
    ).where(A.borrower_id == bid)
    return stats.add_columns(*_hot_columns(stop_case, stop_number))


def _hot_columns(stop_case: bool, stop_number: bool) -> tuple[Any, Any, Any]:
    """Flags, failed streak and stop scope as scalar subqueries of the counters' aggregate.

    One statement instead of four on the attempt path: each statement costs a round trip and, more,
    the driver's and SQLAlchemy's CPU per execution. Portable SQL (SQLite 3.25+ for the window).
    """
    from collectguard.services.stops import stop_statement  # stops imports this module

    bid: Any = bindparam("bid")
    flags = (
        select(func.aggregate_strings(BorrowerFlag.kind, ","))
        .where(BorrowerFlag.borrower_id == bid, BorrowerFlag.cleared_at.is_(None))
        .scalar_subquery()
    )
    # The failed streak: the newest outcomes to the borrower (at most 200) before the first one
    # that is not a failure. ``answered`` counts non-failures from the newest
    # down; the streak is the rows where it is still 0. The window runs before the LIMIT, over the
    # borrower's recorded outcomes only.
    r = aliased(ContactAttempt)
    newest_first = (r.planned_at.desc(), r.id.desc())
    answered = func.sum(case((r.outcome.in_(FAILED), 0), else_=1)).over(order_by=newest_first)
    recent = (
        select(answered.label("answered"))
        .where(r.borrower_id == bid, r.outcome.is_not(None), r.contact_id.is_(None), r.recipient_role == "borrower")
        .order_by(*newest_first)
        .limit(200)
        .subquery()
    )
    streak = select(func.count()).select_from(recent).where(recent.c.answered == 0).scalar_subquery()
    stop: Any = literal(None)
    if stop_case or stop_number:
        stop = stop_statement(stop_case, stop_number, scope_only=True).scalar_subquery()
    return flags, streak, stop


def _attempt_stats(
    s: Session, *, subject: Subject, channel: str, key: str, day: dt.date
) -> tuple[History, dict[str, Any]]:
    """History counters and the debt's communication facts in one statement over the attempts,
    with the flags in force and the scope of an active stop (in ``comms`` as ``_flags`` and
    ``_stop``; see ``_hot_columns``)."""
    b, loan, contact = subject.borrower, subject.loan, subject.contact
    stats = _stats_statement(contact is not None, subject.case is not None, bool(key))
    params: dict[str, Any] = {
        "day": day,
        "channel": channel,
        "key": key,
        "bid": b.id,
        "loan_id": loan.id,
        "phone": b.phone_hmac,
        "week_from": day - dt.timedelta(days=6),
        "since3_from": day - dt.timedelta(days=3),
    }
    if contact is not None:
        params["cid"] = contact.id
    params.update(case_id=subject.case.id if subject.case else None, borrower_id=b.id, contact_key=key)
    row = tuple(s.execute(stats, params).one())
    flags, streak, stop = row[11:]
    (
        connected_today,
        same_number,
        messages,
        calls_7d,
        tried_days,
        answered,
        last_conv,
        prior,
        first,
        last_number_outcome,
        notice_sent,
    ) = row[:11]
    failed = int(streak)
    unreachable = (
        b.status in ("deceased", "incapacitated")
        or last_number_outcome == "invalid_number"
        or (tried_days >= 3 and answered == 0)
    )
    history = History(
        connected_calls_today=int(connected_today),
        attempts_today_same_method=int(same_number),
        consecutive_failed_attempts=failed,
        borrower_unreachable=unreachable,
        calls_7d=int(calls_7d),
        last_conversation_at=_date(last_conv),
        prior_contacts_with_recipient=int(prior),
        messages_today=int(messages),
    )
    comms: dict[str, Any] = {"validation_notice_sent": bool(notice_sent), "first_communication_at": _date(first)}
    comms.update(_flags=set(flags.split(",")) if flags else set(), _stop=stop)
    return history, comms


def _collector(
    s: Session, subject: Subject, *, day: dt.date, given: set[str], visitors: int | None, opt_out: bool
) -> dict[str, Any]:
    agency = subject.agency_tenant_id
    out: dict[str, Any] = {
        "kind": "agency" if agency is not None else "lender",
        "visitors": visitors,
        "opt_out_included": opt_out,
    }
    if agency is not None:
        contract = exists().where(
            AgencyContract.lender_tenant_id == subject.loan.tenant_id,
            AgencyContract.agency_tenant_id == agency,
            AgencyContract.active.is_(True),
            AgencyContract.processing_contract.is_(True),
        )
        out["processing_contract"] = bool(s.scalar(select(contract)))
        # A notice in the consent ledger, or the day the lender recorded telling the borrower (ledger API).
        told = exists().where(
            CaseAssignment.case_id == (subject.case.id if subject.case else -1),
            CaseAssignment.agency_tenant_id == agency,
            CaseAssignment.ended_on.is_(None),
            CaseAssignment.borrower_notified_on <= day,
        )
        out["outsourcing_notified"] = "outsourcing_notice" in given or bool(s.scalar(select(told)))
    return out


def _debt(subject: Subject, comms: dict[str, Any]) -> dict[str, Any]:
    loan, case_ = subject.loan, subject.case
    disputed = case_ is not None and case_.paused_reason == "dispute"
    return {
        "days_past_due": loan.dpd,
        "annual_rate": loan.apr if loan.apr is not None else loan.annual_rate,
        "lender_type": loan.lender_type,
        "lpr_at_signing": loan.lpr_at_signing,
        "status": "disputed" if disputed else loan.debt_status,
        **comms,
    }


def stored_event(
    s: Session,
    *,
    subject: Subject,
    channel: str,
    when: dt.datetime,
    now: dt.datetime,
    purpose: str = "collect",
    message: str | None = None,
    conduct: Sequence[str] = (),
    discloses: Sequence[str] = (),
    visitors: int | None = None,
    opt_out_included: bool = False,
) -> CollectionEvent:
    """The event for a planned contact, its facts read from the store (call under ``borrower_lock``)."""
    b, contact, role = subject.borrower, subject.contact, subject.role
    local = local_time(b, when)
    consents, given = consent_facts(s, borrower_id=b.id, now=now)
    key = recipient_key_for(channel, b, contact, role)
    # One statement: the counters, the flags in force, the failed streak and an active stop.
    history, comms = _attempt_stats(s, subject=subject, channel=channel, key=key, day=local.date())
    flags, stop = comms.pop("_flags"), comms.pop("_stop")
    recipient = {
        "role": role,
        "source": contact.source if contact is not None else None,
        "no_contact_requested": contact.no_contact_requested
        if contact is not None
        else role == "borrower" and "no_contact_request" in flags,
        # US 1692c(a)(2), 1692b(6): once represented, only the attorney may be contacted, whoever answers.
        "represented_by_attorney": "represented_by_attorney" in flags,
        "employer_prohibits": role == "borrower" and "employer_prohibits" in flags,
    }
    try:
        event = CollectionEvent.model_validate(
            {
                "jurisdiction": b.jurisdiction,
                "channel": channel,
                "time": local,
                "purpose": purpose,
                "recipient": recipient,
                "message": message,
                "discloses": tuple(discloses),
                "conduct": tuple(conduct),
                "consent": consents,
                "history": history,
                "collector": _collector(
                    s, subject, day=local.date(), given=given, visitors=visitors, opt_out=opt_out_included
                ),
                "debt": _debt(subject, comms),
            }
        )
    except ValidationError as exc:
        raise bad_input_from(exc) from None
    # An active stop (停催) for the case or this number turns into facts the guard denies on.
    from collectguard.services.stops import stop_facts

    return stop_facts(event, stop)
