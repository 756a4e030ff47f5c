"""Pure tests of Telnyx OPUS / G722 streams: decoded in order, losses concealed, 20 ms out."""

from __future__ import annotations

import base64
import json

import pytest
from tests.audio.signals import aligned_snr_db, samples, voice
from tests.pyav import needs_av

from switchboard.audio import OpusDecoder, OpusEncoder
from switchboard.audio.g722 import G722Decoder, G722Encoder
from switchboard.errors import LocalProtocolError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import MediaReceived, StreamStarted
from switchboard.telephony.telnyx.media import TelnyxMediaCodec

pytestmark = needs_av
PCM16K = AudioSpec(AudioFormat.PCM16, 16000)


def _start(encoding: str, rate: int) -> str:
    fmt = {"encoding": encoding, "sample_rate": rate, "channels": 1}
    start = {"call_control_id": "v3:abc", "media_format": fmt}
    return json.dumps({"event": "start", "sequence_number": "1", "stream_id": "S", "start": start})


def _media(chunk: int, payload: bytes) -> str:
    media = {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20)}
    media["payload"] = base64.b64encode(payload).decode()
    return json.dumps({"event": "media", "sequence_number": str(chunk + 1), "media": media})


def _payloads(encoding: str, pcm: bytes) -> list[bytes]:
    if encoding == "OPUS":
        return OpusEncoder(16000).encode(pcm)
    data = G722Encoder().encode(pcm)
    return [data[i : i + 160] for i in range(0, len(data), 160)]


def _heard(codec: TelnyxMediaCodec, frames: list[str]) -> bytes:
    events = [e for f in frames for e in codec.receive(f)]
    events += codec.receive(json.dumps({"event": "stop", "stop": {}}))
    return b"".join(e.payload for e in events if isinstance(e, MediaReceived))


@pytest.mark.parametrize(("encoding", "rate"), [("OPUS", 16000), ("OPUS", 48000), ("G722", 8000)])
def test_start_announces_pcm16_and_media_decodes_in_order(encoding: str, rate: int) -> None:
    codec = TelnyxMediaCodec()
    (started,) = codec.receive(_start(encoding, rate))
    assert isinstance(started, StreamStarted) and started.audio == PCM16K
    assert codec.outbound_spec == PCM16K  # send_media takes PCM16 frames
    pcm = voice(16000, 1.0)
    payloads = _payloads(encoding, pcm.tobytes())
    frames = [_media(i + 1, p) for i, p in enumerate(payloads)]
    frames[10], frames[11] = frames[11], frames[10]  # out of order on the wire
    heard = _heard(codec, frames)
    assert codec.stats["reordered"] == 1 and codec.stats["malformed"] == 0
    floor = 12.0 if encoding == "OPUS" else 30.0  # measured ~19 dB and ~36 dB
    assert aligned_snr_db(pcm, samples(heard), max_lag=400) >= floor


@pytest.mark.parametrize("encoding", ["OPUS", "G722"])
def test_a_lost_payload_is_concealed_and_a_bad_one_counted(encoding: str) -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start(encoding, 16000))
    payloads = _payloads(encoding, voice(16000, 0.6).tobytes())
    frames = [_media(i + 1, p) for i, p in enumerate(payloads) if i != 12]  # chunk 13 lost
    if encoding == "OPUS":
        frames[20] = _media(22, b"\x4b\x03\xff")  # a packet libopus rejects
    heard = _heard(codec, frames)
    assert codec.stats["gaps"] == 1
    assert codec.stats["malformed"] == (1 if encoding == "OPUS" else 0)
    # the timeline is kept: 30 payloads of 20 ms in, 0.6 s out (less the resampler's hold-back)
    assert abs(len(heard) // 2 - 9600) <= 64


@pytest.mark.parametrize("encoding", ["OPUS", "G722"])
def test_send_media_encodes_one_20ms_frame_per_message(encoding: str) -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start(encoding, 16000))
    pcm = voice(16000, 0.5)
    frames = [pcm[i : i + 320].tobytes() for i in range(0, len(pcm), 320)]
    wire = [base64.b64decode(json.loads(codec.send_media(f))["media"]["payload"]) for f in frames]
    if encoding == "OPUS":
        decoder = OpusDecoder(16000)
        heard = b"".join(decoder.decode(p) for p in wire)
        floor = 12.0
    else:
        assert {len(p) for p in wire} == {160}
        heard = G722Decoder().decode(b"".join(wire))
        floor = 30.0
    assert aligned_snr_db(pcm, samples(heard), max_lag=400) >= floor
    with pytest.raises(LocalProtocolError, match="20 ms frames"):
        codec.send_media(bytes(1280))


def test_pcmu_streams_are_untouched() -> None:
    codec = TelnyxMediaCodec()
    codec.receive(_start("PCMU", 8000))
    events = codec.receive(_media(1, b"\xff" * 160))
    assert events == [MediaReceived(payload=b"\xff" * 160, timestamp_ms=20, sequence=2)]
    sent = json.loads(codec.send_media(b"\x7f" * 160))
    assert base64.b64decode(sent["media"]["payload"]) == b"\x7f" * 160


def test_opus_at_the_providers_rate_needs_no_resampler() -> None:
    codec = TelnyxMediaCodec(pcm_rate=24000)  # OpenAI's PCM rate
    (started,) = codec.receive(_start("OPUS", 16000))
    assert isinstance(started, StreamStarted)
    assert started.audio == AudioSpec(AudioFormat.PCM16, 24000)
    pcm = voice(24000, 0.5)
    heard = _heard(
        codec, [_media(i + 1, p) for i, p in enumerate(OpusEncoder(24000).encode(pcm.tobytes()))]
    )
    assert aligned_snr_db(pcm, samples(heard), max_lag=600) >= 12.0
    sent = json.loads(codec.send_media(pcm[:480].tobytes()))  # 20 ms at 24 kHz
    packet = base64.b64decode(sent["media"]["payload"])
    assert len(OpusDecoder(16000).decode(packet)) in range(600, 641)  # any rate decodes it
    # coded for the 16 kHz wire: wideband at most (TOC configs 0-11 SILK, 16-23 CELT; RFC 6716)
    out = [codec.send_media(pcm[i : i + 480].tobytes()) for i in range(480, len(pcm), 480)]
    tocs = {base64.b64decode(json.loads(m)["media"]["payload"])[0] >> 3 for m in out}
    assert tocs <= set(range(12)) | set(range(16, 24)), tocs
    g722 = TelnyxMediaCodec(pcm_rate=24000)
    (started,) = g722.receive(_start("G722", 8000))
    assert isinstance(started, StreamStarted) and started.audio == PCM16K  # G.722 is 16 kHz
