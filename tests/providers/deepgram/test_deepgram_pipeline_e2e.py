"""End to end over loopback: the DEEPGRAM provider against the Deepgram and Gemini emulators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.conftest import UNIT
from tests.waiting import eventually

from switchboard.audio import pcm16_to_ulaw
from switchboard.config import load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.deepgram import DeepgramEmulator
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.errors import ProviderError
from switchboard.media import AudioChunk, AudioFormat
from switchboard.providers.base import (
    ProviderEvent,
    ProviderEventType,
    SessionConfig,
    SessionState,
)
from switchboard.providers.pipeline import PipelineProvider
from switchboard.providers.registry import get_provider_registry

pytestmark = pytest.mark.e2e

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
E = ProviderEventType


class Call:
    """Drives a provider like the bridge does, recording every event."""

    def __init__(self, provider: PipelineProvider) -> None:
        self.provider = provider
        self.events: list[ProviderEvent] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Call:
        await self.provider.connect()
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.provider.disconnect()
        if self._task is not None:
            await self._task

    async def _pump(self) -> None:
        async for event in self.provider.receive_events():
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    def of(self, kind: ProviderEventType) -> list[ProviderEvent]:
        return [e for e in self.events if e.type is kind]

    async def wait(self, kind: ProviderEventType, count: int) -> ProviderEvent:
        def ready() -> bool:
            return len(self.of(kind)) >= count

        async with asyncio.timeout(8 * UNIT), self._changed:
            await self._changed.wait_for(ready)
        return self.of(kind)[count - 1]

    async def say(self, text: str, silence_ms: int = 1400) -> None:
        """Caller speech as μ-law 8 kHz, sent in 20 ms frames (faster than real time)."""
        audio = pcm16_to_ulaw(speech_like_pcm16(text, 8000) + b"\x00\x00" * 8 * silence_ms)
        for i in range(0, len(audio), 160):
            await self.provider.send_audio(AudioChunk(audio[i : i + 160], AudioFormat.ULAW, 8000))
            if i % 3200 == 0:
                await asyncio.sleep(0)  # a yield, not a wait: let the call read what we sent


@asynccontextmanager
async def deepgram_call(
    script: list[dict[str, Any]], *, dg_options: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[tuple[Call, DeepgramEmulator, GeminiEmulator]]:
    async with (
        DeepgramEmulator(api_key="dg", script=script, **(dg_options or {})) as dg,
        GeminiEmulator(api_key="gm", script=script) as gm,
    ):
        settings = load_settings(
            DEEPGRAM_API_KEY="dg",
            DEEPGRAM_BASE_URL=dg.base_url,
            GEMINI_API_KEY="gm",
            GEMINI_BASE_URL=gm.base_url,
        )
        config = SessionConfig(
            audio_format=AudioFormat.ULAW,
            sample_rate=8000,
            system_prompt="You are a helpful receptionist.",
            tools=[WEATHER_TOOL],
            greeting="Hello, how can I help?",
        )
        registry = get_provider_registry(settings)
        assert registry.is_configured("deepgram") == (True, ())
        provider = registry.create_provider("deepgram", config, **options)
        assert isinstance(provider, PipelineProvider)
        async with Call(provider) as call:
            yield call, dg, gm
        assert dg.violations == []
        assert gm.violations == []


def texts(call: Call, kind: ProviderEventType, pick: Callable[[ProviderEvent], bool]) -> list[str]:
    return [e.data["text"] for e in call.of(kind) if pick(e)]


@pytest.mark.anyio
async def test_two_turns_with_a_tool_call() -> None:
    script: list[dict[str, Any]] = [
        {
            "caller": "what is the weather in Paris",
            "tool": {"name": "get_weather", "arguments": {"city": "Paris"}},
            "say": "It is sunny in Paris. Anything else?",
        },
        {"caller": "no thanks goodbye", "say": "Goodbye! Have a nice day."},
    ]
    async with deepgram_call(script) as (call, dg, gm):
        provider = call.provider
        assert provider.input_spec == provider.output_spec
        assert provider.output_spec.format is AudioFormat.ULAW
        await call.wait(E.RESPONSE_DONE, 1)  # the greeting
        await call.say("what is the weather in Paris")
        fc = await call.wait(E.FUNCTION_CALL, 1)
        assert fc.data["name"] == "get_weather"
        assert fc.data["arguments"] == {"city": "Paris"}
        await provider.handle_function_result(fc.data["call_id"], {"sky": "sunny", "temp_c": 21})
        await call.wait(E.RESPONSE_DONE, 3)
        await call.say("no thanks goodbye")
        done = await call.wait(E.RESPONSE_DONE, 4)
        assert done.data["status"] == "completed"
        assert done.data["ttfa_ms"] is not None
        assert done.data["usage"].tts_characters == len("Goodbye!Have a nice day.")
        assert texts(call, E.CALLER_TRANSCRIPT, lambda e: e.data["final"]) == [
            "What is the weather in Paris.",
            "No thanks goodbye.",
        ]
        assert texts(call, E.TEXT_OUTPUT, lambda e: e.data["final"]) == [
            "Hello, how can I help?",
            "It is sunny in Paris. Anything else?",
            "Goodbye! Have a nice day.",
        ]
        audio = b"".join(e.data["chunk"].data for e in call.of(E.AUDIO_OUTPUT))
        spoken = "Hello, how can I help?It is sunny in Paris.Anything else?Goodbye!Have a nice day."
        assert len(audio) == len(spoken) * 60 * 8  # 60 ms a character of μ-law 8 kHz
        assert len(provider.ttfa_ms) == 2
        # The LLM saw the call, its result, and the whole conversation, system prompt apart.
        last = gm.rest.requests[-1]
        roles = [c["role"] for c in last["contents"]]
        assert roles == ["model", "user", "model", "user", "model", "user"]
        assert last["contents"][3]["parts"][0]["functionResponse"]["response"] == {
            "sky": "sunny",
            "temp_c": 21,
        }
        assert last["systemInstruction"]["parts"][0]["text"] == "You are a helpful receptionist."
        assert dg.listen_queries[0]["encoding"] == "mulaw"
        assert dg.speak_queries[0]["model"] == "aura-asteria-en"


@pytest.mark.anyio
async def test_barge_in_keeps_only_what_was_heard() -> None:
    story = (
        "Once upon a time there was a small village by the sea. "
        "Every morning the fishermen sailed out before dawn. "
        "One day a storm came over the hills and nobody went out. "
        "The children played in the rain all afternoon."
    )
    script = [
        {"caller": "tell me a story", "say": story},
        {"caller": "stop please", "say": "Sure, what else?"},
    ]
    async with deepgram_call(script, dg_options={"speed": 4.0}, greeting=False) as (call, dg, gm):
        await call.say("tell me a story")
        await call.wait(E.AUDIO_OUTPUT, 10)  # 1 s of the story was produced
        await call.say("stop please")
        interrupted = await call.wait(E.INTERRUPTED, 1)
        cancelled = await call.wait(E.RESPONSE_DONE, 1)
        assert cancelled.data["status"] == "cancelled"
        assert cancelled.data["response_id"] == interrupted.data["response_id"]
        await call.provider.interrupt(played_ms=800)  # what the bridge says was played
        await call.wait(E.RESPONSE_DONE, 2)
        assert texts(call, E.TEXT_OUTPUT, lambda e: e.data["final"])[-1] == "Sure, what else?"
        assert {"type": "Clear"} in dg.speak_messages
        heard = gm.rest.requests[-1]["contents"][1]["parts"][0]["text"]
        assert story.startswith(heard)
        # 0.8 s of a 3.3 s first sentence (60 ms a character): about a quarter of its 12 words
        # (the cut is estimated from the TTS's speech rate, rounding up a started word).
        assert 2 <= len(heard.split()) <= 5


@pytest.mark.anyio
async def test_idle_listen_socket_is_restored_mid_call() -> None:
    script = [
        {"caller": "hello", "say": "Hi there."},
        {"caller": "are you still there", "say": "Yes, I am here."},
    ]
    dg_options = {"idle_timeout_s": 0.4 * UNIT}
    async with deepgram_call(
        script, dg_options=dg_options, greeting=False, keepalive_s=None, reconnect_delay_s=0.05
    ) as (call, dg, _):
        await call.say("hello")
        await call.wait(E.RESPONSE_DONE, 1)
        await eventually(lambda: dg.idle_closes, limit_s=3, what="Deepgram's idle close")
        assert dg.idle_closes == 1
        await call.say("are you still there")
        await call.wait(E.RESPONSE_DONE, 2)
        assert texts(call, E.CALLER_TRANSCRIPT, lambda e: e.data["final"]) == [
            "Hello.",
            "Are you still there.",
        ]
        assert len(dg.listen_queries) >= 2  # (the new socket may idle out again meanwhile)
        assert not call.of(E.ERROR)


@pytest.mark.anyio
async def test_bad_deepgram_key_fails_connect() -> None:
    async with DeepgramEmulator(api_key="dg") as dg, GeminiEmulator(api_key="gm") as gm:
        settings = load_settings(
            DEEPGRAM_API_KEY="wrong",
            DEEPGRAM_BASE_URL=dg.base_url,
            GEMINI_API_KEY="gm",
            GEMINI_BASE_URL=gm.base_url,
        )
        provider = get_provider_registry(settings).create_provider("deepgram", SessionConfig())
        with pytest.raises(ProviderError) as refused:
            await provider.connect()
        assert refused.value.code == "unauthorized"
        assert provider.state is SessionState.FAILED
        await provider.disconnect()
