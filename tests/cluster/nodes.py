"""Cluster nodes for tests, on both backends, and a Redis server a test can stop and restart.

The Redis variants use ``SWITCHBOARD_TEST_REDIS_URL`` (``.ci/run`` sets it; by default the
Redis on ``127.0.0.1:6379`` of this machine). Every test gets its own key prefix, deleted
afterwards, so tests never see each other's keys. Without a Redis server (or the ``cluster``
extra) the Redis variants are skipped with the reason — except under ``CI=true``, where they
FAIL: CI must run them.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from switchboard.cluster import Cluster, ClusterTiming, MemoryHub
from tests.conftest import UNIT
from tests.waiting import eventually

__all__ = [
    "BACKENDS",
    "FAST",
    "REDIS_URL",
    "NodeFactory",
    "RedisServer",
    "free_port",
    "node_factory",
    "redis_unavailable",
    "require_redis",
]

REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
IN_CI = os.environ.get("CI", "").lower() == "true"
#: parametrise over this: the Redis variant carries the ``redis`` marker
BACKENDS: list[Any] = ["memory", pytest.param("redis", marks=pytest.mark.redis)]
#: intervals short enough for tests, scaled by UNIT on a slow machine
FAST = ClusterTiming(
    heartbeat_s=0.1 * UNIT,
    node_ttl_s=0.6 * UNIT,
    sweep_s=0.1 * UNIT,
    lost_retention_s=60.0,
    receive_block_s=0.2,
)


@functools.cache
def redis_unavailable(*, server: bool = True) -> str | None:
    """Why the Redis tests cannot run here (the client, and the ``REDIS_URL`` server when
    ``server``), or None when they can."""
    if importlib.util.find_spec("redis") is None:
        return "the redis client is not installed (the [cluster] extra)"
    if not server:
        return None
    parts = urlsplit(REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        return f"no Redis server answers at {host}:{port} ({exc.strerror or exc})"
    return None


def require_redis(*, server: bool = True) -> None:
    """Skip (or, under CI=true, fail) a test that needs Redis when there is none."""
    reason = redis_unavailable(server=server)
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true and the Redis tests must run, but {reason}")
        pytest.skip(f"Redis: {reason}")


@dataclass
class NodeFactory:
    """Makes nodes of one test cluster: one memory hub, or one Redis key prefix."""

    backend: str
    prefix: str = field(default_factory=lambda: f"sbtest-{uuid.uuid4().hex[:12]}")
    hub: MemoryHub = field(default_factory=MemoryHub)
    url: str = REDIS_URL
    made: list[Cluster] = field(default_factory=list)

    def __call__(self, node_id: str, *, timing: ClusterTiming = FAST, **options: Any) -> Cluster:
        """A node (not started) named ``node_id``."""
        if self.backend == "memory":
            node = Cluster.in_memory(node_id=node_id, hub=self.hub, timing=timing, **options)
        else:
            node = Cluster.on_redis(
                self.url, node_id=node_id, timing=timing, prefix=self.prefix, **options
            )
        self.made.append(node)
        return node

    async def wipe(self) -> None:
        """The shared store forgets everything (a Redis restarted without persistence)."""
        if self.backend == "memory":
            fresh = MemoryHub()
            self.hub.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "clock"})
            return
        from redis.asyncio import Redis

        client = Redis.from_url(self.url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{{{self.prefix}}}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


@asynccontextmanager
async def node_factory(backend: str) -> AsyncIterator[NodeFactory]:
    """A :class:`NodeFactory`; its nodes are closed and its keys deleted afterwards."""
    if backend == "redis":
        require_redis()
    factory = NodeFactory(backend)
    try:
        yield factory
    finally:
        for node in factory.made:
            await node.aclose()
        await factory.wipe()


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` of the test's own, on a free port, that the test stops and restarts.

    No persistence (``--save "" --appendonly no``): a restart loses everything, the harder
    case for recovery.
    """

    def __init__(self, directory: Path, *, password: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("CI=true and the Redis tests must run, but redis-server is missing")
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://:{password}@127.0.0.1:{self.port}/0"
        self._argv = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--requirepass", password,
            "--dir", str(directory),
        ]  # fmt: skip
        self._process: asyncio.subprocess.Process | None = None

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    async def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._process = await asyncio.create_subprocess_exec(
            *self._argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        await eventually(self._answers, what=f"redis-server on port {self.port}")

    async def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
