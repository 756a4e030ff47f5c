"""Non-blocking call recording: :class:`CallRecorder` in front of one background writer.

Theory of operation: the bridge calls ``recorder.record_*`` from the audio path; each call only
appends an :data:`~switchboard.store.ops.Op` (a write, as data) to an in-memory queue and
returns. One :class:`BatchWriter` task per store drains the queue::

    wait for the first op ─▶ wait until flush_interval_s passes or a flush() is requested
          ▲                          │
          │                          ▼
          └──────────── apply every queued op in ONE transaction (writes.apply_batch)
                                     │ the batch failed?
                                     ▼
                         retry each op in its own transaction (one bad op loses only itself),
                         log and count failures; then wake flush() waiters

So a crash of the call task loses at most the last ``flush_interval_s`` of records, and the
record stays readable with everything before it. Write failures never reach the caller: they
are logged and kept in :attr:`BatchWriter.errors`. When more than ``max_pending`` ops wait
(the database is down or too slow), new ones are dropped and counted, never blocking audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.cost import CostBreakdown
from switchboard.media import Usage
from switchboard.store import ops
from switchboard.store.models import utcnow
from switchboard.store.writes import apply_batch
from switchboard.tools.registry import ToolResult

__all__ = ["BatchWriter", "CallRecorder"]

logger = logging.getLogger(__name__)


class _Barrier:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class BatchWriter:
    """The background task applying queued ops in batched transactions (one per store).

    Attributes:
        errors: messages of ops that could not be written (most recent last, at most 100).
        dropped: ops dropped because ``max_pending`` were already waiting.
        batches: transactions committed so far.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        flush_interval_s: float = 0.5,
        max_pending: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._queue: asyncio.Queue[ops.Op | _Barrier] | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.errors: list[str] = []
        self.dropped = 0
        self.batches = 0

    def _start(self) -> asyncio.Queue[ops.Op | _Barrier]:
        if self._queue is None or self._task is None or self._task.done():
            self._queue = self._queue or asyncio.Queue()
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(self._queue, self._wake), name="switchboard-store-writer"
            )
        return self._queue

    def submit(self, op: ops.Op) -> None:
        """Queue ``op`` (never waits); dropped with a warning when closed or over capacity."""
        if self._closed:
            self.dropped += 1
            logger.warning("store writer closed; dropped a record")
            return
        queue = self._start()
        if queue.qsize() >= self._max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("store writer backlog full; %d records dropped", self.dropped)
            return
        queue.put_nowait(op)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (or has failed and been logged)."""
        if self._queue is None:
            return
        queue = self._start()
        barrier = _Barrier()
        queue.put_nowait(barrier)
        if self._wake is not None:
            self._wake.set()
        await asyncio.shield(barrier.done)

    async def aclose(self) -> None:
        """Flush, then stop the task. Later ``submit`` calls are dropped."""
        await self.flush()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, queue: asyncio.Queue[ops.Op | _Barrier], wake: asyncio.Event) -> None:
        while True:
            batch: list[ops.Op | _Barrier] = [await queue.get()]
            if not isinstance(batch[0], _Barrier) and not wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._interval)
            wake.clear()
            while not queue.empty():
                batch.append(queue.get_nowait())
            await self._apply(batch)

    async def _apply(self, batch: list[ops.Op | _Barrier]) -> None:
        work = [item for item in batch if not isinstance(item, _Barrier)]
        try:
            if work:
                try:
                    await apply_batch(self._sessions, work)
                    self.batches += 1
                except Exception:
                    logger.debug("batch of %d records failed; retrying one by one", len(work))
                    for op in work:
                        await self._apply_one(op)
        finally:
            for item in batch:
                if isinstance(item, _Barrier) and not item.done.done():
                    item.done.set_result(None)

    async def _apply_one(self, op: ops.Op) -> None:
        try:
            await apply_batch(self._sessions, [op])
            self.batches += 1
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            logger.error("could not write a call record: %s", message)
            self.errors = [*self.errors[-99:], message]


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
    ) -> None:
        """A tool invocation (``result`` is what went back to the model)."""
        self._writer.submit(
            ops.AddToolCall(
                self.call_id,
                name,
                _json(arguments),
                _json(result),
                ok=ok,
                duration_ms=duration_ms,
                provider_call_id=provider_call_id,
                at=at or utcnow(),
            )
        )

    def record_tool_result(self, result: ToolResult) -> None:
        """Shortcut for :meth:`record_tool_call` from a registry's :class:`ToolResult`."""
        self.record_tool_call(
            result.name,
            result.arguments,
            result.output,
            ok=result.ok,
            duration_ms=result.duration_ms,
            provider_call_id=result.call_id,
        )

    def record_timeline(
        self, kind: str, data: Mapping[str, Any] | None = None, *, at: datetime | None = None
    ) -> None:
        """A lifecycle event (``answered``, ``barge_in``...); ``data`` is made JSON-safe."""
        self._writer.submit(ops.AddTimeline(self.call_id, kind, _json(data), at or utcnow()))

    def record_turn_latency(self, turn: int, latency_ms: float) -> None:
        """Caller stopped speaking → first agent audio, for turn number ``turn``."""
        self._writer.submit(ops.AddTurnLatency(self.call_id, turn, latency_ms))

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
        self._writer.submit(ops.Group((final, *also)) if also else final)
        await self._writer.flush()


def _json(data: Mapping[str, Any] | None) -> dict[str, Any]:
    if data is None:
        return {}
    safe = to_jsonable_python(dict(data), fallback=repr)
    return safe if isinstance(safe, dict) else {"value": safe}
