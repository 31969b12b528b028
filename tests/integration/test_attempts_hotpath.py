"""The attempt hot path (Core writes, one-statement lock) stores exactly what the ORM path stored.

The ORM path of session 2 is kept below as the reference (``_orm_request``). A random sequence of
attempts — borrower, contacts, a contact-list entry the collector may not see, calls, SMS, e-mail,
visits, validation notices, an agency, a loan id instead of a case id, and recorded outcomes in
between so that the per-number and connected-call caps bind — runs once through each path from the
same starting state; the answers (body or error) and every row written (decisions, attempts, meta,
audit records with their chain hashes, outbox messages) must be equal. Both backends.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import select, text
from test_attempts_seed import NOW, at, seed

from collectguard.adapters.db.models import AuditRecord, Case, Contact, ContactAttempt, Decision, Loan
from collectguard.adapters.db.models_attempts import AttemptMeta
from collectguard.adapters.db.models_ledger import AgencyContract
from collectguard.adapters.db.models_outbox import OutboxMessage
from collectguard.errors import CollectguardError, Denied
from collectguard.rules import Guard
from collectguard.services import attempts as hot
from collectguard.services.attempts import contact_attempt_outcome
from collectguard.services.audit import audit_append
from collectguard.services.authz import ensure_visible, require, scope_cases
from collectguard.services.facts import Subject, borrower_lock, recipient_key_for, stored_event
from collectguard.services.guard import decision_record
from collectguard.services.outbox import outbox_enqueue_attempt

BJ = dt.timezone(dt.timedelta(hours=8))
SEQUENCES = {"sqlite": 0, "postgres": 0}


# ---- the reference: the ORM path as it was (session 2) ----------------------------------------------


def _orm_subject(s, p, *, case_id, loan_id, contact_id, role) -> Subject:
    owner = (
        select(Case.borrower_id).where(Case.id == case_id)
        if case_id is not None
        else select(Loan.borrower_id).where(Loan.id == loan_id)
    )
    borrower_id = s.scalar(owner)
    if borrower_id is None:
        raise hot.NotFound("no such object")
    locked = borrower_lock(s, borrower_id)
    if case_id is not None:
        row = s.execute(select(Case, Loan).join(Loan, Loan.id == Case.loan_id).where(Case.id == case_id)).first()
        case = ensure_visible(row[0] if row else None, p, session=s)
        loan = row[1] if row else None
    else:
        loan = ensure_visible(s.get(Loan, loan_id), p, session=s)
        case = s.scalar(scope_cases(select(Case).where(Case.loan_id == loan.id, Case.status == "open"), p))
    borrower = locked if loan is not None and loan.borrower_id == locked.id else None
    if loan is None or borrower is None:
        raise hot.NotFound("no such object")
    contact = None
    if contact_id is not None:
        contact = s.get(Contact, contact_id)
        if contact is None or contact.borrower_id != borrower.id:
            raise hot.NotFound("no such contact")
        contact = ensure_visible(contact, p, session=s)
        role = contact.relation
    elif role not in hot.ROLE_ONLY:
        raise hot.BadInput(
            f"a {role} is named by its stored contact: give recipient.contact_id", field="recipient.role"
        )
    return Subject(
        borrower=borrower, loan=loan, case=case, contact=contact, role=role, agency_tenant_id=p.agency_tenant_id
    )


def _orm_reserve(s, subject, event, decision_id, p, now) -> ContactAttempt:
    b, contact, role = subject.borrower, subject.contact, subject.role
    attempt = ContactAttempt(
        tenant_id=subject.loan.tenant_id,
        case_id=subject.case.id if subject.case else None,
        loan_id=subject.loan.id,
        borrower_id=b.id,
        contact_id=contact.id if contact else None,
        channel=event.channel,
        recipient_role=role,
        recipient_key=recipient_key_for(event.channel, b, contact, role),
        actor=p.actor[:120],
        collector_kind=event.collector.kind,
        planned_at=event.time.astimezone(dt.UTC),
        local_date=event.time.date(),
        message=event.message,
        decision_id=decision_id,
    )
    s.add(attempt)
    s.flush()
    s.add(AttemptMeta(attempt_id=attempt.id, purpose=event.purpose, agency_tenant_id=subject.agency_tenant_id))
    payload = {
        "borrower_id": b.id,
        "attempt_id": attempt.id,
        "decision_id": decision_id,
        "case_id": attempt.case_id,
        "loan_id": attempt.loan_id,
        "contact_id": attempt.contact_id,
        "channel": attempt.channel,
        "role": role,
        "purpose": event.purpose,
        "local_time": event.time.isoformat(),
        "agency_tenant_id": subject.agency_tenant_id,
    }
    audit_append(
        s,
        tenant_id=attempt.tenant_id,
        actor=p.actor,
        action="contact_attempt.reserve",
        subject=f"contact_attempt:{attempt.id}",
        payload=payload,
        now=now,
        shard_key=str(b.id),
    )
    outbox_enqueue_attempt(s, attempt=attempt, now=now)
    return attempt


def _orm_request(
    c,
    *,
    principal,
    channel,
    case_id=None,
    loan_id=None,
    contact_id=None,
    role=None,
    time=None,
    purpose="collect",
    message=None,
) -> dict[str, Any]:
    require(principal, "attempt.create")
    now = c.clock()
    when = hot._when(time, now)
    with c.uow() as s:
        subject = _orm_subject(s, principal, case_id=case_id, loan_id=loan_id, contact_id=contact_id, role=role)
        hot._check_case(subject.case, purpose)
        event = stored_event(s, subject=subject, channel=channel, when=when, now=now, purpose=purpose, message=message)
        decision = Guard.default().check(event)
        row = decision_record(
            s,
            c=c,
            event=event,
            decision=decision,
            tenant_id=subject.loan.tenant_id,
            borrower_id=subject.borrower.id,
            actor=principal.actor,
            action="contact_attempt.check",
        )
        out: dict[str, Any] = {"decision_id": row.id, "decision": decision.model_dump(mode="json")}
        if decision.verdict == "allow":
            out = {"attempt_id": _orm_reserve(s, subject, event, row.id, principal, now).id, **out}
    if "attempt_id" not in out:
        rules = ", ".join(v["rule"] for v in out["decision"]["violations"]) or "fail closed"
        raise Denied(
            f"the guard denied this contact: {rules}", decision=out["decision"], decision_id=out["decision_id"]
        )
    return out


# ---- the random sequence --------------------------------------------------------------------------


def _plan(rng: random.Random, w: dict[str, Any], n: int) -> list[tuple[str, dict[str, Any]]]:
    steps: list[tuple[str, dict[str, Any]]] = []
    for _ in range(n):
        if steps and rng.random() < 0.25:
            steps.append(
                (
                    "outcome",
                    {"result": rng.choice(["connected", "no_answer", "busy", "refused", "no_answer", "no_answer"])},
                )
            )
            continue
        who = rng.choice(["collector"] * 4 + ["agent", "outsider"])
        kw: dict[str, Any] = {"channel": rng.choice(["call"] * 5 + ["sms", "sms", "email", "visit"])}
        kw["case_id" if rng.random() < 0.85 else "loan_id"] = w["case"] if rng.random() < 0.9 else w["case2"]
        if "loan_id" in kw:
            kw["loan_id"] = w["loan"] if kw["loan_id"] == w["case"] else w["loan2"]
        target = rng.choice(["borrower"] * 5 + ["emergency", "guarantor", "listed", "public"])
        if target in ("borrower", "public"):
            kw["role"] = target
        else:
            kw["contact_id"] = w[target]
        kw["time"] = dt.datetime(2026, 4, 7 + rng.choice([0, 0, 0, 1]), rng.choice([10, 11, 15, 19, 22]), tzinfo=BJ)
        kw["purpose"] = rng.choice(["collect"] * 6 + ["validation_notice"])
        kw["message"] = rng.choice([None, "您好，请按时还款。"])
        steps.append((who, kw))
    # A burst of dials to the borrower's number, so that the per-number cap binds in every sequence.
    burst = {
        "channel": "call",
        "case_id": w["case"],
        "role": "borrower",
        "purpose": "collect",
        "time": dt.datetime(2026, 4, 7, 16, tzinfo=BJ),
    }
    return steps[: n // 2] + [("collector", dict(burst)) for _ in range(8)] + steps[n // 2 :]


def _run(c, w, steps, request) -> list[Any]:
    answers: list[Any] = []
    last = None
    for who, kw in steps:
        try:
            if who == "outcome":
                if last is None:
                    answers.append("no attempt yet")
                    continue
                answers.append(contact_attempt_outcome(c, principal=w["collector"], attempt_id=last, **kw))
                last = None
                continue
            out = request(c, principal=w[who], **kw)
            last = out["attempt_id"]
            answers.append(out)
        except CollectguardError as exc:
            answers.append((type(exc).__name__, str(exc), getattr(exc, "detail", None)))
    return answers


def _rows(c) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "decision": Decision,
        "contact_attempt": ContactAttempt,
        "attempt_meta": AttemptMeta,
        "audit_record": AuditRecord,
        "outbox": OutboxMessage,
    }
    out = {}
    with c.uow(write=False) as s:
        for name, model in tables.items():
            cols = [col for col in model.__table__.c if col.name != "message_id"]  # outbox: a random uuid
            key = model.__table__.primary_key.columns.values()[0]
            out[name] = [tuple(r) for r in s.execute(select(*cols).order_by(key))]
    return out


def _sequences(c, tables) -> dict[str, tuple[int, bool]]:
    with c.uow(write=False) as s:
        return {t: tuple(s.execute(text(f"SELECT last_value, is_called FROM {_seq(s, t)}")).one()) for t in tables}


def _seq(s, table: str) -> str:
    return str(s.scalar(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")))


def _reset_sequences(c, before: dict[str, tuple[int, bool]]) -> None:
    # PostgreSQL sequences do not roll back: put them back so that both runs get the same ids.
    with c.uow() as s:
        for table, (last, called) in before.items():
            s.execute(text("SELECT setval(:seq, :v, :called)"), {"seq": _seq(s, table), "v": last, "called": called})


@pytest.mark.parametrize("seed_", [1, 2, 3])
def test_hot_path_writes_what_the_orm_path_wrote(container, seed_):
    w = seed(container)
    c = at(container, NOW)
    with c.uow() as s:  # an agency holding the case, with a contract: its attempts are judged too
        s.add(
            AgencyContract(
                lender_tenant_id=w["lender"],
                agency_tenant_id=w["agency"],
                capacity=10,
                processing_contract=True,
                active=True,
                created_at=NOW,
            )
        )
        s.get(Case, w["case"]).agency_tenant_id = w["agency"]
    steps = _plan(random.Random(seed_), w, 80)
    pg = container.settings.database_url.startswith("postgres")
    tables = ("decision", "contact_attempt", "audit_record", "outbox")
    before = _sequences(c, tables) if pg else {}
    results = []
    for request in (_orm_request, hot.contact_attempt_request):
        savepoint = container.connection.begin_nested()
        try:
            results.append((_run(c, w, steps, request), _rows(c)))
        finally:
            savepoint.rollback()
        if pg:
            _reset_sequences(c, before)
    (old_answers, old_rows), (new_answers, new_rows) = results
    assert new_answers == old_answers
    assert new_rows == old_rows
    kinds = {type(a).__name__ if not isinstance(a, tuple) else a[0] for a in old_answers}
    assert {"dict", "Denied", "NotFound"} <= kinds  # the sequence allowed, denied and refused
    denials = " ".join(a[1] for a in old_answers if isinstance(a, tuple) and a[0] == "Denied")
    assert "_cap" in denials  # a cap bound (connected calls, or dials to one number)
    assert len(old_rows["audit_record"]) > len(old_rows["decision"])  # reserve records too


def test_a_failure_after_the_writes_leaves_nothing_and_allows_nothing(container, monkeypatch):
    """Fail closed: the database failing at the last write of an allowed SMS rolls back the decision,
    the attempt, its meta row and both audit records; the caller gets the error, never an allow."""
    from sqlalchemy.exc import OperationalError

    from collectguard.services import attempts_record

    w = seed(container)

    def broken(*_a, **_k):
        raise OperationalError("INSERT INTO outbox", {}, Exception("connection lost"))

    monkeypatch.setattr(attempts_record, "outbox_enqueue_attempt", broken)
    before = _rows(container)
    with pytest.raises(OperationalError):
        hot.contact_attempt_request(
            container,
            principal=w["collector"],
            channel="sms",
            case_id=w["case"],
            role="borrower",
            time=dt.datetime(2026, 4, 7, 11, tzinfo=BJ),
        )
    assert _rows(container) == before
    monkeypatch.undo()  # and the next attempt is judged and chained as if nothing had happened
    out = hot.contact_attempt_request(
        container,
        principal=w["collector"],
        channel="sms",
        case_id=w["case"],
        role="borrower",
        time=dt.datetime(2026, 4, 7, 11, tzinfo=BJ),
    )
    with container.uow(write=False) as s:
        records = s.execute(
            select(AuditRecord.seq, AuditRecord.prev_hash, AuditRecord.hash).order_by(AuditRecord.id)
        ).all()
    assert out["attempt_id"] and [r.seq for r in records][-2:] == [records[-2].seq, records[-2].seq + 1]
    assert records[-1].prev_hash == records[-2].hash
