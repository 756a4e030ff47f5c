"""Offline speech synthesis: Piper (en_US-joe-medium), sentence by sentence, off the event loop.

:class:`PiperTTS` implements the pipeline's
:class:`~switchboard.providers.pipeline.components.TextToSpeech`. Theory of operation: the text is
phonemised once (espeak-ng, under :data:`~.models.PHONEMIZE_LOCK`, which also splits sentences);
then each sentence is voiced on the shared TTS thread pool, resampled from Piper's 22.05 kHz to
the call's rate with one stateful soxr stream (no clicks between sentences), encoded (μ-law for
phones) and yielded in ``chunk_ms`` pieces. The first audio leaves after the first sentence
(~0.1 s; the voice, the phonemes and that sentence in one trip to the pool); cancelling the
iteration stops before the next sentence.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

import numpy as np

from switchboard.audio import Resampler, check_rate, encode_from_pcm16
from switchboard.errors import AudioError, ProviderError
from switchboard.providers.base import AudioFormat, AudioSpec
from switchboard.providers.local import models
from switchboard.providers.local.stt import PHONE_SPEC

__all__ = ["PIPER_RATE", "PiperTTS", "synthesize_pcm16"]

logger = logging.getLogger(__name__)

#: en_US-joe-medium's native output rate.
PIPER_RATE = 22050

_RAW = (AudioFormat.PCM16, AudioFormat.ULAW, AudioFormat.ALAW)


def _phonemize(voice: Any, text: str) -> list[list[str]]:
    with models.PHONEMIZE_LOCK:
        return [p for p in voice.phonemize(text) if p]


def _voice_sentence(
    voice: Any, phonemes: list[str], *, length_scale: float | None, volume: float
) -> bytes:
    """One sentence's phonemes → PCM16 at 22.05 kHz (peak-normalised to ``volume``)."""
    piper_config = models.require("piper.config", "speech synthesis (piper-tts)")
    syn = piper_config.SynthesisConfig(length_scale=length_scale)
    try:
        audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(phonemes), syn)
    except (RuntimeError, ValueError) as exc:
        raise ProviderError(f"Piper failed to synthesise: {exc}", fatal=False) from exc
    if isinstance(audio, tuple):  # (audio, alignments) when alignments were asked for
        audio = audio[0]
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1e-8:
        audio = audio * (volume / peak)
    return bytes((np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes())


def _start(
    text: str, voicing: Callable[[Any, list[str]], bytes]
) -> tuple[Any, list[list[str]], bytes | None]:
    """The voice, ``text``'s sentences as phonemes, and the first one's audio (blocking)."""
    voice = models.piper_voice()
    sentences = _phonemize(voice, text)
    return voice, sentences, voicing(voice, sentences[0]) if sentences else None


def synthesize_pcm16(
    text: str, *, length_scale: float | None = None, volume: float = 0.9
) -> Iterator[bytes]:
    """Synchronously yield PCM16 at :data:`PIPER_RATE`, one piece per sentence (blocking)."""
    voice = models.piper_voice()
    for phonemes in _phonemize(voice, text):
        yield _voice_sentence(voice, phonemes, length_scale=length_scale, volume=volume)


class PiperTTS:
    """Streaming offline TTS for one call.

    Args:
        output_spec: the audio to produce; μ-law 8 kHz for phone calls. PCM16, μ-law or A-law at
            a supported rate (8, 16, 22.05, 24, 44.1, 48 kHz).
        chunk_ms: size of the pieces yielded.
        length_scale: Piper speaking pace (< 1 faster, > 1 slower); the voice's own by default.
        volume: peak level of each sentence (0..1).
    """

    def __init__(
        self,
        output_spec: AudioSpec = PHONE_SPEC,
        *,
        chunk_ms: int = 200,
        length_scale: float | None = None,
        volume: float = 0.9,
    ) -> None:
        if output_spec.format not in _RAW:
            raise AudioError(f"Piper TTS produces raw audio (PCM16/μ-law/A-law), not {output_spec}")
        check_rate(output_spec.sample_rate)
        self._spec = output_spec
        self._chunk_bytes = max(output_spec.bytes_for_ms(chunk_ms), 2)
        self._length_scale = length_scale
        self._volume = volume
        #: Seconds each sentence took to voice (for metrics and the benchmark).
        self.sentence_seconds: list[float] = []

    @property
    def output_spec(self) -> AudioSpec:
        return self._spec

    async def warm_up(self) -> None:
        """Load the voice now (off the event loop) rather than on the first reply."""
        await asyncio.get_running_loop().run_in_executor(models.tts_pool(), models.piper_voice)

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """Audio for ``text`` in :attr:`output_spec`, sentence by sentence."""
        if not text.strip():
            return
        loop = asyncio.get_running_loop()
        pool = models.tts_pool()
        voicing = functools.partial(
            _voice_sentence, length_scale=self._length_scale, volume=self._volume
        )
        started = time.perf_counter()
        # one trip to the pool for the voice, the phonemes and the first sentence's audio:
        # each trip is a thread hand-off, which on a busy machine costs a scheduling delay
        voice, sentences, first = await loop.run_in_executor(pool, _start, text, voicing)
        resampler = Resampler(PIPER_RATE, self._spec.sample_rate)
        for index, phonemes in enumerate(sentences):
            if index == 0 and first is not None:
                pcm = first
            else:
                started = time.perf_counter()
                pcm = await loop.run_in_executor(pool, voicing, voice, phonemes)
            self.sentence_seconds.append(time.perf_counter() - started)
            last = index == len(sentences) - 1
            out = encode_from_pcm16(resampler.process(pcm, last=last), self._spec.format)
            for offset in range(0, len(out), self._chunk_bytes):
                yield out[offset : offset + self._chunk_bytes]

    async def aclose(self) -> None:
        """Nothing to release: the voice and pools are shared by the process."""
