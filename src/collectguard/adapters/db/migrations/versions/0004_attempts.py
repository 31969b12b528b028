"""contact attempts: borrower flags (cease / attorney / employer) and attempt purpose

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "borrower_flag",
        sa.Column("id", ID, nullable=False),
        sa.Column(
            "tenant_id",
            ID,
            sa.ForeignKey("tenant.id", name="fk_borrower_flag_tenant_id_tenant"),
            nullable=False,
        ),
        sa.Column(
            "borrower_id",
            ID,
            sa.ForeignKey("borrower.id", name="fk_borrower_flag_borrower_id_borrower"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("set_by", sa.String(120), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_borrower_flag"),
    )
    op.create_index("ix_borrower_flag_borrower_kind", "borrower_flag", ["borrower_id", "kind"])

    op.create_table(
        "attempt_meta",
        sa.Column(
            "attempt_id",
            ID,
            sa.ForeignKey(
                "contact_attempt.id", ondelete="CASCADE", name="fk_attempt_meta_attempt_id_contact_attempt"
            ),
            nullable=False,
        ),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column(
            "agency_tenant_id",
            ID,
            sa.ForeignKey("tenant.id", name="fk_attempt_meta_agency_tenant_id_tenant"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_attempt_meta"),
    )


def downgrade() -> None:
    op.drop_table("attempt_meta")
    op.drop_index("ix_borrower_flag_borrower_kind", table_name="borrower_flag")
    op.drop_table("borrower_flag")
