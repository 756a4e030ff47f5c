"""The multi-node rig: HAProxy balancing two ``switchboard serve --workers 2`` nodes.

Both nodes share one Redis database (leased per rig: :func:`tests.cluster.processes.redis_database`
or a private ``redis-server`` the test passes), one database (a fresh PostgreSQL database on
``SWITCHBOARD_TEST_POSTGRES_URL``'s server, dropped afterwards; else one SQLite file) and one
``SWITCHBOARD_PUBLIC_URL``: the balancer's, as in production, so carriers sign for and reach the
balancer, and a call's webhook and media socket may each land on any worker of any node. The
carrier emulators (Twilio, Telnyx) and the OpenAI Realtime emulator run in the test's process.

Node ids are ``node-a-w<pid>`` / ``node-b-w<pid>`` (``SWITCHBOARD_NODE_ID`` + the worker's pid),
so ``/v1/sessions`` tells which machine holds a call.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.cluster.processes import (
    API_TOKEN,
    Balancer,
    ServeNode,
    clean_env,
    redis_database,
    require_haproxy,
)
from tests.conftest import UNIT
from tests.waiting import eventually_async

__all__ = ["AUTH", "LIMITED", "TRANSFER_TO", "Rig", "cluster_rig"]

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
#: the number of the agent allowed one call at a time across the cluster
LIMITED = "+15550100777"
#: where the agents may transfer a call
TRANSFER_TO = "+15550199999"
OUTBOUND_TO = "+15550100999"
POSTGRES_URL = os.environ.get("SWITCHBOARD_TEST_POSTGRES_URL")

AGENTS_YAML = f"""\
version: 1
agents:
  frontdesk:
    numbers: ["*"]
    system_prompt: You are a test agent.
    greeting: Hello, thanks for calling.
    provider: openai
    tools: [end_call, transfer_call]
    transfer_allow: ["{TRANSFER_TO}"]
    limits: {{max_call_seconds: 120, silence_timeout_s: 60, silence_hangup_s: 100}}
  limited:
    numbers: ["{LIMITED}"]
    system_prompt: You are a test agent with one line.
    greeting: Hello, one line only.
    provider: openai
    limits:
      max_call_seconds: 120
      silence_timeout_s: 60
      silence_hangup_s: 100
      max_concurrent_calls: 1
"""


@dataclass
class Rig:
    """The running rig: the balancer, the two nodes and the emulators."""

    balancer: Balancer
    nodes: list[ServeNode]
    twilio: TwilioEmulator
    telnyx: TelnyxEmulator
    openai: OpenAIRealtimeEmulator
    redis_url: str
    database_url: str

    @property
    def url(self) -> str:
        return self.balancer.url

    def client(self, node: ServeNode | None = None) -> httpx.AsyncClient:
        """An API client of the balancer, or of one node directly."""
        base = self.balancer.url if node is None else node.url
        return httpx.AsyncClient(base_url=base, headers=AUTH, timeout=10 * UNIT)

    def node_of(self, session: dict[str, Any]) -> ServeNode:
        """The node (machine) holding a call listed by ``/v1/sessions``."""
        for node in self.nodes:
            name = str(session["node"])  # node-a, or node-a-w<pid> for one of its workers
            if name == node.name or name.startswith(f"{node.name}-w"):
                return node
        raise AssertionError(f"no node of this rig holds {session}")

    def other(self, node: ServeNode) -> ServeNode:
        (other,) = [n for n in self.nodes if n is not node]
        return other

    async def sessions(self, node: ServeNode | None = None) -> list[dict[str, Any]]:
        async with self.client(node) as http:
            response = await http.get("/v1/sessions")
            assert response.status_code == 200, response.text
            calls: list[dict[str, Any]] = response.json()
            return calls

    async def live(
        self, count: int, *, node: ServeNode | None = None, limit_s: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` calls are in progress, as ``node`` (the first by default) lists
        them: asked directly, so the balancer's round-robin carries only the carriers' requests."""
        node = node or self.nodes[0]

        async def check() -> list[dict[str, Any]] | None:
            calls = [s for s in await self.sessions(node) if s["status"] == "in-progress"]
            return calls if len(calls) == count else None

        return await eventually_async(
            check, limit_s=limit_s, what=f"{count} live calls", every_s=0.1
        )

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log()[-6000:]}" for n in self.nodes)


@asynccontextmanager
async def _database(tmp_path: Path) -> AsyncIterator[str]:
    """A database for the rig's nodes: a fresh PostgreSQL database, else a SQLite file."""
    if not POSTGRES_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
        return
    import asyncpg  # type: ignore[import-untyped]  # the [postgres] extra

    parts = urlsplit(POSTGRES_URL.replace("+asyncpg", ""))
    name = f"sbcluster_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(urlunsplit(parts))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await run(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{name}"))
    finally:
        await run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def cluster_rig(
    tmp_path: Path,
    *,
    redis_url: str | None = None,
    pinned: bool = False,
    extra_env: dict[str, str] | None = None,
    **twilio_options: Any,
) -> AsyncIterator[Rig]:
    """Two nodes of two workers behind HAProxy, with the emulators (see the module).

    ``pinned``: the workaround docs/cluster.md gives while a media socket must reach the worker
    that answered its webhook — one worker per node, and the balancer sends every request to
    node-a (node-b is HAProxy's ``backup``). The carriers then reach node-a alone, and the tests
    reach node-b directly: cross-node control, the directory and failures still cross nodes.
    """
    workers = 1 if pinned else 2
    haproxy = require_haproxy()
    twilio_options.setdefault("auth_token", "cluster-twilio-auth-token-0123456789")  # serve: ≥ 32
    twilio_options.setdefault("linger_s", 60.0)
    twilio_options.setdefault("max_call_s", 90.0)
    lease = redis_database() if redis_url is None else nullcontext(redis_url)
    async with (
        OpenAIRealtimeEmulator(script=[], ms_per_char=30.0) as oai,
        TwilioEmulator(**twilio_options) as twilio,
        TelnyxEmulator(realtime=True, tail_ms=60_000, max_call_ms=90_000) as telnyx,
    ):
        with lease as shared_redis:
            async with _database(tmp_path) as database:
                agents = tmp_path / "agents.yaml"
                agents.write_text(AGENTS_YAML, "utf-8")
                placeholder = Balancer(haproxy, [], tmp_path)  # its port, for the public URL
                env = clean_env(
                    SWITCHBOARD_REDIS_URL=shared_redis,
                    SWITCHBOARD_DATABASE_URL=database,
                    SWITCHBOARD_PUBLIC_URL=placeholder.url,
                    SWITCHBOARD_API_TOKEN=API_TOKEN,
                    SWITCHBOARD_AGENTS=str(agents),
                    SWITCHBOARD_PROVIDER="openai",
                    SWITCHBOARD_OUTBOUND_ALLOW=f"{OUTBOUND_TO},{TRANSFER_TO}",
                    SWITCHBOARD_LOG_LEVEL="INFO",
                    SWITCHBOARD_LOG_FORMAT="text",
                    # SIGTERM drains; a test stopping its nodes waits 1 s for calls, not 30
                    SWITCHBOARD_DRAIN_SECONDS="1",
                    OPENAI_API_KEY="sk-test",
                    OPENAI_BASE_URL=oai.base_url,
                    TWILIO_ACCOUNT_SID=twilio.account_sid,
                    TWILIO_AUTH_TOKEN=twilio.auth_token,
                    TWILIO_BASE_URL=twilio.base_url,
                    TELNYX_API_KEY=telnyx.api_key,
                    TELNYX_PUBLIC_KEY=telnyx.public_key_b64,
                    TELNYX_BASE_URL=telnyx.base_url,
                    TELNYX_CONNECTION_ID=telnyx.connection_id,
                    **(extra_env or {}),
                )
                nodes = [
                    ServeNode(name, env | {"SWITCHBOARD_NODE_ID": name}, tmp_path, workers=workers)
                    for name in ("node-a", "node-b")
                ]
                balancer = Balancer(
                    haproxy,
                    nodes,
                    tmp_path,
                    check_path="/readyz",
                    port=placeholder.port,
                    backup=frozenset({"node-b"} if pinned else ()),
                )
                try:
                    for node in nodes:  # one after the other: the first migrates the database
                        await asyncio.to_thread(node.start)
                    await asyncio.to_thread(balancer.start)
                    rig = Rig(balancer, nodes, twilio, telnyx, oai, shared_redis, database)
                    yield rig
                finally:
                    balancer.stop()
                    for node in nodes:
                        await asyncio.to_thread(node.stop)
