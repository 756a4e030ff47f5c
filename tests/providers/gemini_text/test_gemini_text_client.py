"""GeminiTextLLM against the Gemini emulator's REST side over loopback, plus the pure codec."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from google.genai import types
from tests.conformance import conform
from tests.conftest import UNIT
from tests.waiting import eventually

from switchboard.config import load_settings
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.errors import ConfigError, ProviderError, RemoteProtocolError
from switchboard.providers.gemini_text import GeminiTextLLM, StreamDecoder, request_body
from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gemini"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": ["integer", "null"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }
]


async def collect(llm: GeminiTextLLM, history: list[ChatMessage]) -> list[LLMEvent]:
    return [
        ev
        async for ev in llm.stream(
            system_prompt="You are terse.", history=history, tools=TOOLS, temperature=0.2
        )
    ]


def text_of(events: list[LLMEvent]) -> str:
    return "".join(ev.text for ev in events if isinstance(ev, LLMTextDelta))


# -- pure codec ----------------------------------------------------------------------------------
def test_request_body_validates_against_sdk_and_uses_user_role_for_results() -> None:
    call = LLMFunctionCall("c1", "get_weather", {"city": "Paris"})
    history = [
        ChatMessage("user", "weather?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", json.dumps({"temp": 20}), tool_call_id="c1"),
        ChatMessage("assistant", "It is 20."),
    ]
    body = request_body(system_prompt="sys", history=history, tools=TOOLS, temperature=0.5)
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user", "model"]
    fr = body["contents"][2]["parts"][0]["functionResponse"]
    assert fr == {"id": "c1", "name": "get_weather", "response": {"temp": 20}}
    params = body["tools"][0]["functionDeclarations"][0]["parameters"]
    assert params["type"] == "OBJECT"
    assert params["properties"]["days"] == {"type": "INTEGER", "nullable": True}
    assert "additionalProperties" not in params
    req = conform(
        types.GenerateContentConfig,
        {"system_instruction": body["systemInstruction"], "tools": body["tools"]},
    )
    assert req.tools
    for content in body["contents"]:
        conform(types.Content, content)


def test_golden_request_fixture_matches() -> None:
    golden = json.loads((FIXTURES / "rest_request_tool_roundtrip.json").read_text())
    call = LLMFunctionCall("c1", "get_weather", {"city": "Paris"})
    history = [
        ChatMessage("user", "weather?"),
        ChatMessage("assistant", tool_calls=(call,)),
        ChatMessage("tool", '{"temp": 20}', tool_call_id="c1", name="get_weather"),
    ]
    tools = [{"name": "get_weather", "description": "d", "parameters": golden["_tool_parameters"]}]
    body = request_body(system_prompt="sys", history=history, tools=tools)
    assert body["contents"] == golden["contents"]
    assert body["tools"] == golden["tools"]
    assert body["systemInstruction"] == golden["systemInstruction"]


def test_stream_decoder_golden_chunks_crlf_and_lf() -> None:
    chunks = json.loads((FIXTURES / "rest_sse_chunks.json").read_text())["chunks"]
    for sep in ("\r\n\r\n", "\n\n"):
        wire = "".join(f"data: {json.dumps(c)}{sep}" for c in chunks)
        dec = StreamDecoder()
        events: list[LLMEvent] = []
        for i in range(0, len(wire), 7):  # arbitrary split points
            events += dec.feed(wire[i : i + 7])
        events += dec.finish()
        assert text_of(events) == "Hello there, how can I help?"
        call = next(ev for ev in events if isinstance(ev, LLMFunctionCall))
        assert call.name == "get_weather"
        assert call.arguments == {"city": "Paris"}
        assert call.call_id.startswith("call_sb_")  # the chunk had no id
        assert events[-1] == LLMDone(input_tokens=8, output_tokens=12, finish_reason="STOP")
    for chunk in chunks:
        conform(types.GenerateContentResponse, chunk)


def test_stream_decoder_malformed_chunk() -> None:
    dec = StreamDecoder()
    with pytest.raises(RemoteProtocolError):
        dec.feed("data: {not json\n\n")


def test_missing_key_is_config_error() -> None:
    with pytest.raises(ConfigError):
        GeminiTextLLM(settings=load_settings(GEMINI_API_KEY=None))


# -- end to end over loopback --------------------------------------------------------------------
@pytest.mark.anyio
async def test_streaming_text_in_several_chunks() -> None:
    async with GeminiEmulator(script=["Hello there, how can I help you today?"]) as emu:
        settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        llm = GeminiTextLLM(settings=settings)
        try:
            events = await collect(llm, [ChatMessage("user", "hi")])
        finally:
            await llm.aclose()
    deltas = [ev for ev in events if isinstance(ev, LLMTextDelta)]
    assert len(deltas) >= 3
    assert text_of(events) == "Hello there, how can I help you today?"
    done = events[-1]
    assert isinstance(done, LLMDone)
    assert done.finish_reason == "STOP"
    assert done.output_tokens > 0
    assert done.input_tokens > 0
    assert emu.rest.requests[0]["systemInstruction"]["parts"][0]["text"] == "You are terse."
    assert emu.rest.requests[0]["generationConfig"] == {"temperature": 0.2}
    assert emu.violations == []


@pytest.mark.anyio
@pytest.mark.parametrize("call_ids", [True, False])
async def test_function_call_then_result_then_text(call_ids: bool) -> None:
    script = [
        {
            "tool": {"name": "get_weather", "arguments": {"city": "Paris"}},
            "say": "It is 20 degrees.",
        }
    ]
    async with GeminiEmulator(script=script, rest_call_ids=call_ids) as emu:
        settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        async with httpx.AsyncClient() as client:
            llm = GeminiTextLLM(settings=settings, client=client)
            history = [ChatMessage("user", "weather in Paris?")]
            first = await collect(llm, history)
            call = next(ev for ev in first if isinstance(ev, LLMFunctionCall))
            assert call.name == "get_weather"
            assert call.arguments == {"city": "Paris"}
            assert (call.call_id == "fc_1") is call_ids
            history += [
                ChatMessage("assistant", tool_calls=(call,)),
                ChatMessage("tool", json.dumps({"temp_c": 20}), tool_call_id=call.call_id),
            ]
            second = await collect(llm, history)
            await llm.aclose()
            assert not client.is_closed  # an injected client is not ours to close
    assert text_of(second) == "It is 20 degrees."
    sent = emu.rest.requests[1]["contents"]
    fr = sent[-1]["parts"][0]["functionResponse"]
    assert sent[-1]["role"] == "user"
    assert fr["name"] == "get_weather"
    assert fr["response"] == {"temp_c": 20}
    assert ("id" in fr) is call_ids
    assert emu.violations == []


@pytest.mark.anyio
async def test_cancellation_mid_stream_closes_http_stream() -> None:
    long_text = " ".join(f"word{i}" for i in range(60))
    async with GeminiEmulator(script=[long_text], rest_chunk_delay_s=0.05 * UNIT) as emu:
        settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        llm = GeminiTextLLM(settings=settings)
        got: list[LLMEvent] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for ev in llm.stream(
                system_prompt=None, history=[ChatMessage("user", "go")], tools=[]
            ):
                got.append(ev)
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5 * UNIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: emu.rest_streams_aborted, what="the stream's abort")
        await llm.aclose()
        assert emu.rest_streams_aborted == 1
    assert not any(isinstance(ev, LLMDone) for ev in got)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("key", "model", "status", "fragment"),
    [
        ("wrong-key", "gemini-2.5-flash", 400, "API key not valid"),
        ("right-key", "no-such-model", 404, "not found"),
    ],
)
async def test_http_errors_map_to_provider_error(
    key: str, model: str, status: int, fragment: str
) -> None:
    async with GeminiEmulator(api_key="right-key", models={"gemini-2.5-flash"}) as emu:
        settings = load_settings(GEMINI_API_KEY=key, GEMINI_BASE_URL=emu.base_url)
        llm = GeminiTextLLM(settings=settings, model=model)
        with pytest.raises(ProviderError) as info:
            await collect(llm, [ChatMessage("user", "hi")])
        await llm.aclose()
    assert f"HTTP {status}" in str(info.value)
    assert fragment in str(info.value)
    assert key not in str(info.value)


@pytest.mark.anyio
async def test_transport_failure_is_provider_error() -> None:
    settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL="http://127.0.0.1:9")
    llm = GeminiTextLLM(settings=settings)
    with pytest.raises(ProviderError):
        await collect(llm, [ChatMessage("user", "hi")])
    await llm.aclose()
