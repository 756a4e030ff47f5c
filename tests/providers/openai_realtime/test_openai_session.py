"""End to end over loopback: the OpenAI Realtime provider against the GA emulator.

Every client event the emulator received is checked against the SDK's ``RealtimeClientEvent``
and every event it sent against ``RealtimeServerEvent``; the emulator's violations must be empty.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from tests.conformance import conform
from tests.conftest import UNIT
from tests.waiting import eventually

from switchboard.audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from switchboard.config import load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.errors import ProviderError
from switchboard.media import AudioChunk, AudioFormat
from switchboard.providers.base import (
    ProviderEvent,
    ProviderEventType,
    SessionConfig,
    SessionState,
)
from switchboard.providers.openai_realtime import OpenAIRealtimeProvider, create_provider

pytestmark = pytest.mark.anyio
E = ProviderEventType
KEY = "sk-test-emulator"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class Events:
    """Collects a provider's events in a background task."""

    def __init__(self, provider: OpenAIRealtimeProvider) -> None:
        self.items: list[ProviderEvent] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._run(provider))

    async def _run(self, provider: OpenAIRealtimeProvider) -> None:
        async for event in provider.receive_events():
            async with self._changed:
                self.items.append(event)
                self._changed.notify_all()

    async def wait_for(
        self, pred: Callable[[ProviderEvent], bool], *, limit_s: float = 5.0
    ) -> ProviderEvent:
        async def find() -> ProviderEvent:
            async with self._changed:
                while True:
                    for event in self.items:
                        if pred(event):
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(find(), limit_s * UNIT)

    def of(self, kind: ProviderEventType) -> list[ProviderEvent]:
        return [e for e in self.items if e.type is kind]


def is_(kind: ProviderEventType, **data: Any) -> Callable[[ProviderEvent], bool]:
    return lambda e: e.type is kind and all(e.data.get(k) == v for k, v in data.items())


def check_wire(emu: OpenAIRealtimeEmulator) -> None:
    for event in emu.received:
        conform(RealtimeClientEvent, event)
    for event in emu.sent:
        conform(RealtimeServerEvent, event)
    assert emu.violations == []


@asynccontextmanager
async def session(
    config: SessionConfig | None = None,
    *,
    script: list[Any] | None = None,
    emu_options: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[OpenAIRealtimeEmulator, OpenAIRealtimeProvider, Events]]:
    emu_opts: dict[str, Any] = {"api_key": KEY, **(emu_options or {})}
    async with OpenAIRealtimeEmulator(script=script, **emu_opts) as emu:
        settings = load_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=emu.base_url)
        options.setdefault("backoff_base_s", 0.02)
        provider = create_provider(config or SessionConfig(), settings=settings, **options)
        await provider.connect()
        events = Events(provider)
        try:
            yield emu, provider, events
        finally:
            await provider.disconnect()
            await asyncio.wait_for(events.task, 5 * UNIT)
        check_wire(emu)


async def speak(provider: OpenAIRealtimeProvider, text: str, *, silence_ms: int = 700) -> None:
    """Send speech-like caller audio for ``text`` then silence, in 20 ms frames."""
    spec = provider.input_spec
    pcm = speech_like_pcm16(text, spec.sample_rate) + bytes(spec.sample_rate * silence_ms // 500)
    match spec.format:
        case AudioFormat.ULAW:
            data = pcm16_to_ulaw(pcm)
        case AudioFormat.ALAW:
            data = pcm16_to_alaw(pcm)
        case _:
            data = pcm
    step = spec.bytes_for_ms(20)
    for i in range(0, len(data), step):
        await provider.send_audio(AudioChunk(data[i : i + step], spec.format, spec.sample_rate))


def types_received(emu: OpenAIRealtimeEmulator) -> list[str]:
    return [str(e["type"]) for e in emu.received]


@pytest.mark.parametrize(
    ("fmt", "rate", "wire"),
    [
        (AudioFormat.PCM16, 24000, "audio/pcm"),
        (AudioFormat.ULAW, 8000, "audio/pcmu"),
        (AudioFormat.ALAW, 8000, "audio/pcma"),
    ],
)
async def test_audio_in_and_out(fmt: AudioFormat, rate: int, wire: str) -> None:
    say = "We are open nine to five."
    config = SessionConfig(audio_format=fmt, sample_rate=rate, system_prompt="Be brief.")
    async with session(config, script=[{"caller": "when are you open", "say": say}]) as (
        emu,
        provider,
        events,
    ):
        assert (provider.input_spec.format, provider.input_spec.sample_rate) == (fmt, rate)
        assert provider.output_spec == provider.input_spec
        await speak(provider, "when are you open")
        done = await events.wait_for(is_(E.RESPONSE_DONE, status="completed"))
        assert events.of(E.SPEECH_STARTED)
        assert events.of(E.SPEECH_STOPPED)
        transcript = await events.wait_for(is_(E.CALLER_TRANSCRIPT, final=True))
        assert transcript.data["text"] == "when are you open"
        chunks = [e.data["chunk"] for e in events.of(E.AUDIO_OUTPUT)]
        assert len(chunks) > 1
        assert all((c.format, c.sample_rate) == (fmt, rate) for c in chunks)
        assert sum(c.duration_ms for c in chunks) == pytest.approx(len(say) * 60, abs=2)
        final = [e.data["text"] for e in events.of(E.TEXT_OUTPUT) if e.data["final"]]
        assert final == [say]
        assert done.data["usage"].output_audio_tokens > 0
        assert done.data["usage"].output_audio_seconds == pytest.approx(len(say) * 0.06, abs=0.01)
        update = emu.received[0]
        assert update["type"] == "session.update"
        assert update["session"]["audio"]["input"]["format"]["type"] == wire


async def test_function_call_round_trip() -> None:
    script = [
        {
            "caller": "weather in Paris?",
            "tool": {"name": "get_weather", "arguments": {"city": "Paris"}},
            "say": "It is sunny in Paris.",
        }
    ]
    async with session(SessionConfig(tools=[WEATHER]), script=script) as (emu, provider, events):
        await speak(provider, "weather in Paris")
        call = await events.wait_for(is_(E.FUNCTION_CALL))
        assert call.data["name"] == "get_weather"
        assert call.data["arguments"] == {"city": "Paris"}
        await provider.handle_function_result(call.data["call_id"], {"temp_c": 21})
        await events.wait_for(is_(E.TEXT_OUTPUT, final=True, text="It is sunny in Paris."))
        outputs = [e["item"] for e in emu.received if e["type"] == "conversation.item.create"]
        assert outputs == [
            {
                "type": "function_call_output",
                "call_id": call.data["call_id"],
                "output": '{"temp_c": 21}',
            }
        ]
        assert types_received(emu).count("response.create") == 1


async def test_bad_tool_arguments_are_answered_not_fatal() -> None:
    script = [
        {"caller": "x", "tool": {"name": "get_weather", "raw_arguments": "{oops"}, "say": "Sorry."}
    ]
    async with session(SessionConfig(tools=[WEATHER]), script=script) as (_emu, provider, events):
        await speak(provider, "weather")
        error = await events.wait_for(is_(E.ERROR, code="invalid_function_arguments"))
        assert error.data["fatal"] is False
        await events.wait_for(is_(E.TEXT_OUTPUT, final=True, text="Sorry."))
        assert not events.of(E.FUNCTION_CALL)
        assert provider.state is SessionState.CONNECTED


async def test_barge_in_truncates_at_clamped_playout() -> None:
    say = "Let me tell you all about our many wonderful opening hours today."
    emu_options = {"realtime": True, "chunk_ms": 50}
    async with session(script=[{"caller": "hi", "say": say}], emu_options=emu_options) as (
        emu,
        provider,
        events,
    ):
        await speak(provider, "hi there", silence_ms=600)
        first = await events.wait_for(is_(E.AUDIO_OUTPUT))
        item_id = first.data["item_id"]

        def received_ms() -> float:
            chunks = events.of(E.AUDIO_OUTPUT)
            return float(
                sum(e.data["chunk"].duration_ms for e in chunks if e.data["item_id"] == item_id)
            )

        await eventually(lambda: received_ms() >= 300, what="300 ms of the reply")
        await speak(provider, "wait stop", silence_ms=0)  # caller barges in
        await events.wait_for(is_(E.INTERRUPTED))
        done = await events.wait_for(is_(E.RESPONSE_DONE, status="cancelled"))
        assert done.data["reason"] == "turn_detected"
        got_ms = received_ms()
        assert 0 < got_ms < len(say) * 60
        await provider.interrupt(played_ms=60_000)  # more than was ever received
        truncate = await eventually(
            lambda: next(
                (e for e in emu.received if e["type"] == "conversation.item.truncate"), None
            ),
            what="conversation.item.truncate",
        )
        assert truncate["item_id"] == item_id
        assert truncate["audio_end_ms"] == int(got_ms)
        assert any(e["type"] == "conversation.item.truncated" for e in emu.sent)
        assert "response.cancel" not in types_received(emu)  # the server had already cancelled


async def test_interrupt_cancels_an_active_response() -> None:
    say = "This is a rather long answer that the caller will not wait for at all."
    async with session(
        script=[{"caller": "hi", "say": say}], emu_options={"realtime": True, "chunk_ms": 50}
    ) as (emu, provider, events):
        await speak(provider, "hi there")
        await events.wait_for(is_(E.AUDIO_OUTPUT))
        await provider.interrupt(played_ms=20)
        done = await events.wait_for(is_(E.RESPONSE_DONE))
        assert (done.data["status"], done.data["reason"]) == ("cancelled", "client_cancelled")
        kinds = types_received(emu)
        assert kinds.index("response.cancel") < kinds.index("conversation.item.truncate")


async def test_greeting_is_spoken_first() -> None:
    config = SessionConfig(greeting="Thanks for calling switchboard.")
    async with session(config) as (emu, _provider, events):
        final = await events.wait_for(is_(E.TEXT_OUTPUT, final=True))
        assert final.data["text"] == "Thanks for calling switchboard."
        assert events.items[0].type is E.AUDIO_OUTPUT
        create = next(e for e in emu.received if e["type"] == "response.create")
        assert "Thanks for calling switchboard." in create["response"]["instructions"]


async def test_reconnect_replays_the_conversation() -> None:
    script = [
        {"caller": "my name is Ada", "say": "Nice to meet you, Ada."},
        {"caller": "what is my name", "say": "Your name is Ada."},
    ]
    async with session(script=script, emu_options={"drop_after_responses": 1}) as (
        emu,
        provider,
        events,
    ):
        await speak(provider, "my name is Ada")
        await events.wait_for(is_(E.RECONNECTING, attempt=1))
        await events.wait_for(is_(E.RECONNECTED))
        assert provider.state is SessionState.CONNECTED
        assert emu.connection_count == 2
        await speak(provider, "what is my name")
        await events.wait_for(is_(E.TEXT_OUTPUT, final=True, text="Your name is Ada."))
        second = emu.received[types_received(emu).index("session.update", 1) :]
        replayed = [e["item"] for e in second if e["type"] == "conversation.item.create"]
        texts = [(i["role"], i["content"][0]["text"]) for i in replayed]
        assert texts == [("user", "my name is Ada"), ("assistant", "Nice to meet you, Ada.")]


async def test_gives_up_after_bounded_reconnects() -> None:
    async with OpenAIRealtimeEmulator(api_key=KEY) as emu:
        settings = load_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=emu.base_url)
        provider = create_provider(
            SessionConfig(), settings=settings, max_reconnect_attempts=2, backoff_base_s=0.01
        )
        await provider.connect()
        events = Events(provider)
        await emu.close()  # server gone: every reconnect is refused
        await asyncio.wait_for(events.task, 5 * UNIT)
        assert provider.state is SessionState.FAILED
        assert [e.data["attempt"] for e in events.of(E.RECONNECTING)] == [1, 2]
        assert events.items[-1].type is E.ERROR
        assert events.items[-1].data["fatal"] is True
        await provider.disconnect()
        assert provider.state.value == "closed"


async def test_session_is_renewed_before_the_limit() -> None:
    async with session(
        script=[{"caller": "still there", "say": "Yes."}],
        max_session_seconds=0.4,
        renew_margin_s=0.2,
    ) as (emu, provider, events):
        reconnecting = await events.wait_for(is_(E.RECONNECTING))
        assert reconnecting.data["reason"] == "session renewal"
        await events.wait_for(is_(E.RECONNECTED))
        assert emu.connection_count >= 2
        await speak(provider, "still there")
        await events.wait_for(is_(E.TEXT_OUTPUT, final=True, text="Yes."))


async def test_server_error_event_is_not_fatal() -> None:
    async with session(script=[{"caller": "ok", "say": "Fine."}]) as (emu, provider, events):
        error = {"type": "server_error", "code": "internal", "message": "hiccup"}
        await emu.inject(json.dumps({"type": "error", "event_id": "e1", "error": error}))
        got = await events.wait_for(is_(E.ERROR))
        assert got.data == {"code": "internal", "message": "hiccup", "fatal": False}
        await speak(provider, "ok")
        await events.wait_for(is_(E.TEXT_OUTPUT, final=True, text="Fine."))
        assert provider.state is SessionState.CONNECTED


async def test_garbage_from_server_is_reported_and_survived() -> None:
    async with session(script=[{"caller": "ok", "say": "Still here."}]) as (emu, provider, events):
        await emu.inject("this is not json {")
        got = await events.wait_for(is_(E.ERROR, code="protocol_error"))
        assert got.data["fatal"] is False
        await speak(provider, "ok")
        await events.wait_for(is_(E.TEXT_OUTPUT, final=True, text="Still here."))


async def test_wrong_key_fails_connect() -> None:
    async with OpenAIRealtimeEmulator(api_key=KEY) as emu:
        settings = load_settings(OPENAI_API_KEY="sk-wrong", OPENAI_BASE_URL=emu.base_url)
        provider = create_provider(SessionConfig(), settings=settings)
        with pytest.raises(ProviderError) as info:
            await provider.connect()
        assert info.value.code == "http_401"
        assert info.value.fatal
        assert provider.state is SessionState.FAILED


async def test_audio_in_another_format_is_converted_to_the_session_format() -> None:
    # The seed sends PCM16 at 16 kHz whatever the wire takes (here μ-law 8 kHz): it is converted.
    config = SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000)
    async with session(config, emu_options={"echo": True}) as (_emu, provider, events):
        for _ in range(10):  # 200 ms of silence in 20 ms frames
            await provider.send_audio(AudioChunk(bytes(640), AudioFormat.PCM16, 16000))

        def echoed() -> bytes:
            return b"".join(e.data["audio"] for e in events.of(E.AUDIO_OUTPUT))

        await events.wait_for(lambda _e: len(echoed()) >= 1500)  # the resampler holds a little
        assert len(echoed()) <= 1600
        assert set(echoed()) == {0xFF}  # μ-law silence
        assert {e.data["chunk"].spec for e in events.of(E.AUDIO_OUTPUT)} == {provider.output_spec}


async def test_echo_mode_round_trip_through_the_provider() -> None:
    config = SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000)
    async with session(config, emu_options={"echo": True}) as (_emu, provider, events):
        frames = [bytes([0x10 + i]) * 160 for i in range(10)]
        for frame in frames:
            await provider.send_audio(AudioChunk(frame, AudioFormat.ULAW, 8000))
        await events.wait_for(lambda _e: len(events.of(E.AUDIO_OUTPUT)) == len(frames))
        assert [e.data["chunk"].data for e in events.of(E.AUDIO_OUTPUT)] == frames
