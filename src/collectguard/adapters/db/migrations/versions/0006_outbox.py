"""transactional outbox: messages to publish, and the consumers' dedupe table

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", ID, nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenant.id", name="fk_outbox_tenant_id_tenant"), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(120), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("publish_attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_pending", "outbox", ["sent_at", "available_at", "id"])
    op.create_table(
        "outbox_consumed",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id", name="pk_outbox_consumed"),
    )


def downgrade() -> None:
    op.drop_table("outbox_consumed")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
