"""Tables of the loan ledger's daily run, work queues, strategies and outcomes (migration 0003).

- ``strategy``: a tenant's saved collection strategy (the YAML of ``policy/strategies`` as JSON),
  linted by the guard before it is stored; the packaged file is the default.
- ``work_item``: the work queue, one row per (date, case, step, recipient); only actions the guard
  allowed at their planned time are ever stored.
- ``agency_contract`` / ``collector_capacity``: who can take cases, and how many.
- ``case_assignment``: the history of who held a case (analytics attribute recoveries with it).
- ``case_request``: disputes and hardship requests.
- ``plan_installment``: the schedule of a payment plan as rows, so the daily run settles plans in SQL.

The partial unique index ``uq_case_open_loan`` makes "at most one open case per loan" a database
fact, so a resumed or concurrent daily run can never open a second case for the same loan.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from collectguard.adapters.db.models import ID, Base, BucketHistory, Case
from collectguard.adapters.db.types import Money


def _ts() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False)


class Strategy(Base):
    __tablename__ = "strategy"
    __table_args__ = (UniqueConstraint("tenant_id", "jurisdiction", "version"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(2))
    version: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = _ts()


class WorkItem(Base):
    __tablename__ = "work_item"
    __table_args__ = (
        UniqueConstraint("as_of", "case_id", "step", "recipient_key"),
        Index("ix_work_item_day_tenant", "as_of", "tenant_id"),
    )
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_case.id"), index=True)
    # Copies of the case's, for filtering without a join; no foreign keys of their own, because a
    # day's queue is bulk-inserted and each key checked is a row-by-row trigger on PostgreSQL.
    tenant_id: Mapped[int] = mapped_column(ID)
    loan_id: Mapped[int] = mapped_column(ID)
    borrower_id: Mapped[int] = mapped_column(ID)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), nullable=True)
    recipient_key: Mapped[str] = mapped_column(String(32))  # "borrower" or "contact:<id>"
    step: Mapped[str] = mapped_column(String(64))  # strategy step id, e.g. "M1.sms.1"
    channel: Mapped[str] = mapped_column(String(16))
    recipient_role: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    local_time: Mapped[str] = mapped_column(String(5))  # HH:MM in the recipient's time zone
    timezone: Mapped[str] = mapped_column(String(64))
    planned_at: Mapped[dt.datetime] = _ts()  # the same instant, UTC
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    agency_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)
    pack: Mapped[str] = mapped_column(String(48), default="")  # rule pack@version that pre-checked it
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned | done | cancelled


class AgencyContract(Base):
    __tablename__ = "agency_contract"
    __table_args__ = (UniqueConstraint("lender_tenant_id", "agency_tenant_id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    lender_tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    agency_tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    capacity: Mapped[int] = mapped_column(Integer)  # most open cases held at once
    processing_contract: Mapped[bool] = mapped_column(Boolean, default=False)  # PIPL art. 21
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = _ts()


class CollectorCapacity(Base):
    __tablename__ = "collector_capacity"
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    capacity: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CaseAssignment(Base):
    __tablename__ = "case_assignment"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_case.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    agency_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)
    assigned_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)  # recalled | closed
    # The day the borrower was told the case is outsourced (a precondition of agency contact).
    borrower_notified_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class CaseRequest(Base):
    __tablename__ = "case_request"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # dispute | hardship
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    opened_at: Mapped[dt.datetime] = _ts()
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PlanInstallment(Base):
    __tablename__ = "plan_installment"
    __table_args__ = (UniqueConstraint("plan_id", "seq"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("payment_plan.id"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    # Denormalised on every row: payments on or after this date count toward the plan.
    starts_on: Mapped[dt.date] = mapped_column(Date)


# Indexes on 0001 tables, created by 0003.
Index("uq_case_open_loan", Case.__table__.c.loan_id, unique=True,
      sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'"))
Index("ix_bucket_history_as_of", BucketHistory.__table__.c.as_of)
