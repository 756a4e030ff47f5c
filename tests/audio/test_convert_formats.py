"""Every AudioFormat converts, one shot and streaming (the seed's OPUS and MP3 included)."""

from __future__ import annotations

import pytest

from switchboard.audio import OpusEncoder, StreamConverter, convert
from switchboard.errors import AudioError
from switchboard.media import AudioChunk, AudioFormat, AudioSpec
from tests.audio.signals import aligned_snr_db, samples, voice
from tests.pyav import needs_av

pytestmark = needs_av

PCM16 = AudioFormat.PCM16


@pytest.mark.parametrize("fmt", list(AudioFormat))
@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_every_member_converts_both_ways(fmt: AudioFormat, rate: int) -> None:
    pcm = voice(16000, 1.0)
    chunk = AudioChunk(pcm.tobytes(), PCM16, 16000)
    there = convert(chunk, fmt, rate)
    assert there.format is fmt and there.sample_rate == rate
    back = convert(there, PCM16, 16000)
    floor = 12.0 if rate == 8000 else 15.0  # 8 kHz loses the voice's upper harmonics
    assert aligned_snr_db(pcm, samples(back.data), max_lag=400) >= floor


def test_one_shot_opus_is_an_ogg_file_and_a_raw_packet_also_decodes() -> None:
    chunk = AudioChunk(voice(16000, 0.5).tobytes(), PCM16, 16000)
    assert convert(chunk, AudioFormat.OPUS, 16000).data[:4] == b"OggS"
    packet = OpusEncoder(16000).encode(chunk.data[:640])[0]
    out = convert(AudioChunk(packet, AudioFormat.OPUS, 16000), AudioFormat.ULAW, 8000)
    assert 140 <= len(out.data) <= 160  # one 20 ms packet at 8 kHz, less the resampler's hold


def test_bad_compressed_data_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="cannot decode the audio file"):
        convert(AudioChunk(b"\x00" * 10, AudioFormat.MP3, 24000), PCM16, 24000)
    with pytest.raises(AudioError, match="bad Opus packet"):
        convert(AudioChunk(b"\x4b\x03\xff", AudioFormat.OPUS, 16000), PCM16, 16000)


def test_stream_ulaw_to_opus_and_back_keeps_the_voice() -> None:
    pcm = voice(8000, 1.0)
    to_ulaw = StreamConverter(AudioSpec(PCM16, 8000), AudioSpec(AudioFormat.ULAW, 8000))
    ulaw = to_ulaw.process(pcm.tobytes())
    up = StreamConverter(AudioSpec(AudioFormat.ULAW, 8000), AudioSpec(AudioFormat.OPUS, 16000))
    packets = [p for i in range(0, len(ulaw), 160) for p in up.process_packets(ulaw[i : i + 160])]
    packets += up.flush_packets()
    assert 49 <= len(packets) <= 51  # 20 ms packets
    with pytest.raises(AudioError, match="process_packets"):
        up.process(ulaw[:160])
    down = StreamConverter(AudioSpec(AudioFormat.OPUS, 16000), AudioSpec(PCM16, 8000))
    back = b"".join(down.process(p) for p in packets) + down.flush()
    assert aligned_snr_db(pcm, samples(back), max_lag=400) >= 12.0


def test_stream_conceals_a_lost_opus_packet_in_the_target_format() -> None:
    packets = OpusEncoder(16000).encode(voice(16000, 0.4).tobytes())
    conv = StreamConverter(AudioSpec(AudioFormat.OPUS, 16000), AudioSpec(AudioFormat.ULAW, 8000))
    for p in packets[:5]:
        conv.process(p)
    concealed = conv.conceal()
    assert 140 <= len(concealed) <= 180 and len(set(concealed)) > 10  # 20 ms of voice-like μ-law
    raw = StreamConverter(AudioSpec(AudioFormat.ULAW, 8000), AudioSpec(PCM16, 16000))
    silence = raw.conceal()
    assert silence and not any(silence)  # no codec to ask: silence
    same = StreamConverter(AudioSpec(AudioFormat.OPUS, 16000), AudioSpec(AudioFormat.OPUS, 16000))
    assert same.process_packets(packets[0]) == [packets[0]]  # passthrough
    assert same.conceal_packets() == [bytes([0xF8])]  # a "lost frame" for the far decoder


def test_stream_mp3_source_in_pieces_to_ulaw() -> None:
    pcm = voice(16000, 1.0)
    mp3 = convert(AudioChunk(pcm.tobytes(), PCM16, 16000), AudioFormat.MP3, 16000).data
    conv = StreamConverter(AudioSpec(AudioFormat.MP3, 16000), AudioSpec(AudioFormat.ULAW, 8000))
    ulaw = b"".join(conv.process(mp3[i : i + 333]) for i in range(0, len(mp3), 333))
    ulaw += conv.flush()
    back = convert(AudioChunk(ulaw, AudioFormat.ULAW, 8000), PCM16, 16000)
    assert aligned_snr_db(pcm, samples(back.data), max_lag=4000) >= 12.0


def test_stream_to_mp3_makes_a_playable_stream() -> None:
    pcm = voice(16000, 1.0)
    conv = StreamConverter(AudioSpec(PCM16, 16000), AudioSpec(AudioFormat.MP3, 16000))
    data = b"".join(conv.process(pcm[i : i + 320].tobytes()) for i in range(0, len(pcm), 320))
    data += conv.flush()
    back = convert(AudioChunk(data, AudioFormat.MP3, 16000), PCM16, 16000)
    assert aligned_snr_db(pcm, samples(back.data), max_lag=3000) >= 20.0


def test_converters_never_share_codec_state() -> None:
    a, b = voice(16000, 0.4, f0=120).tobytes(), voice(16000, 0.4, f0=220).tobytes()
    spec_in, spec_out = AudioSpec(PCM16, 16000), AudioSpec(AudioFormat.OPUS, 16000)
    alone = StreamConverter(spec_in, spec_out).process_packets(a)
    one, two = StreamConverter(spec_in, spec_out), StreamConverter(spec_in, spec_out)
    mixed: list[bytes] = []
    for i in range(0, len(a), 640):
        mixed += one.process_packets(a[i : i + 640])
        two.process_packets(b[i : i + 640])
    assert mixed == alone
