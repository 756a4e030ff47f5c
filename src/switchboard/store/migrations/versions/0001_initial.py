"""Initial call-record schema: calls, transcript entries, tool calls, timeline, turn latencies.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _call_fk() -> sa.Column[str]:
    return sa.Column(
        "call_id", sa.String(64), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("carrier", sa.String(32), nullable=True),
        sa.Column("carrier_call_id", sa.String(128), nullable=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("from_number", sa.String(64), nullable=True),
        sa.Column("to_number", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("answered_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("usage", sa.JSON(), nullable=True),
        sa.Column("cost", sa.JSON(), nullable=True),
        sa.Column("cost_total", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
    )
    op.create_index("ix_calls_carrier_call", "calls", ["carrier", "carrier_call_id"])
    op.create_index("ix_calls_created", "calls", ["created_at", "id"])
    op.create_index("ix_calls_provider", "calls", ["provider"])
    op.create_index("ix_calls_agent", "calls", ["agent"])
    op.create_index("ix_calls_status", "calls", ["status"])

    op.create_table(
        "transcript_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _call_fk(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("started_ms", sa.Integer(), nullable=True),
        sa.Column("ended_ms", sa.Integer(), nullable=True),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_transcript_call_seq", "transcript_entries", ["call_id", "seq"])

    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _call_fk(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("provider_call_id", sa.String(128), nullable=True),
        sa.Column("arguments", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_tool_calls_call_seq", "tool_calls", ["call_id", "seq"])

    op.create_table(
        "timeline_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _call_fk(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
    )
    op.create_index("ix_timeline_call_seq", "timeline_events", ["call_id", "seq"])

    op.create_table(
        "turn_latencies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _call_fk(),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_turn_latencies_call_turn", "turn_latencies", ["call_id", "turn"])


def downgrade() -> None:
    for table in ("turn_latencies", "timeline_events", "tool_calls", "transcript_entries"):
        op.drop_table(table)
    op.drop_table("calls")
