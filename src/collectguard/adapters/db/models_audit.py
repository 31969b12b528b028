"""Tables of the tamper-evident audit trail beyond ``audit_record`` (migration 0002).

``audit_checkpoint`` holds ed25519-signed statements "chain C had hash H at seq S at time T": they
pin the chain so that a rewritten or truncated tail is caught, and let a third party verify an
exported evidence bundle offline. The public key travels in each row so that a bundle is
self-describing; whether the key is *trusted* is decided by its fingerprint (``key_id``), which the
operator publishes out of band.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collectguard.adapters.db.models import ID, AuditRecord, Base


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoint"
    __table_args__ = (UniqueConstraint("chain", "seq"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    tenant_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    key_id: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(String(64))  # raw ed25519 public key, hex
    signature: Mapped[str] = mapped_column(String(128))  # hex


# Evidence export and retention look records up by subject; the index is created by 0002.
Index("ix_audit_record_subject", AuditRecord.__table__.c.subject)
