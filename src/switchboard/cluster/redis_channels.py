"""The cluster's channels in Redis: pub/sub (``channels.py`` says what they are for).

``PUBLISH {prefix}:chan:<name>`` answers how many subscribers got the message, which is how a
publisher learns that nobody listens any more. A subscription is one connection of its own
(``RedisLink.raw``, bytes not text: audio is binary) read by a task that moves each message into
the subscriber's bounded :class:`~switchboard.cluster.channels.ChannelReader` at once, so Redis
never buffers for a slow reader (its output-buffer limit would cut the connection); the reader
drops its oldest instead. The subscription is confirmed before the ``async with`` block begins.
redis-py re-subscribes by itself after a dropped connection; if that fails, the reader's
:meth:`~switchboard.cluster.channels.ChannelReader.get` raises ClusterUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError

from switchboard.cluster.channels import DEFAULT_READER_MAXLEN, ChannelReader
from switchboard.cluster.records import check_name
from switchboard.cluster.redis import COMMAND_TIMEOUT_S, RedisLink

__all__ = ["RedisChannels"]

logger = logging.getLogger(__name__)

#: Longest single wait of a subscription's reading task.
_READ_S = 1.0


class RedisChannels:
    """Publish to and subscribe to the channels of one key prefix."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def _key(self, channel: str) -> str:
        return self._link.key("chan", check_name(channel, "channel"))

    async def publish(self, channel: str, data: bytes) -> int:
        """Send ``data`` to ``channel``'s subscribers; how many there were."""
        with self._link.errors("publish"):
            return int(await self._link.raw.publish(self._key(channel), data))

    @asynccontextmanager
    async def subscribe(
        self, channel: str, *, maxlen: int = DEFAULT_READER_MAXLEN
    ) -> AsyncIterator[ChannelReader]:
        """A reader of ``channel``, subscribed (confirmed by Redis) for the block."""
        key = self._key(channel)
        reader = ChannelReader(maxlen)
        pubsub = self._link.raw.pubsub()
        try:
            with self._link.errors("subscribe"):
                await pubsub.subscribe(key)
                async with asyncio.timeout(COMMAND_TIMEOUT_S):
                    while True:  # the confirmation: from now on a PUBLISH counts us
                        reply = await pubsub.get_message(timeout=COMMAND_TIMEOUT_S)
                        if reply is not None and reply.get("type") == "subscribe":
                            break
            task = asyncio.get_running_loop().create_task(_read(pubsub, reader, self._link.where))
            try:
                yield reader
            finally:
                task.cancel()
                await asyncio.wait({task})
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()


async def _read(pubsub: Any, reader: ChannelReader, where: str) -> None:
    while True:
        try:
            reply = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_READ_S)
        except (RedisError, OSError) as exc:
            logger.debug("subscription at Redis %s ended: %s", where, type(exc).__name__)
            reader.fail(f"cluster state unavailable: subscription at Redis {where} broke")
            return
        if reply is not None and reply.get("type") == "message":
            data = reply.get("data")
            reader.offer(data if isinstance(data, bytes) else str(data).encode())
