"""Properties of the Telnyx media codec: any frame is survivable, order is restored, and what
we send is what Telnyx reads."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.strategies import hostile_frames, json_values, odd_numbers, shaped_messages

from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import MarkAcknowledged, MediaReceived, StreamStarted
from switchboard.telephony.telnyx.media import TelnyxMediaCodec

_EVENTS = ["connected", "start", "media", "mark", "dtmf", "stop", "error"]
_FIELDS = ["sequence_number", "stream_id", "start", "media", "mark", "dtmf", "stop", "payload"]
_INNER = {
    "start": ["call_control_id", "media_format", "custom_parameters", "client_state", "user_id"],
    "media": ["track", "chunk", "timestamp", "payload"],
    "stop": ["reason"],
    "payload": ["code", "detail", "title"],
    "mark": ["name"],
    "dtmf": ["digit"],
}


def _start(encoding: str = "PCMU", rate: int = 8000) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequence_number": "1",
            "stream_id": "S1",
            "start": {
                "call_control_id": "v3:abc",
                "media_format": {"encoding": encoding, "sample_rate": rate, "channels": 1},
            },
        }
    )


def _media(chunk: int) -> str:
    payload = base64.b64encode(chunk.to_bytes(4, "big")).decode()
    return json.dumps(
        {
            "event": "media",
            "sequence_number": str(chunk + 1),
            "media": {"track": "inbound", "chunk": str(chunk), "payload": payload},
        }
    )


def _started(encoding: str = "PCMU") -> TelnyxMediaCodec:
    codec = TelnyxMediaCodec()
    assert isinstance(codec.receive(_start(encoding, 16000 if encoding == "L16" else 8000))[0],
                      StreamStarted)  # fmt: skip
    return codec


@st.composite
def _nested_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A known event whose inner object has known keys holding arbitrary JSON (or is not an
    object at all)."""
    event = draw(st.sampled_from(sorted(_INNER)))
    inner = draw(
        st.one_of(
            st.dictionaries(st.sampled_from(_INNER[event]), json_values, max_size=5),
            json_values,
        )
    )
    kind = "error" if event == "payload" else event
    return {"event": kind, event: inner, "sequence_number": draw(json_values)}


@given(hostile_frames)
def test_any_text_frame_is_counted_never_raised(frame: str) -> None:
    for codec in (TelnyxMediaCodec(), _started()):
        codec.receive(frame)


@settings(max_examples=50)  # each example builds a protocol: enough
@given(st.one_of(shaped_messages("event", _EVENTS, _FIELDS), _nested_messages()))
def test_known_events_with_fields_of_any_type_never_raise(message: dict[str, Any]) -> None:
    for codec in (TelnyxMediaCodec(), _started(), _started("L16")):
        codec.receive(json.dumps(message))


@given(st.sampled_from(["sequence_number", "chunk", "timestamp", "sample_rate"]), odd_numbers)
def test_numbers_json_allows_but_int_refuses_are_malformed(field: str, number: Any) -> None:
    frame = json.loads(_media(1))
    start = json.loads(_start())
    if field == "sequence_number":
        frame["sequence_number"] = number
    elif field == "sample_rate":
        start["start"]["media_format"]["sample_rate"] = number
    else:
        frame["media"][field] = number
    _started().receive(json.dumps(frame))
    TelnyxMediaCodec().receive(json.dumps(start))


@given(st.permutations(list(range(1, 25))), st.booleans())
def test_frames_are_released_in_order_once_whatever_the_arrival_order(
    order: list[int], stop: bool
) -> None:
    codec = _started()
    frames = [_media(chunk) for chunk in order]
    if stop:
        frames.append(json.dumps({"event": "stop", "stop": {"reason": "hangup"}}))
    released = [
        int.from_bytes(e.payload, "big")
        for frame in frames
        for e in codec.receive(frame)
        if isinstance(e, MediaReceived)
    ]
    assert released == sorted(set(released))
    if stop:  # a stop flushes what was held: every frame released or counted late
        assert len(released) + codec.stats["late"] == len(order)


@given(st.lists(st.lists(st.integers(1, 9), min_size=1, max_size=8), max_size=5))
def test_small_displacements_lose_nothing(blocks: list[list[int]]) -> None:
    codec = _started()  # reorder window 8: shuffles within 8 frames are repaired
    base, order = 1, []
    for block in blocks:
        size = len(block)
        order += sorted(range(base, base + size), key=lambda s: block[(s - base) % size])
        base += size
    released = [
        int.from_bytes(e.payload, "big")
        for chunk in order
        for e in codec.receive(_media(chunk))
        if isinstance(e, MediaReceived)
    ]
    assert released == list(range(1, base))
    assert codec.stats["gaps"] == 0


@given(st.binary(max_size=2000), st.text(max_size=40))
def test_what_we_send_is_what_telnyx_reads(payload: bytes, mark: str) -> None:
    codec = _started()
    sent = json.loads(codec.send_media(payload))
    assert base64.b64decode(sent["media"]["payload"], validate=True) == payload
    assert json.loads(codec.send_mark(mark)) == {"event": "mark", "mark": {"name": mark}}
    echoed = {"event": "mark", "sequence_number": "9", "mark": {"name": mark}}
    assert codec.receive(json.dumps(echoed)) == [MarkAcknowledged(mark)]


@given(st.binary(max_size=400).map(lambda b: b[: len(b) & ~1]))
def test_l16_is_swapped_to_the_wire_and_back(pcm: bytes) -> None:
    sender = TelnyxMediaCodec(outbound_spec=AudioSpec(AudioFormat.PCM16, 16000))
    wire = base64.b64decode(json.loads(sender.send_media(pcm))["media"]["payload"])
    receiver = _started("L16")
    frame = json.loads(_media(1))
    frame["media"]["payload"] = base64.b64encode(wire).decode()
    (event,) = receiver.receive(json.dumps(frame))
    assert isinstance(event, MediaReceived)
    assert event.payload == pcm
