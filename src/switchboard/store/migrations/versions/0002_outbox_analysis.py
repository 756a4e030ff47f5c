"""Webhook outbox and post-call analysis: the ``webhook_outbox`` table, ``calls.analysis*``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # SQLite alters by copying the table
        batch.add_column(sa.Column("analysis", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("analysis_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("analysis_due_at", _TS, nullable=True))
    op.create_index("ix_calls_analysis_status", "calls", ["analysis_status"])

    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column(
            "call_id",
            sa.String(64),
            sa.ForeignKey("calls.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("last_attempt_at", _TS, nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("event_id", "url", name="uq_webhook_outbox_event_url"),
    )
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_outbox_call", "webhook_outbox", ["call_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_index("ix_calls_analysis_status", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("analysis_due_at")
        batch.drop_column("analysis_status")
        batch.drop_column("analysis")
