"""Pure tests of the sans-I/O Gemini Live protocol (no sockets, no event loop)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from google.genai import types
from tests.conformance import conform

from switchboard.errors import LocalProtocolError, RemoteProtocolError
from switchboard.media import Usage
from switchboard.providers.base import SessionConfig
from switchboard.providers.gemini_live import GeminiLiveProtocol, LiveSetup, ProtocolState
from switchboard.providers.gemini_live.events import (
    AudioDelta,
    FunctionCallRequested,
    GoAway,
    InputTranscript,
    Interrupted,
    OutputTranscript,
    ResumptionUpdate,
    SetupComplete,
    ToolCallCancelled,
    TurnComplete,
    VoiceActivity,
)
from switchboard.providers.gemini_live.usage import usage_from_metadata

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gemini"
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def validate_client(message: str) -> dict[str, Any]:
    """Check a client message with google-genai's ``LiveClientMessage``.

    ``LiveClientSetup`` (3.6.1) lacks ``realtimeInputConfig`` although the SDK's own converter
    sends it (protocols.md §2 quirk): that field is checked with ``RealtimeInputConfig``.
    """
    msg = json.loads(message)
    body = copy.deepcopy(msg)
    if "setup" in body:
        ric = body["setup"].pop("realtimeInputConfig", None)
        if ric is not None:
            conform(types.RealtimeInputConfig, ric)
    conform(types.LiveClientMessage, body)
    return dict(msg)


def make_protocol(**extra: Any) -> GeminiLiveProtocol:
    config = SessionConfig(
        model_id="gemini-2.5-flash-native-audio-preview-12-2025",
        voice="Puck",
        system_prompt="You are a phone agent.",
        temperature=0.8,
        tools=[TOOL],
        extra=extra,
    )
    return GeminiLiveProtocol(LiveSetup.from_config(config))


def ready(proto: GeminiLiveProtocol) -> GeminiLiveProtocol:
    proto.setup()
    assert proto.receive(b'{"setupComplete": {}}') == [SetupComplete(None)]
    proto.drain()
    return proto


def server(msg: dict[str, Any]) -> str:
    conform(types.LiveServerMessage, msg)  # what we feed is a real server message
    return json.dumps(msg)


def audio_msg(pcm: bytes) -> str:
    blob = {"mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(pcm).decode()}
    return server({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})


def test_setup_matches_golden_and_sdk_types() -> None:
    proto = make_protocol(vad={"start_sensitivity": "low"}, compression_trigger_tokens=25600)
    sent = validate_client(proto.setup())
    golden = json.loads((FIXTURES / "live_setup.json").read_text())
    assert sent == {"setup": golden["setup"]}


def test_setup_carries_latest_resumption_handle() -> None:
    proto = ready(make_protocol())
    events = proto.receive(
        server({"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}})
    )
    assert events == [ResumptionUpdate("h1", True)]
    proto.receive(server({"sessionResumptionUpdate": {"newHandle": "h2", "resumable": False}}))
    setup = validate_client(proto.setup())["setup"]
    assert setup["sessionResumption"] == {"handle": "h1"}


def test_input_is_buffered_until_setup_complete_and_drained_in_order() -> None:
    proto = make_protocol()
    proto.setup()
    assert proto.send_audio(b"\x01\x00" * 160) == []
    assert proto.send_text("hello") == []
    assert proto.send_image(b"\xff\xd8jpeg", "image/jpeg") == []
    with pytest.raises(LocalProtocolError):
        proto.drain()
    proto.receive('{"setupComplete": {}}')
    flushed = [validate_client(m) for m in proto.drain()]
    assert list(flushed[0]) == ["realtimeInput"]
    assert flushed[0]["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=16000"
    assert base64.b64decode(flushed[0]["realtimeInput"]["audio"]["data"]) == b"\x01\x00" * 160
    assert flushed[1]["clientContent"]["turnComplete"] is True
    assert flushed[2]["realtimeInput"]["video"]["mimeType"] == "image/jpeg"
    assert proto.state is ProtocolState.READY
    assert len(proto.send_audio(b"\x00\x00")) == 1


def test_buffer_bound_drops_oldest_audio_but_keeps_tool_results() -> None:
    proto = GeminiLiveProtocol(LiveSetup(model="m"), max_buffered_audio_ms=250)
    ready(proto).receive(
        server({"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "args": {}}]}})
    )
    proto.suspend()
    proto.function_result("c1", {"ok": True})
    for _ in range(20):
        proto.send_audio(b"\x00\x00" * 800)  # 50 ms each
    assert proto.dropped_audio_bytes > 0
    proto.setup()
    proto.receive('{"setupComplete": {}}')
    kinds = [next(iter(json.loads(m))) for m in proto.drain()]
    assert kinds[0] == "toolResponse"
    assert kinds.count("realtimeInput") == 5  # the newest 250 ms


def test_turn_audio_transcripts_and_usage() -> None:
    proto = ready(make_protocol())
    ev = proto.receive(
        server({"serverContent": {"inputTranscription": {"text": "Hi", "finished": True}}})
    )
    assert ev == [InputTranscript("Hi", True)]
    ev = proto.receive(audio_msg(b"\x01\x00" * 240))
    assert ev == [AudioDelta(b"\x01\x00" * 240, 24000, "gemini-turn-1")]
    ev = proto.receive(server({"serverContent": {"outputTranscription": {"text": "Hello "}}}))
    assert ev == [OutputTranscript("Hello ", "gemini-turn-1")]
    proto.receive(server({"serverContent": {"outputTranscription": {"text": "there"}}}))
    proto.receive(server({"serverContent": {"generationComplete": True}}))
    usage = {
        "promptTokenCount": 10,
        "responseTokenCount": 5,
        "totalTokenCount": 15,
        "promptTokensDetails": [
            {"modality": "AUDIO", "tokenCount": 8},
            {"modality": "TEXT", "tokenCount": 2},
        ],
    }
    (done,) = proto.receive(
        server({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
    )
    assert done == TurnComplete(
        "gemini-turn-1",
        "Hello there",
        Usage(input_text_tokens=2, input_audio_tokens=8, output_audio_tokens=5),
    )
    (next_audio,) = proto.receive(audio_msg(b"\x00\x00"))
    assert isinstance(next_audio, AudioDelta)
    assert next_audio.response_id == "gemini-turn-2"


def test_audio_in_url_safe_unpadded_base64_is_accepted() -> None:
    proto = ready(make_protocol())
    pcm = b"\xfb\xff\xfe\x00\x01"  # encodes with '-', '_' and padding in standard form
    data = base64.urlsafe_b64encode(pcm).decode().rstrip("=")
    blob = {"mimeType": "audio/pcm;rate=24000", "data": data}
    msg = {"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}}
    (delta,) = proto.receive(json.dumps(msg))
    assert isinstance(delta, AudioDelta)
    assert delta.pcm == pcm


def test_server_interruption_closes_turn_once() -> None:
    proto = ready(make_protocol())
    proto.receive(audio_msg(b"\x00\x00" * 10))
    assert proto.receive(server({"serverContent": {"interrupted": True}})) == [
        Interrupted("gemini-turn-1")
    ]
    (done,) = proto.receive(server({"serverContent": {"turnComplete": True}}))
    assert isinstance(done, TurnComplete)
    assert (done.status, done.reason) == ("cancelled", "interrupted")


def test_server_interruption_without_turn_complete_closes_at_next_turn() -> None:
    proto = ready(make_protocol())
    proto.receive(audio_msg(b"\x00\x00"))
    proto.receive(server({"serverContent": {"interrupted": True}}))
    events = proto.receive(server({"serverContent": {"outputTranscription": {"text": "Next"}}}))
    assert isinstance(events[0], TurnComplete)
    assert events[0].status == "cancelled"
    assert events[1] == OutputTranscript("Next", "gemini-turn-2")


def test_client_interrupt_sends_nothing_drops_audio_and_reports_heard_text() -> None:
    proto = ready(make_protocol())
    proto.receive(server({"serverContent": {"outputTranscription": {"text": "abcdefghij"}}}))
    proto.receive(audio_msg(b"\x00\x00" * 2400))  # 100 ms
    assert proto.interrupt(played_ms=50) == []
    assert proto.receive(audio_msg(b"\x00\x00" * 2400)) == []
    (done,) = proto.receive(server({"serverContent": {"turnComplete": True}}))
    assert isinstance(done, TurnComplete)
    assert (done.status, done.reason, done.heard_text) == ("cancelled", "client_interrupt", "abcde")


def test_tool_call_result_and_cancellation() -> None:
    proto = ready(make_protocol())
    calls = {
        "functionCalls": [
            {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}},
            {"id": "c2", "name": "get_weather", "args": {"city": "Rome"}},
        ]
    }
    events = proto.receive(server({"toolCall": calls}))
    assert events == [
        FunctionCallRequested("c1", "get_weather", {"city": "Paris"}),
        FunctionCallRequested("c2", "get_weather", {"city": "Rome"}),
    ]
    (msg,) = proto.function_result("c1", {"temp_c": 20})
    fr = validate_client(msg)["toolResponse"]["functionResponses"]
    assert fr == [{"id": "c1", "name": "get_weather", "response": {"temp_c": 20}}]
    proto.suspend()  # a reconnect is under way: c2's result waits in the buffer
    assert proto.function_result("c2", "sunny") == []
    assert proto.receive(server({"toolCallCancellation": {"ids": ["c2"]}})) == [
        ToolCallCancelled(("c2",))
    ]
    proto.setup()
    proto.receive('{"setupComplete": {}}')
    assert proto.drain() == []
    assert proto.function_result("c2", "late") == []  # cancelled: dropped, no error
    with pytest.raises(LocalProtocolError):
        proto.function_result("never-issued", {})


def test_scalar_function_result_is_wrapped_in_an_object() -> None:
    proto = ready(make_protocol())
    proto.receive(server({"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "args": {}}]}}))
    (msg,) = proto.function_result("c1", "done")
    assert json.loads(msg)["toolResponse"]["functionResponses"][0]["response"] == {"result": "done"}


def test_golden_server_messages_parse() -> None:
    proto = ready(make_protocol())
    messages = json.loads((FIXTURES / "live_server_messages.json").read_text())["messages"]
    kinds = [type(ev).__name__ for m in messages for ev in proto.receive(server(m))]
    assert kinds == [
        "SetupComplete",
        "AudioDelta",
        "OutputTranscript",
        "InputTranscript",
        "TurnComplete",
        "FunctionCallRequested",
        "ToolCallCancelled",
        "GoAway",
        "ResumptionUpdate",
    ]


def test_go_away_duration_and_voice_activity() -> None:
    proto = ready(make_protocol())
    assert proto.receive(server({"goAway": {"timeLeft": "1.5s"}})) == [GoAway(1.5)]
    assert proto.receive(json.dumps({"goAway": {"timeLeft": "soon"}})) == [GoAway(0.0)]
    msg = {"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}}
    assert proto.receive(server(msg)) == [VoiceActivity(started=True)]


@pytest.mark.parametrize("frame", ["not json", b"\xff\xfe", "[1, 2]", '{"serverContent": 5}'])
def test_malformed_frames_raise_remote_protocol_error(frame: str | bytes) -> None:
    proto = ready(make_protocol())
    with pytest.raises(RemoteProtocolError):
        proto.receive(frame)
    assert proto.receive(b'{"serverContent": {"generationComplete": true}}') == []


def test_usage_without_details() -> None:
    meta = {"promptTokenCount": 7, "responseTokenCount": 3, "thoughtsTokenCount": 2}
    assert usage_from_metadata(meta) == Usage(
        input_text_tokens=7, output_audio_tokens=3, output_text_tokens=2
    )


def test_requeued_messages_go_first_after_the_next_setup() -> None:
    proto = ready(make_protocol())
    (lost,) = proto.send_audio(b"\x01\x00")  # the write of this one failed
    proto.requeue([lost])
    assert proto.state is ProtocolState.AWAITING_SETUP
    assert proto.send_text("after") == []
    proto.setup()
    proto.receive('{"setupComplete": {}}')
    flushed = proto.drain()
    assert flushed[0] == lost
    assert "clientContent" in json.loads(flushed[1])


def test_a_note_is_a_client_content_turn_completed_only_when_answered() -> None:
    proto = ready(make_protocol())
    (quiet,) = proto.send_note("The caller is a VIP.")
    assert validate_client(quiet) == {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "The caller is a VIP."}]}],
            "turnComplete": False,
        }
    }
    (answered,) = proto.send_note("An operator spoke with the caller.", respond=True)
    assert validate_client(answered)["clientContent"]["turnComplete"] is True
