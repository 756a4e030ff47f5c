"""The load caller's media messages, read back by the app's own carrier codecs (pure)."""

from __future__ import annotations

import base64
import json

import pytest

from switchboard.emulators.telnyx.webhooks import WebhookSender
from switchboard.loadtest.tags import decode_tag, tagged_frame
from switchboard.loadtest.telnyx import new_telnyx_seed, telnyx_public_key
from switchboard.loadtest.wire import CallerWire, TelnyxWire, TwilioWire
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import (
    MarkAcknowledged,
    MediaReceived,
    StreamStarted,
    StreamStopped,
)
from switchboard.telephony.telnyx.media import TelnyxMediaCodec
from switchboard.telephony.twilio.media import TwilioMediaCodec

START = {"user_id": "U1", "call_control_id": "v3:abc", "from": "+1555", "to": "+1666"}


def _session(wire: CallerWire) -> list[str]:
    frames = [base64.b64encode(tagged_frame(k)).decode() for k in range(3)]
    media = [wire.media(k + 2, k + 1, k * 20, frames[k]) for k in range(3)]
    return [wire.connected(), wire.start(1), *media, wire.mark(5, "m1"), wire.stop(6)]


def _read(codec: TelnyxMediaCodec | TwilioMediaCodec, texts: list[str]) -> list[object]:
    return [event for text in texts for event in codec.receive(text)]


def test_telnyx_messages_parse_as_telnyx_frames() -> None:
    wire = TelnyxWire(stream_id="32DE0DEA-53CB-4B21-89A4-9E1819C043BC", start=START)
    texts = _session(wire)
    assert all("stream_id" in json.loads(t) for t in texts[1:])
    events = _read(TelnyxMediaCodec(), texts)
    started = [e for e in events if isinstance(e, StreamStarted)]
    assert started == [started[0]] and started[0].call_id == "v3:abc"
    assert started[0].stream_id == wire.stream_id
    assert started[0].audio == AudioSpec(AudioFormat.ULAW, 8000)
    media = [e for e in events if isinstance(e, MediaReceived)]
    assert [decode_tag(m.payload) for m in media] == [0, 1, 2]
    assert [m.timestamp_ms for m in media] == [0, 20, 40]
    assert MarkAcknowledged("m1") in events
    assert any(isinstance(e, StreamStopped) for e in events)
    stop = json.loads(texts[-1])
    assert stop["stop"] == {"user_id": "U1", "call_control_id": "v3:abc"}


def test_twilio_messages_parse_as_twilio_frames() -> None:
    wire = TwilioWire(
        stream_sid="MZ" + "1" * 32,
        account_sid="AC" + "2" * 32,
        call_sid="CA" + "3" * 32,
        custom={"token": "t"},
    )
    events = _read(TwilioMediaCodec(), _session(wire))
    started = [e for e in events if isinstance(e, StreamStarted)]
    assert len(started) == 1 and started[0].call_id == "CA" + "3" * 32
    assert started[0].custom_parameters == {"token": "t"}
    media = [e for e in events if isinstance(e, MediaReceived)]
    assert [decode_tag(m.payload) for m in media] == [0, 1, 2]
    assert MarkAcknowledged("m1") in events
    assert any(isinstance(e, StreamStopped) for e in events)


def test_public_key_matches_the_emulators_signing_key() -> None:
    seed = new_telnyx_seed()
    assert telnyx_public_key(seed) == WebhookSender(private_key_b64=seed).public_key_b64
    assert telnyx_public_key(seed) != telnyx_public_key(new_telnyx_seed())


@pytest.mark.parametrize("seed", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_bad_seed_is_a_value_error(seed: str) -> None:
    with pytest.raises(ValueError, match="32-byte"):
        telnyx_public_key(seed)
