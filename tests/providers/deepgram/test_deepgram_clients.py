"""DeepgramSTT and DeepgramTTS over loopback against the Deepgram emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.conftest import UNIT
from tests.waiting import eventually

from switchboard.audio import pcm16_to_ulaw
from switchboard.config import Settings, load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.deepgram import DeepgramEmulator
from switchboard.errors import ProviderError
from switchboard.providers.deepgram import DeepgramSTT, DeepgramTTS, SpeakOptions
from switchboard.providers.pipeline import (
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)

KEY = "dg-key"


def settings_for(emu: DeepgramEmulator, key: str = KEY) -> Settings:
    return load_settings(DEEPGRAM_API_KEY=key, DEEPGRAM_BASE_URL=emu.base_url)


def caller_audio(text: str, silence_ms: int = 1300) -> bytes:
    return pcm16_to_ulaw(speech_like_pcm16(text, 8000) + b"\x00\x00" * (8 * silence_ms))


async def send(stt: DeepgramSTT, audio: bytes) -> None:
    for i in range(0, len(audio), 160):
        await stt.send_audio(audio[i : i + 160])


async def until(events: Any, predicate: Any) -> list[SttEvent]:
    seen: list[SttEvent] = []
    async with asyncio.timeout(5 * UNIT):
        async for event in events:
            seen.append(event)
            if predicate(event):
                return seen
    raise AssertionError(f"events ended: {seen}")


def speech_final(event: SttEvent) -> bool:
    return isinstance(event, SttTranscript) and event.speech_final


@pytest.mark.anyio
async def test_stt_utterance_events_and_close() -> None:
    script = [{"caller": "what are your hours"}]
    async with DeepgramEmulator(api_key=KEY, script=script) as emu:
        stt = DeepgramSTT(settings=settings_for(emu))
        await stt.start()
        events = stt.events()
        await send(stt, caller_audio("what are your hours"))
        seen = await until(events, lambda e: isinstance(e, SttUtteranceEnd))
        assert isinstance(seen[0], SttSpeechStarted)
        finals = [e for e in seen if isinstance(e, SttTranscript) and e.is_final]
        assert [f.text for f in finals] == ["What are your hours."]
        assert finals[0].speech_final
        assert any(isinstance(e, SttTranscript) and not e.is_final for e in seen)
        await stt.close()
        assert [e async for e in events] == []
        assert stt.protocol.metadata is not None
        assert emu.listen_controls[-1] == {"type": "CloseStream"}
        assert emu.listen_queries[0]["encoding"] == "mulaw"
        assert emu.violations == []


@pytest.mark.anyio
async def test_stt_reconnects_after_idle_close_without_losing_audio() -> None:
    script = [{"caller": "first question"}, {"caller": "second question"}]
    async with DeepgramEmulator(api_key=KEY, script=script, idle_timeout_s=0.3 * UNIT) as emu:
        stt = DeepgramSTT(settings=settings_for(emu), keepalive_s=None, reconnect_delay_s=0.05)
        await stt.start()
        events = stt.events()
        first = caller_audio("first question")
        await send(stt, first)
        await until(events, speech_final)
        # the caller went quiet and Deepgram hung up
        await eventually(lambda: emu.idle_closes, limit_s=3, what="Deepgram's idle close")
        assert emu.idle_closes == 1
        second = caller_audio("second question")
        await send(stt, second)  # sent while the socket is gone or being replaced
        seen = await until(events, speech_final)
        assert [e.text for e in seen if isinstance(e, SttTranscript) and e.is_final] == [
            "Second question."
        ]
        assert stt.reconnects == 1
        assert len(emu.listen_queries) == 2
        # Every byte reached Deepgram (unacknowledged audio is replayed, so maybe some twice).
        assert emu.listen_audio_bytes >= len(first) + len(second)
        final = next(e for e in seen if isinstance(e, SttTranscript) and e.is_final)
        assert final.start_ms is not None
        assert final.start_ms >= len(first) // 8 - 1400  # one timeline across sockets
        await stt.close()
        assert emu.violations == []


@pytest.mark.anyio
async def test_stt_keepalive_holds_an_idle_socket_open() -> None:
    async with DeepgramEmulator(api_key=KEY, idle_timeout_s=0.4 * UNIT) as emu:
        stt = DeepgramSTT(settings=settings_for(emu), keepalive_s=0.1 * UNIT)
        await stt.start()

        def keepalives() -> int:
            return sum(c == {"type": "KeepAlive"} for c in emu.listen_controls)

        # eight keep-alives 0.1 s apart span twice the 0.4 s idle timeout
        await eventually(lambda: keepalives() >= 8, what="eight KeepAlive messages")
        assert emu.idle_closes == 0
        await stt.close()


@pytest.mark.anyio
async def test_stt_bad_key_is_refused() -> None:
    async with DeepgramEmulator(api_key=KEY) as emu:
        stt = DeepgramSTT(settings=settings_for(emu, key="wrong"))
        with pytest.raises(ProviderError) as refused:
            await stt.start()
        assert refused.value.code == "unauthorized"


async def synth(tts: DeepgramTTS, text: str, limit: int | None = None) -> bytes:
    out = b""
    stream = tts.synthesize(text)
    try:
        async for chunk in stream:
            out += chunk
            if limit is not None and len(out) >= limit:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]  # synthesize is an async generator
    return out


@pytest.mark.anyio
async def test_tts_websocket_stream_and_clear_on_early_stop() -> None:
    async with DeepgramEmulator(api_key=KEY, speed=10.0) as emu:
        tts = DeepgramTTS(settings=settings_for(emu), options=SpeakOptions("aura-luna-en"))
        assert len(await synth(tts, "Hello there.")) == 12 * 60 * 8
        long = "This sentence goes on for quite a while indeed. " * 3
        partial = await synth(tts, long, limit=800)
        assert 800 <= len(partial) < len(long.strip()) * 60 * 8
        # The next sentence gets exactly its own audio: nothing stale from the cleared one.
        assert len(await synth(tts, "Next one.")) == 9 * 60 * 8
        await tts.aclose()
        assert [m["type"] for m in emu.speak_messages][:7] == [
            "Speak",
            "Flush",
            "Speak",
            "Flush",
            "Clear",
            "Speak",
            "Flush",
        ]
        assert emu.speak_queries[0] == {
            "model": "aura-luna-en",
            "encoding": "mulaw",
            "sample_rate": "8000",
        }
        assert tts.routes == ["ws", "ws", "ws"]
        assert emu.violations == []


@pytest.mark.anyio
async def test_tts_rest_fallback() -> None:
    async with DeepgramEmulator(api_key=KEY) as emu:
        rest_only = DeepgramTTS(
            settings=settings_for(emu),
            options=SpeakOptions(encoding="linear16", sample_rate=16000),
            use_websocket=False,
        )
        audio = await synth(rest_only, "Hi there.")
        assert len(audio) == 9 * 60 * 16 * 2
        assert rest_only.routes == ["rest"]
        await rest_only.aclose()

        async def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise OSError("connection refused")

        broken_ws = DeepgramTTS(settings=settings_for(emu), connector=unreachable)
        assert len(await synth(broken_ws, "Hi.")) == 3 * 60 * 8
        assert broken_ws.routes == ["rest"]
        await broken_ws.aclose()
        assert emu.rest_requests[0]["query"]["container"] == "none"
        assert emu.speak_queries == []


@pytest.mark.anyio
async def test_tts_flush_budget_switches_to_rest() -> None:
    async with DeepgramEmulator(api_key=KEY) as emu:
        tts = DeepgramTTS(settings=settings_for(emu), flush_limit=2)
        for _ in range(3):
            await synth(tts, "Ok.")
        assert tts.routes == ["ws", "ws", "rest"]
        await tts.aclose()
        assert emu.violations == []
