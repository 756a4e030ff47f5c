"""The store's background writer: queued ops applied in batched transactions, riding out a
database outage without losing a record or blocking a call.

Theory of operation. Recorders :meth:`~BatchWriter.submit` ops (never waiting); one task per
store applies them::

    wait for the first op ─▶ wait until flush_interval_s passes or a flush() is requested
          ▲                          │
          │                          ▼
          └──── apply up to max_batch queued ops in ONE transaction (writes.apply_batch)
                          │ failed because an op cannot apply?   │ the database is unreachable?
                          ▼                                      ▼
          retry op by op: a bad op is logged      hold the batch; retry it with backoff
          and lost alone                          (0.2 s doubling to 5 s) until it commits

While a batch is held (an *outage*), calls go on: new ops wait in memory up to
``max_pending``; beyond that they are appended to the :class:`~switchboard.store.spool.Spool`
(a local file), and once anything is spooled every later op is too, so order is kept: held
batch → memory queue → spool. When the database answers again all of it is applied in that
order. :meth:`~BatchWriter.flush` returns at once during an outage (what it waited for is held,
not lost), so ending a call never waits on the database. :meth:`~BatchWriter.aclose` appends
whatever is still held or queued to the spool; the next writer with the same spool directory
adopts the file and applies it. Without a spool directory the writer drops (and counts) ops
beyond ``max_pending``, and what is held at close is lost (logged).

"Unreachable" (:func:`unreachable`) is a network error, a timeout, a connection the driver
reports lost, or an operational error such as SQLite's "database is locked": anything a retry
can cure. Everything else (a constraint violation, an update of an unknown call) is a bad op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.store import ops
from switchboard.store.spool import Spool
from switchboard.store.writes import apply_batch

__all__ = ["BatchWriter", "unreachable"]

logger = logging.getLogger(__name__)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (a retry may succeed)."""
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return False


class _Barrier:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class _Nudge:
    """Wakes the writer when ops went to the spool while it waited on an empty queue."""

    __slots__ = ()


_Item = ops.Op | _Barrier | _Nudge


class BatchWriter:
    """The background task applying queued ops (one per store; see the module docstring).

    Args:
        sessions: the store's session factory.
        flush_interval_s: longest an op waits before its batch is committed.
        max_pending: ops kept in memory; beyond it they are spooled (or dropped without a spool).
        spool: where ops overflow to during an outage; None keeps them in memory only.
        max_batch: ops per transaction at most.
        retry_s: (first, longest) wait between attempts while the database is unreachable.

    Attributes:
        errors: messages of ops that could not be written (most recent last, at most 100).
        dropped: ops lost: over ``max_pending`` without a spool, or submitted after close.
        spooled: ops written to the spool file so far.
        batches: transactions committed so far.
        outages: times the database became unreachable.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        flush_interval_s: float = 0.5,
        max_pending: int = 10_000,
        spool: Spool | None = None,
        max_batch: int = 500,
        retry_s: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self._sessions = sessions
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._spool = spool
        self._max_batch = max_batch
        self._retry_s = retry_s
        self._queue: asyncio.Queue[_Item] | None = None
        self._wake: asyncio.Event | None = None
        self._degraded: asyncio.Event | None = None  # set while the database is unreachable
        self._task: asyncio.Task[None] | None = None
        self._held: list[ops.Op] = []  # the batch the database could not take: first in line
        self._inflight: list[ops.Op] = []  # the batch being applied right now
        self._spooling = False  # ops go to the spool until it is drained (keeps the order)
        self._closed = False
        self.errors: list[str] = []
        self.dropped = 0
        self.spooled = 0
        self.batches = 0
        self.outages = 0
        if spool is not None and spool.adopt():
            self._spooling = True  # a previous run's writes come first

    @property
    def outage(self) -> bool:
        """Whether writes are waiting for the database to come back."""
        return self._degraded is not None and self._degraded.is_set()

    @property
    def pending(self) -> int:
        """Ops not yet committed: held, queued and in flight (spooled ones not counted)."""
        queued = self._queue.qsize() if self._queue is not None else 0
        return len(self._held) + len(self._inflight) + queued

    def resume(self) -> None:
        """Start applying what a previous run spooled, if anything (the store calls this once
        the schema is ready); otherwise the task starts with the first op."""
        if self._spool is not None and not self._spool.empty and not self._closed:
            self._start().put_nowait(_Nudge())

    def _start(self) -> asyncio.Queue[_Item]:
        if self._queue is None or self._task is None or self._task.done():
            self._queue = self._queue or asyncio.Queue()
            self._wake = asyncio.Event()
            self._degraded = self._degraded or asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(self._queue, self._wake), name="switchboard-store-writer"
            )
        return self._queue

    def submit(self, op: ops.Op) -> None:
        """Queue ``op`` (never waits): memory, else the spool, else dropped and counted."""
        if self._closed:
            self.dropped += 1
            logger.warning("store writer closed; dropped a record")
            return
        queue = self._start()
        if self._spool is not None and (self._spooling or queue.qsize() >= self._max_pending):
            self._to_spool([op])
            if queue.empty():
                queue.put_nowait(_Nudge())
            return
        if queue.qsize() >= self._max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("store writer backlog full; %d records dropped", self.dropped)
            return
        queue.put_nowait(op)

    def _to_spool(self, batch: list[ops.Op]) -> None:
        assert self._spool is not None
        try:
            self._spool.append(batch)
        except OSError as exc:
            self.dropped += len(batch)
            logger.error("cannot spool %d call-record writes: %s", len(batch), exc)
            return
        if not self._spooling:
            logger.warning("database writes backed up: spooling to %s", self._spool.directory)
        self._spooling = True
        self.spooled += len(batch)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed, or failed and logged, or held
        because the database is unreachable (then at once: nothing waits on an outage)."""
        if self._queue is None or self.outage:
            return
        queue = self._start()
        barrier = _Barrier()
        queue.put_nowait(barrier)
        if self._wake is not None:
            self._wake.set()
        assert self._degraded is not None
        degraded: asyncio.Future[Any] = asyncio.ensure_future(self._degraded.wait())
        done: asyncio.Future[Any] = asyncio.shield(barrier.done)
        try:
            await asyncio.wait([done, degraded], return_when=asyncio.FIRST_COMPLETED)
        finally:
            degraded.cancel()

    async def aclose(self) -> None:
        """Flush, stop the task, and spool what is still held or queued (lost, and logged,
        without a spool). Later ``submit`` calls are dropped."""
        await self.flush()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        left = [*self._held, *self._inflight]
        while self._queue is not None and not self._queue.empty():
            item = self._queue.get_nowait()
            if not isinstance(item, _Barrier | _Nudge):
                left.append(item)
            elif isinstance(item, _Barrier) and not item.done.done():
                item.done.set_result(None)
        self._held, self._inflight = [], []
        if left and self._spool is not None:
            self._to_spool(left)
            logger.warning("%d call-record writes spooled for the next start", len(left))
        elif left:
            self.dropped += len(left)
            logger.error("database unreachable at shutdown: %d call-record writes lost", len(left))
        if self._spool is not None:
            self._spool.close()

    # -- the task ----------------------------------------------------------------------------------
    async def _run(self, queue: asyncio.Queue[_Item], wake: asyncio.Event) -> None:
        while True:
            if self._held:
                await self._recover()
                continue
            if queue.empty() and self._spool is not None and not self._spool.empty:
                await self._drain_spool()
                continue
            batch: list[_Item] = [await queue.get()]
            if not isinstance(batch[0], _Barrier) and not wake.is_set():
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # lands as ``wake`` is set (close() does both), and the writer never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await wake.wait()
            wake.clear()
            while not queue.empty() and len(batch) < self._max_batch:
                batch.append(queue.get_nowait())
            await self._apply(batch)

    async def _apply(self, batch: Sequence[_Item]) -> None:
        work = [item for item in batch if not isinstance(item, _Barrier | _Nudge)]
        self._inflight = work
        try:
            left = await self._commit(work)
            if left:
                self._held = left
                self._enter_outage(len(left))
        finally:
            self._inflight = []
            for item in batch:
                if isinstance(item, _Barrier) and not item.done.done():
                    item.done.set_result(None)

    async def _commit(self, work: list[ops.Op]) -> list[ops.Op]:
        """Apply ``work``; returns the part left because the database is unreachable."""
        if not work:
            return []
        try:
            await apply_batch(self._sessions, work)
            self.batches += 1
            return []
        except Exception as exc:
            if unreachable(exc):
                return work
            logger.debug("batch of %d records failed; retrying one by one", len(work))
        for index, op in enumerate(work):
            try:
                await apply_batch(self._sessions, [op])
                self.batches += 1
            except Exception as exc:
                if unreachable(exc):
                    return work[index:]
                message = f"{type(exc).__name__}: {exc}"
                logger.error("could not write a call record: %s", message)
                self.errors = [*self.errors[-99:], message]
        return []

    def _enter_outage(self, held: int) -> None:
        assert self._degraded is not None
        if self._degraded.is_set():
            return
        self._degraded.set()
        self.outages += 1
        logger.error("database unreachable: %d call-record writes held; calls go on", held)

    def _leave_outage(self) -> None:
        assert self._degraded is not None
        if self._degraded.is_set():
            self._degraded.clear()
            logger.warning("database reachable again: held call-record writes committed")

    async def _until_committed(self, left: list[ops.Op], *, hold: bool) -> None:
        """Retry ``left`` with backoff until the database takes it (``hold``: keep it in
        :attr:`_held`, where close spools it; spooled ops are already on disk)."""
        delay, longest = self._retry_s
        while left:
            if hold:
                self._held = left
            self._enter_outage(len(left))
            await asyncio.sleep(delay)
            left = await self._commit(left)
            delay = min(delay * 2, longest)
        self._held = []
        self._leave_outage()

    async def _recover(self) -> None:
        await self._until_committed(self._held, hold=True)

    async def _drain_spool(self) -> None:
        """Apply the spool's oldest ops (memory is empty, so they are next in order)."""
        assert self._spool is not None
        batch, mark = self._spool.read(self._max_batch)
        await self._until_committed(await self._commit(batch), hold=False)
        self._spool.consumed(mark)
        if self._spool.empty:
            self._spooling = False
            logger.warning("spooled call-record writes all committed")
