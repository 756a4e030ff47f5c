"""Properties of the Twilio media codec: any frame is survivable, order is restored, and what
we send is what Twilio reads."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.strategies import hostile_frames, json_values, odd_numbers, shaped_messages

from switchboard.errors import LocalProtocolError
from switchboard.telephony.base import MarkAcknowledged, MediaReceived, StreamStarted
from switchboard.telephony.twilio.media import TwilioMediaCodec

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
_EVENTS = ["connected", "start", "media", "mark", "dtmf", "stop", "clear"]
_FIELDS = ["sequenceNumber", "streamSid", "start", "media", "mark", "dtmf", "stop"]


def _start() -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": SID,
            "start": {"streamSid": SID, "callSid": "CA1", "customParameters": {"k": "v"}},
        }
    )


def _media(seq: int) -> str:
    payload = base64.b64encode(seq.to_bytes(4, "big")).decode()
    frame = {"event": "media", "sequenceNumber": str(seq), "media": {"payload": payload}}
    return json.dumps(frame)


def _started() -> TwilioMediaCodec:
    codec = TwilioMediaCodec()
    assert isinstance(codec.receive(_start())[0], StreamStarted)
    return codec


@given(hostile_frames)
def test_any_text_frame_is_counted_never_raised(frame: str) -> None:
    for codec in (TwilioMediaCodec(), _started()):
        codec.receive(frame)  # must not raise, before or after start


@settings(max_examples=50)  # each example builds a protocol: enough
@given(shaped_messages("event", _EVENTS, _FIELDS))
def test_known_events_with_fields_of_any_type_never_raise(message: dict[str, Any]) -> None:
    for codec in (TwilioMediaCodec(), _started()):
        codec.receive(json.dumps(message))


@given(
    st.sampled_from(["sequenceNumber", "timestamp", "sampleRate"]),
    odd_numbers,
)
def test_numbers_json_allows_but_int_refuses_are_malformed(field: str, number: Any) -> None:
    codec = _started()
    media: dict[str, Any] = {"payload": "/w==", "timestamp": "0"}
    frame: dict[str, Any] = {"event": "media", "sequenceNumber": "2", "media": media}
    start = json.loads(_start())
    if field == "timestamp":
        media["timestamp"] = number
    elif field == "sequenceNumber":
        frame["sequenceNumber"] = number
    else:
        start["start"]["mediaFormat"] = {"sampleRate": number}
    codec.receive(json.dumps(frame))
    TwilioMediaCodec().receive(json.dumps(start))


@given(st.permutations(list(range(2, 26))), st.booleans())
def test_frames_are_released_in_order_once_whatever_the_arrival_order(
    order: list[int], stop: bool
) -> None:
    codec = _started()
    released: list[int] = []
    for seq in order:
        released += [
            int.from_bytes(e.payload, "big")
            for e in codec.receive(_media(seq))
            if isinstance(e, MediaReceived)
        ]
    if stop:
        stop_frame = json.dumps({"event": "stop", "sequenceNumber": "26", "streamSid": SID})
        released += [
            int.from_bytes(e.payload, "big")
            for e in codec.receive(stop_frame)
            if isinstance(e, MediaReceived)
        ]
    assert released == sorted(set(released))  # strictly increasing: in order, never twice
    stats = codec.stats
    if stop:  # everything is accounted for: released, declared lost, or dropped as late
        assert len(released) + stats["late"] >= len(order) - stats["gaps"]


@given(st.lists(st.lists(st.integers(2, 9), min_size=1, max_size=4), max_size=6))
def test_small_displacements_lose_nothing(blocks: list[list[int]]) -> None:
    # Frames shuffled within blocks of at most reorder_window (4) frames: all come out in order.
    codec = _started()
    base, order = 2, []
    for block in blocks:
        size = len(block)
        order += sorted(range(base, base + size), key=lambda s: block[(s - base) % size])
        base += size
    released = [
        int.from_bytes(e.payload, "big")
        for seq in order
        for e in codec.receive(_media(seq))
        if isinstance(e, MediaReceived)
    ]
    assert released == list(range(2, base))
    assert codec.stats["gaps"] == 0


@given(st.binary(max_size=2000), st.text(max_size=40))
def test_what_we_send_is_what_twilio_reads(payload: bytes, mark: str) -> None:
    codec = TwilioMediaCodec()
    start = json.loads(_start())
    start["start"]["streamSid"] = start["streamSid"] = f"MZ{mark}"
    codec.receive(json.dumps(start))
    media = json.loads(codec.send_media(payload))
    assert media["streamSid"] == f"MZ{mark}"
    assert base64.b64decode(media["media"]["payload"], validate=True) == payload
    sent_mark = json.loads(codec.send_mark(mark))
    assert sent_mark == {"event": "mark", "streamSid": f"MZ{mark}", "mark": {"name": mark}}
    echoed = {"event": "mark", "sequenceNumber": "2", "streamSid": SID, "mark": {"name": mark}}
    assert codec.receive(json.dumps(echoed)) == [MarkAcknowledged(mark)]


@given(json_values)
def test_custom_parameters_of_any_shape_never_raise(value: Any) -> None:
    start = json.loads(_start())
    start["start"]["customParameters"] = value
    events = TwilioMediaCodec().receive(json.dumps(start))
    for event in events:
        assert isinstance(event, StreamStarted)
        assert all(isinstance(v, str) for v in event.custom_parameters.values())


@given(json_values, st.binary(max_size=200))
def test_after_any_start_we_send_json_or_refuse_to_send(start_body: Any, payload: bytes) -> None:
    # Regression (found by fuzz_media): a start without callSid set the stream id but not the
    # media template, and send_media then returned a frame that was not JSON.
    codec = TwilioMediaCodec()
    codec.receive(json.dumps({"event": "start", "streamSid": SID, "start": start_body}))
    if codec.stream_sid is None:
        with pytest.raises(LocalProtocolError):
            codec.send_media(payload)
        return
    sent = json.loads(codec.send_media(payload))
    assert base64.b64decode(sent["media"]["payload"]) == payload


def test_a_start_without_call_sid_does_not_start_the_stream() -> None:
    codec = TwilioMediaCodec()
    assert codec.receive(json.dumps({"event": "start", "start": {"streamSid": SID}})) == []
    assert codec.stream_sid is None
    with pytest.raises(LocalProtocolError):
        codec.send_media(b"\xff" * 160)
