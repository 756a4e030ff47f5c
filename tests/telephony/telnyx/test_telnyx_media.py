"""Pure tests of the Telnyx media codec: golden frames, reordering, malformed input, L16."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import (
    DtmfReceived,
    MarkAcknowledged,
    MediaCodec,
    MediaReceived,
    StreamConnected,
    StreamError,
    StreamStarted,
    StreamStopped,
)
from switchboard.telephony.telnyx.media import TelnyxMediaCodec, audio_spec_for_encoding

FIXTURES = Path(__file__).parents[2] / "fixtures" / "telnyx"


def _fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def _start(seq: int = 1, encoding: str = "PCMU", rate: int = 8000) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequence_number": str(seq),
            "stream_id": "S1",
            "start": {
                "call_control_id": "v3:abc",
                "media_format": {"encoding": encoding, "sample_rate": rate, "channels": 1},
            },
        }
    )


def _media(seq: int, payload: bytes, chunk: int | None = None) -> str:
    chunk = seq - 1 if chunk is None else chunk  # start is #1; chunks count media from 1
    return json.dumps(
        {
            "event": "media",
            "sequence_number": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(chunk * 20),
                "payload": base64.b64encode(payload).decode(),
            },
            "stream_id": "S1",
        }
    )


def test_golden_inbound_frames_parse_to_neutral_events() -> None:
    codec = TelnyxMediaCodec()
    events = [
        e for f in _fixture("media_inbound.json")["frames"] for e in codec.receive(json.dumps(f))
    ]
    # The doc's media frame is chunk 2: it waits for chunk 1, which never comes, until stop.
    assert [type(e) for e in events] == [
        StreamConnected,
        StreamStarted,
        DtmfReceived,
        MarkAcknowledged,
        StreamError,
        MediaReceived,
        StreamStopped,
    ]
    started = events[1]
    assert isinstance(started, StreamStarted)
    assert started.call_id == "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"
    assert started.stream_id == "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
    assert started.audio == AudioSpec(AudioFormat.ULAW, 8000)
    assert started.custom_parameters["customer_id"] == "customer_123"
    assert started.custom_parameters["client_state"] == "aGF2ZSBhIG5pY2UgZGF5ID1d"
    media = events[5]
    assert isinstance(media, MediaReceived)
    assert media.payload == b"\xff" * 4
    assert media.timestamp_ms == 5
    assert media.sequence == 4
    assert events[2] == DtmfReceived(digit="1")
    assert events[3] == MarkAcknowledged(name="some_mark_name")
    assert events[4] == StreamError(code="100003", message="The frame is malformed")
    assert codec.stats["malformed"] == 0
    assert codec.stats["gaps"] == 1
    assert codec.stats["frames_in"] == 1


def test_outbound_frames_match_golden() -> None:
    golden = _fixture("media_outbound.json")
    codec = TelnyxMediaCodec()
    assert json.loads(codec.send_media(b"\xff" * 4)) == golden["media"]
    assert json.loads(codec.send_mark("some_mark_name")) == golden["mark"]
    assert json.loads(codec.send_clear()) == golden["clear"]
    assert codec.stats["frames_out"] == 1


def test_codec_satisfies_media_codec_protocol() -> None:
    codec: MediaCodec = TelnyxMediaCodec()
    assert set(codec.stats) == {
        "frames_in",
        "frames_out",
        "malformed",
        "reordered",
        "gaps",
        "late",
        "dropped",
    }


def test_legacy_mulaw_encoding_name_is_accepted() -> None:
    assert audio_spec_for_encoding("audio/x-mulaw", 8000) == AudioSpec(AudioFormat.ULAW, 8000)
    assert audio_spec_for_encoding("PCMA", None) == AudioSpec(AudioFormat.ALAW, 8000)
    assert audio_spec_for_encoding("L16", 16000) == AudioSpec(AudioFormat.PCM16, 16000)
    assert audio_spec_for_encoding("AMR-WB", 16000) is None
    # OPUS and G722 are decoded by the codec: the bridge sees PCM16 (test_telnyx_wideband.py)
    assert audio_spec_for_encoding("OPUS", 48000) == AudioSpec(AudioFormat.PCM16, 16000)
    assert audio_spec_for_encoding("G722", 8000) == AudioSpec(AudioFormat.PCM16, 16000)


def test_unsupported_encoding_is_a_stream_error() -> None:
    codec = TelnyxMediaCodec()
    events = codec.receive(_start(encoding="AMR-WB"))
    assert events == [StreamError(code="unsupported_encoding", message="AMR-WB")]


def test_out_of_order_media_is_released_in_sequence() -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start(1))
    assert len(codec.receive(_media(2, b"\x01"))) == 1
    assert codec.receive(_media(4, b"\x03")) == []  # held: chunk 2 is missing
    released = codec.receive(_media(3, b"\x02"))
    assert [e.payload for e in released if isinstance(e, MediaReceived)] == [b"\x02", b"\x03"]
    assert [e.sequence for e in released if isinstance(e, MediaReceived)] == [3, 4]
    assert codec.stats["reordered"] == 1
    assert codec.stats["gaps"] == 0


def test_sequence_holes_from_other_events_do_not_hold_media() -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start(1))
    assert len(codec.receive(_media(2, b"\x01", chunk=1))) == 1
    dtmf = json.dumps({"event": "dtmf", "sequence_number": "3", "dtmf": {"digit": "5"}})
    assert codec.receive(dtmf) == [DtmfReceived(digit="5")]
    out = codec.receive(_media(5, b"\x02", chunk=2))  # #4 went elsewhere: chunks are contiguous
    assert [type(e) for e in out] == [MediaReceived]
    assert codec.stats["reordered"] == 0


def test_frames_without_chunk_are_ordered_by_sequence_number() -> None:
    codec = TelnyxMediaCodec()
    frames = [
        {"event": "media", "sequence_number": str(n), "media": {"payload": "AA=="}}
        for n in (10, 12, 11)
    ]
    out = [e for f in frames for e in codec.receive(json.dumps(f))]
    assert [e.sequence for e in out if isinstance(e, MediaReceived)] == [10, 11, 12]
    assert codec.stats["reordered"] == 1


def test_lost_frame_is_given_up_after_the_window() -> None:
    codec = TelnyxMediaCodec(reorder_window=2)
    codec.receive(_start(1))
    out: list[object] = []
    out += codec.receive(_media(2, b"\x02"))
    for seq in (4, 5, 6):  # 3 never arrives
        out += codec.receive(_media(seq, bytes([seq])))
    assert [e.payload for e in out if isinstance(e, MediaReceived)] == [
        b"\x02",
        b"\x04",
        b"\x05",
        b"\x06",
    ]
    assert codec.stats["gaps"] == 1
    late = codec.receive(_media(3, b"\x03"))
    assert late == []
    assert codec.stats["late"] == 1
    assert codec.stats["dropped"] == 1


def test_swapped_first_pair_is_reordered() -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start(1))
    assert codec.receive(_media(3, b"\x02")) == []
    out = codec.receive(_media(2, b"\x01"))
    assert [e.payload for e in out if isinstance(e, MediaReceived)] == [b"\x01", b"\x02"]


def test_duplicate_frame_is_dropped() -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start(1))
    assert len(codec.receive(_media(2, b"\x02"))) == 1
    assert codec.receive(_media(2, b"\x02")) == []
    assert codec.stats["late"] == 1


def test_stop_flushes_held_frames_first() -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start(1))
    codec.receive(_media(2, b"\x02"))
    codec.receive(_media(5, b"\x05"))
    codec.receive(_media(4, b"\x04"))
    stop = json.dumps({"event": "stop", "sequence_number": "6", "stop": {}})
    out = codec.receive(stop)
    assert [type(e) for e in out] == [MediaReceived, MediaReceived, StreamStopped]
    assert [e.payload for e in out if isinstance(e, MediaReceived)] == [b"\x04", b"\x05"]
    assert codec.stats["gaps"] == 1  # number 3 never came


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"event": "media", "media": {"payload": "***"}}',
        '{"event": "media"}',
        '{"event": "start", "start": {}}',
        '{"event": "media", "sequence_number": "x", "media": {"payload": ""}}',
        '{"event": "dtmf", "dtmf": null}',
    ],
)
def test_malformed_frames_are_counted_not_raised(frame: str) -> None:
    codec = TelnyxMediaCodec()
    assert codec.receive(frame) == []
    assert codec.stats["malformed"] == 1


def test_outbound_track_echo_is_not_caller_audio() -> None:
    codec = TelnyxMediaCodec()
    frame = {"event": "media", "media": {"track": "outbound", "payload": "AAAA"}}
    assert codec.receive(json.dumps(frame)) == []
    assert codec.stats["frames_in"] == 0


def test_unknown_event_is_ignored() -> None:
    assert TelnyxMediaCodec().receive('{"event": "something_new"}') == []


def test_l16_is_big_endian_on_the_wire_by_default() -> None:
    codec = TelnyxMediaCodec(outbound_spec=AudioSpec(AudioFormat.PCM16, 16000))
    (started,) = codec.receive(_start(1, "L16", 16000))
    assert isinstance(started, StreamStarted)
    assert started.audio == AudioSpec(AudioFormat.PCM16, 16000)
    (media,) = codec.receive(_media(2, b"\x01\x02\x03\x04"))
    assert isinstance(media, MediaReceived)
    assert media.payload == b"\x02\x01\x04\x03"  # to little-endian PCM16
    frame = json.loads(codec.send_media(b"\x02\x01\x04\x03"))
    assert base64.b64decode(frame["media"]["payload"]) == b"\x01\x02\x03\x04"


def test_outbound_format_follows_start_unless_given() -> None:
    codec = TelnyxMediaCodec()
    assert codec.outbound_spec == AudioSpec(AudioFormat.ULAW, 8000)
    codec.receive(_start(1, "L16", 16000))
    assert codec.outbound_spec == AudioSpec(AudioFormat.PCM16, 16000)
    frame = json.loads(codec.send_media(b"\x02\x01"))
    assert base64.b64decode(frame["media"]["payload"]) == b"\x01\x02"
    pinned = TelnyxMediaCodec(outbound_spec=AudioSpec(AudioFormat.ULAW, 8000))
    pinned.receive(_start(1, "L16", 16000))
    assert pinned.outbound_spec == AudioSpec(AudioFormat.ULAW, 8000)


def test_l16_little_endian_option_passes_bytes_through() -> None:
    codec = TelnyxMediaCodec(
        l16_byteorder="little", outbound_spec=AudioSpec(AudioFormat.PCM16, 16000)
    )
    codec.receive(_start(1, "L16", 16000))
    (media,) = codec.receive(_media(2, b"\x01\x02"))
    assert isinstance(media, MediaReceived)
    assert media.payload == b"\x01\x02"
    frame = json.loads(codec.send_media(b"\x01\x02"))
    assert base64.b64decode(frame["media"]["payload"]) == b"\x01\x02"


def test_mark_names_are_json_escaped() -> None:
    frame = json.loads(TelnyxMediaCodec().send_mark('turn "1"'))
    assert frame == {"event": "mark", "mark": {"name": 'turn "1"'}}
