"""The transactional outbox: written with the attempt, relayed at least once, consumed at most once.

In process (every backend): enqueue shares the caller's transaction; the relay marks a message sent
only after its publish returned; a relay that dies between confirm and mark publishes again and
the consumer's dedupe table absorbs the duplicate; a broker outage leaves the message pending.
Against a real RabbitMQ (``amqp://guest:guest@127.0.0.1:5672/%2F``, or COLLECTGUARD_TEST_BROKER_URL;
skipped with a message when unreachable, a failure under CI=true) and a local SMTP server
(aiosmtpd on a free loopback port): publish with confirms, a consumer killed before its ack gets
the message again and the borrower still receives one e-mail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import uuid

import pytest
from sqlalchemy import func, select

from collectguard.adapters.broker import Delivery, RabbitBroker
from collectguard.adapters.db.models_outbox import OutboxConsumed, OutboxMessage
from collectguard.adapters.mailer import MailUnavailable, SmtpMailer
from collectguard.errors import Unavailable
from collectguard.jobs.outbox_relay import LocalPublisher, consume, relay
from collectguard.services.outbox import (
    LEASE,
    email_payload,
    make_deliverer,
    outbox_claim,
    outbox_consume,
    outbox_enqueue,
    outbox_relay_once,
)
from conftest import FIXED_NOW

IN_CI = os.environ.get("CI", "").lower() == "true"
BROKER_URL = os.environ.get("COLLECTGUARD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _pending(c):
    with c.uow(write=False) as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))


def _enqueue(c, kind="sms", payload=None):
    with c.uow() as s:
        return outbox_enqueue(s, kind=kind, payload=payload or {"body": "您好，请按时还款。"}, now=c.clock()).message_id


class Recorder:
    """A publisher that keeps what it was given (a broker that confirms everything)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.messages, self.fail_after = [], fail_after

    def publish(self, m):
        if self.fail_after is not None and len(self.messages) >= self.fail_after:
            raise Unavailable("broker unreachable (test)")
        self.messages.append(m)


def test_enqueue_commits_and_rolls_back_with_the_callers_transaction(container):
    with pytest.raises(RuntimeError), container.uow() as s:
        outbox_enqueue(s, kind="sms", payload={"body": "x"}, now=container.clock())
        raise RuntimeError("the attempt's transaction fails")
    assert _pending(container) == 0
    _enqueue(container)
    assert _pending(container) == 1


def test_relay_marks_sent_only_what_was_published(container):
    ids = [_enqueue(container) for _ in range(3)]
    broker = Recorder(fail_after=2)
    r = outbox_relay_once(container, publisher=broker)
    assert (r["published"], r["released"]) == (2, 1) and "unreachable" in r["error"]
    with container.uow(write=False) as s:
        rows = {m.message_id: m for m in s.scalars(select(OutboxMessage))}
    assert [rows[i].sent_at is not None for i in ids] == [True, True, False]
    assert rows[ids[2]].last_error and rows[ids[2]].available_at.replace(tzinfo=dt.UTC) > FIXED_NOW
    with pytest.raises(Unavailable):  # --once reports the outage (CLI: exit 1, one line)
        relay(dataclasses.replace(container, clock=lambda: FIXED_NOW + dt.timedelta(hours=1)),
              publisher=Recorder(fail_after=0), once=True)


def test_relay_death_after_confirm_republishes_and_the_consumer_dedupes(container):
    mid = _enqueue(container)
    first = outbox_claim(container, now=container.clock())  # published, then the relay dies unmarked
    assert [m.message_id for m in first] == [mid]
    assert outbox_claim(container, now=container.clock()) == []  # leased: no second relay takes it
    later = dataclasses.replace(container, clock=lambda: FIXED_NOW + LEASE + dt.timedelta(seconds=1))
    broker = Recorder()
    assert outbox_relay_once(later, publisher=broker)["published"] == 1  # the lease expired: again
    delivered = []

    def deliver(d):
        delivered.append(d.message_id)
        return "delivered"

    results = [outbox_consume(later, consumer="sms", delivery=Delivery(m.message_id, m.kind, m.payload),
                              deliver=deliver) for m in [*first, *broker.messages]]
    assert results == ["delivered", "duplicate"] and delivered == [mid]
    assert _pending(later) == 0


def test_a_failed_delivery_rolls_back_its_dedupe_row(container):
    mid = _enqueue(container)
    d = Delivery(mid, "sms", {"body": "x"})

    def down(_):
        raise MailUnavailable("smtp down")

    with pytest.raises(MailUnavailable):
        outbox_consume(container, consumer="c", delivery=d, deliver=down)
    assert outbox_consume(container, consumer="c", delivery=d, deliver=lambda _: "delivered") == "delivered"
    with container.uow(write=False) as s:
        assert s.scalar(select(func.count()).select_from(OutboxConsumed)) == 1


def test_an_allowed_message_attempt_leaves_through_the_outbox_and_a_denied_one_does_not(container):
    from test_attempts_seed import seed

    from collectguard.errors import Denied
    from collectguard.services.attempts import contact_attempt_request

    w = seed(container)
    sms = contact_attempt_request(container, principal=w["collector"], channel="sms", case_id=w["case"],
                                  role="borrower", message="您好，本期账单已到期，请通过App还款。")
    contact_attempt_request(container, principal=w["collector"], channel="call", case_id=w["case"], role="borrower")
    late = dt.datetime(2026, 4, 7, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with pytest.raises(Denied):  # 23:00 at the borrower's: quiet hours, so nothing may be sent
        contact_attempt_request(container, principal=w["collector"], channel="sms", case_id=w["case"],
                                role="borrower", time=late, message="您好，本期账单已到期。")
    with container.uow(write=False) as s:
        rows = list(s.scalars(select(OutboxMessage)))
    assert [(r.kind, r.subject) for r in rows] == [("sms", f"contact_attempt:{sms['attempt_id']}")]
    assert rows[0].payload["body"].startswith("您好") and "phone" not in rows[0].payload


def test_embedded_default_delivers_in_process_once(container):
    sent = []
    deliver = make_deliverer(mailer=None, cipher=container.cipher, send_text=lambda d: sent.append(d.message_id))
    mid = _enqueue(container, "im")
    totals = relay(container, publisher=LocalPublisher(container, deliver), once=True)
    assert totals["published"] == 1 and sent == [mid] and _pending(container) == 0
    assert relay(container, publisher=LocalPublisher(container, deliver), once=True)["published"] == 0


def test_purge_keeps_pending_and_recent_messages(container):
    from collectguard.services.outbox import outbox_purge

    old, pending = _enqueue(container), _enqueue(container)
    outbox_relay_once(container, publisher=Recorder(fail_after=1))  # the first is sent, the second not
    outbox_consume(container, consumer="c", delivery=Delivery(old, "sms", {}), deliver=lambda _: "delivered")
    assert outbox_purge(container, older_than=dt.timedelta(days=7), now=FIXED_NOW) == {"messages": 0, "consumed": 0}
    later = FIXED_NOW + dt.timedelta(days=8)
    assert outbox_purge(container, older_than=dt.timedelta(days=7), now=later) == {"messages": 1, "consumed": 1}
    with container.uow(write=False) as s:
        assert [m.message_id for m in s.scalars(select(OutboxMessage))] == [pending]


# ---- real SMTP server (aiosmtpd) and real RabbitMQ -------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.mails = []

        async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls hooks by this name
            self.mails.append(envelope)
            return "250 OK"

    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    ctl.start()
    try:
        yield inbox, ctl.port
    finally:
        ctl.stop()


def test_email_is_delivered_through_smtp(container, smtp_server):
    inbox, port = smtp_server
    mailer = SmtpMailer(host="127.0.0.1", port=port, sender="noreply@lender.example")
    mid = str(uuid.uuid4())
    mailer.send(to="borrower@example.com", subject="还款提醒", body="您好，本期账单已到期。", message_id=mid)
    (mail,) = inbox.mails
    assert mail.rcpt_tos == ["borrower@example.com"]
    text = mail.content.decode("utf-8")
    assert f"Message-ID: <{mid}@lender.example>" in text
    with pytest.raises(MailUnavailable):
        SmtpMailer(host="127.0.0.1", port=_free_port(), timeout=2).send(to="a@b.c", subject="s", body="b",
                                                                        message_id=mid)


@pytest.fixture
def rabbit():
    broker = RabbitBroker(BROKER_URL, exchange=f"cg-test-{uuid.uuid4().hex[:8]}",
                          queue_prefix=f"cg-test-{uuid.uuid4().hex[:8]}")
    try:
        broker.depth("email")
    except Unavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true but RabbitMQ is unreachable: {exc}")
        pytest.skip(f"RabbitMQ tests skipped: {exc} (set COLLECTGUARD_TEST_BROKER_URL)")
    try:
        yield broker
    finally:
        broker.delete()
        broker.close()


def test_rabbitmq_redelivery_after_a_consumer_crash_does_not_double_deliver(container, rabbit, smtp_server):
    inbox, port = smtp_server
    with container.uow() as s:
        mid = outbox_enqueue(s, kind="email", now=container.clock(), payload=email_payload(
            container.cipher, to="borrower@example.com", subject="还款提醒", body="您好，本期账单已到期。")).message_id
    assert relay(container, publisher=rabbit, once=True)["published"] == 1  # confirmed, then marked sent
    assert _pending(container) == 0 and rabbit.depth("email") == 1
    deliver = make_deliverer(mailer=SmtpMailer(host="127.0.0.1", port=port), cipher=container.cipher)

    # Consumer 1 delivers and commits, then dies before acknowledging: the broker requeues.
    crashed = RabbitBroker(BROKER_URL, exchange=rabbit.exchange, queue_prefix=rabbit.queue_prefix)
    d = crashed.get("email")
    assert d is not None and d.message_id == mid and not d.redelivered
    assert outbox_consume(container, consumer="email", delivery=d, deliver=deliver) == "delivered"
    crashed.close()

    # Consumer 2 gets the redelivery, finds it consumed, acknowledges it: one e-mail in all.
    got = consume(container, broker=rabbit, kinds=["email"], consumer="email", deliver=deliver, idle_timeout=2)
    assert got == {"handled": 1, "duplicate": 1}
    assert len(inbox.mails) == 1 and rabbit.depth("email") == 0
    assert inbox.mails[0].rcpt_tos == ["borrower@example.com"]


def test_rabbitmq_relay_death_after_confirm_still_delivers_once(container, rabbit):
    mid = _enqueue(container, "sms")
    (m,) = outbox_claim(container, now=container.clock())
    rabbit.publish(m)  # confirmed by the broker; the relay dies before marking the row sent
    later = dataclasses.replace(container, clock=lambda: FIXED_NOW + LEASE + dt.timedelta(seconds=1))
    assert relay(later, publisher=rabbit, once=True)["published"] == 1
    assert rabbit.depth("sms") == 2  # the duplicate is on the broker…
    sent = []
    deliver = make_deliverer(mailer=None, cipher=container.cipher, send_text=lambda d: sent.append(d.message_id))
    got = consume(later, broker=rabbit, kinds=["sms"], consumer="sms", deliver=deliver, idle_timeout=2)
    assert got == {"handled": 2, "delivered": 1, "duplicate": 1} and sent == [mid]  # …and stops there
