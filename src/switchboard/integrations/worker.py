"""The background loop shared by the integrations' workers (webhook delivery, analyses).

A :class:`PollingWorker` looks at a queue in the database, does what is due, then sleeps until
the next item is due, ``poll_interval_s`` passes, or :meth:`~PollingWorker.wake` is called.
The database being down is logged and retried; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from datetime import datetime

__all__ = ["PollingWorker"]


class PollingWorker(ABC):
    """A task that runs :meth:`run_once` whenever work may be due.

    Subclasses set ``poll_interval_s``, ``_clock`` and ``_queue_name`` and implement
    :meth:`run_once`, :meth:`next_due` and (optionally) :meth:`_more_may_be_due`.
    """

    poll_interval_s: float
    _queue_name: str = "queue"
    _task_name: str = "switchboard-worker"

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Times the worker has looked at its queue and gone to sleep.
        self.sleeps = 0

    @abstractmethod
    async def run_once(self) -> int:
        """Do the work due now; returns how many items were taken."""

    @abstractmethod
    async def next_due(self) -> datetime | None:
        """When the next item is due (None: nothing is queued)."""

    @abstractmethod
    def _now(self) -> datetime:
        """Now, timezone-aware (tests move it)."""

    def _more_may_be_due(self, taken: int) -> bool:
        """Whether to look again at once after taking ``taken`` items."""
        return taken > 0

    def start(self) -> None:
        """Start the background task (in the running loop); idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._task_name)

    def wake(self) -> None:
        """Look at the queue now (something was just written)."""
        self._wake.set()

    async def _stop_task(self) -> None:
        """Cancel the task and wait for it; an item in flight is abandoned (its lease lapses)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the caller itself was cancelled: say so, do not swallow it
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                if self._more_may_be_due(await self.run_once()):
                    continue
                wait = self.poll_interval_s
                due = await self.next_due()
                if due is not None:
                    wait = min(wait, max(0.0, (due - self._now()).total_seconds()))
            except Exception as exc:  # the database is down: try again later, keep running
                logging.getLogger(type(self).__module__).warning(
                    "%s unavailable: %s", self._queue_name, type(exc).__name__
                )
                wait = self.poll_interval_s
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands as
            # the wake event is set (aclose right after wake()), and the task would run on.
            self.sleeps += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
