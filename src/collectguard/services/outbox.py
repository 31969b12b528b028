"""The transactional outbox: channel sends leave the database only after the attempt committed.

    outbox_enqueue(session, kind="sms", payload={...}, now=now)     # in the attempt's transaction
    outbox_relay_once(c, publisher=broker)                          # the relay job, in a loop
    outbox_consume(c, consumer="email", delivery=d, deliver=fn)     # a consumer, per message

Why an outbox: publishing to a broker inside the request would either announce attempts that
then roll back, or lose messages when the process dies between commit and publish. A row written
in the same transaction as the attempt exists exactly when the attempt does (docs/scaling.md).

Delivery is at least once, effects exactly once per consumer:
* ``outbox_claim`` leases pending rows (``available_at`` moves forward by ``LEASE``; on PostgreSQL
  ``FOR UPDATE SKIP LOCKED`` lets several relays share the table), and commits — no lock is held
  while the broker is talked to. A relay that dies mid-batch lets its rows come back after the lease.
* a row is marked sent only after the broker confirmed it; an unconfirmed row is released with a
  backoff. A relay that dies between confirm and mark publishes the row again: a duplicate.
* ``outbox_consume`` records (consumer, message id) in ``outbox_consumed`` in the transaction that
  delivers; a redelivered or duplicated message finds the row and is acknowledged, not delivered.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collectguard.adapters.broker import Delivery, OutMessage, Publisher
from collectguard.adapters.crypto import PiiCipher
from collectguard.adapters.db.models_outbox import OUTBOX_KINDS, OutboxConsumed, OutboxMessage
from collectguard.adapters.logging import get_logger
from collectguard.adapters.mailer import Mailer, MailRejected, MailUnavailable
from collectguard.bootstrap import Container
from collectguard.errors import BadInput, CollectguardError

__all__ = [
    "LEASE", "OUTBOX_KINDS", "Deliver", "email_payload", "make_deliverer", "outbox_claim", "outbox_consume",
    "outbox_enqueue", "outbox_enqueue_attempt", "outbox_purge", "outbox_relay_once", "outbox_stats",
]

LEASE = dt.timedelta(seconds=60)
MAX_BACKOFF_S = 300
Deliver = Callable[[Delivery], str]  # returns the result recorded in outbox_consumed
log = get_logger("collectguard.outbox")


def _utc(t: dt.datetime) -> dt.datetime:
    # Stored in UTC: SQLite compares the text form, so every timestamp must be in the same zone.
    if t.tzinfo is None:
        raise BadInput("must be timezone-aware", field="now")
    return t.astimezone(dt.UTC)


def outbox_enqueue(session: Session, *, kind: str, payload: dict[str, Any], now: dt.datetime,
                   tenant_id: int | None = None, subject: str | None = None) -> OutboxMessage:
    """Add a message to the outbox in the caller's transaction (commits or rolls back with it)."""
    if kind not in OUTBOX_KINDS:
        raise BadInput(f"must be one of {', '.join(OUTBOX_KINDS)}", field="kind")
    at = _utc(now)
    row = OutboxMessage(message_id=str(uuid.uuid4()), tenant_id=tenant_id, kind=kind, subject=subject,
                        payload=payload, created_at=at, available_at=at, publish_attempts=0)
    session.add(row)
    session.flush()
    return row


def outbox_enqueue_attempt(session: Session, *, attempt: Any, now: dt.datetime) -> OutboxMessage | None:
    """The send of an allowed attempt on a message channel (SMS, e-mail, IM); None for other channels.

    The payload names the attempt, never the number or address: the sending adapter resolves the
    recipient from the stored (encrypted) contact, so no personal data sits in the broker.
    """
    if attempt.channel not in OUTBOX_KINDS:
        return None
    payload = {"attempt_id": attempt.id, "tenant_id": attempt.tenant_id, "borrower_id": attempt.borrower_id,
               "contact_id": attempt.contact_id, "channel": attempt.channel, "body": attempt.message or ""}
    return outbox_enqueue(session, kind=attempt.channel, payload=payload, now=now, tenant_id=attempt.tenant_id,
                          subject=f"contact_attempt:{attempt.id}")


def email_payload(cipher: PiiCipher, *, to: str, subject: str, body: str, **extra: Any) -> dict[str, Any]:
    """An e-mail payload whose address is encrypted (PII at rest, DESIGN §11): ``to_enc``."""
    return {"to_enc": base64.b64encode(cipher.encrypt(to)).decode("ascii"), "subject": subject, "body": body,
            **extra}


def outbox_claim(c: Container, *, now: dt.datetime, limit: int = 200,
                 lease: dt.timedelta = LEASE) -> list[OutMessage]:
    """Lease up to ``limit`` pending messages, oldest first, and commit the lease."""
    at = _utc(now)
    with c.uow() as s:
        q = (select(OutboxMessage).where(OutboxMessage.sent_at.is_(None), OutboxMessage.available_at <= at)
             .order_by(OutboxMessage.id).limit(limit))
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = list(s.scalars(q))
        for r in rows:
            r.available_at, r.publish_attempts = at + lease, r.publish_attempts + 1
        return [OutMessage(r.message_id, r.kind, dict(r.payload)) for r in rows]


def _finish(c: Container, *, sent: list[str], failed: list[str], error: str | None, now: dt.datetime) -> None:
    at = _utc(now)
    with c.uow() as s:
        if sent:
            s.execute(update(OutboxMessage).where(OutboxMessage.message_id.in_(sent), OutboxMessage.sent_at.is_(None))
                      .values(sent_at=at, last_error=None))
        for r in s.scalars(select(OutboxMessage).where(OutboxMessage.message_id.in_(failed))) if failed else ():
            backoff = min(MAX_BACKOFF_S, 2 ** min(r.publish_attempts, 9))
            r.available_at, r.last_error = at + dt.timedelta(seconds=backoff), (error or "")[:300]


def outbox_relay_once(c: Container, *, publisher: Publisher, limit: int = 200,
                      lease: dt.timedelta = LEASE) -> dict[str, Any]:
    """Claim a batch, publish it message by message (each confirmed), mark the confirmed ones sent.

    Stops at the first failure: that message and the rest of the batch are released with a
    backoff and the error is returned (``error``), so a broker outage costs one attempt per batch.
    """
    batch = outbox_claim(c, now=c.clock(), limit=limit, lease=lease)
    sent: list[str] = []
    error: str | None = None
    try:
        for m in batch:
            publisher.publish(m)
            sent.append(m.message_id)
    except (CollectguardError, OSError) as exc:
        error = getattr(exc, "message", None) or str(exc)
    finally:
        failed = [m.message_id for m in batch[len(sent):]]
        if sent or failed:
            _finish(c, sent=sent, failed=failed, error=error or "interrupted", now=c.clock())
    if error:
        log.warning("outbox_publish_failed", published=len(sent), released=len(failed), error=error[:200])
    return {"claimed": len(batch), "published": len(sent), "released": len(failed), "error": error}


def outbox_consume(c: Container, *, consumer: str, delivery: Delivery, deliver: Deliver) -> str:
    """Deliver one message at most once per ``consumer``: ``delivered``, ``duplicate`` or ``rejected: …``.

    The dedupe row and the delivery share one transaction: if ``deliver`` raises a retryable error
    the row rolls back and the broker redelivers later; if the process dies after committing and
    before acknowledging, the redelivered message is found here and only acknowledged.
    """
    if not delivery.message_id:
        return "rejected: no message id"
    try:
        with c.uow() as s:
            if s.get(OutboxConsumed, (consumer, delivery.message_id)) is not None:
                return "duplicate"
            row = OutboxConsumed(consumer=consumer, message_id=delivery.message_id, kind=delivery.kind,
                                 consumed_at=_utc(c.clock()), result="delivered")
            s.add(row)
            s.flush()  # a concurrent twin now waits on the primary key until we commit or roll back
            row.result = deliver(delivery)[:300]
            return row.result
    except IntegrityError:  # the twin committed first
        return "duplicate"


def make_deliverer(*, mailer: Mailer | None, cipher: PiiCipher,
                   send_text: Callable[[Delivery], None] | None = None) -> Deliver:
    """The channel dispatch: e-mail through ``mailer``; SMS and IM through ``send_text`` (default: log).

    A message that can never be delivered (no address, refused recipient) is recorded as
    ``rejected: …`` and acknowledged; a retryable failure (server down) raises and is redelivered.
    """

    def deliver(d: Delivery) -> str:
        if d.kind == "email":
            enc = d.payload.get("to_enc")
            if not enc:
                return "rejected: no e-mail address"
            if mailer is None:  # a consumer for texts only: leave e-mail for one that has a mailer
                raise MailUnavailable("no mailer configured for e-mail")
            to = cipher.decrypt(base64.b64decode(enc))
            try:
                mailer.send(to=to, subject=str(d.payload.get("subject") or "还款提醒 / Payment reminder"),
                            body=str(d.payload.get("body") or ""), message_id=d.message_id)
            except MailRejected as exc:
                return f"rejected: {exc}"
            return "delivered"
        if send_text is None:
            # No SMS/IM gateway adapter ships yet: the send is logged (ids only) and counted as delivered.
            log.debug("text_send", kind=d.kind, message_id=d.message_id, attempt_id=d.payload.get("attempt_id"))
        else:
            send_text(d)
        return "delivered"

    return deliver


def outbox_purge(c: Container, *, older_than: dt.timedelta, now: dt.datetime) -> dict[str, int]:
    """Delete messages sent, and dedupe rows recorded, before ``now - older_than``.

    The outbox is a queue, not a record: the attempt, its decision and the audit chain are the
    evidence, and message bodies are personal data (PIPL 47: delete when no longer needed). Keep
    ``older_than`` above the longest time a broker may redeliver, or a late duplicate is delivered.
    """
    cut = _utc(now) - older_than
    with c.uow() as s:
        sent = s.execute(delete(OutboxMessage).where(OutboxMessage.sent_at < cut)).rowcount
        seen = s.execute(delete(OutboxConsumed).where(OutboxConsumed.consumed_at < cut)).rowcount
    return {"messages": int(sent or 0), "consumed": int(seen or 0)}


def outbox_stats(c: Container) -> dict[str, Any]:
    """Pending and sent counts, the oldest pending message's age basis, and consumed counts."""
    with c.uow(write=False) as s:
        pending, sent = s.execute(select(
            func.count().filter(OutboxMessage.sent_at.is_(None)),
            func.count().filter(OutboxMessage.sent_at.is_not(None)))).one()
        oldest = s.scalar(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.sent_at.is_(None)))
        consumed = dict(s.execute(select(OutboxConsumed.consumer, func.count()).group_by(OutboxConsumed.consumer))
                        .tuples().all())
    return {"pending": int(pending), "sent": int(sent), "oldest_pending": str(oldest) if oldest else None,
            "consumed": {k: int(v) for k, v in consumed.items()}}
