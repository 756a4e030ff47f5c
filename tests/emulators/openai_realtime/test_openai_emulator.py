"""The OpenAI Realtime (GA) emulator driven by a raw websockets client (no switchboard client)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from tests.conformance import conform
from tests.conftest import UNIT
from tests.waiting import printed
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.audio.g711 import pcm16_to_ulaw
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator, run

pytestmark = pytest.mark.anyio
KEY = "sk-emu"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "openai"


def url(emu: OpenAIRealtimeEmulator, query: str = "?model=gpt-realtime") -> str:
    return emu.base_url.replace("http://", "ws://") + "/realtime" + query


@asynccontextmanager
async def client(emu: OpenAIRealtimeEmulator) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with connect(url(emu), additional_headers=headers, max_size=None) as ws:
        first = await recv(ws)
        assert first["type"] == "session.created"
        yield ws


async def recv(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5 * UNIT))
    conform(RealtimeServerEvent, event)
    return event


async def until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        event = await recv(ws)
        if event["type"] == kind:
            return event


async def drain(ws: ClientConnection) -> None:
    while True:
        await recv(ws)


async def send(ws: ClientConnection, event: dict[str, Any]) -> None:
    conform(RealtimeClientEvent, event)
    await ws.send(json.dumps(event))


def session_update(**fields: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", **fields}}


async def speak_raw(ws: ClientConnection, text: str, *, ulaw: bool = False) -> None:
    rate = 8000 if ulaw else 24000
    pcm = speech_like_pcm16(text, rate) + bytes(rate * 2 * 700 // 1000)
    data = pcm16_to_ulaw(pcm) if ulaw else pcm
    step = rate // 50 * (1 if ulaw else 2)
    for i in range(0, len(data), step):
        audio = base64.b64encode(data[i : i + step]).decode()
        await send(ws, {"type": "input_audio_buffer.append", "audio": audio})


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ({}, "?model=gpt-realtime", 401),
        ({"Authorization": "Bearer sk-wrong"}, "?model=gpt-realtime", 401),
        ({"Authorization": f"Bearer {KEY}"}, "", 400),
    ],
)
async def test_upgrade_checks_key_and_model(
    headers: dict[str, str], query: str, status: int
) -> None:
    async with OpenAIRealtimeEmulator(api_key=KEY) as emu:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(emu, query), additional_headers=headers):
                pass
        assert info.value.response.status_code == status


async def test_session_update_rules() -> None:
    async with OpenAIRealtimeEmulator(api_key=KEY) as emu, client(emu) as ws:
        await ws.send(json.dumps(session_update(temperature=0.8)))  # not GA
        err = await until(ws, "error")
        assert err["error"]["code"] == "unknown_parameter"
        await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "x"}}))
        assert (await until(ws, "error"))["error"]["code"] == "missing_required_parameter"
        bad_rate = {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}
        await ws.send(json.dumps(session_update(audio=bad_rate)))
        assert (await until(ws, "error"))["error"]["param"] == "session.audio.input.format"
        good = {
            "input": {"format": {"type": "audio/pcma"}, "turn_detection": None},
            "output": {"format": {"type": "audio/pcma"}, "voice": "cedar"},
        }
        await send(ws, session_update(instructions="Be nice.", audio=good))
        updated = (await until(ws, "session.updated"))["session"]
        assert updated["instructions"] == "Be nice."
        assert updated["audio"]["input"]["turn_detection"] is None
        assert updated["audio"]["output"] == {"format": {"type": "audio/pcma"}, "voice": "cedar"}
        assert updated["tool_choice"] == "auto"  # untouched fields keep their value
        await send(ws, session_update(instructions=""))
        assert (await until(ws, "session.updated"))["session"]["instructions"] == ""
    assert [v["code"] for v in emu.violations] == [
        "unknown_parameter",
        "missing_required_parameter",
        "invalid_value",
    ]


async def test_scripted_turn_with_tool_then_speech() -> None:
    script = [
        {"caller": "book it", "tool": {"name": "book", "arguments": {"n": 2}}, "say": "Done."}
    ]
    async with OpenAIRealtimeEmulator(api_key=KEY, script=script) as emu, client(emu) as ws:
        fmt = {"type": "audio/pcmu"}
        audio = {"input": {"format": fmt, "transcription": {"model": "whisper-1"}}}
        audio["output"] = {"format": fmt}
        await send(ws, session_update(audio=audio))
        await until(ws, "session.updated")
        await speak_raw(ws, "book it", ulaw=True)
        await until(ws, "input_audio_buffer.speech_started")
        stopped = await until(ws, "input_audio_buffer.speech_stopped")
        committed = await until(ws, "input_audio_buffer.committed")
        assert committed["item_id"] == stopped["item_id"]
        transcript = await until(ws, "conversation.item.input_audio_transcription.completed")
        assert transcript["transcript"] == "book it"
        args = await until(ws, "response.function_call_arguments.done")
        assert (args["name"], json.loads(args["arguments"])) == ("book", {"n": 2})
        done = await until(ws, "response.done")
        assert done["response"]["output"][0]["type"] == "function_call"
        output = {"type": "function_call_output", "call_id": args["call_id"], "output": "ok"}
        await send(ws, {"type": "conversation.item.create", "item": output})
        await send(ws, {"type": "response.create"})
        audio_bytes = 0
        while (event := await recv(ws))["type"] != "response.done":
            if event["type"] == "response.output_audio.delta":
                audio_bytes += len(base64.b64decode(event["delta"]))
        assert audio_bytes == len("Done.") * 60 * 8  # μ-law 8 kHz: 8 bytes per ms
        assert event["response"]["usage"]["output_token_details"]["audio_tokens"] > 0
    assert emu.violations == []


async def test_active_response_cancel_truncate_and_voice_rules() -> None:
    emu = OpenAIRealtimeEmulator(api_key=KEY, realtime=True, chunk_ms=50)
    async with emu, client(emu) as ws:
        await send(
            ws,
            {
                "type": "response.create",
                "response": {"instructions": "Say exactly: Hello there, how are you today?"},
            },
        )
        delta = await until(ws, "response.output_audio.delta")
        await send(ws, {"type": "response.create"})
        busy = await until(ws, "error")
        assert busy["error"]["code"] == "conversation_already_has_active_response"
        await send(ws, {"type": "response.cancel", "response_id": "resp_nope"})
        assert (await until(ws, "error"))["error"]["code"] == "invalid_value"
        await send(ws, {"type": "response.cancel", "response_id": delta["response_id"]})
        done = await until(ws, "response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "client_cancelled"
        await send(ws, {"type": "response.cancel"})  # nothing active: error, but only a race
        assert (await until(ws, "error"))["error"]["code"] == "response_cancel_not_active"
        item = delta["item_id"]
        truncate = {"type": "conversation.item.truncate", "item_id": item, "content_index": 0}
        await send(ws, {**truncate, "audio_end_ms": 10_000})
        assert (await until(ws, "error"))["error"]["param"] == "audio_end_ms"
        await send(ws, {**truncate, "audio_end_ms": 20})
        assert (await until(ws, "conversation.item.truncated"))["audio_end_ms"] == 20
        await send(ws, session_update(audio={"output": {"voice": "verse"}}))
        assert (await until(ws, "error"))["error"]["code"] == "cannot_update_voice"
    codes = [v["code"] for v in emu.violations]
    assert codes == [
        "conversation_already_has_active_response",
        "invalid_value",
        "invalid_value",
        "cannot_update_voice",
    ]


async def test_barge_in_cancels_with_turn_detected() -> None:
    emu = OpenAIRealtimeEmulator(api_key=KEY, realtime=True, chunk_ms=50)
    async with emu, client(emu) as ws:
        await send(
            ws,
            {"type": "response.create", "response": {"instructions": "A long reply to talk over."}},
        )
        await until(ws, "response.output_audio.delta")
        await speak_raw(ws, "stop")
        done = await until(ws, "response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"


async def test_item_replay_and_invalid_events() -> None:
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "yo"}],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "1"},
    ]
    async with OpenAIRealtimeEmulator(api_key=KEY) as emu, client(emu) as ws:
        previous = None
        for item in items:
            await send(ws, {"type": "conversation.item.create", "item": item})
            added = await until(ws, "conversation.item.added")
            assert added["item"]["type"] == item["type"]
            assert added["previous_item_id"] == previous
            previous = (await until(ws, "conversation.item.done"))["item"]["id"]
        bad = {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "input_text", "text": "x"}],
        }
        await ws.send(json.dumps({"type": "conversation.item.create", "item": bad}))
        assert (await until(ws, "error"))["error"]["code"] == "invalid_value"
        await ws.send(
            json.dumps({"type": "response.audio.delta"})
        )  # beta name / not a client event
        assert (await until(ws, "error"))["error"]["code"] == "invalid_type"
        await ws.send("{not json")
        assert (await until(ws, "error"))["error"]["code"] == "invalid_json"
    assert len(emu.violations) == 3


async def test_echo_mode_returns_every_append() -> None:
    emu = OpenAIRealtimeEmulator(api_key=KEY, echo=True)
    async with emu, client(emu) as ws:
        await send(
            ws,
            session_update(
                audio={
                    "input": {"format": {"type": "audio/pcmu"}},
                    "output": {"format": {"type": "audio/pcmu"}},
                }
            ),
        )
        await until(ws, "session.updated")
        frames = [base64.b64encode(bytes([i]) * 160).decode() for i in range(5)]
        for frame in frames:
            await send(ws, {"type": "input_audio_buffer.append", "audio": frame})
        assert (await recv(ws))["type"] == "response.created"
        deltas = [await recv(ws) for _ in frames]
        assert [d["delta"] for d in deltas] == frames
        assert len({d["response_id"] for d in deltas}) == 1
    assert sum(e["type"] == "response.created" for e in emu.sent) == 1


async def test_drop_connections_and_drop_after_responses() -> None:
    emu = OpenAIRealtimeEmulator(api_key=KEY, drop_after_responses=1)
    async with emu, client(emu) as ws:
        await send(ws, {"type": "response.create", "response": {"instructions": "Hi."}})
        with pytest.raises(ConnectionClosed) as info:
            await drain(ws)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1011
    async with OpenAIRealtimeEmulator(api_key=KEY) as emu, client(emu) as ws:
        await emu.drop_connections()
        with pytest.raises(ConnectionClosed):
            await recv(ws)


async def test_golden_client_fixtures_are_accepted() -> None:
    golden = json.loads((FIXTURES / "client_events.json").read_text())["events"]
    async with OpenAIRealtimeEmulator(api_key=KEY) as emu, client(emu) as ws:
        for event in golden:
            await send(ws, event)
        assert (await until(ws, "session.updated"))["session"]["audio"]["output"][
            "voice"
        ] == "marin"
        assert (await until(ws, "conversation.item.added"))["item"]["call_id"] == "call_1"
        # item_3 does not exist in this conversation: refused like the real service would
        assert (await until(ws, "error"))["error"]["code"] == "item_not_found"
    assert [v["code"] for v in emu.violations] == ["item_not_found"]
    for event in emu.sent:
        conform(RealtimeServerEvent, event)


async def test_run_prints_its_url_and_serves(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(run(port=0, api_key=KEY))
    base = (await printed(capsys, "http://")).split()[-1]
    assert base.startswith("http://127.0.0.1:")
    headers = {"Authorization": f"Bearer {KEY}"}
    ws_url = base.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
    async with connect(ws_url, additional_headers=headers) as ws:  # it serves what it printed
        assert (await recv(ws))["type"] == "session.created"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_manual_commit_then_response_create_uses_the_script() -> None:
    script = [{"caller": "manual turn", "say": "Manual reply."}]
    async with OpenAIRealtimeEmulator(api_key=KEY, script=script) as emu, client(emu) as ws:
        audio = {"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}}
        await send(ws, session_update(audio=audio))
        await until(ws, "session.updated")
        await send(ws, {"type": "input_audio_buffer.commit"})
        assert (await until(ws, "error"))["error"]["code"] == "input_audio_buffer_commit_empty"
        await speak_raw(ws, "manual turn")
        await send(ws, {"type": "input_audio_buffer.commit"})
        transcript = await until(ws, "conversation.item.input_audio_transcription.completed")
        assert transcript["transcript"] == "manual turn"
        await send(ws, {"type": "response.create"})
        done = await until(ws, "response.output_audio_transcript.done")
        assert done["transcript"] == "Manual reply."
        assert not any(e["type"] == "input_audio_buffer.speech_started" for e in emu.sent)
    assert [v["code"] for v in emu.violations] == ["input_audio_buffer_commit_empty"]
