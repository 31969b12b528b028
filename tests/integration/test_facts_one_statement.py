"""The attempt path's one fact statement reads what the separate statements read.

``facts.stored_event`` reads the flags in force, the failed-call streak and an active stop as
subqueries of the counters' aggregate (``facts._hot_columns``) instead of three more statements.
The separate statements are the reference, written here: the flags in force, the newest 200
outcomes to the borrower scanned in Python, and ``stops.stop_active``. Random
states — attempts to the borrower and to contacts with random outcomes (some still unknown), flags
set and cleared, stops by case and by number, lifted, starting later, ended — must give the same
facts on both backends, and the whole event must equal the one the stop applied the old way gives.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import select
from test_attempts_seed import NOW, seed

from collectguard.adapters.db.models import Borrower, Case, Contact, ContactAttempt, Loan
from collectguard.adapters.db.models_attempts import BORROWER_FLAG_KINDS, BorrowerFlag
from collectguard.adapters.db.models_ops import CollectionStop
from collectguard.services import facts
from collectguard.services.facts import CONNECTED, FAILED, Subject, recipient_key_for, stored_event
from collectguard.services.stops import stop_active, stop_apply, stop_facts

BJ = dt.timezone(dt.timedelta(hours=8))
OUTCOMES = (None, None, *FAILED, *FAILED, *CONNECTED)
DAY0 = dt.date(2026, 4, 7)


def _flags(s, borrower_id: int) -> set[str]:
    """The flags in force, in a statement of their own (the reference)."""
    q = select(BorrowerFlag.kind).where(BorrowerFlag.borrower_id == borrower_id, BorrowerFlag.cleared_at.is_(None))
    return set(s.scalars(q))


def _failed_streak(s, borrower_id: int) -> int:
    """Failed outcomes to the borrower, newest first, before the first other one (at most 200)."""
    A = ContactAttempt
    q = (
        select(A.outcome)
        .where(A.borrower_id == borrower_id, A.outcome.is_not(None), A.contact_id.is_(None))
        .where(A.recipient_role == "borrower")
        .order_by(A.planned_at.desc(), A.id.desc())
        .limit(200)
    )
    outcomes = list(s.scalars(q))
    return next((i for i, o in enumerate(outcomes) if o not in FAILED), len(outcomes))


class _Undo(Exception):
    """Rolls a random state back (the unit of work is a savepoint of the test's transaction)."""


def _state(s, rng: random.Random, w: dict, b: Borrower, contacts: list[Contact]) -> None:
    for i in range(rng.randint(0, 30)):
        contact = rng.choice([None, None, *contacts])
        role = contact.relation if contact is not None else rng.choice(["borrower", "borrower", "public"])
        channel = rng.choice(["call", "call", "sms"])
        day = DAY0 - dt.timedelta(days=rng.randint(0, 5))
        planned = dt.datetime.combine(day, dt.time(9 + rng.randint(0, 10), rng.randint(0, 59)), BJ)
        s.add(
            ContactAttempt(
                tenant_id=b.tenant_id, case_id=w["case"], loan_id=w["loan"], borrower_id=b.id,
                contact_id=contact.id if contact is not None else None, channel=channel, recipient_role=role,
                recipient_key=recipient_key_for(channel, b, contact, role), actor="t", collector_kind="lender",
                planned_at=planned.astimezone(dt.UTC), local_date=day, outcome=rng.choice(OUTCOMES),
            )
        )  # fmt: skip
    for kind in BORROWER_FLAG_KINDS:
        for _ in range(rng.choice([0, 0, 1, 2])):
            cleared = rng.random() < 0.5
            s.add(BorrowerFlag(tenant_id=b.tenant_id, borrower_id=b.id, kind=kind, set_at=NOW,
                               cleared_at=NOW if cleared else None))  # fmt: skip
    for _ in range(rng.choice([0, 0, 1, 2])):
        contact = rng.choice([None, *contacts])
        scope = rng.choice(["case", "number"])
        starts = DAY0 + dt.timedelta(days=rng.randint(-3, 2))
        ends = rng.choice([None, starts + dt.timedelta(days=rng.randint(0, 4))])
        key = (contact.phone_hmac if contact is not None else b.phone_hmac) if scope == "number" else None
        s.add(
            CollectionStop(
                tenant_id=b.tenant_id, case_id=w["case"], borrower_id=b.id, scope=scope, contact_key=key,
                contact_id=contact.id if contact is not None and scope == "number" else None, reason="complaint",
                starts_on=starts, ends_on=ends, created_by="t", created_at=NOW,
                lifted_at=NOW if rng.random() < 0.3 else None,
            )
        )  # fmt: skip
    s.flush()


@pytest.mark.parametrize("seed_no", range(40))
def test_one_statement_reads_what_the_separate_statements_read(container, seed_no) -> None:
    rng = random.Random(seed_no)
    w = seed(container)
    with pytest.raises(_Undo), container.uow() as s:
        b = s.get(Borrower, w["borrower"])
        contacts = [s.get(Contact, w[k]) for k in ("emergency", "guarantor", "listed")]
        _state(s, rng, w, b, contacts)
        case = s.get(Case, w["case"])
        loan = s.get(Loan, w["loan"])
        for _ in range(6):
            contact = rng.choice([None, None, *contacts])
            role = contact.relation if contact is not None else rng.choice(["borrower", "public"])
            channel = rng.choice(["call", "sms", "email", "visit"])
            subject = Subject(borrower=b, loan=loan, case=rng.choice([case, None]), contact=contact, role=role,
                              agency_tenant_id=None)  # fmt: skip
            when = dt.datetime.combine(DAY0 + dt.timedelta(days=rng.randint(0, 2)), dt.time(10), BJ)
            key = recipient_key_for(channel, b, contact, role)
            kw = {"subject": subject, "channel": channel, "key": key, "day": when.date()}
            history, comms = facts._attempt_stats(s, **kw)
            assert comms.pop("_flags") == _flags(s, b.id)
            assert history.consecutive_failed_attempts == _failed_streak(s, b.id)
            old_stop = stop_active(s, case_id=case.id if subject.case else None, contact_key=key, at=when.date(),
                                   borrower_id=b.id)  # fmt: skip
            assert comms.pop("_stop") == (old_stop.scope if old_stop is not None else None)
            # The whole event: the stop applied from the one statement, or from its own statement.
            event = stored_event(s, subject=subject, channel=channel, when=when, now=NOW)
            unstopped = event if old_stop is None else None
            if unstopped is not None:
                assert stop_apply(s, event, case_id=case.id if subject.case else None, borrower_id=b.id,
                                  contact_key=key) == event  # fmt: skip
            else:
                assert stop_facts(event, old_stop.scope) == event  # a stop's facts, applied twice, are the same
        raise _Undo
