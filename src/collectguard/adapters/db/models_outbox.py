"""Tables of the transactional outbox (migration 0006, docs/scaling.md).

- ``outbox``: a message to send (SMS, e-mail, IM), written in the same transaction as what it
  announces — an allowed contact attempt — so a message exists if and only if its attempt was
  committed. ``message_id`` (a UUID) travels with the message to the broker and is the consumers'
  dedupe key. The relay claims a row by moving ``available_at`` forward (a lease: a relay that dies
  lets the row come back), publishes it with publisher confirms, and only then sets ``sent_at``.
- ``outbox_consumed``: one row per (consumer, message id) delivered, written in the transaction
  that delivers; a redelivered message finds its row and is acknowledged without a second delivery.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from collectguard.adapters.db.models import ID, Base

OUTBOX_KINDS = ("sms", "email", "im")


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "available_at", "id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # one of OUTBOX_KINDS: the routing key
    subject: Mapped[str | None] = mapped_column(String(120), nullable=True)  # e.g. "contact_attempt:12"
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    available_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)


class OutboxConsumed(Base):
    __tablename__ = "outbox_consumed"
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    consumed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    result: Mapped[str] = mapped_column(String(300), default="delivered")
