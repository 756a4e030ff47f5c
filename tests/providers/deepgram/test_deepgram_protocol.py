"""Pure tests of the Deepgram client protocols against golden fixtures and the SDK's types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from deepgram.listen.v1.types import (
    ListenV1CloseStream,
    ListenV1Finalize,
    ListenV1KeepAlive,
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)
from deepgram.speak.v1.types import (
    SpeakV1Clear,
    SpeakV1Cleared,
    SpeakV1Close,
    SpeakV1Flush,
    SpeakV1Flushed,
    SpeakV1Metadata,
    SpeakV1Text,
    SpeakV1Warning,
)
from tests.conformance import conform

from switchboard.emulators.common import Script
from switchboard.emulators.deepgram.listen import ListenCore, parse_listen_params
from switchboard.emulators.deepgram.speak import SpeakCore, wav_header
from switchboard.errors import RemoteProtocolError
from switchboard.media import AudioFormat
from switchboard.providers.base import SessionConfig
from switchboard.providers.deepgram import listen_options_for, speak_options_for
from switchboard.providers.deepgram.listen import ListenOptions, ListenProtocol
from switchboard.providers.deepgram.speak import (
    SpeakCleared,
    SpeakFlushed,
    SpeakMetadata,
    SpeakOptions,
    SpeakProtocol,
    SpeakWarning,
    WavUnwrapper,
)
from switchboard.providers.pipeline import SttSpeechStarted, SttTranscript, SttUtteranceEnd

FIXTURES = Path(__file__).parents[2] / "fixtures" / "deepgram"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    assert data.pop("_source")
    return data


LISTEN_SERVER = fixture("listen_server_messages.json")
LISTEN_CLIENT = fixture("listen_client_messages.json")
SPEAK = fixture("speak_messages.json")


def test_fixtures_conform_to_sdk_types() -> None:
    conform(ListenV1Results, LISTEN_SERVER["results_final"])
    conform(ListenV1Results, LISTEN_SERVER["results_interim_empty"])
    conform(ListenV1UtteranceEnd, LISTEN_SERVER["utterance_end"])
    conform(ListenV1SpeechStarted, LISTEN_SERVER["speech_started"])
    conform(ListenV1Metadata, LISTEN_SERVER["metadata"])
    conform(SpeakV1Metadata, SPEAK["server"]["metadata"])
    conform(SpeakV1Flushed, SPEAK["server"]["flushed"])
    conform(SpeakV1Cleared, SPEAK["server"]["cleared"])
    conform(SpeakV1Warning, SPEAK["server"]["warning"])


def test_client_control_messages_match_fixtures_and_sdk() -> None:
    checks: list[tuple[str, str, Any]] = [
        (ListenProtocol.keep_alive(), "keep_alive", ListenV1KeepAlive),
        (ListenProtocol.finalize(), "finalize", ListenV1Finalize),
        (ListenProtocol.close_stream(), "close_stream", ListenV1CloseStream),
    ]
    for text, key, model in checks:
        message = json.loads(text)
        assert message == LISTEN_CLIENT[key]
        assert conform(model, message).type == message["type"]
    speak = SpeakProtocol()
    speak_checks: list[tuple[str, str, Any]] = [
        (speak.speak("Hello, how can I help you today?"), "speak", SpeakV1Text),
        (speak.flush(), "flush", SpeakV1Flush),
        (speak.clear(), "clear", SpeakV1Clear),
        (speak.close(), "close", SpeakV1Close),
    ]
    for text, key, model in speak_checks:
        message = json.loads(text)
        assert message == SPEAK["client"][key]
        assert conform(model, message).type == message["type"]


def test_listen_query_matches_the_sdk_form() -> None:
    options = ListenOptions(
        model="nova-3", encoding="linear16", sample_rate=16000, smart_format=True
    )
    assert options.query() == dict(parse_qsl(LISTEN_CLIENT["listen_query"]))
    # The emulator accepts exactly what the client sends, with no complaints.
    params, notes = parse_listen_params(options.query())
    assert notes == []
    assert params.encoding == "linear16"
    assert params.endpointing == 300


def test_receive_fixtures() -> None:
    proto = ListenProtocol(ListenOptions(encoding="linear16", sample_rate=16000))
    (final,) = proto.receive(json.dumps(LISTEN_SERVER["results_final"]))
    assert final == SttTranscript(
        "hello world", is_final=True, speech_final=True, confidence=0.98, start_ms=0, end_ms=1040
    )
    (interim,) = proto.receive(json.dumps(LISTEN_SERVER["results_interim_empty"]))
    assert isinstance(interim, SttTranscript)
    assert interim.is_final is False
    assert interim.text == ""
    assert proto.receive(json.dumps(LISTEN_SERVER["utterance_end"])) == [SttUtteranceEnd(2395)]
    assert proto.receive(json.dumps(LISTEN_SERVER["speech_started"])) == [SttSpeechStarted(9540)]
    assert proto.receive(json.dumps(LISTEN_SERVER["metadata"])) == []
    assert proto.metadata == LISTEN_SERVER["metadata"]
    assert proto.receive('{"type": "SomethingNew"}') == []
    with pytest.raises(RemoteProtocolError):
        proto.receive("not json")
    with pytest.raises(RemoteProtocolError):
        proto.receive('{"type": "Results", "start": 0}')


def results(start: float, duration: float, *, is_final: bool) -> str:
    message = json.loads(json.dumps(LISTEN_SERVER["results_final"]))
    message.update(start=start, duration=duration, is_final=is_final, speech_final=is_final)
    return json.dumps(message)


def test_unacknowledged_audio_is_replayed_with_shifted_times() -> None:
    proto = ListenProtocol(ListenOptions())  # μ-law 8 kHz: 8 bytes a ms
    assert proto.audio(b"\x01" * 8000) == b"\x01" * 8000  # 1 s
    proto.receive(results(0.0, 0.6, is_final=False))
    assert len(proto.unacknowledged) == 8000  # interim results acknowledge nothing
    proto.receive(results(0.0, 0.6, is_final=True))
    assert proto.acknowledged_ms == 600
    proto.audio(b"\x02" * 800)
    replay = proto.reconnected()
    assert replay == b"\x01" * 3200 + b"\x02" * 800
    # The new socket's clock starts where the replay starts.
    (event,) = proto.receive(results(0.1, 0.2, is_final=True))
    assert isinstance(event, SttTranscript)
    assert (event.start_ms, event.end_ms) == (700, 900)
    assert proto.sent_ms == 1100


def test_unacknowledged_buffer_is_capped() -> None:
    proto = ListenProtocol(ListenOptions(), max_unacked_ms=100)
    proto.audio(b"\x00" * 2000)
    assert len(proto.unacknowledged) == 800
    assert proto.dropped_bytes == 1200
    assert proto.acknowledged_ms == 150


def test_speak_receive() -> None:
    server = SPEAK["server"]
    assert SpeakProtocol.receive(json.dumps(server["metadata"])) == SpeakMetadata(
        server["metadata"]["request_id"], "aura-asteria-en"
    )
    assert SpeakProtocol.receive(json.dumps(server["flushed"])) == SpeakFlushed(0)
    assert SpeakProtocol.receive(json.dumps(server["cleared"])) == SpeakCleared(0)
    assert SpeakProtocol.receive(json.dumps(server["warning"])) == SpeakWarning(
        "FLUSH_LIMIT", "Too many Flush messages"
    )
    assert SpeakProtocol.receive('{"type": "Future"}') is None
    with pytest.raises(RemoteProtocolError):
        SpeakProtocol.receive('{"type": "Flushed"}')


@pytest.mark.parametrize("step", [1, 5, 44, 45, 1000])
def test_wav_unwrapper_streams(step: int) -> None:
    audio = bytes(range(256)) * 4
    body = wav_header(len(audio), "linear16", 24000) + audio
    unwrap = WavUnwrapper()
    out = b"".join(unwrap.feed(body[i : i + step]) for i in range(0, len(body), step))
    assert out == audio
    assert unwrap.was_wav
    raw = WavUnwrapper()
    assert b"".join(raw.feed(audio[i : i + step]) for i in range(0, len(audio), step)) == audio
    assert not raw.was_wav


def test_options_follow_the_call_audio() -> None:
    phone = SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000)
    assert listen_options_for(phone, "nova-2").query()["encoding"] == "mulaw"
    assert speak_options_for(phone, "aura-luna-en") == SpeakOptions("aura-luna-en", "mulaw", 8000)
    wide = SessionConfig(audio_format=AudioFormat.PCM16, sample_rate=24000)
    assert listen_options_for(wide, "nova-3").input_spec.sample_rate == 16000
    assert speak_options_for(wide, "aura-luna-en").output_spec.sample_rate == 24000
    with pytest.raises(ValueError, match="sample rates"):
        SpeakOptions(sample_rate=11025)


def test_emulator_parses_client_control_fixtures() -> None:
    params, _ = parse_listen_params(ListenOptions().query())
    core = ListenCore(params, Script())
    for key in ("keep_alive", "finalize"):
        core.control(LISTEN_CLIENT[key])
    closing = core.control(LISTEN_CLIENT["close_stream"])
    assert closing.close == (1000, "")
    conform(ListenV1Metadata, closing.messages[-1])
    speak = SpeakCore({"model": "aura-asteria-en", "encoding": "mulaw", "sample_rate": 8000})
    for key in ("speak", "flush", "clear", "close"):
        speak.control(SPEAK["client"][key], now=0.0)
    assert core.violations == []
    assert speak.violations == []
