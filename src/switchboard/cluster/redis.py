"""The connection to Redis: clients, key names, and the one place its errors are translated.

Every Redis operation of the cluster package runs inside :meth:`RedisLink.errors`, which turns
whatever the client raises (``redis.exceptions.RedisError``, socket errors, timeouts) into
:class:`~switchboard.errors.ClusterUnavailable` naming the operation and the server — host,
port and database, never the URL, which may hold a password.

Recovery needs no code of ours: redis-py drops a connection that failed and opens a new one on
the next command, and each command is retried once after a short backoff, so a pool left with
connections from before a Redis restart heals on first use. Every write the cluster sends is
idempotent (scripts with tokens, set members, stream ids), so that retry never doubles an
effect that matters; docs/cluster.md#failure-of-redis.

Keys all start with ``{prefix}:`` — a Redis Cluster hash tag, so the multi-key scripts stay on
one shard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from switchboard.cluster.base import check_name
from switchboard.errors import ClusterUnavailable, ConfigError

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigError(
        "SWITCHBOARD_REDIS_URL is set but the redis client is not installed: "
        "pip install 'switchboard-voice[cluster]'"
    ) from exc

__all__ = ["RedisLink", "describe_url"]

logger = logging.getLogger(__name__)

#: How long to wait for a TCP connection to Redis, and for a reply to an ordinary command.
CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 2.0


def describe_url(url: str) -> str:
    """``host:port/db`` of a Redis URL, for messages: no user name, no password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    db = parts.path.strip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{port}/{db}"


def _raise_if_cancelled() -> None:
    """Re-raise a cancellation of this task that the client swallowed.

    A task cancelled while redis-py finishes a command can see the command complete (or fail
    with a connection error) instead of the CancelledError (seen with redis-py 8.2 on Python
    3.11), and a background loop would then never stop. The task's pending cancel requests
    still show in ``cancelling()``.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _client(url: str, *, read_timeout_s: float, text: bool = True) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=text,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=read_timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
        client_name="switchboard",
    )


class RedisLink:
    """The clients of one node and the names of its keys.

    Args:
        url: ``SWITCHBOARD_REDIS_URL``.
        prefix: first part of every key (tests use one per test, so they never collide).
        block_s: longest blocking read of the inbox; its client waits that much longer.
    """

    def __init__(self, url: str, *, prefix: str = "switchboard", block_s: float = 1.0) -> None:
        self.where = describe_url(url)
        self.prefix = f"{{{check_name(prefix, 'key prefix')}}}:"
        #: ordinary commands
        self.client = _client(url, read_timeout_s=COMMAND_TIMEOUT_S)
        #: blocking stream reads only, so they never hold up a command behind them
        self.blocking = _client(url, read_timeout_s=block_s + COMMAND_TIMEOUT_S)
        #: channels (pub/sub): bytes, not text, since they carry audio (``redis_channels.py``)
        self.raw = _client(url, read_timeout_s=COMMAND_TIMEOUT_S, text=False)

    def key(self, *parts: str) -> str:
        """The key ``{prefix}:part1:part2...``."""
        return self.prefix + ":".join(parts)

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Run a Redis operation; its failures become ClusterUnavailable naming ``what``."""
        try:
            yield
        except (RedisError, OSError) as exc:
            _raise_if_cancelled()
            reason = type(exc).__name__
            logger.debug("Redis %s at %s failed: %s", what, self.where, reason)
            raise ClusterUnavailable(
                f"cluster state unavailable: {what} at Redis {self.where} failed ({reason})"
            ) from exc
        _raise_if_cancelled()

    async def ping(self) -> None:
        """Raise ClusterUnavailable unless Redis answers."""
        with self.errors("ping"):
            await self.client.ping()

    async def aclose(self) -> None:
        """Close the clients' connections."""
        for client in (self.client, self.blocking, self.raw):
            try:
                await client.aclose()
            except (RedisError, OSError) as exc:  # closing a dead connection is not news
                logger.debug("closing a Redis client: %s", type(exc).__name__)
