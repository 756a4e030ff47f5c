"""Each node's inbox in Redis: one stream per node (docs/cluster.md#the-control-bus).

A stream rather than pub/sub: a message posted while the receiver is reconnecting (a Redis
blip, a slow event loop) waits in the stream instead of being dropped, and one stream keeps
the order in which messages were posted, which the per-call handoff of carrier events needs.
``XREAD BLOCK`` wakes the reader as soon as a message is added, so delivery takes one round
trip. Read entries are trimmed; the stream is also capped at :data:`MAX_LENGTH` entries, so a
dead node's inbox cannot grow without bound.
"""

from __future__ import annotations

import logging
from typing import Any

from switchboard.cluster.base import ClusterMessage, decode_message, encode_message
from switchboard.cluster.redis import RedisLink
from switchboard.errors import ClusterUnavailable, RemoteProtocolError

__all__ = ["MAX_LENGTH", "RedisInbox"]

logger = logging.getLogger(__name__)

#: Most entries kept in one node's stream (approximate trimming).
MAX_LENGTH = 10_000
#: Most entries read in one go.
BATCH = 100


class RedisInbox:
    """The :class:`~switchboard.cluster.base.NodeInbox` of one node, on Redis streams.

    Only one task may call :meth:`receive` (it remembers the last id read).
    """

    def __init__(self, link: RedisLink, node_id: str) -> None:
        self._link, self._node = link, node_id
        self._last_id = "0-0"

    def _stream(self, node_id: str) -> str:
        return self._link.key("inbox", node_id)

    async def post(self, node_id: str, message: ClusterMessage) -> None:
        """Append ``message`` to ``node_id``'s stream."""
        with self._link.errors("post to node inbox"):
            await self._link.client.xadd(
                self._stream(node_id),
                {"m": encode_message(message)},
                maxlen=MAX_LENGTH,
                approximate=True,
            )

    async def receive(self, *, timeout_s: float) -> list[ClusterMessage]:
        """The next messages after the last one read, waiting up to ``timeout_s`` for one."""
        stream = self._stream(self._node)
        with self._link.errors("read node inbox"):
            reply: Any = await self._link.blocking.xread(
                {stream: self._last_id}, count=BATCH, block=max(1, round(timeout_s * 1000))
            )
        if not reply:
            return []
        messages: list[ClusterMessage] = []
        for entry_id, fields in reply[0][1]:
            self._last_id = str(entry_id)
            try:
                messages.append(decode_message(str(fields.get("m", ""))))
            except RemoteProtocolError as exc:
                logger.warning("dropping a malformed message in %s's inbox: %s", self._node, exc)
        # Entries before the last one read are done with; failing to trim loses nothing.
        try:
            with self._link.errors("trim node inbox"):
                await self._link.client.xtrim(stream, minid=self._last_id, approximate=True)
        except ClusterUnavailable:
            logger.debug("could not trim %s's inbox", self._node)
        return messages

    async def reset(self) -> None:
        """Drop everything in this node's stream and read from its start."""
        with self._link.errors("reset node inbox"):
            await self._link.client.delete(self._stream(self._node))
        self._last_id = "0-0"
