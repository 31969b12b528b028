"""Tables of collection operations (migration 0007): allocation, stops, complaints, approvals,
repayment links, message templates and legal actions.

- ``allocation_ruleset`` / ``allocation_run``: a tenant's saved allocation rules (分案规则, the YAML of
  ``policy/allocation/default.yaml`` as JSON) and the record of every applied allocation.
- ``case_hold``: a hold (留案) takes a case away from every collector and agency until released.
- ``collection_stop``: stop collection (停催) for a case or one phone number (the keyed hash of the
  number, never the number), from ``starts_on`` to ``ends_on`` (inclusive, the borrower's local
  dates); lifting sets ``lifted_at``: rows are never deleted, they are evidence.
- ``complaint_meta``: what ``complaint`` (0001) lacks: the caller's reference (idempotent imports),
  the source and the complaint-risk tag strategies read.
- ``approval_request``: waivers (减免), payment plans (分期) and term extensions (展期) under
  maker-checker; ``effect`` records exactly what approval changed (so it can be audited or undone).
- ``pay_link`` / ``payment_receipt``: signed repayment links with a short repayment code, and the
  idempotency keys of payments the lender's payment system reported.
- ``message_template`` / ``legal_action``: versioned templates under review, and recorded lawsuits
  (the only thing that lets a template speak of legal action).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from collectguard.adapters.db.models import ID, Base
from collectguard.adapters.db.types import Money


def _ts(nullable: bool = False) -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), nullable=nullable)


def _tenant() -> Mapped[int]:
    return mapped_column(ForeignKey("tenant.id"), index=True)


def _case(nullable: bool = False) -> Mapped[int]:
    return mapped_column(ForeignKey("collection_case.id"), index=True, nullable=nullable)


class AllocationRuleset(Base):
    __tablename__ = "allocation_ruleset"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    version: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _ts()


class AllocationRun(Base):
    __tablename__ = "allocation_run"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    as_of: Mapped[dt.date] = mapped_column(Date)
    rules_sha256: Mapped[str] = mapped_column(String(64))
    plan_sha256: Mapped[str] = mapped_column(String(64))
    moves: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, object]] = mapped_column(JSON)
    applied_by: Mapped[str] = mapped_column(String(120))
    applied_at: Mapped[dt.datetime] = _ts()


class CaseHold(Base):
    __tablename__ = "case_hold"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    case_id: Mapped[int] = _case()
    reason: Mapped[str] = mapped_column(Text)
    held_by: Mapped[str] = mapped_column(String(120))
    held_at: Mapped[dt.datetime] = _ts()
    released_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    released_at: Mapped[dt.datetime | None] = _ts(nullable=True)


class CollectionStop(Base):
    __tablename__ = "collection_stop"
    __table_args__ = (Index("ix_collection_stop_borrower_key", "borrower_id", "contact_key"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    case_id: Mapped[int] = _case()
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"))
    scope: Mapped[str] = mapped_column(String(8))  # case | number
    contact_key: Mapped[str | None] = mapped_column(String(64), nullable=True)  # keyed hash of the number
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(16))  # complaint|dispute|fraud|litigation|deceased|hardship
    note: Mapped[str] = mapped_column(Text, default="")
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaint.id"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _ts()
    lifted_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    lifted_at: Mapped[dt.datetime | None] = _ts(nullable=True)


class ComplaintMeta(Base):
    __tablename__ = "complaint_meta"
    __table_args__ = (UniqueConstraint("tenant_id", "ext_ref"),)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    ext_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # portal | api | csv
    risk: Mapped[str] = mapped_column(String(8))  # high | medium | low
    received_at: Mapped[dt.datetime] = _ts()
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)


class ApprovalRequest(Base):
    __tablename__ = "approval_request"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    case_id: Mapped[int] = _case()
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"))
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"))
    kind: Mapped[str] = mapped_column(String(16))  # waiver | plan | extension
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected | cancelled
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)  # waiver amount / plan total
    detail: Mapped[dict[str, object]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    maker: Mapped[str] = mapped_column(String(120))
    maker_role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = _ts()
    checker: Mapped[str | None] = mapped_column(String(120), nullable=True)
    checker_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decided_at: Mapped[dt.datetime | None] = _ts(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    effect: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)


class PayLink(Base):
    __tablename__ = "pay_link"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    case_id: Mapped[int] = _case()
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"))
    code: Mapped[str] = mapped_column(String(16), unique=True)  # 还款码: read out on the phone, typed in
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _ts()
    expires_at: Mapped[dt.datetime] = _ts()
    revoked_at: Mapped[dt.datetime | None] = _ts(nullable=True)


class PaymentReceipt(Base):
    __tablename__ = "payment_receipt"
    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_sha256: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"))
    recorded_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _ts()


class MessageTemplate(Base):
    __tablename__ = "message_template"
    __table_args__ = (UniqueConstraint("tenant_id", "code", "language", "version"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    code: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))  # zh | en
    version: Mapped[int] = mapped_column(Integer)
    jurisdiction: Mapped[str] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(16))  # debtor | third_party
    body: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[str]] = mapped_column(JSON)
    # draft -> linted | lint_failed -> approved | rejected; an approved one is superseded by the next
    status: Mapped[str] = mapped_column(String(16))
    legal_wording: Mapped[bool] = mapped_column(Boolean, default=False)
    lint: Mapped[list[dict[str, object]] | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _ts()
    reviewed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = _ts(nullable=True)
    review_note: Mapped[str] = mapped_column(Text, default="")


class LegalAction(Base):
    __tablename__ = "legal_action"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = _tenant()
    case_id: Mapped[int] = _case()
    kind: Mapped[str] = mapped_column(String(16))  # lawsuit | arbitration
    filed_on: Mapped[dt.date] = mapped_column(Date)
    court: Mapped[str] = mapped_column(String(200))
    case_number: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = _ts()
    withdrawn_at: Mapped[dt.datetime | None] = _ts(nullable=True)
