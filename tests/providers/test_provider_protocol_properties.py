"""Every provider protocol, fed anything a server could send, returns events or raises
``RemoteProtocolError`` (``ProviderError`` where the server reports an error): the sessions
catch those and end the call with a reason, so any other exception would be a crash.

The messages: arbitrary text and JSON, the golden fixtures cut at every length, and each
message type the parser knows with its fields given arbitrary JSON values.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.strategies import hostile_frames, json_values, shaped_messages, truncations

from switchboard.errors import ProviderError, RemoteProtocolError
from switchboard.providers.base import SessionConfig
from switchboard.providers.deepgram.listen import ListenOptions, ListenProtocol
from switchboard.providers.deepgram.speak import SpeakProtocol
from switchboard.providers.gemini_live import GeminiLiveProtocol, LiveSetup
from switchboard.providers.gemini_text.codec import StreamDecoder
from switchboard.providers.openai_realtime.protocol import RealtimeProtocol

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


OPENAI_FIXTURES = [json.dumps(e) for e in _load("openai/server_events.json")["events"]]
GEMINI_FIXTURES = [json.dumps(m) for m in _load("gemini/live_server_messages.json")["messages"]]
LISTEN_FIXTURES = [
    json.dumps(v) for k, v in _load("deepgram/listen_server_messages.json").items() if k[0] != "_"
]
SPEAK_FIXTURES = [json.dumps(v) for v in _load("deepgram/speak_messages.json")["server"].values()]
SSE_FIXTURES = [
    f"data: {json.dumps(c)}\n\n" for c in _load("gemini/rest_sse_chunks.json")["chunks"]
]

OPENAI_TYPES = [
    "session.updated",
    "response.created",
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "response.output_text.delta",
    "response.output_audio_transcript.done",
    "response.output_item.added",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.done",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "error",
]
OPENAI_FIELDS = [
    "response",
    "item",
    "item_id",
    "response_id",
    "delta",
    "transcript",
    "text",
    "call_id",
    "name",
    "arguments",
    "error",
    "audio_start_ms",
    "audio_end_ms",
    "content_index",
]
GEMINI_KEYS = [
    "setupComplete",
    "serverContent",
    "toolCall",
    "toolCallCancellation",
    "goAway",
    "sessionResumptionUpdate",
    "voiceActivity",
    "usageMetadata",
]
GEMINI_INNER = [
    "modelTurn",
    "parts",
    "turnComplete",
    "interrupted",
    "inputTranscription",
    "outputTranscription",
    "functionCalls",
    "ids",
    "timeLeft",
    "newHandle",
    "resumable",
    "voiceActivityType",
    "generationComplete",
]


def _openai() -> RealtimeProtocol:
    proto = RealtimeProtocol(SessionConfig(), model="gpt-realtime")
    proto.start()
    return proto


def _gemini() -> GeminiLiveProtocol:
    proto = GeminiLiveProtocol(LiveSetup(model="gemini-live-2.5-flash-preview"))
    proto.setup()
    proto.receive('{"setupComplete": {}}')
    proto.drain()
    return proto


def _listen() -> ListenProtocol:
    return ListenProtocol(ListenOptions(model="nova-3"))


def _survives(feed: Callable[[str], object], frame: str) -> None:
    with contextlib.suppress(RemoteProtocolError, ProviderError):
        feed(frame)  # those two: the session ends the call with the reason


def _all(frame: str) -> None:
    _survives(_openai().receive, frame)
    _survives(_gemini().receive, frame)
    _survives(_listen().receive, frame)
    _survives(SpeakProtocol.receive, frame)
    _survives(StreamDecoder().feed, f"data: {frame}\n\n")


@given(hostile_frames)
def test_any_frame_is_an_event_or_a_protocol_error(frame: str) -> None:
    _all(frame)


@given(st.sampled_from(OPENAI_FIXTURES).flatmap(truncations))
def test_openai_messages_cut_short(frame: str) -> None:
    _survives(_openai().receive, frame)


@given(st.sampled_from(GEMINI_FIXTURES).flatmap(truncations))
def test_gemini_messages_cut_short(frame: str) -> None:
    _survives(_gemini().receive, frame)


@given(st.sampled_from(LISTEN_FIXTURES + SPEAK_FIXTURES).flatmap(truncations))
def test_deepgram_messages_cut_short(frame: str) -> None:
    _survives(_listen().receive, frame)
    _survives(SpeakProtocol.receive, frame)


@given(st.sampled_from(SSE_FIXTURES).flatmap(truncations))
def test_gemini_text_chunks_cut_short(body: str) -> None:
    decoder = StreamDecoder()
    _survives(decoder.feed, body)
    _survives(lambda _: decoder.finish(), "")


@settings(max_examples=50)  # each example builds a protocol: enough
@given(st.lists(shaped_messages("type", OPENAI_TYPES, OPENAI_FIELDS), max_size=4))
def test_openai_known_events_with_fields_of_any_type(messages: list[dict[str, Any]]) -> None:
    proto = _openai()
    for message in messages:
        _survives(proto.receive, json.dumps(message))


@settings(max_examples=50)  # each example builds a protocol: enough
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(GEMINI_KEYS),
            st.one_of(
                st.dictionaries(st.sampled_from(GEMINI_INNER), json_values, max_size=4),
                json_values,
            ),
            max_size=3,
        ),
        max_size=4,
    )
)
def test_gemini_known_messages_with_fields_of_any_type(messages: list[dict[str, Any]]) -> None:
    proto = _gemini()
    for message in messages:
        _survives(proto.receive, json.dumps(message))


@settings(max_examples=50)  # each example builds a protocol: enough
@given(
    shaped_messages(
        "type",
        ["Results", "SpeechStarted", "UtteranceEnd", "Metadata", "Error", "Flushed", "Cleared",
         "Warning"],
        ["channel", "start", "duration", "is_final", "speech_final", "timestamp",
         "last_word_end", "sequence_id", "description", "code", "from_finalize"],
    )
)  # fmt: skip
def test_deepgram_known_messages_with_fields_of_any_type(message: dict[str, Any]) -> None:
    _survives(_listen().receive, json.dumps(message))
    _survives(SpeakProtocol.receive, json.dumps(message))


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "candidates": json_values,
            "usageMetadata": json_values,
            "error": json_values,
        },
    ).map(json.dumps),
    st.integers(1, 40),
)
def test_gemini_text_chunks_with_fields_of_any_type_in_any_pieces(chunk: str, cut: int) -> None:
    decoder = StreamDecoder()
    body = f"data: {chunk}\n\n"
    for start in range(0, len(body), cut):  # the network splits the body anywhere
        _survives(decoder.feed, body[start : start + cut])
    _survives(lambda _: decoder.finish(), "")
