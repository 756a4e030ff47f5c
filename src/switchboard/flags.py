"""A flag tasks wait on, allocating nothing until one does: ``asyncio.Event`` for per-call use.

Every call holds a few events for its whole life (the timer loop's wakeup, the end of the call,
the provider's readiness, the failover watch's poke). ``asyncio.Event`` on Python 3.11 makes a
``collections.deque`` for its waiters when it is created, ~760 bytes with its block, whether or
not anything ever waits: 4–5 kB a call (``tracemalloc``, issue #23's memory target). A
:class:`Flag` keeps a list of waiters only while some task waits.
"""

from __future__ import annotations

import asyncio
from typing import Literal

__all__ = ["Flag"]


class Flag:
    """``asyncio.Event``'s ``set``/``clear``/``is_set``/``wait``, with the same meaning: ``wait``
    returns at once while the flag is set, else when it is next set (even if it is cleared again
    before the waiter runs); a cancelled ``wait`` leaves nothing behind."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        waiting = len(self._waiters) if self._waiters else 0
        return f"<Flag {'set' if self._set else 'unset'}, {waiting} waiting>"

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Set the flag and wake every task waiting on it."""
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for future in waiters or ():
            if not future.done():
                future.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> Literal[True]:
        """Wait until the flag is set; returns True (as ``asyncio.Event.wait``)."""
        if self._set:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(future)
        try:
            await future
        finally:
            if self._waiters is not None and future in self._waiters:
                self._waiters.remove(future)  # cancelled: not woken by set()
        return True
