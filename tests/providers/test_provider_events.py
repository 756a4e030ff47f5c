"""Provider event payloads: typed dataclasses that still read as the seed's ``event.data``."""

from __future__ import annotations

import dataclasses
import operator

import pytest

from switchboard.media import AudioChunk, AudioFormat, Usage
from switchboard.providers.base import ProviderEvent as SeedProviderEvent
from switchboard.providers.base import ProviderEventType as SeedProviderEventType
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    ErrorReport,
    FunctionCall,
    ProviderEvent,
    ProviderEventType,
    ProviderPayload,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResponseInterrupted,
    SpeechStarted,
    SpeechStopped,
    TextOutput,
)

CHUNK = AudioChunk(b"\x01\x00" * 240, AudioFormat.PCM16, 24000, timestamp=1.0)


def test_the_seed_reads_work_on_typed_payloads() -> None:
    audio = ProviderEvent(AudioOutput(CHUNK, response_id="r1", item_id="i1"))
    assert audio.type == "audio.output"
    assert audio.data["audio"] == CHUNK.data
    assert audio.data["chunk"] is CHUNK
    call = ProviderEvent(FunctionCall("c1", "get_weather", {"city": "Paris"}))
    assert call.type == "function_call"
    assert (call.data["call_id"], call.data["name"], call.data["arguments"]) == (
        "c1",
        "get_weather",
        {"city": "Paris"},
    )
    assert ProviderEvent(TextOutput("Hi", final=True)).data["text"] == "Hi"


def test_the_seed_import_path_names_the_same_classes() -> None:
    assert SeedProviderEvent is ProviderEvent
    assert SeedProviderEventType is ProviderEventType


def test_the_mapping_view_has_exactly_the_documented_keys() -> None:
    assert dict(AudioOutput(CHUNK, "r1", "i1")) == {
        "chunk": CHUNK,
        "audio": CHUNK.data,
        "response_id": "r1",
        "item_id": "i1",
    }
    assert set(TextOutput("a", False)) == {"text", "final", "response_id", "item_id"}
    assert set(CallerTranscript("a", True)) == {"text", "final", "item_id"}
    assert set(SpeechStarted()) == set(SpeechStopped()) == {"audio_ms", "item_id"}
    assert dict(ResponseInterrupted("r1")) == {"response_id": "r1"}
    assert dict(Reconnecting(2, "goAway")) == {"attempt": 2, "reason": "goAway"}
    assert dict(Reconnected(2)) == {"attempt": 2}
    assert dict(ErrorReport("x", "boom", fatal=True)) == {
        "code": "x",
        "message": "boom",
        "fatal": True,
    }


def test_ttfa_ms_is_in_the_view_only_when_a_provider_measured_it() -> None:
    done = ResponseDone("r1", "completed", None, Usage(output_text_tokens=3))
    assert "ttfa_ms" not in done
    assert len(done) == 4
    assert done.get("ttfa_ms") is None
    with pytest.raises(KeyError):
        done["ttfa_ms"]
    timed = dataclasses.replace(done, ttfa_ms=250.0)
    assert timed["ttfa_ms"] == 250.0
    assert len(timed) == 5


def test_payloads_equal_plain_mappings_and_only_payloads_of_their_own_class() -> None:
    started, stopped = SpeechStarted(120, "i1"), SpeechStopped(120, "i1")
    assert started == {"audio_ms": 120, "item_id": "i1"}
    assert operator.eq({"audio_ms": 120, "item_id": "i1"}, started)  # dict == payload, reflected
    assert started != stopped  # same fields, different facts
    assert started == SpeechStarted(120, "i1")
    assert started != {"audio_ms": 120}
    assert started != "speech"


def test_every_event_type_has_one_payload_class() -> None:
    payloads: list[ProviderPayload] = [
        AudioOutput(CHUNK),
        TextOutput("a", False),
        FunctionCall("c", "f", {}),
        CallerTranscript("a", False),
        SpeechStarted(),
        SpeechStopped(),
        ResponseInterrupted("r"),
        ResponseDone("r"),
        Reconnecting(1, "x"),
        Reconnected(1),
        ErrorReport("c", "m"),
    ]
    assert sorted(p.event_type for p in payloads) == sorted(ProviderEventType)
    assert [ProviderEvent(p).type for p in payloads] == [p.event_type for p in payloads]


def test_payloads_are_frozen() -> None:
    payload = TextOutput("a", False)
    for name in ("text", "final"):  # by name: mypy refuses the plain assignment, rightly
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(payload, name, "b")
