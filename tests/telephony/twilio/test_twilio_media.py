"""TwilioMediaCodec: golden fixtures, sequencing (reorder, gaps, late), malformed frames."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from switchboard.errors import LocalProtocolError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import (
    DtmfReceived,
    MarkAcknowledged,
    MediaCodec,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
)
from switchboard.telephony.twilio.media import TwilioMediaCodec

FIXTURES = Path(__file__).parents[2] / "fixtures" / "twilio"
SID = "MZ18ad3ab5a668481ce02b83e7395059f0"


def _inbound() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads((FIXTURES / "inbound.json").read_text())["messages"]
    return messages


def _started(codec: TwilioMediaCodec) -> None:
    for msg in _inbound()[:2]:
        codec.receive(json.dumps(msg))


def _media(seq: int, payload: bytes = b"\xff" * 160) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(seq - 1),
                "timestamp": str((seq - 2) * 20),
                "payload": base64.b64encode(payload).decode(),
            },
            "streamSid": SID,
        }
    )


def _seqs(events: list[Any]) -> list[int | None]:
    return [e.sequence for e in events if isinstance(e, MediaReceived)]


def test_satisfies_protocol() -> None:
    codec: MediaCodec = TwilioMediaCodec()
    assert codec.stats["frames_in"] == 0


def test_golden_inbound() -> None:
    codec = TwilioMediaCodec()
    events = [e for msg in _inbound() for e in codec.receive(json.dumps(msg))]
    assert events[0] == StreamConnected()
    start = events[1]
    assert isinstance(start, StreamStarted)
    assert start.stream_id == SID
    assert start.call_id == "CA7f3a5f4c2bbd4d38b8d2e8b4a1c0f1e2"
    assert start.account_id == "AC1c0f1e27f3a5f4c2bbd4d38b8d2e8b4a"
    assert start.audio == AudioSpec(AudioFormat.ULAW, 8000)
    assert start.custom_parameters == {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}
    assert start.tracks == ("inbound",)
    assert events[2] == MediaReceived(bytes([0xFF, 0x7F] * 80), timestamp_ms=5, sequence=2)
    assert events[3:] == [DtmfReceived("1"), MarkAcknowledged("my label"), StreamStopped("stop")]
    assert codec.stats["malformed"] == 0
    assert codec.stats["gaps"] == 0


def test_golden_outbound() -> None:
    golden = json.loads((FIXTURES / "outbound.json").read_text())
    codec = TwilioMediaCodec()
    _started(codec)
    frames = [
        codec.send_media(bytes.fromhex(golden["payload_hex"])),
        codec.send_mark("my label"),
        codec.send_clear(),
    ]
    assert [json.loads(f) for f in frames] == golden["messages"]
    stats = codec.stats
    assert (stats["frames_out"], stats["marks_out"], stats["clears_out"]) == (1, 1, 1)


def test_send_before_start_is_a_local_error() -> None:
    codec = TwilioMediaCodec()
    with pytest.raises(LocalProtocolError):
        codec.send_media(b"\xff" * 160)
    with pytest.raises(LocalProtocolError):
        codec.send_clear()


def test_reorders_within_window() -> None:
    codec = TwilioMediaCodec(reorder_window=4)
    _started(codec)
    out = []
    for seq in (2, 4, 3, 6, 5, 7):
        out += codec.receive(_media(seq))
    assert _seqs(out) == [2, 3, 4, 5, 6, 7]
    assert codec.stats["reordered"] == 2
    assert codec.stats["gaps"] == 0


def test_gap_declared_when_window_overflows() -> None:
    codec = TwilioMediaCodec(reorder_window=2)
    _started(codec)
    out = codec.receive(_media(2))
    for seq in (5, 6, 7):  # 3 and 4 never arrive
        out += codec.receive(_media(seq))
    assert _seqs(out) == [2, 5, 6, 7]
    assert codec.stats["gaps"] == 2
    # a lost frame arriving after all is late and dropped, never replayed out of order
    assert codec.receive(_media(3)) == []
    assert codec.stats["late"] == 1
    assert _seqs(codec.receive(_media(8))) == [8]


def test_duplicate_is_late() -> None:
    codec = TwilioMediaCodec()
    _started(codec)
    assert _seqs(codec.receive(_media(2))) == [2]
    assert codec.receive(_media(2)) == []
    assert codec.stats["late"] == 1


def test_stop_flushes_buffered_frames_in_order() -> None:
    codec = TwilioMediaCodec(reorder_window=8)
    _started(codec)
    out = codec.receive(_media(2))
    out += codec.receive(_media(4))
    out += codec.receive(json.dumps({"event": "stop", "sequenceNumber": "6", "streamSid": SID}))
    assert _seqs(out) == [2, 4]
    assert out[-1] == StreamStopped("stop")
    assert codec.stats["gaps"] == 2  # 3 and 5


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        json.dumps({"event": "media", "sequenceNumber": "2", "media": {"payload": "@@@"}}),
        json.dumps({"event": "media", "sequenceNumber": "2"}),
        json.dumps({"event": "media", "sequenceNumber": "x", "media": {"payload": ""}}),
        json.dumps({"event": "mark", "sequenceNumber": "2", "mark": None}),
        json.dumps({"event": "bogus", "sequenceNumber": "2"}),
    ],
)
def test_malformed_frames_counted_not_raised(frame: str) -> None:
    codec = TwilioMediaCodec()
    _started(codec)
    assert codec.receive(frame) == []
    assert codec.stats["malformed"] == 1
    # the stream goes on (a bad sequenceNumber leaves a hole that the window closes)
    out = [e for seq in range(3, 9) for e in codec.receive(_media(seq))]
    assert _seqs(out) == [3, 4, 5, 6, 7, 8]


def test_outbound_track_media_dropped() -> None:
    codec = TwilioMediaCodec()
    _started(codec)
    msg = json.loads(_media(2))
    msg["media"]["track"] = "outbound"
    assert codec.receive(json.dumps(msg)) == []
    assert codec.stats["dropped"] == 1


def test_mark_name_is_json_escaped_and_media_template_is_valid_json() -> None:
    codec = TwilioMediaCodec()
    _started(codec)
    assert json.loads(codec.send_mark('a"b\\c'))["mark"]["name"] == 'a"b\\c'
    payload = bytes(range(256))
    frame = json.loads(codec.send_media(payload))
    assert base64.b64decode(frame["media"]["payload"]) == payload
