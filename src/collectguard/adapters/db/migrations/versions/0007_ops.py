"""collection operations: allocation rules and runs, holds, stops, complaint meta, approvals,
repayment links and payment receipts, message templates, legal actions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", ID, nullable=False)


def _fk(table: str, column: str, target: str, *, nullable: bool = False, ondelete: str | None = None) -> sa.Column:  # type: ignore[type-arg]
    ref = target.split(".")[0]
    return sa.Column(column, ID, sa.ForeignKey(target, name=f"fk_{table}_{column}_{ref}", ondelete=ondelete),
                     nullable=nullable)


def _table(name: str, *cols: object, pk: str = "id", unique: tuple[str, ...] = (),
           index: tuple[str, ...] = ("tenant_id",)) -> None:
    args = [*cols, sa.PrimaryKeyConstraint(pk, name=f"pk_{name}")]
    if unique:
        args.append(sa.UniqueConstraint(*unique, name=f"uq_{name}_{'_'.join(unique)}"))
    op.create_table(name, *args)
    for column in index:
        op.create_index(f"ix_{name}_{column}", name, [column])


def upgrade() -> None:
    t = "allocation_ruleset"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), sa.Column("version", sa.String(32), nullable=False),
           sa.Column("body", sa.JSON(), nullable=False), sa.Column("sha256", sa.String(64), nullable=False),
           sa.Column("active", sa.Boolean(), nullable=False), sa.Column("created_by", sa.String(120), nullable=False),
           sa.Column("created_at", TS, nullable=False), unique=("tenant_id", "version"))
    t = "allocation_run"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), sa.Column("as_of", sa.Date(), nullable=False),
           sa.Column("rules_sha256", sa.String(64), nullable=False),
           sa.Column("plan_sha256", sa.String(64), nullable=False), sa.Column("moves", sa.Integer(), nullable=False),
           sa.Column("summary", sa.JSON(), nullable=False), sa.Column("applied_by", sa.String(120), nullable=False),
           sa.Column("applied_at", TS, nullable=False))
    t = "case_hold"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), _fk(t, "case_id", "collection_case.id"),
           sa.Column("reason", sa.Text(), nullable=False), sa.Column("held_by", sa.String(120), nullable=False),
           sa.Column("held_at", TS, nullable=False), sa.Column("released_by", sa.String(120), nullable=True),
           sa.Column("released_at", TS, nullable=True), index=("tenant_id", "case_id"))
    t = "collection_stop"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), _fk(t, "case_id", "collection_case.id"),
           _fk(t, "borrower_id", "borrower.id"), sa.Column("scope", sa.String(8), nullable=False),
           sa.Column("contact_key", sa.String(64), nullable=True), _fk(t, "contact_id", "contact.id", nullable=True),
           sa.Column("reason", sa.String(16), nullable=False), sa.Column("note", sa.Text(), nullable=False),
           sa.Column("starts_on", sa.Date(), nullable=False), sa.Column("ends_on", sa.Date(), nullable=True),
           _fk(t, "complaint_id", "complaint.id", nullable=True),
           sa.Column("created_by", sa.String(120), nullable=False), sa.Column("created_at", TS, nullable=False),
           sa.Column("lifted_by", sa.String(120), nullable=True), sa.Column("lifted_at", TS, nullable=True),
           index=("tenant_id", "case_id"))
    op.create_index("ix_collection_stop_borrower_key", t, ["borrower_id", "contact_key"])
    t = "complaint_meta"
    _table(t, _fk(t, "complaint_id", "complaint.id", ondelete="CASCADE"), _fk(t, "tenant_id", "tenant.id"),
           sa.Column("ext_ref", sa.String(64), nullable=True), sa.Column("source", sa.String(16), nullable=False),
           sa.Column("risk", sa.String(8), nullable=False), sa.Column("received_at", TS, nullable=False),
           sa.Column("resolution", sa.Text(), nullable=True), pk="complaint_id", unique=("tenant_id", "ext_ref"))
    t = "approval_request"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), _fk(t, "case_id", "collection_case.id"),
           _fk(t, "loan_id", "loan.id"), _fk(t, "borrower_id", "borrower.id"),
           sa.Column("kind", sa.String(16), nullable=False), sa.Column("status", sa.String(16), nullable=False),
           sa.Column("amount", sa.BigInteger(), nullable=True), sa.Column("detail", sa.JSON(), nullable=False),
           sa.Column("reason", sa.Text(), nullable=False), sa.Column("maker", sa.String(120), nullable=False),
           sa.Column("maker_role", sa.String(32), nullable=False), sa.Column("created_at", TS, nullable=False),
           sa.Column("checker", sa.String(120), nullable=True), sa.Column("checker_role", sa.String(32), nullable=True),
           sa.Column("decided_at", TS, nullable=True), sa.Column("note", sa.Text(), nullable=False),
           sa.Column("effect", sa.JSON(), nullable=True), index=("tenant_id", "case_id"))
    t = "pay_link"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), _fk(t, "case_id", "collection_case.id"),
           _fk(t, "loan_id", "loan.id"), sa.Column("code", sa.String(16), nullable=False),
           sa.Column("created_by", sa.String(120), nullable=False), sa.Column("created_at", TS, nullable=False),
           sa.Column("expires_at", TS, nullable=False), sa.Column("revoked_at", TS, nullable=True),
           unique=("code",), index=("tenant_id", "case_id"))
    t = "payment_receipt"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), sa.Column("idempotency_key", sa.String(128), nullable=False),
           sa.Column("request_sha256", sa.String(64), nullable=False), _fk(t, "payment_id", "payment.id"),
           sa.Column("recorded_by", sa.String(120), nullable=False), sa.Column("created_at", TS, nullable=False),
           unique=("tenant_id", "idempotency_key"))
    t = "message_template"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), sa.Column("code", sa.String(64), nullable=False),
           sa.Column("language", sa.String(8), nullable=False), sa.Column("version", sa.Integer(), nullable=False),
           sa.Column("jurisdiction", sa.String(2), nullable=False), sa.Column("channel", sa.String(16), nullable=False),
           sa.Column("audience", sa.String(16), nullable=False), sa.Column("body", sa.Text(), nullable=False),
           sa.Column("variables", sa.JSON(), nullable=False), sa.Column("status", sa.String(16), nullable=False),
           sa.Column("legal_wording", sa.Boolean(), nullable=False), sa.Column("lint", sa.JSON(), nullable=True),
           sa.Column("created_by", sa.String(120), nullable=False), sa.Column("created_at", TS, nullable=False),
           sa.Column("reviewed_by", sa.String(120), nullable=True), sa.Column("reviewed_at", TS, nullable=True),
           sa.Column("review_note", sa.Text(), nullable=False), unique=("tenant_id", "code", "language", "version"))
    t = "legal_action"
    _table(t, _id(), _fk(t, "tenant_id", "tenant.id"), _fk(t, "case_id", "collection_case.id"),
           sa.Column("kind", sa.String(16), nullable=False), sa.Column("filed_on", sa.Date(), nullable=False),
           sa.Column("court", sa.String(200), nullable=False), sa.Column("case_number", sa.String(100), nullable=False),
           sa.Column("created_by", sa.String(120), nullable=False), sa.Column("created_at", TS, nullable=False),
           sa.Column("withdrawn_at", TS, nullable=True), index=("tenant_id", "case_id"))


def downgrade() -> None:
    for name in ("legal_action", "message_template", "payment_receipt", "pay_link", "approval_request",
                 "complaint_meta", "collection_stop", "case_hold", "allocation_run", "allocation_ruleset"):
        op.drop_table(name)  # dropping a table drops its indexes on both backends
