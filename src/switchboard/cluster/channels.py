"""Passing messages between nodes that nobody has to keep: the cluster's channels.

The inbox (``NodeInbox``) carries what must arrive — a hang-up, a carrier event. Some traffic
is the opposite: a live call's transcript lines for the consoles of other nodes, or the audio of
a call an operator listens to on another node. It is worth something only now, only to whoever
is listening now, and must never pile up anywhere. That is a channel: :meth:`publish` hands a
message to every current subscriber of a channel and says how many there were (0: nobody
listens, so the publisher can stop); a subscriber reads from its own bounded queue
(:class:`ChannelReader`), whose *oldest* messages are dropped when it reads too slowly.

In Redis a channel is pub/sub (``PUBLISH`` / ``SUBSCRIBE`` on ``{prefix}:chan:<name>``,
``redis_channels.py``): nothing is stored, a message published while a subscriber reconnects is
lost (acceptable here, and the reason commands use streams instead). In memory it is a set of
readers per name in the :class:`~switchboard.cluster.memory.MemoryHub`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from switchboard.cluster.records import check_name
from switchboard.errors import ClusterUnavailable

__all__ = [
    "DEFAULT_READER_MAXLEN",
    "ChannelReader",
    "Channels",
    "memory_publish",
    "memory_subscribe",
]

#: How many messages wait in one reader before its oldest are dropped.
DEFAULT_READER_MAXLEN = 256


class ChannelReader:
    """One subscriber's bounded queue of messages (the oldest go first when it is full).

    Args:
        maxlen: how many messages wait at most.
    """

    def __init__(self, maxlen: int = DEFAULT_READER_MAXLEN) -> None:
        self.dropped = 0  # messages lost because this reader was too slow
        self._queue: deque[bytes] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self._failure: str | None = None

    def offer(self, data: bytes) -> None:
        """Queue ``data``, never waiting."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(data)
        self._ready.set()

    def fail(self, reason: str) -> None:
        """The subscription broke (the shared store went away): :meth:`get` raises."""
        self._failure = reason
        self._ready.set()

    async def get(self, timeout_s: float | None = None) -> bytes | None:
        """The next message; None when none came within ``timeout_s``.

        Raises:
            ClusterUnavailable: the subscription broke and nothing is left to read.
        """
        while not self._queue:
            if self._failure is not None:
                raise ClusterUnavailable(self._failure)
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()

    def get_nowait(self) -> bytes | None:
        """The next message if one waits, else None."""
        return self._queue.popleft() if self._queue else None


#: channel name → its readers: one process's channels (a ``MemoryHub``'s ``channels``)
Channels = dict[str, set[ChannelReader]]


def memory_publish(channels: Channels, channel: str, data: bytes) -> int:
    """Offer ``data`` to every reader of ``channel`` in ``channels``; how many there are."""
    readers = channels.get(check_name(channel, "channel"), ())
    for reader in readers:
        reader.offer(data)
    return len(readers)


@asynccontextmanager
async def memory_subscribe(
    channels: Channels, channel: str, maxlen: int = DEFAULT_READER_MAXLEN
) -> AsyncIterator[ChannelReader]:
    """A reader of ``channel`` in ``channels`` for the ``with`` block."""
    name = check_name(channel, "channel")
    reader = ChannelReader(maxlen)
    channels.setdefault(name, set()).add(reader)
    try:
        yield reader
    finally:
        readers = channels.get(name)
        if readers is not None:
            readers.discard(reader)
            if not readers:
                del channels[name]
