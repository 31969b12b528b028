"""The relational model (DESIGN §4) as SQLAlchemy 2 tables.

Amounts are ``Money`` (integer minor units, Decimal in Python). Personal data of borrowers and
contacts is stored only encrypted (``*_enc``, AES-GCM) with keyed hashes (``*_hmac``) for look-ups.
Every table carries ``tenant_id``: tenant isolation is enforced by the services on every query.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from collectguard.adapters.db.types import Money, Rate

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrement needs INTEGER PRIMARY KEY


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _ts() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False)


class Tenant(Base):
    __tablename__ = "tenant"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # lender | agency
    licensed: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = _ts()


class User(Base):
    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrower.id"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = _ts()


class ApiToken(Base):
    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = _ts()
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Borrower(Base):
    __tablename__ = "borrower"
    __table_args__ = (UniqueConstraint("tenant_id", "ext_id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    ext_id: Mapped[str] = mapped_column(String(64))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    phone_hmac: Mapped[str] = mapped_column(String(64), index=True)
    id_number_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    jurisdiction: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    # active | deceased | incapacitated (lacks legal capacity): facts the guard's third-party gate uses
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = _ts()


class Contact(Base):
    __tablename__ = "contact"
    __table_args__ = (UniqueConstraint("tenant_id", "ext_id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    ext_id: Mapped[str] = mapped_column(String(64))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_hmac: Mapped[str] = mapped_column(String(64), index=True)
    # recipient.role values of DESIGN §5: spouse, emergency_contact, relative, colleague, employer, guarantor …
    relation: Mapped[str] = mapped_column(String(32))
    # borrower_designated | contact_list | public_record | purchased
    source: Mapped[str] = mapped_column(String(32))
    designated_by_borrower: Mapped[bool] = mapped_column(Boolean, default=False)
    no_contact_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    no_contact_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[dt.datetime] = _ts()


class Loan(Base):
    __tablename__ = "loan"
    __table_args__ = (UniqueConstraint("tenant_id", "ext_id"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    ext_id: Mapped[str] = mapped_column(String(64))
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    product: Mapped[str] = mapped_column(String(64), default="")
    lender_type: Mapped[str] = mapped_column(String(32))
    principal: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    annual_rate: Mapped[Decimal] = mapped_column(Rate)
    upfront_fees: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    disbursed_on: Mapped[dt.date] = mapped_column(Date)
    lpr_at_signing: Mapped[Decimal | None] = mapped_column(Rate, nullable=True)
    # derived by the daily run as of `as_of`
    dpd: Mapped[int] = mapped_column(Integer, default=0)
    bucket: Mapped[str] = mapped_column(String(8), default="M0")
    outstanding: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    overdue_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    apr: Mapped[Decimal | None] = mapped_column(Rate, nullable=True)
    debt_status: Mapped[str] = mapped_column(String(16), default="valid")  # valid|disputed|paid|illegal
    as_of: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # the first date after `as_of` on which the calendar alone moves its balances (daily_pg)
    next_event_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = _ts()


class Installment(Base):
    __tablename__ = "installment"
    __table_args__ = (UniqueConstraint("loan_id", "seq"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"))
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[dt.date] = mapped_column(Date)
    principal_due: Mapped[Decimal] = mapped_column(Money)
    interest_due: Mapped[Decimal] = mapped_column(Money)
    fee_due: Mapped[Decimal] = mapped_column(Money)


class Payment(Base):
    __tablename__ = "payment"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    paid_on: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    ext_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = _ts()


class Clause(Base):
    __tablename__ = "clause"
    __table_args__ = (UniqueConstraint("tenant_id", "code", "version"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16), default="zh-CN")
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = _ts()


class Consent(Base):
    """One grant of consent. Withdrawal sets ``withdrawn_at`` once; rows are never deleted."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    form: Mapped[str] = mapped_column(String(16))  # separate | bundled
    clause_version: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(32), default="import")
    evidence_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    given_at: Mapped[dt.datetime] = _ts()
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Case(Base):
    __tablename__ = "collection_case"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    bucket: Mapped[str] = mapped_column(String(8))
    dpd: Mapped[int] = mapped_column(Integer)
    opened_on: Mapped[dt.date] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    assignee_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    agency_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)
    paused_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ContactAttempt(Base):
    __tablename__ = "contact_attempt"
    __table_args__ = (Index("ix_attempt_borrower_day", "borrower_id", "local_date"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("collection_case.id"), nullable=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"))
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient_role: Mapped[str] = mapped_column(String(32))
    recipient_key: Mapped[str] = mapped_column(String(64))  # HMAC of the number / address reached
    actor: Mapped[str] = mapped_column(String(120), default="")
    collector_kind: Mapped[str] = mapped_column(String(16), default="lender")
    planned_at: Mapped[dt.datetime] = _ts()
    local_date: Mapped[dt.date] = mapped_column(Date)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decision.id"), nullable=True)


class Decision(Base):
    __tablename__ = "decision"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"), nullable=True, index=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrower.id"), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = _ts()
    verdict: Mapped[str] = mapped_column(String(8))
    pack: Mapped[str] = mapped_column(String(8))
    pack_version: Mapped[str] = mapped_column(String(32))
    rules: Mapped[str] = mapped_column(String(500), default="")  # space-separated violated rule ids
    event: Mapped[dict[str, object]] = mapped_column(JSON)
    result: Mapped[dict[str, object]] = mapped_column(JSON)


class AuditRecord(Base):
    __tablename__ = "audit_record"
    __table_args__ = (UniqueConstraint("chain", "seq"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[dt.datetime] = _ts()
    tenant_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(120))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Complaint(Base):
    __tablename__ = "complaint"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrower.id"), nullable=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("collection_case.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(32), default="portal")
    category: Mapped[str] = mapped_column(String(32), default="other")
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = _ts()
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PromiseToPay(Base):
    __tablename__ = "ptp"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_case.id"), index=True)
    promised_on: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|kept|broken|partial
    settled_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = _ts()


class PaymentPlan(Base):
    __tablename__ = "payment_plan"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_case.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    schedule: Mapped[list[dict[str, object]] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = _ts()


class RightsRequest(Base):
    __tablename__ = "rights_request"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # access | copy | correction | deletion
    status: Mapped[str] = mapped_column(String(16), default="open")
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = _ts()
    handled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BucketHistory(Base):
    __tablename__ = "bucket_history"
    __table_args__ = (UniqueConstraint("loan_id", "as_of"),)
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    from_bucket: Mapped[str | None] = mapped_column(String(8), nullable=True)
    to_bucket: Mapped[str] = mapped_column(String(8))


class DailyRun(Base):
    __tablename__ = "daily_run"
    id: Mapped[int] = mapped_column(ID, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, unique=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = _ts()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    summary: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)


# Feature tables live in their own modules; importing them here registers them on Base.metadata,
# so Alembic and every service see the whole model whichever module they import first.
from collectguard.adapters.db import models_audit as _models_audit  # noqa: E402, F401
