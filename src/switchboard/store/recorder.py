"""Non-blocking call recording: :class:`CallRecorder`, one call's handle on the store's writer.

The bridge calls ``recorder.record_*`` from the audio path; each call only hands an
:data:`~switchboard.store.ops.Op` (a write, as data) to the store's
:class:`~switchboard.store.writer.BatchWriter` and returns. The writer commits them in batches
in the background and rides out a database outage (held in memory, then spooled to a local
file, applied when the database is back: see :mod:`switchboard.store.writer`), so a slow or
absent database never blocks audio, and a crash of the call task loses at most the last
``flush_interval_s`` of records.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from switchboard.cost import CostBreakdown
from switchboard.media import Usage
from switchboard.store import ops
from switchboard.store.models import utcnow
from switchboard.store.writer import BatchWriter
from switchboard.tools.registry import ToolResult

__all__ = ["BatchWriter", "CallRecorder"]


class CallRecorder:
    """Records one call without ever waiting on the database (``store.recorder(call_id)``).

    ``record_*`` methods return at once; :meth:`flush` waits for the writes, :meth:`finalize`
    records the end of the call and flushes.
    """

    def __init__(self, writer: BatchWriter, call_id: str) -> None:
        self._writer = writer
        self.call_id = call_id

    def record_update(self, **fields: Any) -> None:
        """Set call fields (``status``, ``answered_at``, ``provider``, ``model``...).

        Raises:
            StoreError: a field name is not a call field (a programming error, raised at once).
        """
        self._writer.submit(ops.UpdateCall(self.call_id, fields))

    def record_transcript(
        self,
        role: str,
        text: str,
        *,
        started_ms: int | None = None,
        ended_ms: int | None = None,
        interrupted: bool = False,
    ) -> None:
        """An utterance by ``"caller"`` or ``"agent"`` (offsets in ms from the call start)."""
        self._writer.submit(
            ops.AddTranscript(self.call_id, role, text, started_ms, ended_ms, interrupted)
        )

    def record_tool_call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        result: Mapping[str, Any] | None,
        *,
        ok: bool,
        duration_ms: float,
        provider_call_id: str | None = None,
        at: datetime | None = None,
        also: tuple[ops.SingleOp, ...] = (),
    ) -> None:
        """A tool invocation (``result`` is what went back to the model); ``also`` (the
        ``tool.failed`` event) commits with it."""
        self._submit(
            ops.AddToolCall(
                self.call_id,
                name,
                _json(arguments),
                _json(result),
                ok=ok,
                duration_ms=duration_ms,
                provider_call_id=provider_call_id,
                at=at or utcnow(),
            ),
            also,
        )

    def record_tool_result(
        self, result: ToolResult, *, also: tuple[ops.SingleOp, ...] = ()
    ) -> None:
        """Shortcut for :meth:`record_tool_call` from a registry's :class:`ToolResult`."""
        self.record_tool_call(
            result.name,
            result.arguments,
            result.output,
            ok=result.ok,
            duration_ms=result.duration_ms,
            provider_call_id=result.call_id,
            also=also,
        )

    def record_timeline(
        self,
        kind: str,
        data: Mapping[str, Any] | None = None,
        *,
        at: datetime | None = None,
        also: tuple[ops.SingleOp, ...] = (),
    ) -> None:
        """A lifecycle event (``answered``, ``barge_in``...); ``data`` is made JSON-safe.
        ``also`` (a webhook event reporting it) commits with it."""
        self._submit(ops.AddTimeline(self.call_id, kind, _json(data), at or utcnow()), also)

    def record_turn_latency(self, turn: int, latency_ms: float) -> None:
        """Caller stopped speaking → first agent audio, for turn number ``turn``."""
        self._writer.submit(ops.AddTurnLatency(self.call_id, turn, latency_ms))

    def _submit(self, op: ops.SingleOp, also: tuple[ops.SingleOp, ...]) -> None:
        self._writer.submit(ops.Group((op, *also)) if also else op)

    def record(self, op: ops.Op) -> None:
        """Queue any op (e.g. an :class:`~switchboard.store.ops.Group` of a change and the
        webhook event reporting it, which commit together)."""
        self._writer.submit(op)

    async def flush(self) -> None:
        """Wait until everything recorded so far is committed."""
        await self._writer.flush()

    async def finalize(
        self,
        status: str,
        end_reason: str | None,
        usage: Usage | None = None,
        cost: CostBreakdown | None = None,
        *,
        error: str | None = None,
        ended_at: datetime | None = None,
        also: tuple[ops.SingleOp, ...] = (),
    ) -> None:
        """Record the end of the call (status, reason, usage, cost, duration) and flush.

        ``also`` (the ``call.ended`` event, the analysis request) commit with the end or not.
        """
        final = ops.FinalizeCall(
            self.call_id, status, end_reason, usage, cost, error, ended_at or utcnow()
        )
        self._submit(final, also)
        await self._writer.flush()


def _json(data: Mapping[str, Any] | None) -> dict[str, Any]:
    if data is None:
        return {}
    safe = to_jsonable_python(dict(data), fallback=repr)
    return safe if isinstance(safe, dict) else {"value": safe}
