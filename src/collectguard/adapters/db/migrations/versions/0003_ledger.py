"""loan ledger: strategies, work queue, agencies, capacities, assignments, case requests, plan rows

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", ID, nullable=False)


def upgrade() -> None:
    op.create_table(
        "strategy",
        _id(),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenant.id", name="fk_strategy_tenant_id_tenant"),
                  nullable=False),
        sa.Column("jurisdiction", sa.String(2), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_strategy"),
        sa.UniqueConstraint("tenant_id", "jurisdiction", "version",
                            name="uq_strategy_tenant_id_jurisdiction_version"),
    )
    op.create_index("ix_strategy_tenant_id", "strategy", ["tenant_id"])

    op.create_table(
        "work_item",
        _id(),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey("collection_case.id",
                                                name="fk_work_item_case_id_collection_case"), nullable=False),
        # Copies of the case's (no foreign keys: a day's queue is bulk-inserted, see the model).
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("loan_id", ID, nullable=False),
        sa.Column("borrower_id", ID, nullable=False),
        sa.Column("contact_id", ID, sa.ForeignKey("contact.id", name="fk_work_item_contact_id_contact"),
                  nullable=True),
        sa.Column("recipient_key", sa.String(32), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient_role", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("local_time", sa.String(5), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assignee_user_id", ID, sa.ForeignKey("app_user.id",
                                                         name="fk_work_item_assignee_user_id_app_user"),
                  nullable=True),
        sa.Column("agency_tenant_id", ID, sa.ForeignKey("tenant.id",
                                                         name="fk_work_item_agency_tenant_id_tenant"),
                  nullable=True),
        sa.Column("pack", sa.String(48), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_work_item"),
        sa.UniqueConstraint("as_of", "case_id", "step", "recipient_key",
                            name="uq_work_item_as_of_case_id_step_recipient_key"),
    )
    op.create_index("ix_work_item_case_id", "work_item", ["case_id"])
    op.create_index("ix_work_item_day_tenant", "work_item", ["as_of", "tenant_id"])

    op.create_table(
        "agency_contract",
        _id(),
        sa.Column("lender_tenant_id", ID, sa.ForeignKey(
            "tenant.id", name="fk_agency_contract_lender_tenant_id_tenant"), nullable=False),
        sa.Column("agency_tenant_id", ID, sa.ForeignKey(
            "tenant.id", name="fk_agency_contract_agency_tenant_id_tenant"), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("processing_contract", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agency_contract"),
        sa.UniqueConstraint("lender_tenant_id", "agency_tenant_id",
                            name="uq_agency_contract_lender_tenant_id_agency_tenant_id"),
    )

    op.create_table(
        "collector_capacity",
        sa.Column("user_id", ID, sa.ForeignKey("app_user.id", name="fk_collector_capacity_user_id_app_user"),
                  nullable=False),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenant.id", name="fk_collector_capacity_tenant_id_tenant"),
                  nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_collector_capacity"),
    )
    op.create_index("ix_collector_capacity_tenant_id", "collector_capacity", ["tenant_id"])

    op.create_table(
        "case_assignment",
        _id(),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenant.id", name="fk_case_assignment_tenant_id_tenant"),
                  nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey(
            "collection_case.id", name="fk_case_assignment_case_id_collection_case"), nullable=False),
        sa.Column("user_id", ID, sa.ForeignKey("app_user.id", name="fk_case_assignment_user_id_app_user"),
                  nullable=True),
        sa.Column("agency_tenant_id", ID, sa.ForeignKey(
            "tenant.id", name="fk_case_assignment_agency_tenant_id_tenant"), nullable=True),
        sa.Column("assigned_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("borrower_notified_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_assignment"),
    )
    op.create_index("ix_case_assignment_case_id", "case_assignment", ["case_id"])

    op.create_table(
        "case_request",
        _id(),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenant.id", name="fk_case_request_tenant_id_tenant"),
                  nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey(
            "collection_case.id", name="fk_case_request_case_id_collection_case"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_request"),
    )
    op.create_index("ix_case_request_tenant_id", "case_request", ["tenant_id"])
    op.create_index("ix_case_request_case_id", "case_request", ["case_id"])

    op.create_table(
        "plan_installment",
        _id(),
        sa.Column("plan_id", ID, sa.ForeignKey(
            "payment_plan.id", name="fk_plan_installment_plan_id_payment_plan"), nullable=False),
        sa.Column("loan_id", ID, sa.ForeignKey("loan.id", name="fk_plan_installment_loan_id_loan"),
                  nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plan_installment"),
        sa.UniqueConstraint("plan_id", "seq", name="uq_plan_installment_plan_id_seq"),
    )
    op.create_index("ix_plan_installment_loan_id", "plan_installment", ["loan_id"])

    # At most one open case per loan, enforced by the database (resumed or concurrent runs).
    op.create_index("uq_case_open_loan", "collection_case", ["loan_id"], unique=True,
                    sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
    op.create_index("ix_bucket_history_as_of", "bucket_history", ["as_of"])
    if op.get_bind().dialect.name == "postgresql":
        # The daily run rewrites the derived columns of every loan; free space in each page lets
        # PostgreSQL do that as heap-only (HOT) updates without touching the loan indexes.
        op.execute("ALTER TABLE loan SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loan RESET (fillfactor)")
    op.drop_index("ix_bucket_history_as_of", table_name="bucket_history")
    op.drop_index("uq_case_open_loan", table_name="collection_case")
    for table in ("plan_installment", "case_request", "case_assignment", "collector_capacity",
                  "agency_contract", "work_item", "strategy"):
        op.drop_table(table)
