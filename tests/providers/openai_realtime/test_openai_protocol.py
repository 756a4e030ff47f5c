"""Pure tests of the OpenAI Realtime (GA) sans-I/O protocol: no sockets, no event loop."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from tests.conformance import conform

from switchboard.errors import RemoteProtocolError
from switchboard.media import AudioFormat, Usage
from switchboard.providers.base import ProviderEventType, SessionConfig
from switchboard.providers.openai_realtime.protocol import RealtimeProtocol

E = ProviderEventType
FIXTURES = Path(__file__).parents[2] / "fixtures" / "openai"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def sent(texts: list[str]) -> list[dict[str, Any]]:
    """Parse client texts, checking each against the SDK's GA client-event union."""
    out = [json.loads(t) for t in texts]
    for event in out:
        conform(RealtimeClientEvent, event)
    return out


def srv(**event: Any) -> str:
    event.setdefault("event_id", "evt_test")
    conform(RealtimeServerEvent, event)
    return json.dumps(event)


def configured(config: SessionConfig | None = None) -> RealtimeProtocol:
    proto = RealtimeProtocol(config or SessionConfig(), model="gpt-realtime")
    proto.start()
    proto.receive(srv(type="session.updated", session={"type": "realtime"}))
    return proto


def response_created(rid: str) -> str:
    return srv(type="response.created", response={"id": rid, "status": "in_progress"})


def response_done(rid: str, status: str = "completed", reason: str | None = None) -> str:
    details = {"type": status, "reason": reason} if reason else None
    return srv(
        type="response.done", response={"id": rid, "status": status, "status_details": details}
    )


def audio_delta(rid: str, item: str, nbytes: int) -> str:
    delta = base64.b64encode(bytes(nbytes)).decode()
    return srv(
        type="response.output_audio.delta",
        response_id=rid,
        item_id=item,
        output_index=0,
        content_index=0,
        delta=delta,
    )


def fn_done(call_id: str, arguments: str, name: str = "get_weather") -> str:
    return srv(
        type="response.function_call_arguments.done",
        response_id="resp_1",
        item_id=f"item_{call_id}",
        output_index=0,
        call_id=call_id,
        name=name,
        arguments=arguments,
    )


@pytest.mark.parametrize(
    ("fmt", "wire", "rate"),
    [
        (AudioFormat.PCM16, {"type": "audio/pcm", "rate": 24000}, 24000),
        (AudioFormat.ULAW, {"type": "audio/pcmu"}, 8000),
        (AudioFormat.ALAW, {"type": "audio/pcma"}, 8000),
    ],
)
def test_session_update_formats_and_fields(
    fmt: AudioFormat, wire: dict[str, Any], rate: int
) -> None:
    config = SessionConfig(
        audio_format=fmt,
        sample_rate=rate,
        system_prompt="Be brief.",
        voice="marin",
        temperature=0.7,
        tools=TOOLS,
    )
    proto = RealtimeProtocol(config, model="gpt-realtime")
    (update,) = sent(proto.start())
    session = update["session"]
    assert update["type"] == "session.update"
    assert session["type"] == "realtime"
    assert "temperature" not in session  # not a GA field
    assert session["audio"]["input"]["format"] == wire == session["audio"]["output"]["format"]
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["instructions"] == "Be brief."
    assert session["output_modalities"] == ["audio"]
    assert session["tools"][0]["name"] == "get_weather"
    assert session["tool_choice"] == "auto"
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    assert proto.spec.format is fmt
    assert proto.spec.sample_rate == rate


def test_semantic_vad_and_disabled_transcription() -> None:
    extra: dict[str, Any] = {
        "turn_detection": {"type": "semantic_vad", "eagerness": "low", "threshold": 0.9}
    }
    extra["transcription_model"] = None
    proto = RealtimeProtocol(SessionConfig(extra=extra), model="gpt-realtime")
    (update,) = sent(proto.start())
    td = update["session"]["audio"]["input"]["turn_detection"]
    assert td["type"] == "semantic_vad"
    assert td["eagerness"] == "low"
    assert "threshold" not in td  # not a semantic_vad setting
    assert update["session"]["audio"]["input"]["transcription"] is None


def test_audio_held_until_configured_then_greeting() -> None:
    proto = RealtimeProtocol(SessionConfig(greeting="Hello, caller!"), model="m")
    proto.start()
    assert proto.send_audio(b"\x01\x00" * 240) == []
    assert proto.receive(srv(type="session.created", session={"type": "realtime"})) == []
    assert proto.data_to_send() == []
    proto.receive(srv(type="session.updated", session={"type": "realtime"}))
    out = sent(proto.data_to_send())
    assert [e["type"] for e in out] == ["input_audio_buffer.append", "response.create"]
    assert base64.b64decode(out[0]["audio"]) == b"\x01\x00" * 240
    assert out[1]["response"]["instructions"] == "Say exactly: Hello, caller!"
    assert sent(proto.send_audio(b"\x00\x00"))[0]["type"] == "input_audio_buffer.append"


def test_no_second_response_create_while_one_is_active() -> None:
    proto = configured()
    assert len(sent(proto.request_response())) == 1
    assert proto.request_response() == []  # requested, not yet created
    proto.receive(response_created("resp_1"))
    assert proto.request_response() == []
    proto.receive(response_done("resp_1"))
    (again,) = sent(proto.data_to_send())
    assert again["type"] == "response.create"
    assert proto.data_to_send() == []


def test_function_results_request_one_response_after_all_outputs() -> None:
    proto = configured(SessionConfig(tools=TOOLS))
    proto.receive(response_created("resp_1"))
    calls = proto.receive(fn_done("call_a", '{"city": "Paris"}'))
    calls += proto.receive(fn_done("call_b", "{}"))
    assert [(c.type, c.data["call_id"]) for c in calls] == [
        (E.FUNCTION_CALL, "call_a"),
        (E.FUNCTION_CALL, "call_b"),
    ]
    assert calls[0].data["arguments"] == {"city": "Paris"}
    assert calls[0].data["name"] == "get_weather"
    proto.receive(response_done("resp_1"))
    first = sent(proto.function_result("call_a", {"temp": 20}))
    assert [e["type"] for e in first] == ["conversation.item.create"]
    assert first[0]["item"] == {
        "type": "function_call_output",
        "call_id": "call_a",
        "output": '{"temp": 20}',
    }
    second = sent(proto.function_result("call_b", "ok"))
    assert [e["type"] for e in second] == ["conversation.item.create", "response.create"]
    # the same call reported again by response.output_item.done is not emitted twice
    item = {"type": "function_call", "call_id": "call_a", "name": "get_weather", "arguments": "{}"}
    dup = srv(type="response.output_item.done", response_id="resp_1", output_index=0, item=item)
    assert proto.receive(dup) == []


def test_bad_function_arguments_answer_with_an_error_result() -> None:
    proto = configured(SessionConfig(tools=TOOLS))
    proto.receive(response_created("resp_1"))
    events = proto.receive(fn_done("call_x", '{"city": '))
    assert [e.type for e in events] == [E.ERROR]
    assert events[0].data["code"] == "invalid_function_arguments"
    assert events[0].data["fatal"] is False
    (item,) = sent(proto.data_to_send())  # response.create waits for response.done
    assert item["item"]["call_id"] == "call_x"
    assert "invalid JSON" in item["item"]["output"]
    proto.receive(response_done("resp_1"))
    assert [e["type"] for e in sent(proto.data_to_send())] == ["response.create"]


def test_interrupt_clamps_truncate_to_received_audio_and_cancels() -> None:
    proto = configured()  # pcm16 24 kHz: 48 bytes per ms
    proto.receive(response_created("resp_1"))
    events = proto.receive(audio_delta("resp_1", "item_a", 48 * 300))
    chunk = events[0].data["chunk"]
    assert events[0].type is E.AUDIO_OUTPUT
    assert len(chunk.data) == 48 * 300
    assert (chunk.format, chunk.sample_rate) == (AudioFormat.PCM16, 24000)
    proto.receive(audio_delta("resp_1", "item_a", 48 * 200))
    cancel, truncate = sent(proto.interrupt(played_ms=9000))
    assert cancel == {"type": "response.cancel", "response_id": "resp_1"}
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": 500,
    }


def test_interrupt_after_server_cancelled_only_truncates_within_played() -> None:
    proto = configured(SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000))
    proto.receive(response_created("resp_1"))
    proto.receive(audio_delta("resp_1", "item_a", 8 * 1000))  # 1 s of μ-law
    events = proto.receive(response_done("resp_1", "cancelled", "turn_detected"))
    assert [e.type for e in events] == [E.INTERRUPTED, E.RESPONSE_DONE]
    assert events[1].data["status"] == "cancelled"
    assert events[1].data["reason"] == "turn_detected"
    (truncate,) = sent(proto.interrupt(played_ms=420))
    assert truncate["audio_end_ms"] == 420
    assert proto.interrupt(played_ms=100) == []  # nothing left to truncate


def test_response_done_usage() -> None:
    proto = configured()
    fixture = json.loads((FIXTURES / "server_events.json").read_text())["events"]
    done = next(e for e in fixture if e["type"] == "response.done")
    (event,) = proto.receive(json.dumps(done))
    assert event.type is E.RESPONSE_DONE
    assert event.data["usage"] == Usage(
        input_text_tokens=20,
        input_audio_tokens=60,
        cached_input_tokens=0,
        output_text_tokens=10,
        output_audio_tokens=30,
    )


def test_error_mapping() -> None:
    proto = configured()
    (request,) = sent(proto.request_response())
    err = {
        "type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": "busy",
        "event_id": request["event_id"],
    }
    (event,) = proto.receive(srv(type="error", error=err))
    assert event.type is E.ERROR
    assert event.data == {
        "code": "conversation_already_has_active_response",
        "message": "busy",
        "fatal": False,
    }
    assert len(sent(proto.request_response())) == 1  # the refused request no longer blocks
    benign = {"type": "invalid_request_error", "code": "response_cancel_not_active", "message": "x"}
    assert proto.receive(srv(type="error", error=benign)) == []


@pytest.mark.parametrize("frame", ["not json", "[1, 2]", '{"no": "type"}', b"\xff\xfe"])
def test_malformed_frames_raise_remote_protocol_error(frame: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        configured().receive(frame)


def test_malformed_known_event_raises_remote_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError):
        configured().receive('{"type": "response.output_audio.delta", "delta": "!!"}')


def test_transcripts_and_restore_replays_history() -> None:
    proto = configured(SessionConfig(tools=TOOLS, greeting="Hi!"))
    proto.data_to_send()
    proto.receive(srv(type="input_audio_buffer.committed", item_id="item_u1"))
    proto.receive(response_created("resp_1"))
    delta = srv(
        type="response.output_audio_transcript.delta",
        response_id="resp_1",
        item_id="item_a1",
        output_index=0,
        content_index=0,
        delta="It is ",
    )
    (text,) = proto.receive(delta)
    assert text.data == {
        "text": "It is ",
        "final": False,
        "response_id": "resp_1",
        "item_id": "item_a1",
    }
    done = srv(
        type="response.output_audio_transcript.done",
        response_id="resp_1",
        item_id="item_a1",
        output_index=0,
        content_index=0,
        transcript="It is sunny.",
    )
    assert proto.receive(done)[0].data["final"] is True
    completed = srv(
        type="conversation.item.input_audio_transcription.completed",
        item_id="item_u1",
        content_index=0,
        transcript="Weather in Paris?",
        usage={"type": "duration", "seconds": 1.0},
    )
    (caller,) = proto.receive(completed)
    assert caller.type is E.CALLER_TRANSCRIPT
    assert caller.data["final"] is True
    proto.receive(fn_done("call_1", '{"city": "Paris"}'))
    proto.receive(response_done("resp_1"))
    proto.function_result("call_1", {"temp": 20})
    replay = sent(proto.restore())
    assert replay[0]["type"] == "session.update"
    items = [e["item"] for e in replay[1:]]
    assert [e["type"] for e in replay[1:]] == ["conversation.item.create"] * 5
    assert items[0]["content"][0] == {"type": "output_text", "text": "Hi!"}
    assert items[1]["content"][0] == {"type": "input_text", "text": "Weather in Paris?"}
    assert items[2]["content"][0] == {"type": "output_text", "text": "It is sunny."}
    assert items[3]["type"] == "function_call"
    assert items[3]["call_id"] == "call_1"
    assert items[4]["type"] == "function_call_output"
    assert items[4]["output"] == '{"temp": 20}'
    assert not proto.configured
    assert proto.send_audio(b"\x00\x00") == []  # held again until the new session.updated


def test_golden_fixtures_parse_on_client_side() -> None:
    client = json.loads((FIXTURES / "client_events.json").read_text())["events"]
    server = json.loads((FIXTURES / "server_events.json").read_text())["events"]
    for event in client:
        conform(RealtimeClientEvent, event)
    proto = configured(SessionConfig(tools=TOOLS))
    proto.receive(response_created("resp_1"))
    kinds: list[E] = []
    for event in server:
        conform(RealtimeServerEvent, event)
        kinds += [e.type for e in proto.receive(json.dumps(event))]
    assert kinds == [E.AUDIO_OUTPUT, E.FUNCTION_CALL, E.RESPONSE_DONE, E.ERROR]
    # our own session.update for the same settings matches the fixture's audio section
    config = SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000, voice="marin")
    config.extra["transcription_model"] = "whisper-1"
    ours = sent(RealtimeProtocol(config, model="gpt-realtime").start())[0]["session"]["audio"]
    golden = client[0]["session"]["audio"]
    assert ours["output"] == golden["output"]
    assert ours["input"]["format"] == golden["input"]["format"]
    assert ours["input"]["turn_detection"] == golden["input"]["turn_detection"]


def test_connection_lost_holds_audio_and_forgets_the_response() -> None:
    proto = configured()
    proto.receive(response_created("resp_1"))
    proto.connection_lost()
    assert proto.send_audio(b"\x02\x00" * 10) == []
    assert proto.request_response() == []  # queued until the next session is configured
    proto.restore()
    proto.receive(srv(type="session.updated", session={"type": "realtime"}))
    out = sent(proto.data_to_send())
    assert [e["type"] for e in out] == ["input_audio_buffer.append", "response.create"]


def test_truncated_reply_is_replayed_as_heard() -> None:
    proto = configured()
    proto.receive(response_created("resp_1"))
    proto.receive(audio_delta("resp_1", "item_a", 48 * 1000))  # 1 s received
    proto.interrupt(played_ms=500)
    done = srv(
        type="response.output_audio_transcript.done",
        response_id="resp_1",
        item_id="item_a",
        output_index=0,
        content_index=0,
        transcript="0123456789",
    )
    proto.receive(done)
    (item,) = proto.history()
    assert item["content"][0]["text"] == "01234"


def test_a_note_is_a_system_item_the_caller_does_not_hear_and_answered_when_asked() -> None:
    proto = configured()
    (item,) = sent(proto.note("The caller is a VIP."))
    assert item["type"] == "conversation.item.create"
    assert item["item"] == {
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "The caller is a VIP."}],
    }
    create, response = sent(proto.note("An operator spoke with the caller.", respond=True))
    assert create["item"]["role"] == "system"
    assert response["type"] == "response.create" and "response" not in response
    # kept for replay after a reconnect, in order
    texts = [i["content"][0]["text"] for i in proto.history() if i.get("role") == "system"]
    assert texts == ["The caller is a VIP.", "An operator spoke with the caller."]
