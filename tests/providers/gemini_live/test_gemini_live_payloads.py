"""Gemini Live events stand for the same payloads every provider reports (pure, no sockets)."""

from __future__ import annotations

from switchboard.media import AudioChunk, AudioFormat, Usage
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    FunctionCall,
    ResponseDone,
    ResponseInterrupted,
    SpeechStarted,
    SpeechStopped,
    TextOutput,
)
from switchboard.providers.gemini_live.events import (
    AudioDelta,
    FunctionCallRequested,
    GoAway,
    InputTranscript,
    Interrupted,
    ModelText,
    OutputTranscript,
    ResumptionUpdate,
    SetupComplete,
    ToolCallCancelled,
    TurnComplete,
    VoiceActivity,
)


def test_audio_is_pcm16_at_the_delta_rate_with_no_item() -> None:
    (payload,) = AudioDelta(b"\x01\x00" * 240, 24000, "gemini-turn-1").payloads()
    assert isinstance(payload, AudioOutput)
    assert (payload.chunk.data, payload.chunk.format, payload.chunk.sample_rate) == (
        b"\x01\x00" * 240,
        AudioFormat.PCM16,
        24000,
    )
    assert (payload.response_id, payload.item_id) == ("gemini-turn-1", None)
    assert payload["audio"] == b"\x01\x00" * 240


def test_text_and_transcripts() -> None:
    assert OutputTranscript("Hello ", "gemini-turn-1").payloads() == (
        TextOutput("Hello ", final=False, response_id="gemini-turn-1"),
    )
    assert ModelText("Hi", "gemini-turn-2").payloads() == (
        TextOutput("Hi", final=False, response_id="gemini-turn-2"),
    )
    assert InputTranscript("what are your hours", True).payloads() == (
        CallerTranscript("what are your hours", final=True),
    )
    assert InputTranscript("what", False).payloads()[0] == {
        "text": "what",
        "final": False,
        "item_id": None,
    }


def test_a_turn_ends_with_its_whole_text_then_response_done() -> None:
    usage = Usage(output_audio_tokens=25)
    done = TurnComplete("gemini-turn-1", "We open at nine.", usage)
    assert done.payloads() == (
        TextOutput("We open at nine.", final=True, response_id="gemini-turn-1"),
        ResponseDone("gemini-turn-1", "completed", None, usage),
    )
    silent = TurnComplete("gemini-turn-2", "", usage, status="cancelled", reason="interrupted")
    assert silent.payloads() == (ResponseDone("gemini-turn-2", "cancelled", "interrupted", usage),)


def test_calls_interruptions_and_voice_activity() -> None:
    call = FunctionCallRequested("c1", "get_weather", {"city": "Paris"})
    assert call.payloads() == (FunctionCall("c1", "get_weather", {"city": "Paris"}),)
    assert Interrupted("gemini-turn-1").payloads() == (ResponseInterrupted("gemini-turn-1"),)
    assert VoiceActivity(started=True).payloads() == (SpeechStarted(None, None),)
    assert VoiceActivity(started=False).payloads() == (SpeechStopped(None, None),)


def test_connection_events_stand_for_no_provider_event() -> None:
    for event in (
        SetupComplete("s1"),
        GoAway(10.0),
        ResumptionUpdate("h1", True),
        ToolCallCancelled(("c1",)),
    ):
        assert event.payloads() == ()


def test_chunks_carry_the_rate_gemini_names() -> None:
    (payload,) = AudioDelta(b"\x00\x00" * 160, 16000, "gemini-turn-3").payloads()
    assert isinstance(payload, AudioOutput)
    assert payload.chunk.spec == AudioChunk(b"", AudioFormat.PCM16, 16000).spec
