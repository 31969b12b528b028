"""audit checkpoints and subject index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoint")),
        sa.UniqueConstraint("chain", "seq", name=op.f("uq_audit_checkpoint_chain_seq")),
    )
    with op.batch_alter_table("audit_record") as batch:
        batch.create_index("ix_audit_record_subject", ["subject"])


def downgrade() -> None:
    with op.batch_alter_table("audit_record") as batch:
        batch.drop_index("ix_audit_record_subject")
    op.drop_table("audit_checkpoint")
