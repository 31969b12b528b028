"""call and chat QA: results (encrypted transcripts, sampling) and human reviews

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "qa_result",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenant.id", name="fk_qa_result_tenant_id_tenant"), nullable=False),
        sa.Column("transcript_ref", sa.String(128), nullable=True),
        sa.Column("case_id", ID, sa.ForeignKey("collection_case.id", name="fk_qa_result_case_id_collection_case"),
                  nullable=True),
        sa.Column("collector_ref", sa.String(120), nullable=True),
        sa.Column("jurisdiction", sa.String(2), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("call_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("findings_count", sa.Integer(), nullable=False),
        sa.Column("rules", sa.String(500), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("transcript_sha256", sa.String(64), nullable=False),
        sa.Column("transcript_enc", sa.LargeBinary(), nullable=False),
        sa.Column("sampled", sa.Boolean(), nullable=False),
        sa.Column("sample_reason", sa.String(16), nullable=True),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_qa_result"),
        sa.UniqueConstraint("tenant_id", "transcript_sha256", name="uq_qa_result_tenant_id_transcript_sha256"),
    )
    op.create_index("ix_qa_result_case_id", "qa_result", ["case_id"])
    op.create_index("ix_qa_result_tenant_sampled", "qa_result", ["tenant_id", "sampled"])
    op.create_index("ix_qa_result_tenant_collector", "qa_result", ["tenant_id", "collector_ref"])

    op.create_table(
        "qa_review",
        sa.Column("id", ID, nullable=False),
        sa.Column("tenant_id", ID, sa.ForeignKey("tenant.id", name="fk_qa_review_tenant_id_tenant"), nullable=False),
        sa.Column("qa_result_id", ID, sa.ForeignKey("qa_result.id", ondelete="CASCADE",
                                                    name="fk_qa_review_qa_result_id_qa_result"), nullable=False),
        sa.Column("reviewer", sa.String(120), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_qa_review"),
    )
    op.create_index("ix_qa_review_tenant_id", "qa_review", ["tenant_id"])
    op.create_index("ix_qa_review_qa_result_id", "qa_review", ["qa_result_id"])


def downgrade() -> None:
    op.drop_index("ix_qa_review_qa_result_id", table_name="qa_review")
    op.drop_index("ix_qa_review_tenant_id", table_name="qa_review")
    op.drop_table("qa_review")
    op.drop_index("ix_qa_result_tenant_collector", table_name="qa_result")
    op.drop_index("ix_qa_result_tenant_sampled", table_name="qa_result")
    op.drop_index("ix_qa_result_case_id", table_name="qa_result")
    op.drop_table("qa_result")
