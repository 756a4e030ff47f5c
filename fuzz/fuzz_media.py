"""Fuzz the carriers' media codecs: any sequence of frames is parsed or counted as malformed.

The first byte picks the codec (Twilio, Telnyx PCMU/L16/OPUS/G722); the rest is frames. After
them, what we send must read back as what we meant. Any exception is a crash.
"""

from __future__ import annotations

import base64
import json

import atheris

with atheris.instrument_imports(include=["switchboard"]):
    from switchboard.audio import alaw_to_pcm16, pcm16_to_ulaw, ulaw_to_pcm16
    from switchboard.media import AudioFormat, AudioSpec
    from switchboard.telephony.telnyx.media import TelnyxMediaCodec
    from switchboard.telephony.twilio.media import TwilioMediaCodec

from fuzz.common import frames, run

_TELNYX_STARTS = {
    1: ("PCMU", 8000),
    2: ("L16", 16000),
    3: ("OPUS", 16000),
    4: ("G722", 16000),
}


def _telnyx(kind: int) -> TelnyxMediaCodec:
    codec = TelnyxMediaCodec()
    encoding, rate = _TELNYX_STARTS[kind]
    start = {
        "event": "start",
        "sequence_number": "1",
        "start": {
            "call_control_id": "v3:fuzz",
            "media_format": {"encoding": encoding, "sample_rate": rate, "channels": 1},
        },
    }
    codec.receive(json.dumps(start))
    return codec


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind, body = data[0] % 5, data[1:]
    codec: TwilioMediaCodec | TelnyxMediaCodec = TwilioMediaCodec() if kind == 0 else _telnyx(kind)
    for frame in frames(body):
        codec.receive(frame)
    # G.711 on the raw bytes: one code per sample both ways.
    assert len(ulaw_to_pcm16(body)) == len(alaw_to_pcm16(body)) == 2 * len(body)
    assert len(pcm16_to_ulaw(body[: len(body) & ~1])) == len(body) // 2
    if isinstance(codec, TwilioMediaCodec) and codec.stream_sid is None:
        return  # no start in the input: nothing may be sent yet
    if kind in (0, 1):  # (OPUS and G722 take whole 20 ms frames: sending less is our bug)
        payload = body[:320]
        sent = json.loads(codec.send_media(payload))
        assert base64.b64decode(sent["media"]["payload"]) == payload
    if (
        isinstance(codec, TelnyxMediaCodec)
        and kind == 2
        and codec.outbound_spec == AudioSpec(AudioFormat.PCM16, 16000)
    ):
        codec.send_media(body[: len(body) & ~1])  # L16: any whole number of samples


if __name__ == "__main__":
    run(test_one_input)
