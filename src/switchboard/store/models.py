"""SQLAlchemy tables for call records (the schema Alembic's migrations create).

Besides the records, ``webhook_outbox`` holds each webhook event to deliver, one row per event
and receiver URL, written in the transaction that records what the event reports
(docs/integrations.md#delivery).

Timestamps are stored as UTC and always read back timezone-aware (SQLite keeps no offset, so
:class:`UTCDateTime` normalises both ways). JSON columns hold plain dicts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "CallRow",
    "OutboxRow",
    "TimelineRow",
    "ToolCallRow",
    "TranscriptRow",
    "TurnLatencyRow",
    "UTCDateTime",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (naive values are taken as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the call-record tables."""


class CallRow(Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_carrier_call", "carrier", "carrier_call_id"),
        Index("ix_calls_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    carrier: Mapped[str | None] = mapped_column(String(32))
    carrier_call_id: Mapped[str | None] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    #: The provider serving the call now (at its end: the one that ended it).
    provider: Mapped[str | None] = mapped_column(String(32), index=True)
    #: Every provider that served the call, in order (a failover adds one; docs/failover.md).
    providers: Mapped[list[str] | None] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(128))
    agent: Mapped[str | None] = mapped_column(String(64), index=True)
    from_number: Mapped[str | None] = mapped_column(String(64))
    to_number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), index=True)
    end_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cost: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cost_total: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Post-call analysis: the request while pending, then its result (integrations/analysis).
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: pending, running, done, not_analysed or failed; None when the agent asks for none.
    analysis_status: Mapped[str | None] = mapped_column(String(16), index=True)
    #: When a pending analysis is due, or when a running one's lease ends (then it is retaken).
    analysis_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TranscriptRow(Base):
    __tablename__ = "transcript_entries"
    __table_args__ = (Index("ix_transcript_call_seq", "call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    started_ms: Mapped[int | None] = mapped_column(Integer)
    ended_ms: Mapped[int | None] = mapped_column(Integer)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)


class ToolCallRow(Base):
    __tablename__ = "tool_calls"
    __table_args__ = (Index("ix_tool_calls_call_seq", "call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    provider_call_id: Mapped[str | None] = mapped_column(String(128))
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ok: Mapped[bool] = mapped_column(Boolean)
    duration_ms: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class TimelineRow(Base):
    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_call_seq", "call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TurnLatencyRow(Base):
    __tablename__ = "turn_latencies"
    __table_args__ = (Index("ix_turn_latencies_call_turn", "call_id", "turn"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)


class OutboxRow(Base):
    """One webhook event to deliver to one URL (the outbox; ``integrations/delivery.py``).

    ``event_id`` is the ``webhook-id`` every attempt carries (the same for every URL the event
    goes to); ``seq`` orders a call's events, which each URL receives in that order.
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        UniqueConstraint("event_id", "url", name="uq_webhook_outbox_event_url"),
        Index("ix_webhook_outbox_due", "status", "next_attempt_at"),
        Index("ix_webhook_outbox_call", "call_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))
    #: The JSON body exactly as every attempt sends it (signatures cover these bytes).
    body: Mapped[str] = mapped_column(Text)
    #: pending, delivered or failed (gave up; ``POST .../retry`` makes it pending again).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: A worker sending it holds it until then; a crashed worker's claim lapses.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
