"""Call records: calls, transcripts, tool calls, timelines, latencies, usage and cost.

:class:`CallStore` (SQLAlchemy 2 async; SQLite by default, PostgreSQL by URL, Alembic
migrations packaged in ``store/migrations``) and the per-call non-blocking
:class:`CallRecorder` the bridge writes through.
"""

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
from switchboard.store.store import MAX_PAGE, CallStore, normalise_database_url

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
