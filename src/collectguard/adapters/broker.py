"""RabbitMQ through pika: publish outbox messages with publisher confirms, consume with manual acks.

Topology (declared idempotently on connect): a durable direct exchange (``collectguard.outbox``)
and one durable queue per channel kind (``collectguard.sms``, ``.email``, ``.im``), bound by the
kind as routing key. Messages are persistent and carry the outbox ``message_id`` as the AMQP
``message_id`` property: the consumers' dedupe key.

At-least-once: ``publish`` returns only once the broker has confirmed the message (the channel is
in confirm mode and ``mandatory`` is set, so an unroutable message raises instead of vanishing);
the relay marks a row sent only after that. A consumer acknowledges only after its delivery is
committed; a consumer that dies before acking gets the message redelivered (``redelivered`` set).
Connection failures raise ``errors.Unavailable`` so the edges answer one line / 503.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import pika
import pika.exceptions

from collectguard.errors import Unavailable

__all__ = ["Delivery", "OutMessage", "Publisher", "RabbitBroker"]

KINDS = ("sms", "email", "im")


@dataclass(frozen=True)
class OutMessage:
    """A message leaving the outbox: its id (dedupe key), kind (routing key) and JSON payload."""

    message_id: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """A message as a consumer receives it; ``tag`` is the broker's delivery tag (None in process)."""

    message_id: str
    kind: str
    payload: dict[str, Any]
    redelivered: bool = False
    tag: int | None = None


class Publisher(Protocol):
    def _where(self) -> str:
        p = urlsplit(self.url)  # never the password
        return f"{p.hostname}:{p.port or 5672}"

    def publish(self, message: OutMessage) -> None: ...


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class RabbitBroker:
    """One blocking connection and channel; not thread-safe (one per relay or consumer process)."""

    def __init__(self, url: str, *, exchange: str = "collectguard.outbox", queue_prefix: str = "collectguard",
                 kinds: Sequence[str] = KINDS, heartbeat: int = 30) -> None:
        self.url, self.exchange, self.kinds = url, exchange, tuple(kinds)
        self.queue_prefix, self.heartbeat = queue_prefix, heartbeat
        self._conn: Any = None
        self._channel: Any = None

    def queue(self, kind: str) -> str:
        """The queue that holds messages of ``kind``."""
        return f"{self.queue_prefix}.{kind}"

    def _ch(self) -> Any:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        try:
            params = pika.URLParameters(self.url)
            params.heartbeat, params.blocked_connection_timeout = self.heartbeat, 30
            params.connection_attempts, params.socket_timeout = 1, 5
            self._conn = pika.BlockingConnection(params)
            ch = self._conn.channel()
            ch.exchange_declare(self.exchange, exchange_type="direct", durable=True)
            for kind in self.kinds:
                ch.queue_declare(self.queue(kind), durable=True)
                ch.queue_bind(self.queue(kind), self.exchange, routing_key=kind)
            ch.confirm_delivery()
            ch.basic_qos(prefetch_count=50)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise Unavailable(f"message broker at {self._where()} unreachable: {_why(exc)}") from exc
        self._channel = ch
        return ch

    def _where(self) -> str:
        p = urlsplit(self.url)  # never the password
        return f"{p.hostname}:{p.port or 5672}"

    def publish(self, message: OutMessage) -> None:
        """Publish one message and wait for the broker's confirm; raises ``Unavailable`` otherwise."""
        if message.kind not in self.kinds:
            raise ValueError(f"no queue for kind {message.kind!r}")
        props = pika.BasicProperties(message_id=message.message_id, delivery_mode=pika.DeliveryMode.Persistent,
                                     content_type="application/json", type=message.kind)
        body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            self._ch().basic_publish(self.exchange, message.kind, body, props, mandatory=True)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise Unavailable(f"broker did not accept message {message.message_id}: {type(exc).__name__}") from exc
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise Unavailable(f"message broker at {self._where()} unreachable: {_why(exc)}") from exc

    @staticmethod
    def _delivery(method: Any, props: Any, body: bytes) -> Delivery:
        return Delivery(message_id=props.message_id or "", kind=method.routing_key,
                        payload=json.loads(body.decode("utf-8")), redelivered=bool(method.redelivered),
                        tag=method.delivery_tag)

    def get(self, kind: str) -> Delivery | None:
        """One message of ``kind`` if any (unacknowledged until ``ack``)."""
        try:
            method, props, body = self._ch().basic_get(self.queue(kind), auto_ack=False)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise Unavailable(f"message broker at {self._where()} unreachable: {_why(exc)}") from exc
        return None if method is None else self._delivery(method, props, body)

    def ack(self, delivery: Delivery) -> None:
        self._ch().basic_ack(delivery.tag)

    def nack(self, delivery: Delivery, *, requeue: bool = True) -> None:
        self._ch().basic_nack(delivery.tag, requeue=requeue)

    def consume(self, handler: Callable[[Delivery], bool], *, kinds: Sequence[str] | None = None,
                max_messages: int | None = None, idle_timeout: float | None = None) -> int:
        """Deliver messages to ``handler`` (True: ack, False: requeue) until ``max_messages`` were
        handled or nothing arrived for ``idle_timeout`` seconds; returns how many were handled."""
        ch, n = self._ch(), 0
        wanted = [self.queue(k) for k in (kinds or self.kinds)]
        try:
            while max_messages is None or n < max_messages:
                got = False
                for q in wanted:
                    method, props, body = ch.basic_get(q, auto_ack=False)
                    if method is None:
                        continue
                    got, n = True, n + 1
                    d = self._delivery(method, props, body)
                    if handler(d):
                        ch.basic_ack(method.delivery_tag)
                    else:
                        ch.basic_nack(method.delivery_tag, requeue=True)
                    if max_messages is not None and n >= max_messages:
                        break
                if not got:
                    if idle_timeout is not None and idle_timeout <= 0:
                        break
                    waited = self._wait(0.2)
                    if idle_timeout is not None:
                        idle_timeout -= waited
        except (pika.exceptions.AMQPError, OSError) as exc:
            self.close()
            raise Unavailable(f"message broker at {self._where()} unreachable: {_why(exc)}") from exc
        return n

    def _wait(self, seconds: float) -> float:
        # Services heartbeats while idle; polling basic_get keeps one code path for every kind.
        self._conn.sleep(seconds)
        return seconds

    def depth(self, kind: str) -> int:
        """Messages ready in the queue of ``kind``."""
        return int(self._ch().queue_declare(self.queue(kind), durable=True, passive=True).method.message_count)

    def delete(self) -> None:
        """Remove the queues and the exchange (tests and clean-ups)."""
        ch = self._ch()
        for kind in self.kinds:
            ch.queue_delete(self.queue(kind))
        ch.exchange_delete(self.exchange)

    def close(self) -> None:
        """Close the connection; unacknowledged deliveries go back to their queues."""
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except (pika.exceptions.AMQPError, OSError):
                pass
