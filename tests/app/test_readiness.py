"""``GET /readyz`` of one app (the embedded default: in-memory cluster, SQLite), and the
database check: a node whose database does not answer is not ready."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.cluster.nodes import free_port

from switchboard.app import create_app
from switchboard.app.readiness import readiness
from switchboard.app.state import AppState
from switchboard.bridge.manager import CallManager
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer
from switchboard.gateway import Gateway
from switchboard.store import CallStore

pytestmark = pytest.mark.anyio


async def test_ready_then_draining_and_healthz_stays_alive(tmp_path: Path) -> None:
    settings = load_settings(
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        SWITCHBOARD_REDIS_URL="",  # empty: unset, the state lives in this process
    )
    app = create_app(settings)
    async with LoopbackServer(app) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "reasons": []}
        state: AppState = app.state.switchboard
        assert state.gateway.cluster.backend == "memory"
        state.gateway.drain()
        draining = await http.get("/readyz")
        assert draining.status_code == 503
        assert draining.json() == {"status": "not-ready", "reasons": ["draining"]}
        assert (await http.get("/healthz")).status_code == 200  # alive all the same


async def test_a_node_whose_database_does_not_answer_is_not_ready(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"  # nothing listens
    settings = load_settings(SWITCHBOARD_DATABASE_URL=url)
    gateway = Gateway.build(settings, store=CallStore(url))
    state = AppState.build(gateway, CallManager(gateway))
    try:
        ready = await readiness(state)
        assert ready.status == "not-ready"
        assert ready.reasons == ["database unreachable"]  # no host or URL in the reason
    finally:
        await state.aclose()
