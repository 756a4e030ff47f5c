"""Security of the app's edge over loopback (issue #26): secrets, credentials, bodies, metrics.

Each test runs the app under uvicorn on a free port (``LoopbackServer``) and talks HTTP or
WebSocket to it, as a client on the network would.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from tests.conftest import UNIT
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.app.factory import create_app
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator

pytestmark = pytest.mark.anyio
TOKEN = "api-token-for-the-edge-security-tests"
METRICS = "metrics-token-for-the-edge-security-tests"


@asynccontextmanager
async def running(tmp_path: Path, **env: str) -> AsyncIterator[tuple[str, FastAPI]]:
    """The whole app (call manager, store) on a free loopback port: (base URL, app)."""
    settings = load_settings(
        **{
            "SWITCHBOARD_API_TOKEN": TOKEN,
            "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            **env,
        }
    )
    app = create_app(settings)
    async with LoopbackServer(app, ws_max_size=settings.ws_max_size) as server:
        yield server.base_url, app


async def _socket_outcome(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status a websocket handshake was refused with, or the close code after it."""
    try:
        async with connect(url, additional_headers=headers) as ws:
            with anyio.fail_after(5 * UNIT), contextlib.suppress(ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code is not None
            return int(ws.close_code)
    except InvalidStatus as exc:
        return exc.response.status_code


# -- item 2: an empty secret is no secret ------------------------------------------------------
async def test_empty_metrics_token_does_not_open_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_METRICS_TOKEN", "")  # "SWITCHBOARD_METRICS_TOKEN=" in .env
    app = create_app(load_settings(SWITCHBOARD_API_TOKEN=TOKEN))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://sb.test") as client:
        response = await client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 403  # as with no token: loopback clients only


def _token_with_key(key: bytes, claims: dict[str, Any]) -> str:
    """A media token made the way TokenSigner makes them, with ``key``."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = b64(json.dumps(claims).encode())
    return f"{body}.{b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


async def test_empty_signing_secret_is_replaced_by_a_random_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_SIGNING_SECRET", "")
    claims = {"c": "call-1", "k": "telnyx", "e": time.time() + 60, "s": "v3:x"}
    forged = _token_with_key(b"", claims)  # what anyone can mint with an empty key
    async with running(tmp_path) as (base, _):
        code = await _socket_outcome(f"ws{base[4:]}/telnyx/media?token={forged}")
    assert code == 1008


# -- item 5: non-ASCII credentials are wrong credentials, never a crash ------------------------
async def test_non_ascii_credentials_are_refused_not_crashed_on(tmp_path: Path) -> None:
    odd = {b"Authorization": "Bearer é".encode()}  # the UTF-8 bytes, as a client may send them
    async with (
        running(tmp_path, SWITCHBOARD_METRICS_TOKEN=METRICS) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=5 * UNIT) as http,
    ):
        assert (await http.get("/v1/providers", headers=odd)).status_code == 401
        assert (await http.get("/metrics", headers=odd)).status_code == 401
        ws = f"ws{base[4:]}"
        assert await _socket_outcome(f"{ws}/v1/stream?token=%C3%A9") == 403
        assert await _socket_outcome(f"{ws}/v1/stream", {"Authorization": "Bearer é"}) == 403
        assert await _socket_outcome(f"{ws}/telnyx/media?token=%C3%A9.x") == 1008


# -- item 6: headers before bodies, bounded bodies ---------------------------------------------
async def test_api_checks_the_token_before_reading_and_bounds_the_body(tmp_path: Path) -> None:
    async with (
        running(tmp_path, SWITCHBOARD_API_MAX_BODY="8192") as (base, _),
        httpx.AsyncClient(base_url=base, timeout=5 * UNIT) as http,
    ):
        # unauthenticated: refused from the headers, the (broken) body is never parsed
        r = await http.post("/v1/calls", content=b"{", headers={"Content-Type": "application/json"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        big = {"carrier": "twilio", "to": "+15550100999", "from": "+15550100000", "x": "y" * 9000}
        r = await http.post("/v1/calls", json=big, headers=auth)
        assert r.status_code == 413
        assert "8192" in r.json()["error"]["message"]
        r = await http.get("/v1/providers", headers=auth)
        assert r.status_code == 200
    defaults = load_settings()
    assert (defaults.api_max_body, defaults.webhook_max_body) == (256 * 1024, 64 * 1024)
    assert defaults.ws_max_size == 64 * 1024


async def test_the_in_process_server_applies_the_websocket_limit_serve_does(
    tmp_path: Path,
) -> None:
    # LoopbackServer(ws_max_size=settings.ws_max_size): tests meet the limit serve sets.
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with running(tmp_path, SWITCHBOARD_WS_MAX_SIZE="8192") as (base, _):
        for message in ("x" * 9000, b"\x00" * 9000):  # over 8 KiB, text and binary
            async with connect(f"ws{base[4:]}/v1/stream", additional_headers=auth) as socket:
                await socket.send(message)
                with anyio.fail_after(5 * UNIT), contextlib.suppress(ConnectionClosed):
                    while True:
                        await socket.recv()
            assert socket.close_code == 1009  # message too big


# -- item 7: /v1/stream validates before it connects -------------------------------------------
async def test_stream_with_an_unsupported_rate_never_opens_a_provider_session(
    tmp_path: Path,
) -> None:
    async with (
        OpenAIRealtimeEmulator(script=[]) as oai,
        running(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=oai.base_url) as (base, _),
    ):
        url = f"ws{base[4:]}/v1/stream"
        async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            start = {"type": "start", "provider": "openai", "sample_rate": 12345}
            await ws.send(json.dumps(start))
            error = json.loads(await ws.recv())
            with anyio.fail_after(5 * UNIT), pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1011
        assert error["type"] == "error" and "12345" in error["message"]
        assert oai.connection_count == 0


# -- item 8: loopback trust for /metrics -------------------------------------------------------
async def test_metrics_behind_a_proxy_need_the_token(tmp_path: Path) -> None:
    spoofed = {"X-Forwarded-For": "127.0.0.1"}
    async with (
        running(tmp_path, SWITCHBOARD_PUBLIC_URL="https://voice.example.com") as (base, _),
        httpx.AsyncClient(base_url=base, timeout=5 * UNIT) as http,
    ):
        # a public URL: a proxy or tunnel on this host makes every request look local
        assert (await http.get("/metrics", headers=spoofed)).status_code == 403
        assert (await http.get("/metrics")).status_code == 403
    async with (
        running(tmp_path, SWITCHBOARD_PUBLIC_URL="http://127.0.0.1:9") as (base, _),
        httpx.AsyncClient(base_url=base, timeout=5 * UNIT) as http,
    ):
        # a request that came through a proxy is not a loopback client, whatever it claims
        assert (await http.get("/metrics", headers=spoofed)).status_code == 403
        assert (await http.get("/metrics")).status_code == 200


# -- item 9: production defaults ---------------------------------------------------------------
async def test_docs_are_off_and_health_says_nothing_more(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=5 * UNIT) as http,
    ):
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await http.get(path)).status_code == 404, path
        health = await http.get("/healthz")
        assert health.json() == {"status": "ok"}
    async with (
        running(tmp_path, SWITCHBOARD_API_DOCS="true") as (base, _),
        httpx.AsyncClient(base_url=base, timeout=5 * UNIT) as http,
    ):
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await http.get(path)).status_code == 200, path
