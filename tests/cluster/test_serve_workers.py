"""``switchboard serve --workers N`` through the CLI: refused without Redis; with Redis, N
processes serve one port, each its own cluster node, and a crashed worker is replaced; a node
whose Redis answers only after it started waits for it, not ready, and then joins."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from switchboard.cluster import Cluster
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio.signing import twilio_signature
from tests.cluster.nodes import RedisServer, free_port
from tests.cluster.processes import API_TOKEN, ServeNode, clean_env, redis_database
from tests.conftest import UNIT
from tests.waiting import eventually_async


def _serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "switchboard.cli", "serve", *args]


def test_workers_above_one_need_redis(tmp_path: Path) -> None:
    env = clean_env(SWITCHBOARD_API_TOKEN=API_TOKEN)
    result = subprocess.run(  # a server that started anyway would run until the timeout
        _serve("--port", "0", "--workers", "2"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        check=False,
    )
    assert result.returncode == 2
    assert "--workers 2 needs SWITCHBOARD_REDIS_URL" in result.stderr
    assert not (tmp_path / "switchboard.db").exists()  # refused before touching anything


def test_workers_must_be_a_count_or_auto(tmp_path: Path) -> None:
    result = subprocess.run(
        _serve("--workers", "0"),
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        check=False,
    )
    assert result.returncode == 2
    assert "a count of at least 1 or auto" in result.stderr


async def _nodes(url: str) -> set[str]:
    observer = Cluster.on_redis(url, node_id="observer")  # reads only: never started
    try:
        return {node.node_id for node in await observer.directory.nodes()}
    finally:
        await observer.aclose()


def _env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    return clean_env(
        SWITCHBOARD_REDIS_URL=redis_url,
        SWITCHBOARD_API_TOKEN=API_TOKEN,
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        SWITCHBOARD_LOG_LEVEL="INFO",
    )


@pytest.mark.redis
@pytest.mark.cluster
@pytest.mark.anyio
async def test_two_workers_serve_one_port_and_a_crashed_one_is_replaced(tmp_path: Path) -> None:
    with redis_database() as redis_url:
        node = ServeNode("node", _env(redis_url, tmp_path), tmp_path, workers=2)
        await asyncio.to_thread(node.start)
        try:
            first = await eventually_async(
                lambda: _pids(node), limit_s=20, what="two workers", every_s=0.1
            )
            async with httpx.AsyncClient(base_url=node.url, timeout=5 * UNIT) as client:
                for _ in range(10):  # every request answered, whichever worker accepts it
                    assert (await client.get("/healthz")).status_code == 200

            os.kill(first[0], signal.SIGKILL)
            replaced = await eventually_async(
                lambda: _replaced(node, first), limit_s=30, what="a new worker", every_s=0.2
            )
            assert first[1] in replaced
            async with httpx.AsyncClient(base_url=node.url, timeout=5 * UNIT) as client:
                assert (await client.get("/healthz")).status_code == 200
        finally:
            status = await asyncio.to_thread(node.stop)
        assert status == 0, node.log()  # SIGTERM: every worker stopped, the supervisor with them
        assert "Received SIGTERM" in node.log()
        assert node.leftovers == []  # no worker outlived the supervisor


@pytest.mark.redis
@pytest.mark.cluster
@pytest.mark.anyio
async def test_each_worker_joins_the_cluster_as_a_node_of_its_own(tmp_path: Path) -> None:
    with redis_database() as redis_url:
        env = _env(redis_url, tmp_path) | {"SWITCHBOARD_NODE_ID": "edge-1"}
        node = ServeNode("node", env, tmp_path, workers=2)
        await asyncio.to_thread(node.start)
        try:
            pids = await eventually_async(
                lambda: _pids(node), limit_s=20, what="two workers", every_s=0.1
            )
            names = await eventually_async(
                lambda: _two(redis_url), limit_s=20, what="two nodes", every_s=0.1
            )
            assert names == {f"edge-1-w{pid}" for pid in pids}
        finally:
            await asyncio.to_thread(node.stop)
        assert await _nodes(redis_url) == set()  # each left the cluster as it stopped


async def _pids(node: ServeNode) -> list[int] | None:
    pids = node.workers_now()
    return pids if len(pids) == 2 else None


async def _two(url: str) -> set[str] | None:
    names = await _nodes(url)
    return names if len(names) == 2 else None


async def _replaced(node: ServeNode, before: list[int]) -> list[int] | None:
    pids = node.workers_now()
    return pids if len(pids) == 2 and before[0] not in pids else None


_TWILIO_TOKEN = "late-redis-twilio-auth-token-0123456789"
_AGENTS = """\
version: 1
agents:
  frontdesk:
    numbers: ["*"]
    system_prompt: You are a test agent.
    provider: openai
"""


async def _incoming(url: str, sid: str) -> httpx.Response:
    """A signed Twilio voice webhook for a new call ``sid`` to the node at ``url``."""
    form = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": sid,
        "From": "+15005550006",
        "To": "+15005550001",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    signature = twilio_signature(_TWILIO_TOKEN, f"{url}/twilio/voice", form.items())
    async with httpx.AsyncClient(timeout=10 * UNIT) as http:
        return await http.post(
            f"{url}/twilio/voice", data=form, headers={"X-Twilio-Signature": signature}
        )


async def _readiness(node: ServeNode, asks: int) -> list[httpx.Response]:
    """``/readyz`` asked ``asks`` times, each on a connection of its own: the kernel hands each
    connection to any worker (one kept-alive connection would ask one worker every time)."""
    answers = []
    for _ in range(asks):
        async with httpx.AsyncClient(base_url=node.url, timeout=5 * UNIT) as client:
            answers.append(await client.get("/readyz"))
    return answers


async def _joined(url: str, workers: int) -> bool:
    return len(await _nodes(url)) == workers


@pytest.mark.redis
@pytest.mark.cluster
@pytest.mark.anyio
@pytest.mark.timeout(180)
@pytest.mark.parametrize("workers", [1, 2])
async def test_a_node_started_before_its_redis_waits_not_ready_then_joins(
    tmp_path: Path, workers: int
) -> None:
    """Redis comes up after the gateway (a deployment starting everything at once): the node
    starts anyway, /readyz is 503 naming Redis and a call is refused; once Redis answers every
    worker joins by itself, becomes ready and takes calls — no worker was replaced."""
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis", password="late-redis-password")  # not started yet
    agents = tmp_path / "agents.yaml"
    agents.write_text(_AGENTS, "utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai:
        env = _env(redis.url, tmp_path) | {
            "SWITCHBOARD_NODE_ID": "late",
            "SWITCHBOARD_PUBLIC_URL": url,
            "SWITCHBOARD_AGENTS": str(agents),
            "SWITCHBOARD_PROVIDER": "openai",
            "SWITCHBOARD_DRAIN_SECONDS": "1",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": oai.base_url,
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": _TWILIO_TOKEN,
        }
        node = ServeNode("node", env, tmp_path, workers=workers, port=port)
        try:
            await asyncio.to_thread(node.start)  # /healthz: alive, though not ready
            pids = node.workers_now()
            for answer in await _readiness(node, 4 * workers):
                assert answer.status_code == 503, answer.text
                assert "cluster state (Redis) unreachable" in answer.json()["reasons"]
            refused = await _incoming(url, "CA" + "1" * 32)
            assert refused.status_code == 503, refused.text  # Twilio retries, or its fallback
            assert "<Stream" not in refused.text
            await asyncio.sleep(1.0 * UNIT)  # still waiting, not crash-looping
            assert node.process is not None and node.process.poll() is None, node.log()

            await redis.start()
            await eventually_async(  # each worker heart-beats once it has joined
                functools.partial(_joined, redis.url, workers),
                limit_s=20,
                what="every worker joined once Redis answers",
                every_s=0.1,
            )
            for answer in await _readiness(node, 4 * workers):
                assert answer.status_code == 200, answer.text
            assert node.workers_now() == pids  # the same processes: none was replaced
            taken = await _incoming(url, "CA" + "2" * 32)
            assert taken.status_code == 200, taken.text
            assert "<Stream" in taken.text
        finally:
            status = await asyncio.to_thread(node.stop)
            await redis.stop()
    assert status == 0, node.log()
    assert "cannot join the cluster state yet" in node.log()
