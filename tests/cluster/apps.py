"""Two switchboard apps in one test process, sharing one cluster: the app-level cluster tests.

Each node is a real app (its own :class:`~switchboard.gateway.Gateway`, call manager and
SQLite database) served by uvicorn on its own loopback port; the two share their live state
through one :class:`~switchboard.cluster.MemoryHub` (``memory``) or one Redis key prefix
(``redis``; the test's own server when a URL is given), with short cluster intervals.

Carriers sign webhooks over the public URL they were given: by default each node's public URL
is its own address (a carrier configured per node); ``publics`` points a node's public URL at
the other node (one public address in front of both, as behind a balancer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchboard.agents import Agent, AgentBook
from switchboard.app import create_app
from switchboard.app.state import AppState
from switchboard.bridge.manager import CallManager
from switchboard.cluster import Cluster, ClusterTiming
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from tests.cluster.nodes import NodeFactory, node_factory
from tests.conftest import UNIT
from tests.e2e.harness import API_TOKEN

__all__ = ["AUTH", "Alternator", "AppNode", "agents", "two_apps"]

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
#: short enough that a restarted Redis is noticed at once, long enough that a busy event loop
#: (two apps and the emulators in one process) is not taken for a dead node
APP_TIMING = ClusterTiming(heartbeat_s=0.2, node_ttl_s=3.0 * UNIT, sweep_s=0.5, receive_block_s=0.2)


def agents(**limits: Any) -> AgentBook:
    """``frontdesk`` (every number; may transfer to ``desk``) and ``sales`` (``{{name}}``)."""
    common: dict[str, Any] = {
        "tools": ["end_call"],
        "limits": {"max_call_seconds": 60, "silence_timeout_s": 20, "silence_hangup_s": 40}
        | limits,
        "directory": {"desk": "+15550100200"},
    }
    return AgentBook(
        [
            Agent.model_validate(
                {
                    "name": "frontdesk",
                    "numbers": ["*"],
                    "system_prompt": "You are a test agent.",
                    "greeting": "Hello, thanks for calling.",
                    **common,
                }
            ),
            Agent.model_validate(
                {
                    "name": "sales",
                    "system_prompt": "You sell to {{name}}.",
                    "greeting": "Hi {{name}}, this is sales.",
                    **common,
                }
            ),
        ]
    )


@dataclass
class AppNode:
    """One node: its address, app and cluster handle."""

    name: str
    base: str
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.switchboard
        return state

    @property
    def manager(self) -> CallManager:
        calls = self.state.calls
        assert isinstance(calls, CallManager)
        return calls

    @property
    def cluster(self) -> Cluster:
        return self.state.gateway.cluster

    @property
    def database(self) -> str:
        return self.state.gateway.settings.database_url


@asynccontextmanager
async def two_apps(
    tmp_path: Path,
    backend: str,
    env: dict[str, str],
    *,
    publics: tuple[str, str] = ("a", "b"),
    redis_url: str | None = None,
    **manager_options: Any,
) -> AsyncIterator[tuple[AppNode, AppNode]]:
    """Nodes ``a`` and ``b`` serving on loopback (see the module docstring)."""
    socks = {name: bind_loopback() for name in ("a", "b")}
    bases = {name: f"http://127.0.0.1:{s.getsockname()[1]}" for name, s in socks.items()}
    manager_options.setdefault("agents", agents())
    async with AsyncExitStack() as stack:
        if redis_url is None:
            factory = await stack.enter_async_context(node_factory(backend))
        else:  # the test's own Redis server (it wipes itself on restart)
            factory = NodeFactory("redis", url=redis_url)
        nodes: list[AppNode] = []
        for name, public in zip(("a", "b"), publics, strict=True):
            settings = load_settings(
                SWITCHBOARD_PUBLIC_URL=bases[public],
                SWITCHBOARD_API_TOKEN=API_TOKEN,
                SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
                SWITCHBOARD_STORE_SPOOL_DIR="",
                **env,
            )
            cluster = factory(f"node-{name}", timing=APP_TIMING)
            app = create_app(settings, cluster=cluster, **manager_options)
            await stack.enter_async_context(
                LoopbackServer(app, sock=socks[name], ws_max_size=settings.ws_max_size)
            )
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=bases[name], headers=AUTH, timeout=10 * UNIT)
            )
            nodes.append(AppNode(name, bases[name], app, http))
        a, b = nodes
        yield a, b
        for node in nodes:  # the callers' side can finish first: let records be final
            assert await node.manager.wait_idle(10.0 * UNIT), f"calls still live on {node.name}"


class Alternator:
    """A tiny front for webhooks: each POST goes to the next of ``targets`` in turn (a
    round-robin balancer), answered with that node's answer."""

    def __init__(self, *targets: str) -> None:
        self.targets = targets
        self.sent: list[str] = []
        self._client = httpx.AsyncClient(timeout=10 * UNIT)
        routes = [Route("/{path:path}", self._forward, methods=["POST"])]
        self._server = LoopbackServer(Starlette(routes=routes), lifespan="off")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    async def __aenter__(self) -> Alternator:
        await self._server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.aclose()
        await self._client.aclose()

    async def _forward(self, request: Request) -> Response:
        target = self.targets[len(self.sent) % len(self.targets)]
        self.sent.append(target)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        answer = await self._client.post(
            f"{target}{request.url.path}", content=await request.body(), headers=headers
        )
        kind = answer.headers.get("content-type")
        return Response(answer.content, answer.status_code, media_type=kind)
