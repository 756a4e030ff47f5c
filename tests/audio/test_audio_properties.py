"""Invariants of the G.711 codecs and the streaming resampler, on arbitrary audio."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.audio import Resampler, alaw_to_pcm16, g711, pcm16_to_alaw, pcm16_to_ulaw
from switchboard.audio import ulaw_to_pcm16 as ulaw_decode
from switchboard.errors import AudioError

_pcm = st.lists(st.integers(-32768, 32767), max_size=800).map(
    lambda xs: np.array(xs, dtype="<i2").tobytes()
)
_LAWS = [
    ("ulaw", pcm16_to_ulaw, ulaw_decode, g711.numpy_pcm16_to_ulaw, g711.numpy_ulaw_to_pcm16),
    ("alaw", pcm16_to_alaw, alaw_to_pcm16, g711.numpy_pcm16_to_alaw, g711.numpy_alaw_to_pcm16),
]
_RATES = [8000, 16000, 24000, 48000]


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


@pytest.mark.parametrize(("law", "encode", "decode", "np_encode", "np_decode"), _LAWS)
@given(pcm=_pcm, codes=st.binary(max_size=800))
def test_g711_one_code_per_sample_and_accelerator_equals_numpy(
    law: str, encode: object, decode: object, np_encode: object, np_decode: object,
    pcm: bytes, codes: bytes,
) -> None:  # fmt: skip
    assert callable(encode) and callable(decode) and callable(np_encode) and callable(np_decode)
    assert len(encode(pcm)) == len(pcm) // 2
    assert len(decode(codes)) == 2 * len(codes)
    assert encode(pcm) == np_encode(pcm)
    assert decode(codes) == np_decode(codes)


@pytest.mark.parametrize(("law", "encode", "decode", "np_encode", "np_decode"), _LAWS)
@given(codes=st.binary(max_size=800))
def test_g711_decoded_audio_encodes_back_to_a_code_of_the_same_value(
    law: str, encode: object, decode: object, np_encode: object, np_decode: object, codes: bytes
) -> None:
    assert callable(encode) and callable(decode)
    # μ-law has two codes for zero (0x7F, 0xFF): the round trip keeps the value, not the code.
    assert decode(encode(decode(codes))) == decode(codes)


@pytest.mark.parametrize(("law", "encode", "decode", "np_encode", "np_decode"), _LAWS)
@given(pcm=_pcm, cut=st.integers(0, 800))
def test_g711_quantisation_error_is_bounded_and_chunking_changes_nothing(
    law: str, encode: object, decode: object, np_encode: object, np_decode: object,
    pcm: bytes, cut: int,
) -> None:  # fmt: skip
    assert callable(encode) and callable(decode)
    cut -= cut % 2
    assert encode(pcm[:cut]) + encode(pcm[cut:]) == encode(pcm)
    x = _samples(pcm)
    y = _samples(decode(encode(pcm)))
    # G.711 keeps about 12 bits: the step is at most 1/16 of the magnitude plus the segment
    # floor (μ-law's bias of 132 / A-law's 16 at the bottom; the top segment's step is 1024).
    bound = np.maximum(np.abs(x) // 16 + 140, 0)
    assert np.all(np.abs(x - y) <= np.minimum(bound, 1100))
    # Monotonic: louder input never decodes quieter.
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(y[order]) >= 0)


@pytest.mark.parametrize(("law", "encode", "decode", "np_encode", "np_decode"), _LAWS)
@given(pcm=st.binary(max_size=41).filter(lambda b: len(b) % 2 == 1))
def test_g711_odd_pcm_is_an_audio_error(
    law: str, encode: object, decode: object, np_encode: object, np_decode: object, pcm: bytes
) -> None:
    assert callable(encode)
    with pytest.raises(AudioError):
        encode(pcm)


@given(
    st.sampled_from(_RATES),
    st.sampled_from(_RATES),
    _pcm,
    st.lists(st.integers(1, 200), min_size=1, max_size=20),
)
def test_resampler_output_does_not_depend_on_how_the_input_is_cut(
    in_rate: int, out_rate: int, pcm: bytes, cuts: list[int]
) -> None:
    whole = Resampler(in_rate, out_rate)
    expected = whole.process(pcm) + whole.flush()
    pieces, chunked, pos, i = Resampler(in_rate, out_rate), b"", 0, 0
    while pos < len(pcm):
        size = 2 * cuts[i % len(cuts)]
        chunked += pieces.process(pcm[pos : pos + size])
        pos, i = pos + size, i + 1
    chunked += pieces.flush()
    assert chunked == expected


@given(st.sampled_from(_RATES), st.sampled_from(_RATES), _pcm)
def test_resampler_keeps_the_duration(in_rate: int, out_rate: int, pcm: bytes) -> None:
    stream = Resampler(in_rate, out_rate)
    out = stream.process(pcm) + stream.flush()
    assert len(out) % 2 == 0
    expected = len(pcm) // 2 * out_rate / in_rate
    assert abs(len(out) // 2 - expected) <= 1 + out_rate / in_rate
    # After a flush the stream starts afresh: the same input gives the same output.
    assert stream.process(pcm) + stream.flush() == out


@given(st.sampled_from(_RATES), st.sampled_from(_RATES), st.integers(0, 2000))
def test_resampled_silence_is_silence(in_rate: int, out_rate: int, samples: int) -> None:
    stream = Resampler(in_rate, out_rate)
    out = stream.process(b"\x00\x00" * samples) + stream.flush()
    assert out == b"\x00" * len(out)


@given(st.sampled_from(_RATES), st.sampled_from(_RATES), st.binary(max_size=41))
def test_resampler_refuses_odd_pcm(in_rate: int, out_rate: int, pcm: bytes) -> None:
    stream = Resampler(in_rate, out_rate)
    if len(pcm) % 2:
        with pytest.raises(AudioError):
            stream.process(pcm)
    else:
        stream.process(pcm)
