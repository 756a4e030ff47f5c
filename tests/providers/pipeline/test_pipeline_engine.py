"""The asyncio PipelineProvider with small recording fake components (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from tests.conftest import UNIT

from switchboard.media import AudioChunk, AudioFormat, AudioSpec
from switchboard.providers.base import (
    ProviderEvent,
    ProviderEventType,
    SessionConfig,
    SessionState,
)
from switchboard.providers.pipeline import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
    PipelineProvider,
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
)

ULAW8K = AudioSpec(AudioFormat.ULAW, 8000)


class FakeSTT:
    def __init__(self) -> None:
        self.audio = bytearray()
        self.finalized = 0
        self.closed = False
        self.fail = False
        self.queue: asyncio.Queue[SttEvent | None] = asyncio.Queue()

    @property
    def input_spec(self) -> AudioSpec:
        return ULAW8K

    async def start(self) -> None:
        pass

    async def send_audio(self, data: bytes) -> None:
        self.audio += data

    async def events(self) -> AsyncIterator[SttEvent]:
        if self.fail:
            raise RuntimeError("socket gone")
        while (event := await self.queue.get()) is not None:
            yield event

    async def finalize(self) -> None:
        self.finalized += 1

    async def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)

    def utterance(self, text: str) -> None:
        self.queue.put_nowait(SttSpeechStarted(audio_ms=0))
        self.queue.put_nowait(SttTranscript(text, is_final=True, speech_final=True))


class FakeLLM:
    """Replies with scripted event lists, one per request; ``hang`` blocks until cancelled."""

    def __init__(self, replies: Sequence[Sequence[LLMEvent] | str]) -> None:
        self.replies = list(replies)
        self.requests: list[list[ChatMessage]] = []
        self.cancelled = 0
        self.closed = False

    async def stream(
        self,
        *,
        system_prompt: str | None,
        history: list[ChatMessage],
        tools: list[dict[str, Any]],
        temperature: float | None = None,
    ) -> AsyncIterator[LLMEvent]:
        self.requests.append(history)
        reply = self.replies.pop(0)
        try:
            if reply == "hang":
                yield LLMTextDelta("I will talk for a long time. ")
                await asyncio.Event().wait()  # a model that never finishes: only cancelled
            for event in reply:
                assert not isinstance(event, str)
                await asyncio.sleep(0)  # a yield between tokens, as a streamed reply has
                yield event
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def aclose(self) -> None:
        self.closed = True


class FakeTTS:
    """20 ms μ-law chunks, 10 per sentence, yielding to the loop between chunks."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    @property
    def output_spec(self) -> AudioSpec:
        return ULAW8K

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        for _ in range(10):
            await asyncio.sleep(0)  # a yield between chunks, as streamed synthesis has
            yield b"\x7f" * 160

    async def aclose(self) -> None:
        pass


async def collect_until(
    provider: PipelineProvider, kind: ProviderEventType, count: int = 1
) -> list[ProviderEvent]:
    seen: list[ProviderEvent] = []
    async with asyncio.timeout(5 * UNIT):
        async for event in provider.receive_events():
            seen.append(event)
            if sum(e.type is kind for e in seen) >= count:
                return seen
    raise AssertionError(f"events ended before {kind}: {[e.type for e in seen]}")


def state_of(provider: PipelineProvider) -> SessionState:
    return provider.state


def make(
    replies: Sequence[Sequence[LLMEvent] | str], **config: Any
) -> tuple[PipelineProvider, FakeSTT, FakeLLM, FakeTTS]:
    stt, llm, tts = FakeSTT(), FakeLLM(replies), FakeTTS()
    cfg = SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000, **config)
    return PipelineProvider(cfg, stt=stt, llm=llm, tts=tts), stt, llm, tts


@pytest.mark.anyio
async def test_greeting_then_turn_with_streamed_audio() -> None:
    provider, stt, llm, tts = make(
        [[LLMTextDelta("We open at nine. "), LLMTextDelta("Bye."), LLMDone(5, 6)]],
        greeting="Hello!",
        system_prompt="be brief",
    )
    await provider.connect()
    assert provider.input_spec == ULAW8K
    assert provider.output_spec == ULAW8K
    seen = await collect_until(provider, ProviderEventType.RESPONSE_DONE)
    assert sum(e.type is ProviderEventType.AUDIO_OUTPUT for e in seen) == 10
    # PCM16 16 kHz caller audio is converted to the STT's μ-law 8 kHz.
    for _ in range(10):  # 200 ms (the streaming resampler holds back a few ms)
        await provider.send_audio(AudioChunk(b"\x00\x00" * 320, AudioFormat.PCM16, 16000))
    assert 0 < len(stt.audio) <= 1600
    assert set(stt.audio) <= {0xFF, 0x7F}  # μ-law silence
    stt.utterance("when do you open")
    seen = await collect_until(provider, ProviderEventType.RESPONSE_DONE)
    done = next(e for e in seen if e.type is ProviderEventType.RESPONSE_DONE).data
    assert done["status"] == "completed"
    assert done["usage"].output_text_tokens == 6
    assert done["ttfa_ms"] is not None
    assert len(provider.ttfa_ms) == 1
    assert tts.texts == ["Hello!", "We open at nine.", "Bye."]
    assert llm.requests[0] == [
        ChatMessage("assistant", "Hello!"),
        ChatMessage("user", "when do you open"),
    ]
    chunk = next(e for e in seen if e.type is ProviderEventType.AUDIO_OUTPUT).data["chunk"]
    assert chunk.format is AudioFormat.ULAW
    await provider.disconnect()
    assert provider.state is SessionState.CLOSED
    assert stt.closed
    assert llm.closed


@pytest.mark.anyio
async def test_barge_in_cancels_llm_and_speech() -> None:
    provider, stt, llm, _ = make(["hang", [LLMTextDelta("Sure."), LLMDone()]])
    await provider.connect()
    stt.utterance("tell me everything")
    await collect_until(provider, ProviderEventType.AUDIO_OUTPUT)
    stt.queue.put_nowait(SttSpeechStarted(audio_ms=3000))
    seen = await collect_until(provider, ProviderEventType.RESPONSE_DONE)
    types = [e.type for e in seen]
    assert ProviderEventType.INTERRUPTED in types
    assert seen[-1].data["status"] == "cancelled"
    await provider.interrupt(played_ms=0)
    stt.queue.put_nowait(SttTranscript("stop", is_final=True, speech_final=True))
    await collect_until(provider, ProviderEventType.RESPONSE_DONE)
    assert llm.cancelled == 1
    assert [m.role for m in llm.requests[1]] == ["user", "user"]  # nothing was heard
    await provider.disconnect()


@pytest.mark.anyio
async def test_tool_loop_through_handle_function_result() -> None:
    call = LLMFunctionCall("call_1", "get_weather", {"city": "Paris"})
    provider, stt, llm, _ = make(
        [[call, LLMDone()], [LLMTextDelta("It is 20 degrees."), LLMDone()]],
        tools=[{"type": "function", "name": "get_weather", "parameters": {}}],
    )
    await provider.connect()
    stt.utterance("weather in Paris")
    seen = await collect_until(provider, ProviderEventType.FUNCTION_CALL)
    fc = seen[-1].data
    assert fc == {"call_id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    await provider.handle_function_result("call_1", {"temp": 20})
    seen = await collect_until(provider, ProviderEventType.TEXT_OUTPUT, 2)
    assert seen[-1].data["text"] == "It is 20 degrees."
    assert llm.requests[1][-1] == ChatMessage(
        "tool", '{"temp": 20}', tool_call_id="call_1", name="get_weather"
    )
    await provider.disconnect()


@pytest.mark.anyio
async def test_stt_failure_fails_session() -> None:
    provider, stt, _, _ = make([])
    stt.fail = True
    await provider.connect()
    seen = await collect_until(provider, ProviderEventType.ERROR)
    assert seen[-1].data["fatal"] is True
    assert state_of(provider) is SessionState.FAILED
    assert stt.closed  # the failed session tore itself down
    await provider.disconnect()
    assert state_of(provider) is SessionState.CLOSED


class BrokenLLM(FakeLLM):
    async def stream(
        self,
        *,
        system_prompt: str | None,
        history: list[ChatMessage],
        tools: list[dict[str, Any]],
        temperature: float | None = None,
    ) -> AsyncIterator[LLMEvent]:
        yield LLMTextDelta("Let me see. ")
        raise RuntimeError("HTTP 503")


@pytest.mark.anyio
async def test_llm_failure_is_a_non_fatal_error_and_a_failed_response() -> None:
    stt, tts = FakeSTT(), FakeTTS()
    config = SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000)
    provider = PipelineProvider(config, stt=stt, llm=BrokenLLM([]), tts=tts)
    await provider.connect()
    stt.utterance("hello")
    seen = await collect_until(provider, ProviderEventType.RESPONSE_DONE)
    error = next(e for e in seen if e.type is ProviderEventType.ERROR).data
    assert error["code"] == "llm_error"
    assert error["fatal"] is False
    assert seen[-1].data["status"] == "failed"
    assert tts.texts == ["Let me see."]  # what was generated before the failure is still said
    assert state_of(provider) is SessionState.CONNECTED
    await provider.disconnect()


@pytest.mark.anyio
async def test_a_held_turn_waits_in_caller_audio_not_on_the_wall_clock() -> None:
    """Issue #21: an unfinished-sounding turn waits ``max_endpoint_ms`` of the caller's audio.
    While no audio comes (a stall on a loaded machine) the wait does not run out; once the
    audio passes it, the turn is answered (after a short grace for the STT's results)."""
    provider, stt, llm, _ = make(
        [[LLMTextDelta("Noted."), LLMDone()]], extra={"turn_taking": {"max_endpoint_ms": 300}}
    )
    await provider.connect()
    frame = AudioChunk(b"\xff" * 160, AudioFormat.ULAW, 8000)  # 20 ms
    for _ in range(15):
        await provider.send_audio(frame)
    stt.queue.put_nowait(SttSpeechStarted(audio_ms=0))
    stt.queue.put_nowait(SttTranscript("My number is 555", True, True, end_ms=100))
    await asyncio.sleep(0.7)  # more than max_endpoint_ms of wall time, no audio
    assert llm.requests == []
    for _ in range(10):  # the audio comes in a burst: 400 ms after the speech now
        await provider.send_audio(frame)
    await collect_until(provider, ProviderEventType.RESPONSE_DONE)
    assert llm.requests[0][-1] == ChatMessage("user", "My number is 555")
    await provider.disconnect()


@pytest.mark.anyio
async def test_a_held_turns_timers_end_with_the_session() -> None:
    provider, stt, llm, _ = make([], extra={"turn_taking": {"max_endpoint_ms": 300}})
    await provider.connect()
    stt.queue.put_nowait(SttSpeechStarted(audio_ms=0))
    stt.queue.put_nowait(SttTranscript("My number is 555", True, True, end_ms=100))
    for _ in range(20):
        await asyncio.sleep(0)
    timers = list(provider._endpoint_timers)
    assert timers  # the backstop of the held turn (no audio came)
    await provider.disconnect()
    assert all(t.cancelled() for t in timers)
    assert llm.requests == []
