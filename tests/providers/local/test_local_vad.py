"""VAD segmentation: Silero (and the WebRTC fallback) on synthesised phone calls."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from switchboard.audio import ulaw_to_pcm16
from switchboard.errors import AudioError
from switchboard.providers.local.synth import caller_audio
from switchboard.providers.local.vad import (
    SileroScorer,
    SpeechEnd,
    SpeechStart,
    UtteranceSegmenter,
    VadEvent,
    WebRtcScorer,
)

pytestmark = pytest.mark.local

RATE = 8000
SENTENCES = (
    "What are your hours?",
    "Please transfer me to the billing department.",
    "Thank you very much, goodbye.",
)


def hiss(seconds: float, dbfs: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    level = 32767 * 10 ** (dbfs / 20)
    noise = rng.normal(0.0, level, int(RATE * seconds))
    return bytes(np.clip(noise, -32768, 32767).astype("<i2").tobytes())


def dtmf(seconds: float, low: float = 697.0, high: float = 1209.0) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    tone = 0.35 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    return bytes((tone * 32767).astype("<i2").tobytes())


def mix(pcm: bytes, noise: bytes) -> bytes:
    a = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    b = np.frombuffer(noise[: len(pcm)], dtype="<i2").astype(np.int32)
    return bytes(np.clip(a + b, -32768, 32767).astype("<i2").tobytes())


@cache
def call_pcm() -> bytes:
    """Three caller sentences with 1 s gaps, under -50 dBFS line hiss (8 kHz PCM16)."""
    speech = (
        b"".join(ulaw_to_pcm16(caller_audio(s, lead_ms=1000, trail_ms=0)) for s in SENTENCES)
        + b"\x00\x00" * RATE
    )
    return mix(speech, hiss(len(speech) / 2 / RATE + 1, -50))


def run(segmenter: UtteranceSegmenter, pcm: bytes, chunk: int = 320) -> list[VadEvent]:
    events: list[VadEvent] = []
    for offset in range(0, len(pcm), chunk):
        events += segmenter.process(pcm[offset : offset + chunk])
    return events


def test_silero_finds_each_utterance() -> None:
    events = run(UtteranceSegmenter(SileroScorer(RATE)), call_pcm())
    starts = [e for e in events if isinstance(e, SpeechStart)]
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert len(starts) == len(ends) == len(SENTENCES)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd] * len(SENTENCES)
    for start, end in zip(starts, ends, strict=True):
        assert end.start_ms == start.audio_ms < end.end_ms
        duration_ms = len(end.pcm) / 2 / RATE * 1000
        # The utterance plus (at most) 300 ms of padding on each side.
        assert end.end_ms - end.start_ms < duration_ms <= end.end_ms - end.start_ms + 700
    assert starts[0].audio_ms >= 900  # after the first second of silence


def test_chunk_size_does_not_change_the_segmentation() -> None:
    pcm = call_pcm()
    a = run(UtteranceSegmenter(SileroScorer(RATE)), pcm, chunk=160)
    b = run(UtteranceSegmenter(SileroScorer(RATE)), pcm, chunk=len(pcm))
    assert a == b


def test_silero_ignores_silence_hiss_and_dtmf() -> None:
    pcm = b"\x00\x00" * RATE + hiss(2.0, -40) + dtmf(0.4) + hiss(1.0, -45, seed=2)
    assert run(UtteranceSegmenter(SileroScorer(RATE)), pcm) == []


def speaking(segmenter: UtteranceSegmenter) -> bool:
    return segmenter.speaking


def test_flush_ends_an_utterance_in_progress() -> None:
    speech = ulaw_to_pcm16(caller_audio(SENTENCES[1], lead_ms=300, trail_ms=0))
    segmenter = UtteranceSegmenter(SileroScorer(RATE))
    events = run(segmenter, speech[: len(speech) * 2 // 3 // 2 * 2])
    assert [type(e) for e in events] == [SpeechStart]
    assert speaking(segmenter)
    (end,) = segmenter.flush()
    assert isinstance(end, SpeechEnd)
    assert not speaking(segmenter)
    assert segmenter.flush() == []


def test_webrtc_fallback_finds_speech_and_ignores_silence() -> None:
    events = run(UtteranceSegmenter(WebRtcScorer(RATE)), call_pcm())
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert len(ends) >= len(SENTENCES)  # WebRTC may split at short pauses
    silent = UtteranceSegmenter(WebRtcScorer(RATE))
    assert run(silent, b"\x00\x00" * RATE * 2) == []


def test_silero_rejects_unsupported_rate() -> None:
    with pytest.raises(AudioError):
        SileroScorer(24000)


class LoudnessScorer:
    """A scripted scorer for the pure state machine: speech wherever the window is loud."""

    sample_rate = RATE
    window_samples = 80  # 10 ms

    def score(self, window: np.ndarray) -> float:
        return 1.0 if float(np.abs(window).max()) > 0.1 else 0.0


def tone(ms: int) -> bytes:
    return bytes((np.full(RATE * ms // 1000, 0.5) * 32767).astype("<i2").tobytes())


def quiet(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


def test_blips_shorter_than_min_speech_are_ignored() -> None:
    segmenter = UtteranceSegmenter(LoudnessScorer(), min_speech_ms=150)
    assert segmenter.process(quiet(200) + tone(100) + quiet(500)) == []


def test_padding_and_max_utterance() -> None:
    segmenter = UtteranceSegmenter(
        LoudnessScorer(), min_speech_ms=50, pad_ms=100, min_silence_ms=200, max_utterance_ms=1000
    )
    events = segmenter.process(quiet(500) + tone(400) + quiet(400))
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    start, end = events
    assert isinstance(start, SpeechStart) and isinstance(end, SpeechEnd)
    assert start.audio_ms == 500
    assert (end.start_ms, end.end_ms) == (500, 900)
    assert len(end.pcm) == 2 * RATE * (100 + 400 + 100) // 1000
    long = UtteranceSegmenter(LoudnessScorer(), min_speech_ms=50, max_utterance_ms=1000)
    cut = long.process(tone(2500))
    assert [type(e) for e in cut][:3] == [SpeechStart, SpeechEnd, SpeechStart]


def test_odd_byte_count_is_an_audio_error() -> None:
    with pytest.raises(AudioError):
        UtteranceSegmenter(LoudnessScorer()).process(b"\x00")


def test_a_pause_is_reported_early_and_the_end_it_leads_to_names_it() -> None:
    from switchboard.providers.local.vad import SpeechPause

    segmenter = UtteranceSegmenter(SileroScorer(RATE), speculate_ms=96)
    events = segmenter.process(call_pcm())
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    pauses = {e.pause: e for e in events if isinstance(e, SpeechPause)}
    assert len(ends) == len(SENTENCES)
    for end in ends:  # every utterance ended in a silence that was reported as a pause first
        assert end.pause in pauses
        early = pauses[end.pause]
        assert early.start_ms == end.start_ms and abs(early.end_ms - end.end_ms) <= 32
    plain = UtteranceSegmenter(SileroScorer(RATE)).process(call_pcm())
    assert not [e for e in plain if isinstance(e, SpeechPause)]  # off unless asked for


class StickyScorer(LoudnessScorer):
    """Like Silero after a voice stops: neither speech (0.5) nor silence (0.35) in a fading tail."""

    def score(self, window: np.ndarray) -> float:
        return 1.0 if float(np.abs(window).max()) > 0.1 else 0.4


def test_a_quiet_window_is_silence_whatever_the_scorer_says() -> None:
    audio = quiet(300) + tone(400) + quiet(600)
    sticky = UtteranceSegmenter(StickyScorer(), min_speech_ms=50, min_silence_ms=200)
    assert [type(e) for e in sticky.process(audio)] == [SpeechStart]  # the tail never ends
    floor = UtteranceSegmenter(
        StickyScorer(), min_speech_ms=50, min_silence_ms=200, silence_dbfs=-45.0
    )
    events = floor.process(audio)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    assert isinstance(events[1], SpeechEnd) and events[1].end_ms == 700
