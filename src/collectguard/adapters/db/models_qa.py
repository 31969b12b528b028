"""Tables of call and chat QA (质检), migration 0005.

- ``qa_result``: one QA run per transcript and tenant. The transcript itself is personal data
  (names, amounts, what was said), so it is stored only encrypted (``transcript_enc``, AES-GCM);
  its SHA-256 makes an import idempotent (UNIQUE per tenant). ``sampled`` puts the result in the
  human-review queue: every result with violations, and a seeded random share of clean ones.
- ``qa_review``: a reviewer's score (0–100) and notes for a result; rows are never overwritten,
  so a second opinion is a second row.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collectguard.adapters.db.models import ID, Base


class QaResultRow(Base):
    __tablename__ = "qa_result"
    __table_args__ = (
        UniqueConstraint("tenant_id", "transcript_sha256"),
        Index("ix_qa_result_tenant_sampled", "tenant_id", "sampled"),
        Index("ix_qa_result_tenant_collector", "tenant_id", "collector_ref"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    transcript_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the caller's ``id``
    case_id: Mapped[int | None] = mapped_column(ForeignKey("collection_case.id"), nullable=True, index=True)
    collector_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)  # ``collector.id``
    jurisdiction: Mapped[str] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(16))
    call_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    verdict: Mapped[str] = mapped_column(String(16))  # clean | violations
    severity: Mapped[str | None] = mapped_column(String(16), nullable=True)  # worst finding's
    score: Mapped[int] = mapped_column(Integer)  # automatic score 0-100
    findings_count: Mapped[int] = mapped_column(Integer)
    rules: Mapped[str] = mapped_column(String(500), default="")  # space-separated rule ids
    result: Mapped[dict[str, object]] = mapped_column(JSON)
    transcript_sha256: Mapped[str] = mapped_column(String(64))
    transcript_enc: Mapped[bytes] = mapped_column(LargeBinary)
    sampled: Mapped[bool] = mapped_column(Boolean)
    sample_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)  # violations | random
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class QaReviewRow(Base):
    __tablename__ = "qa_review"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    qa_result_id: Mapped[int] = mapped_column(ForeignKey("qa_result.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(120))
    score: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
