"""A bounded queue whose writer never waits: what live streams hand to their subscribers.

A live event stream (the console's ``/v1/events``, a cluster channel) must not let one slow
reader hold up the call that produces the events, nor grow without bound for it. Here the
oldest item goes when the queue is full, counted in :attr:`DroppingQueue.dropped`, and the
reader waits with a timeout (so that it can send keep-alives, or notice it should stop).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["DroppingQueue"]

T = TypeVar("T")


class DroppingQueue(Generic[T]):
    """At most ``maxlen`` items; :meth:`put` never waits, :meth:`get` waits for the next.

    Args:
        maxlen: how many items wait at most before the oldest is dropped.
    """

    def __init__(self, maxlen: int) -> None:
        self.dropped = 0  # items lost because the reader was too slow
        self._queue: deque[T] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: T) -> None:
        """Queue ``item``, dropping the oldest when full; never waits."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1  # the deque drops the oldest as the new one goes in
        self._queue.append(item)
        self._ready.set()

    def end(self, error: BaseException) -> None:
        """No more items will come: once the queue is empty, :meth:`get` raises ``error``."""
        self._failure = error
        self._ready.set()

    async def get(self, timeout_s: float | None = None) -> T | None:
        """The next item; None when none came within ``timeout_s``.

        Raises:
            BaseException: the error given to :meth:`end`, once nothing is left to read.
        """
        while not self._queue:
            if self._failure is not None:
                raise self._failure
            self._ready.clear()
            try:
                # asyncio.timeout: wait_for on 3.11 may swallow the reader's cancellation
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()
