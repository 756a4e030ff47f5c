"""The Gemini emulator on its own: driven with raw websockets/httpx, checked with SDK types."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.genai import types
from tests.conformance import conform
from tests.conftest import UNIT
from tests.waiting import eventually, printed
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.gemini import GeminiEmulator, run

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gemini"
PATH = "/ws/google.ai.generativelanguage.{v}.GenerativeService.BidiGenerateContent"
SETUP = {"setup": {"model": "models/gemini-live-2.5-flash-preview"}}


def live_url(emu: GeminiEmulator, version: str = "v1beta", query: str = "") -> str:
    return emu.base_url.replace("http://", "ws://") + PATH.format(v=version) + query


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5 * UNIT):
        frame = await ws.recv()
    msg = json.loads(frame)
    conform(types.LiveServerMessage, msg)  # every emulator message is a valid one
    return dict(msg)


async def recv_until(
    ws: ClientConnection, key: str, path: str | None = None
) -> list[dict[str, Any]]:
    """Messages up to and including the first with ``key`` (and ``path`` inside it)."""
    got: list[dict[str, Any]] = []
    while True:
        msg = await recv_json(ws)
        got.append(msg)
        if key in msg and (path is None or msg[key].get(path)):
            return got


@asynccontextmanager
async def live(
    emu: GeminiEmulator, setup: dict[str, Any] | None = None, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    headers = kwargs.pop("headers", {"x-goog-api-key": "k"})
    async with connect(live_url(emu, **kwargs), additional_headers=headers) as ws:
        await ws.send(json.dumps(setup or SETUP))
        yield ws


def audio_msg(pcm: bytes, *, snake: bool = True, rate: int = 16000) -> str:
    data = base64.b64encode(pcm).decode()
    if snake:  # what google-genai 3.6.1 actually sends
        return json.dumps(
            {"realtime_input": {"audio": {"data": data, "mime_type": f"audio/pcm;rate={rate}"}}}
        )
    return json.dumps(
        {"realtimeInput": {"mediaChunks": [{"mimeType": f"audio/pcm;rate={rate}", "data": data}]}}
    )


def utterance() -> bytes:
    return speech_like_pcm16("hello there", 16000) + b"\x00\x00" * 16000


# -- Live ------------------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("snake", [True, False])
async def test_live_turn_sdk_spelling_and_key_in_query(snake: bool) -> None:
    script = [{"caller": "what time is it", "say": "It is noon, more or less."}]
    setup = {
        "setup": {
            "model": "models/gemini-live-2.5-flash-preview",
            "generation_config": {
                "response_modalities": ["AUDIO"],
                "speech_config": {
                    "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}
                },
            },
            "input_audio_transcription": {},
            "outputAudioTranscription": {},
        }
    }
    async with (
        GeminiEmulator(script=script, api_key="k", realtime=False) as emu,
        live(emu, setup, headers={}, query="?key=k") as ws,
    ):
        raw = await ws.recv()
        assert isinstance(raw, bytes)  # Google sends JSON in binary frames
        assert json.loads(raw) == {"setupComplete": {}}
        await ws.send(audio_msg(utterance(), snake=snake))
        msgs = await recv_until(ws, "serverContent", "turnComplete")
    contents = [m["serverContent"] for m in msgs]
    assert contents[0]["inputTranscription"] == {"text": "what time is it", "finished": True}
    audio = [
        base64.b64decode(p["inlineData"]["data"])
        for c in contents
        for p in c.get("modelTurn", {}).get("parts", [])
    ]
    assert len(audio) > 2
    assert b"".join(audio) == speech_like_pcm16("It is noon, more or less.", 24000)
    text = "".join(c["outputTranscription"]["text"] for c in contents if "outputTranscription" in c)
    assert text == "It is noon, more or less."
    assert contents[-2] == {"generationComplete": True}
    assert msgs[-1]["usageMetadata"]["responseTokenCount"] > 0
    assert emu.live.audio_bytes == len(utterance())
    assert emu.violations == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("first", "headers", "version", "code"),
    [
        ("{not json", None, "v1beta", 1007),
        (json.dumps({"setup": {"model": "models/x", "bogus": 1}}), None, "v1beta", 1007),
        (json.dumps({"clientContent": {"turns": []}}), None, "v1beta", 1007),
        (json.dumps({"setup": {"model": "x"}}), None, "v1beta", 1007),
        (
            json.dumps(
                {
                    "setup": {
                        "model": "models/gemini-live-2.5-flash-preview",
                        "generationConfig": {
                            "speechConfig": {
                                "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Nobody"}}
                            }
                        },
                    }
                }
            ),
            None,
            "v1",
            1007,
        ),
        (json.dumps(SETUP), {"x-goog-api-key": "wrong"}, "v1beta", 1008),
        (json.dumps(SETUP), {}, "v1beta", 1008),
        (json.dumps({"setup": {"model": "models/unknown"}}), None, "v1alpha", 1008),
        (json.dumps(SETUP), None, "v9", 1008),
    ],
)
async def test_live_bad_setup_close_codes(
    first: str, headers: dict[str, str] | None, version: str, code: int
) -> None:
    async with GeminiEmulator(api_key="k", models={"gemini-live-2.5-flash-preview"}) as emu:
        hdrs = {"x-goog-api-key": "k"} if headers is None else headers
        async with connect(live_url(emu, version), additional_headers=hdrs) as ws:
            await ws.send(first)
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(ws)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == code
    assert emu.live.close_codes == [code]


@pytest.mark.anyio
async def test_live_unknown_message_after_setup_closes_1007() -> None:
    async with GeminiEmulator() as emu, live(emu) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"bogusMessage": {}}))
        with pytest.raises(ConnectionClosed) as info:
            await recv_json(ws)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1007


@pytest.mark.anyio
async def test_live_tool_call_round_trip_and_violations() -> None:
    script = [{"tool": {"name": "lookup", "arguments": {"q": "x"}}, "say": "Found it."}]
    async with GeminiEmulator(script=script, realtime=False) as emu, live(emu) as ws:
        await recv_json(ws)
        await ws.send(
            json.dumps(
                {
                    "clientContent": {
                        "turns": [{"role": "user", "parts": [{"text": "find x"}]}],
                        "turnComplete": True,
                    }
                }
            )
        )
        (msg,) = await recv_until(ws, "toolCall")
        (call,) = msg["toolCall"]["functionCalls"]
        assert call["name"] == "lookup"
        assert call["args"] == {"q": "x"}
        await ws.send(
            json.dumps(
                {
                    "tool_response": {
                        "functionResponses": [{"name": "lookup", "response": {"ok": 1}}]
                    }
                }
            )
        )
        await ws.send(
            json.dumps(
                {
                    "toolResponse": {
                        "functionResponses": [
                            {"id": call["id"], "name": "lookup", "response": {"ok": 1}}
                        ]
                    }
                }
            )
        )
        await recv_until(ws, "serverContent", "turnComplete")
        await ws.send(audio_msg(b"\x00\x00" * 10, rate=8000))
        await ws.send(
            json.dumps(
                {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": "%%%"}}}
            )
        )
        await eventually(lambda: len(emu.live.violations) >= 4, what="four violations")
    assert emu.live.violations == [
        "functionResponse without id",
        "functionResponse for unknown call None",
        "unexpected audio mime type 'audio/pcm;rate=8000'",
        "blob data is not base64",
    ]


@pytest.mark.anyio
async def test_live_barge_in_sends_interrupted() -> None:
    script = [{"say": "A long reply that keeps going for a good while. " * 4}]
    async with GeminiEmulator(script=script, speed=4.0) as emu, live(emu) as ws:
        await recv_json(ws)
        await ws.send(audio_msg(utterance()))
        await recv_until(ws, "serverContent", "modelTurn")
        await ws.send(audio_msg(speech_like_pcm16("stop", 16000)))
        msgs = await recv_until(ws, "serverContent", "interrupted")
        assert msgs[-1] == {"serverContent": {"interrupted": True}}
        done = await recv_json(ws)
        assert done["serverContent"] == {"turnComplete": True}


@pytest.mark.anyio
async def test_live_resumption_go_away_and_unknown_handle() -> None:
    script = [{"say": "One."}, {"say": "Two."}]
    model = "models/gemini-live-2.5-flash-preview"
    setup = {"setup": {"model": model, "sessionResumption": {}}}
    async with GeminiEmulator(script=script, realtime=False) as emu:
        async with live(emu, setup) as ws:
            await recv_json(ws)
            first = await recv_json(ws)
            assert first["sessionResumptionUpdate"]["resumable"] is True
            await ws.send(json.dumps({"realtimeInput": {"text": "hi"}}))
            await recv_until(ws, "serverContent", "turnComplete")
            await emu.live.go_away(time_left_s=0.2)
            msgs = await recv_until(ws, "goAway")
            assert msgs[-1] == {"goAway": {"timeLeft": "0.2s"}}
            handle = msgs[-2]["sessionResumptionUpdate"]["newHandle"]
            with pytest.raises(ConnectionClosed):
                await recv_json(ws)
        resumed = {"setup": {"model": model, "session_resumption": {"handle": handle}}}
        async with live(emu, resumed) as ws:
            assert await recv_json(ws) == {"setupComplete": {}}
            await ws.send(json.dumps({"realtimeInput": {"text": "again"}}))
            msgs = await recv_until(ws, "serverContent", "turnComplete")
        said = "".join(
            m.get("serverContent", {}).get("outputTranscription", {}).get("text", "") for m in msgs
        )
        assert said == ""  # no outputAudioTranscription was asked for
        assert emu.live.setups[1]["session_resumption"]["handle"] == handle
        assert len(emu.live.conversations) == 1
        audio = [m for m in msgs if "modelTurn" in m.get("serverContent", {})]
        data = b"".join(
            base64.b64decode(m["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"])
            for m in audio
        )
        assert data == speech_like_pcm16("Two.", 24000)  # the script went on from turn 2
        bad = {"setup": {"model": model, "sessionResumption": {"handle": "nope"}}}
        async with live(emu, bad) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await recv_json(ws)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1007


def shape(value: Any, path: str = "") -> set[str]:
    """The key paths of a JSON value (list items as ``[]``): its structure, not its data."""
    if isinstance(value, dict):
        paths: set[str] = set()
        for key, item in value.items():
            paths |= {f"{path}.{key}"} | shape(item, f"{path}.{key}")
        return paths
    if isinstance(value, list):
        return set().union(*(shape(item, f"{path}[]") for item in value))
    return set()


def kind(msg: dict[str, Any]) -> str:
    """``toolCall``, ``serverContent.turnComplete``...: what a server message is."""
    top = sorted(k for k in msg if k != "usageMetadata")
    inner = sorted(msg["serverContent"]) if "serverContent" in msg else []
    return "+".join(top) + "".join(f".{k}" for k in inner)


async def one_of_each() -> list[dict[str, Any]]:
    """A session that makes the emulator send every kind of server message, and a barge-in."""
    setup = {
        "setup": {
            "model": "models/gemini-live-2.5-flash-preview",
            "sessionResumption": {},
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
        }
    }
    weather = {"name": "get_weather", "arguments": {"city": "Paris"}}
    script: list[dict[str, Any]] = [
        {"caller": "hello there", "say": "Hi."},
        {"tool": weather, "say": "Sunny."},
    ]
    sent: list[dict[str, Any]] = []
    async with GeminiEmulator(script=script, realtime=False) as emu, live(emu, setup) as ws:
        sent += [await recv_json(ws), await recv_json(ws)]  # setupComplete, a resumption handle
        await ws.send(audio_msg(utterance()))
        sent += await recv_until(ws, "serverContent", "turnComplete")
        await ws.send(audio_msg(utterance()))
        sent += await recv_until(ws, "toolCall")
        await ws.send(audio_msg(utterance()))  # the caller speaks while the tool runs
        sent += await recv_until(ws, "toolCallCancellation")
        await emu.live.go_away(time_left_s=0.5)
        sent += await recv_until(ws, "goAway")
    long_reply = [{"say": "A long reply that keeps going for a good while. " * 4}]
    async with GeminiEmulator(script=long_reply, speed=4.0) as emu, live(emu) as ws:
        await recv_json(ws)
        await ws.send(audio_msg(utterance()))
        await recv_until(ws, "serverContent", "modelTurn")
        await ws.send(audio_msg(speech_like_pcm16("stop", 16000)))
        sent += await recv_until(ws, "serverContent", "interrupted")
    return sent


@pytest.mark.anyio
async def test_golden_server_fixture_matches_emulator_shapes() -> None:
    """Every kind of message in the vendor's examples is one the emulator sends, with at least
    the example's structure (``recv_json`` has checked each against the SDK, strictly)."""
    golden = json.loads((FIXTURES / "live_server_messages.json").read_text())["messages"]
    sent: dict[str, list[dict[str, Any]]] = {}
    for msg in await one_of_each():
        sent.setdefault(kind(msg), []).append(msg)
    for example in golden:
        conform(types.LiveServerMessage, example)
        ours = sent.get(kind(example), [])
        assert ours, f"the emulator never sent a {kind(example)}"
        assert any(shape(example) <= shape(msg) for msg in ours), (example, ours[:2])


def test_golden_client_fixture_conforms() -> None:
    client = json.loads((FIXTURES / "live_client_messages.json").read_text())
    for msg in client["camel"] + client["sdk_snake"]:
        conform(types.LiveClientMessage, msg)


@pytest.mark.anyio
async def test_live_accepts_golden_client_messages() -> None:
    client = json.loads((FIXTURES / "live_client_messages.json").read_text())
    async with GeminiEmulator(realtime=False) as emu, live(emu) as ws:
        await recv_json(ws)
        for msg in client["sdk_snake"] + client["camel"][:2]:
            await ws.send(json.dumps(msg))
        await recv_until(ws, "serverContent", "turnComplete")
        await recv_until(ws, "serverContent", "turnComplete")
    assert emu.live.audio_bytes == 8
    assert emu.violations == []


# -- REST ------------------------------------------------------------------------------------------
def rest_url(emu: GeminiEmulator, model: str = "gemini-2.5-flash", alt: str = "?alt=sse") -> str:
    return f"{emu.base_url}/v1beta/models/{model}:streamGenerateContent{alt}"


BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.anyio
async def test_rest_sse_chunks_are_valid_responses() -> None:
    async with (
        GeminiEmulator(script=["one two three four five six seven"]) as emu,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(rest_url(emu), json=BODY, headers={"x-goog-api-key": "k"})
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = resp.text.split("\r\n\r\n")
    assert events[-1] == ""
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert len(chunks) == 3
    for chunk in chunks:
        conform(types.GenerateContentResponse, chunk)
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "one two three four five six seven"
    assert ["usageMetadata" in c for c in chunks] == [False, False, True]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.anyio
async def test_rest_function_call_then_say() -> None:
    script = [{"tool": {"name": "f", "arguments": {"a": 1}}, "say": "Result noted."}]
    tools = [{"function_declarations": [{"name": "f", "description": "d"}]}]
    async with GeminiEmulator(script=script) as emu, httpx.AsyncClient() as client:
        first = await client.post(
            rest_url(emu, alt="?alt=sse&key=k"), json={**BODY, "tools": tools}
        )
        chunk = json.loads(first.text.split("\r\n\r\n")[0].removeprefix("data: "))
        part = chunk["candidates"][0]["content"]["parts"][0]
        assert part["functionCall"] == {"id": "fc_1", "name": "f", "args": {"a": 1}}
        assert part["thoughtSignature"]  # gemini-2.5-flash thinks: the part comes back whole
        contents = [
            *BODY["contents"],
            {"role": "model", "parts": [part]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "fc_1", "name": "f", "response": {"ok": True}}}
                ],
            },
        ]
        second = await client.post(rest_url(emu, alt="?alt=sse&key=k"), json={"contents": contents})
        array = await client.post(rest_url(emu, alt=""), json=BODY, headers={"x-goog-api-key": "k"})
    text = "".join(
        json.loads(e.removeprefix("data: "))["candidates"][0]["content"]["parts"][0]["text"]
        for e in second.text.split("\r\n\r\n")
        if e
    )
    assert text == "Result noted."
    assert isinstance(array.json(), list)  # without alt=sse: one JSON array
    assert emu.violations == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "model", "body", "status", "google_status"),
    [
        ({}, "gemini-2.5-flash", BODY, 401, "UNAUTHENTICATED"),
        ({"x-goog-api-key": "bad"}, "gemini-2.5-flash", BODY, 400, "INVALID_ARGUMENT"),
        ({"x-goog-api-key": "k"}, "nope", BODY, 404, "NOT_FOUND"),
        ({"x-goog-api-key": "k"}, "gemini-2.5-flash", {"contents": []}, 400, "INVALID_ARGUMENT"),
        (
            {"x-goog-api-key": "k"},
            "gemini-2.5-flash",
            {"contents": [{"role": "function", "parts": [{"text": "x"}]}]},
            400,
            "INVALID_ARGUMENT",
        ),
        (
            {"x-goog-api-key": "k"},
            "gemini-2.5-flash",
            {**BODY, "bogus": 1},
            400,
            "INVALID_ARGUMENT",
        ),
    ],
)
async def test_rest_errors_in_google_shape(
    headers: dict[str, str], model: str, body: dict[str, Any], status: int, google_status: str
) -> None:
    async with (
        GeminiEmulator(api_key="k", models={"gemini-2.5-flash"}) as emu,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(rest_url(emu, model), json=body, headers=headers)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["code"] == status
    assert error["status"] == google_status
    assert error["message"]


@pytest.mark.anyio
async def test_rest_invalid_json_body() -> None:
    async with GeminiEmulator() as emu, httpx.AsyncClient() as client:
        resp = await client.post(rest_url(emu), content=b"{nope", headers={"x-goog-api-key": "k"})
    assert resp.status_code == 400


@pytest.mark.anyio
async def test_run_serves_until_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(run(script=["Hi."]))
    url = (await printed(capsys, "http://")).split()[-1]
    assert url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as client:
        resp = await client.post(
            f"{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json=BODY,
            headers={"x-goog-api-key": "k"},
        )
    assert "Hi." in resp.text
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _official_sdk_session(base_url: str) -> tuple[list[str], list[types.FunctionCall]]:
    """Drive the emulator with google-genai's own (sync, httpx) REST client."""
    from google import genai

    client = genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=base_url, api_version="v1beta")
    )
    try:
        config = types.GenerateContentConfig(system_instruction="Be brief.")
        texts = [
            c.text or ""
            for c in client.models.generate_content_stream(
                model="gemini-2.5-flash", contents="hi", config=config
            )
        ]
        decl = types.FunctionDeclaration(
            name="get_weather",
            description="d",
            parameters=types.Schema(
                type="OBJECT", properties={"city": types.Schema(type="STRING")}
            ),
        )
        config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[decl])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        chunks = list(
            client.models.generate_content_stream(
                model="gemini-2.5-flash", contents="weather?", config=config
            )
        )
        calls = [fc for c in chunks for fc in (c.function_calls or [])]
    finally:
        client.close()
    return texts, calls


@pytest.mark.anyio
async def test_rest_side_serves_the_official_sdk() -> None:
    script: list[Any] = [
        "Hello from the emulator, friend.",
        {"tool": {"name": "get_weather", "arguments": {"city": "Paris"}}, "say": "Sunny."},
    ]
    async with GeminiEmulator(script=script, api_key="k") as emu:
        texts, calls = await asyncio.to_thread(_official_sdk_session, emu.base_url)
    assert "".join(texts) == "Hello from the emulator, friend."
    assert len(texts) > 1
    assert [(c.id, c.name, c.args) for c in calls] == [("fc_1", "get_weather", {"city": "Paris"})]
    assert emu.rest.requests[0]["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert emu.violations == []
