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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from switchboard.cluster.records import check_name
from switchboard.errors import ClusterUnavailable
from switchboard.queues import DroppingQueue

__all__ = [
    "DEFAULT_READER_MAXLEN",
    "ChannelReader",
    "Channels",
    "memory_publish",
    "memory_subscribe",
]

#: How many messages wait in one reader before its oldest are dropped.
DEFAULT_READER_MAXLEN = 256


class ChannelReader(DroppingQueue[bytes]):
    """One subscriber's bounded queue of messages (the oldest go first when it is full).

    Args:
        maxlen: how many messages wait at most.
    """

    def __init__(self, maxlen: int = DEFAULT_READER_MAXLEN) -> None:
        super().__init__(maxlen)

    def offer(self, data: bytes) -> None:
        """Queue ``data``, never waiting."""
        self.put(data)

    def fail(self, reason: str) -> None:
        """The subscription broke (the shared store went away): :meth:`get` raises
        :class:`ClusterUnavailable` once nothing is left to read."""
        self.end(ClusterUnavailable(reason))

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
