"""Call records: calls, transcripts, tool calls, timelines, latencies, usage and cost.

:class:`CallStore` (SQLAlchemy 2 async; SQLite by default, PostgreSQL by URL, Alembic
migrations packaged in ``store/migrations``) and the per-call non-blocking
:class:`CallRecorder` the bridge writes through. Every write is an op (``ops.py``) applied by
``writes.apply_batch``, one transaction per batch.
"""

from switchboard.store.engine import normalise_database_url
from switchboard.store.recorder import BatchWriter, CallRecorder
from switchboard.store.records import (
    CallDetail,
    CallPage,
    CallRecord,
    CallStatus,
    TimelineEvent,
    ToolCallRecord,
    TranscriptEntry,
    TurnLatency,
    UsageRow,
    normalise_status,
)
from switchboard.store.store import MAX_PAGE, CallStore

__all__ = [
    "MAX_PAGE",
    "BatchWriter",
    "CallDetail",
    "CallPage",
    "CallRecord",
    "CallRecorder",
    "CallStatus",
    "CallStore",
    "TimelineEvent",
    "ToolCallRecord",
    "TranscriptEntry",
    "TurnLatency",
    "UsageRow",
    "normalise_database_url",
    "normalise_status",
]
