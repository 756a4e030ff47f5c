"""``WS /v1/stream`` beyond the happy path, and ``POST /v1/calls`` refusals, over loopback.

The app runs under uvicorn on a free port with the OpenAI Realtime emulator as the provider;
the client is a plain websocket or HTTP client, as a program using the API would be.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from tests.conftest import UNIT
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from switchboard.app.factory import create_app
from switchboard.config import load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.loopback import LoopbackServer
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator

pytestmark = pytest.mark.anyio
TOKEN = "api-token-for-the-control-api-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@asynccontextmanager
async def running(
    tmp_path: Path,
    script: list[dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[str, OpenAIRealtimeEmulator]]:
    """The app on a free loopback port, its provider the emulator: (base URL, emulator)."""
    async with OpenAIRealtimeEmulator(script=script or [], ms_per_char=20.0) as oai:
        settings = load_settings(
            SWITCHBOARD_API_TOKEN=TOKEN,
            SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=oai.base_url,
            **(env or {}),
        )
        async with LoopbackServer(create_app(settings)) as server:
            yield server.base_url, oai


async def until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next JSON message of type ``kind`` (binary audio and other events skipped)."""
    with anyio.fail_after(10 * UNIT):
        while True:
            message = await ws.recv()
            if isinstance(message, str) and (event := json.loads(message))["type"] == kind:
                return dict(event)


async def closed(ws: ClientConnection) -> int:
    """The close code, once the server has closed (messages before it skipped)."""
    with anyio.fail_after(5 * UNIT), contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()
    assert ws.close_code is not None
    return int(ws.close_code)


@pytest.mark.parametrize(
    ("first", "says"),
    [
        ('{"type": "hello"}', 'the first message must be {"type": "start"'),
        ("not json", "Expecting value"),
        ('{"type": "start", "provider": "acme"}', "acme"),
        ('{"type": "start", "provider": "openai", "format": "mp3"}', "format must be"),
    ],
    ids=["not start", "not JSON", "unknown provider", "unknown format"],
)
async def test_a_bad_start_is_an_error_and_no_provider_session(
    tmp_path: Path, first: str, says: str
) -> None:
    async with running(tmp_path) as (base, oai):
        async with connect(f"ws{base[4:]}/v1/stream", additional_headers=AUTH) as ws:
            await ws.send(first)
            error = await until(ws, "error")
            assert await closed(ws) == 1011
        assert says in error["message"]
        assert oai.connection_count == 0


async def test_commands_reach_the_provider_and_bad_ones_are_errors(tmp_path: Path) -> None:
    tool = {"name": "get_weather", "arguments": {"city": "Paris"}}
    script = [{"caller": "weather in paris", "tool": tool, "say": "It is sunny in Paris."}]
    async with (
        running(tmp_path, script) as (base, oai),
        connect(f"ws{base[4:]}/v1/stream", additional_headers=AUTH) as ws,
    ):
        start = {"type": "start", "provider": "openai", "tools": [WEATHER]}
        await ws.send(json.dumps(start))
        assert (await until(ws, "started"))["provider"] == "openai"
        pcm = speech_like_pcm16("weather in paris", 16000) + bytes(16000 * 2)
        for i in range(0, len(pcm), 640):
            await ws.send(pcm[i : i + 640])
        call = await until(ws, "function_call")
        assert (call["name"], call["arguments"]) == ("get_weather", {"city": "Paris"})
        await ws.send("not json")
        assert (await until(ws, "error"))["message"] == "malformed command"
        await ws.send(json.dumps({"type": "dance"}))
        assert (await until(ws, "error"))["message"] == "unknown command 'dance'"
        result = {"type": "function_result", "call_id": call["call_id"], "result": "sunny"}
        await ws.send(json.dumps(result))
        said = await until(ws, "text.output")
        while not said["final"]:
            said = await until(ws, "text.output")
        assert said["text"] == "It is sunny in Paris."
        await until(ws, "response.done")
        await ws.send(json.dumps({"type": "interrupt", "played_ms": 100}))
        await ws.send(json.dumps({"type": "stop"}))
        assert await closed(ws) == 1000
    outputs = [
        e["item"]
        for e in oai.received
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    ]
    assert [(o["call_id"], o["output"]) for o in outputs] == [(call["call_id"], "sunny")]
    (truncate,) = [e for e in oai.received if e["type"] == "conversation.item.truncate"]
    assert truncate["audio_end_ms"] == 100  # the interrupt: heard 100 ms of the reply
    assert oai.violations == []


async def test_place_call_answers_422_when_it_cannot_place_the_call(tmp_path: Path) -> None:
    body = {"carrier": "twilio", "to": "+15550100999", "from": "+15550100000"}
    async with TwilioEmulator() as twilio:
        env = {
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_BASE_URL": twilio.base_url,
            "SWITCHBOARD_OUTBOUND_ALLOW": "+1555*",
        }
        async with (
            running(tmp_path, env=env) as (base, _),
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=5 * UNIT) as http,
        ):
            no_url = await http.post("/v1/calls", json=body)
            telnyx = await http.post("/v1/calls", json={**body, "carrier": "telnyx"})
        (tmp_path / "public").mkdir()
        env["SWITCHBOARD_PUBLIC_URL"] = "https://voice.example.com"
        async with (
            running(tmp_path / "public", env=env) as (base, _),
            httpx.AsyncClient(base_url=base, headers=AUTH, timeout=5 * UNIT) as http,
        ):
            nobody = await http.post("/v1/calls", json={**body, "agent": "nobody"})
    for answer, says in [
        (no_url, "SWITCHBOARD_PUBLIC_URL"),
        (telnyx, "carrier telnyx is not configured"),
        (nobody, "unknown agent 'nobody'"),
    ]:
        assert answer.status_code == 422, answer.text
        assert says in answer.json()["error"]["message"]
    assert not [r for r in twilio.requests if r.path.endswith("/Calls.json")]
