"""The outbox relay and the channel consumers, as long-running jobs (``collectguard outbox …``).

    relay(c, once=True)          drain the outbox once: to RabbitMQ when ``broker_url`` is set,
                                 else straight to the in-process consumer (the embedded default)
    consume(c, idle_timeout=5)   RabbitMQ consumer: deliver e-mail through SMTP, SMS/IM through
                                 the text sender, each message at most once (``outbox_consumed``)

What is built from Settings here (broker, mailer) is the jobs' share of the composition root.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from collectguard.adapters.broker import Delivery, OutMessage, Publisher, RabbitBroker
from collectguard.adapters.logging import get_logger
from collectguard.adapters.mailer import LogMailer, Mailer, MailUnavailable, mailer_from_url
from collectguard.bootstrap import Container
from collectguard.errors import CollectguardError, Unavailable
from collectguard.services.outbox import Deliver, make_deliverer, outbox_consume, outbox_relay_once

__all__ = ["LocalPublisher", "consume", "deliverer_for", "mailer_for", "publisher_for", "relay"]

LOCAL_CONSUMER = "local"
log = get_logger("collectguard.outbox")


class _HeldMailer:
    """Production without ``smtp_url``: e-mails wait in the outbox instead of being dropped."""

    def send(self, *, to: str, subject: str, body: str, message_id: str) -> None:
        raise MailUnavailable("no SMTP server configured (COLLECTGUARD_SMTP_URL)")


def mailer_for(c: Container) -> Mailer:
    """The SMTP mailer of ``smtp_url``; without one: logged outside production, held in production."""
    if c.settings.smtp_url:
        return mailer_from_url(c.settings.smtp_url)
    return _HeldMailer() if c.settings.environment == "production" else LogMailer()


def _no_gateway(d: Delivery) -> None:
    raise MailUnavailable(f"no {d.kind} gateway configured: the message stays queued")


def deliverer_for(c: Container, *, send_text: Callable[[Delivery], None] | None = None) -> Deliver:
    """The channel dispatch with this container's mailer and PII key. No SMS/IM gateway adapter ships
    yet: outside production texts are logged; in production they are held, never counted as sent."""
    if send_text is None and c.settings.environment == "production":
        send_text = _no_gateway
    return make_deliverer(mailer=mailer_for(c), cipher=c.cipher, send_text=send_text)


class LocalPublisher:
    """The embedded default: "publishing" is delivering in process, deduplicated like a consumer."""

    def __init__(self, c: Container, deliver: Deliver, *, consumer: str = LOCAL_CONSUMER) -> None:
        self.c, self.deliver, self.consumer = c, deliver, consumer

    def publish(self, message: OutMessage) -> None:
        """Deliver now; a retryable failure raises ``Unavailable`` so the row is retried later."""
        d = Delivery(message_id=message.message_id, kind=message.kind, payload=message.payload)
        try:
            outbox_consume(self.c, consumer=self.consumer, delivery=d, deliver=self.deliver)
        except MailUnavailable as exc:
            raise Unavailable(str(exc)) from exc


def publisher_for(c: Container, *, deliver: Deliver | None = None) -> Publisher:
    """RabbitMQ when ``broker_url`` is set, else the in-process publisher."""
    if c.settings.broker_url:
        return RabbitBroker(c.settings.broker_url)
    return LocalPublisher(c, deliver or deliverer_for(c))


def relay(c: Container, *, publisher: Publisher | None = None, once: bool = False, interval: float = 1.0,
          limit: int = 200, stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Publish pending messages. ``once``: drain what is pending now (raises ``Unavailable`` when the
    broker cannot be reached); otherwise loop until ``stop()``, sleeping ``interval`` when idle and
    backing off while the broker is down."""
    pub = publisher or publisher_for(c)
    totals = {"published": 0, "batches": 0}
    idle = interval
    try:
        while stop is None or not stop():
            r = outbox_relay_once(c, publisher=pub, limit=limit)
            totals["published"] += r["published"]
            totals["batches"] += 1 if r["claimed"] else 0
            if r["error"]:
                if once:
                    raise Unavailable(r["error"])
                idle = min(idle * 2, 30.0)  # broker down: retry with backoff, never spin
            else:
                idle = interval
            if r["claimed"] < limit or r["error"]:
                if once:
                    break
                time.sleep(idle)
    finally:
        close = getattr(pub, "close", None)
        if publisher is None and callable(close):
            close()
    return totals


def consume(c: Container, *, broker: RabbitBroker | None = None, kinds: Sequence[str] | None = None,
            consumer: str = "channels", deliver: Deliver | None = None, max_messages: int | None = None,
            idle_timeout: float | None = None) -> dict[str, Any]:
    """Consume from RabbitMQ until ``max_messages`` or ``idle_timeout``; counts results by kind."""
    if broker is None and not c.settings.broker_url:
        raise Unavailable("no broker configured (COLLECTGUARD_BROKER_URL); without one, "
                          "`outbox relay` delivers in process")
    b = broker or RabbitBroker(c.settings.broker_url)
    fn = deliver or deliverer_for(c)
    counts: dict[str, int] = {}

    def handle(d: Delivery) -> bool:
        try:
            result = outbox_consume(c, consumer=consumer, delivery=d, deliver=fn)
        except (MailUnavailable, CollectguardError) as exc:
            log.warning("outbox_delivery_failed", kind=d.kind, message_id=d.message_id, error=str(exc)[:200])
            time.sleep(0.5)  # the message is requeued; do not spin on a dead SMTP server
            return False
        key = result.split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
        return True

    try:
        handled = b.consume(handle, kinds=kinds, max_messages=max_messages, idle_timeout=idle_timeout)
    finally:
        if broker is None:
            b.close()
    return {"handled": handled, **counts}
