"""Offline speech recognition: Silero VAD utterances → Whisper tiny.en, off the event loop.

:class:`LocalSTT` implements the pipeline's ``SpeechToText`` protocol
(``switchboard.providers.pipeline.components``) for one call. Theory of operation:

* ``send_audio`` decodes the call's audio (μ-law/A-law/PCM16) to PCM16 at 8 kHz (phone rate) or
  16 kHz (anything else, resampled) and runs the :class:`~.vad.UtteranceSegmenter` inline (Silero
  costs ~5 ms per second of audio);
* on ``SpeechStart`` it emits :class:`SttSpeechStarted` at once (the engine's barge-in signal);
* on ``SpeechEnd`` the padded utterance joins this call's queue; one worker task per call takes
  utterances in order, resamples to 16 kHz and runs ``WhisperModel.transcribe`` on the bounded
  thread pool shared by every call (:func:`~.models.stt_pool`), then emits
  ``SttTranscript(is_final=True, speech_final=True)``;
* transcribe while the caller is still (maybe) speaking: after ``speculate_ms`` (96) of silence
  the segmenter hands over the utterance so far (``SpeechPause``) and it is decoded at once;
  when that silence goes on to end the utterance, the early transcript is its transcript, so
  the end-of-speech hangover and the decode overlap (issue #21: local turn latency);
* end the utterance early when it is clearly finished (``end_on_complete``): when that early
  transcript is in and the silence still holds, and its words sound like a finished turn
  (:func:`~switchboard.providers.pipeline.endpointing.utterance_complete`: "…opening hours?"),
  the utterance ends then, not after ``min_silence_ms``; one that sounds unfinished ("my number
  is four five") waits for the full silence (and the turn manager's ``max_endpoint_ms``);
* short utterances (≤ 8 s) are decoded on a 10 s encoder window, not 30 s (:mod:`.window`);
* a window quieter than ``silence_dbfs`` (-45) counts as silence even while Silero's
  probability decays after a voice stops (:class:`~.vad.UtteranceSegmenter`);
* an utterance in which Whisper hears no words (noise that fooled the VAD) ends with
  :class:`SttUtteranceEnd` instead, so a listener waiting for the turn to end is released.

Decoding options (``docs/local-models.md#why-these-models``): ``language="en"``, ``beam_size=1``,
``condition_on_previous_text=False``, ``without_timestamps=True``, no built-in VAD, and one
``temperature`` of 0: greedy decoding, never faster-whisper's fallback to sampling at higher
temperatures when a decode fails its thresholds, so the same audio always gives the same text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from switchboard.audio import Resampler, StreamConverter
from switchboard.errors import AudioError, ProviderError
from switchboard.providers.base import AudioFormat, AudioSpec
from switchboard.providers.local import models
from switchboard.providers.local.vad import (
    SpeechEnd,
    SpeechPause,
    SpeechScorer,
    SpeechStart,
    UtteranceSegmenter,
    default_scorer,
)
from switchboard.providers.local.window import transcribe_window
from switchboard.providers.pipeline.components import (
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)
from switchboard.providers.pipeline.endpointing import utterance_complete

__all__ = ["PHONE_SPEC", "LocalSTT", "transcribe_pcm16"]

_Decode = asyncio.Future[tuple[str, float]]


def _consume(future: _Decode) -> None:
    if not future.cancelled():
        future.exception()


logger = logging.getLogger(__name__)

#: μ-law at 8 kHz: what Twilio and Telnyx media streams carry.
PHONE_SPEC = AudioSpec(AudioFormat.ULAW, 8000)
_RAW = (AudioFormat.PCM16, AudioFormat.ULAW, AudioFormat.ALAW)


def transcribe_pcm16(
    pcm: bytes, sample_rate: int, *, model: Any = None, window: bool = True
) -> tuple[str, float]:
    """Transcribe one utterance synchronously (call it on a worker thread).

    Args:
        pcm: PCM16 LE mono audio.
        sample_rate: its rate; resampled to Whisper's 16 kHz when different.
        model: a ``WhisperModel``; the process-wide tiny.en by default.
        window: decode an utterance of up to 8 s on a 10 s window (:mod:`.window`, about
            four times faster); False: faster-whisper's 30 s window always.

    Returns:
        The text (stripped, may be empty) and the mean token probability (0..1).
    """
    if sample_rate != 16000:
        pcm = Resampler(sample_rate, 16000).process(pcm, last=True)
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    whisper = model if model is not None else models.whisper_model()
    if window and (short := transcribe_window(audio, whisper)) is not None:
        return short
    try:
        segments, _info = whisper.transcribe(
            audio,
            language="en",
            beam_size=1,
            temperature=0.0,  # a single temperature: no random-sampling fallback
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        parts = list(segments)  # decoding happens while iterating
    except (RuntimeError, ValueError) as exc:
        raise ProviderError(f"Whisper failed to transcribe: {exc}", fatal=False) from exc
    text = " ".join(seg.text.strip() for seg in parts if seg.text.strip())
    confidence = float(np.exp(np.mean([seg.avg_logprob for seg in parts]))) if parts else 0.0
    return text.strip(), confidence


class LocalSTT:
    """Streaming offline STT for one call (see the module docstring).

    Args:
        input_spec: the audio ``send_audio`` receives; μ-law 8 kHz for phone calls. A raw format
            at 8 or 16 kHz is used as is; other rates are resampled to 16 kHz.
        scorer_factory: builds the per-call VAD scorer from a rate (Silero by default).
        vad_options: keyword arguments for :class:`~.vad.UtteranceSegmenter`
            (``min_silence_ms``, ``pad_ms``, ``speculate_ms``, ``silence_dbfs``...).
        model: a ``WhisperModel`` to use instead of the process-wide one (tests).
        end_on_complete: end an utterance as soon as its early transcript sounds finished
            (module docstring); False: always after ``min_silence_ms``.
        window: decode short utterances on a 10 s window (:mod:`.window`); False: 30 s.
    """

    def __init__(
        self,
        input_spec: AudioSpec = PHONE_SPEC,
        *,
        scorer_factory: Callable[[int], SpeechScorer] = default_scorer,
        vad_options: dict[str, Any] | None = None,
        model: Any = None,
        end_on_complete: bool = True,
        window: bool = True,
    ) -> None:
        if input_spec.format not in _RAW:
            raise AudioError(f"local STT needs raw audio (PCM16/μ-law/A-law), not {input_spec}")
        self._input_spec = input_spec
        vad_rate = input_spec.sample_rate if input_spec.sample_rate in (8000, 16000) else 16000
        self._vad_spec = AudioSpec(AudioFormat.PCM16, vad_rate)
        self._converter = StreamConverter(input_spec, self._vad_spec)
        self._scorer_factory = scorer_factory
        self._vad_options = dict(vad_options or {})
        self._model = model
        self._end_on_complete = end_on_complete
        self._window = window
        self._segmenter: UtteranceSegmenter | None = None
        self._utterances: asyncio.Queue[tuple[SpeechEnd, _Decode | None] | None] = asyncio.Queue()
        self._early: tuple[int, _Decode] | None = None  # (pause, its decode) of the last pause
        self._events: asyncio.Queue[SttEvent | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        #: Seconds each Whisper decode took (for metrics and the benchmark).
        self.decode_seconds: list[float] = []

    @property
    def input_spec(self) -> AudioSpec:
        return self._input_spec

    async def start(self) -> None:
        """Load the models (off the event loop) and start this call's transcription worker."""
        if self._worker is not None:
            return
        loop = asyncio.get_running_loop()
        if self._model is None:
            self._model = await loop.run_in_executor(models.stt_pool(), models.whisper_model)
        scorer = await asyncio.to_thread(self._scorer_factory, self._vad_spec.sample_rate)
        options: dict[str, Any] = {"speculate_ms": 96, "silence_dbfs": -45.0, **self._vad_options}
        self._segmenter = UtteranceSegmenter(scorer, **options)
        self._worker = asyncio.create_task(self._transcribe_loop(), name="local-stt")

    async def send_audio(self, data: bytes) -> None:
        """Feed caller audio in :attr:`input_spec`."""
        if self._segmenter is None or self._closed:
            raise ProviderError("LocalSTT.send_audio before start() or after close()")
        pcm = self._converter.process(data)
        if pcm:
            self._handle(self._segmenter.process(pcm))

    async def finalize(self) -> None:
        """End the utterance in progress now and transcribe it."""
        if self._segmenter is not None and not self._closed:
            self._handle(self._segmenter.flush())

    def _handle(self, events: list[SpeechStart | SpeechEnd | SpeechPause]) -> None:
        for event in events:
            match event:
                case SpeechStart(audio_ms=ms):
                    logger.debug("speech started at %d ms", ms)
                    self._events.put_nowait(SttSpeechStarted(audio_ms=ms))
                case SpeechPause(pcm=pcm, pause=pause):
                    # a new pause means speech went on after the last one: its decode (maybe
                    # still running) is stale, and waiting for it would delay this one's
                    logger.debug("early decode of pause %d", pause)
                    self._early = (pause, self._decode(pcm))
                    if self._end_on_complete:
                        self._early[1].add_done_callback(functools.partial(self._early_done, pause))
                case SpeechEnd():
                    logger.debug("utterance %d-%d ms", event.start_ms, event.end_ms)
                    early = self._early
                    ready = early[1] if early is not None and early[0] == event.pause else None
                    self._early = None
                    self._utterances.put_nowait((event, ready))

    def _early_done(self, pause: int, future: _Decode) -> None:
        """An early transcript is in: end the utterance now if it sounds finished and the
        caller is still silent (the pause it was made in is still the utterance's end)."""
        segmenter = self._segmenter
        if self._closed or segmenter is None or segmenter.pause != pause:
            return  # speech went on, or the utterance already ended
        if future.cancelled() or future.exception() is not None:
            return
        text, _confidence = future.result()
        if text and utterance_complete(text):
            logger.debug("early transcript sounds finished: utterance ends now")
            self._handle(segmenter.flush())

    def _decode(self, pcm: bytes) -> _Decode:
        """Start decoding ``pcm`` on the shared pool (its failure is reported when awaited)."""
        loop = asyncio.get_running_loop()
        rate = self._vad_spec.sample_rate
        job = functools.partial(transcribe_pcm16, pcm, rate, model=self._model, window=self._window)
        future = loop.run_in_executor(models.stt_pool(), job)
        future.add_done_callback(_consume)  # an unused early decode's error is not an error
        return future

    async def events(self) -> AsyncIterator[SttEvent]:
        """Recognition events in order, until :meth:`close`."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    async def _transcribe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        rate = self._vad_spec.sample_rate
        while (item := await self._utterances.get()) is not None:
            utterance, early = item
            started = time.perf_counter()
            try:
                if early is not None:  # transcribed during the end-of-speech silence
                    text, confidence = await early
                else:
                    text, confidence = await loop.run_in_executor(
                        models.stt_pool(),
                        functools.partial(
                            transcribe_pcm16,
                            utterance.pcm,
                            rate,
                            model=self._model,
                            window=self._window,
                        ),
                    )
            except Exception as exc:  # a bad utterance must not stop the call's recognition
                logger.warning("utterance at %d ms not transcribed: %r", utterance.start_ms, exc)
                text, confidence = "", 0.0
            self.decode_seconds.append(time.perf_counter() - started)
            logger.debug(
                "transcribed %d ms in %.3f s",
                utterance.end_ms - utterance.start_ms,
                self.decode_seconds[-1],
            )
            if text:
                self._events.put_nowait(
                    SttTranscript(
                        text=text,
                        is_final=True,
                        speech_final=True,
                        confidence=confidence,
                        start_ms=utterance.start_ms,
                        end_ms=utterance.end_ms,
                    )
                )
            else:
                self._events.put_nowait(SttUtteranceEnd(last_word_end_ms=None))

    async def close(self) -> None:
        """Stop transcribing (pending utterances are dropped) and end :meth:`events`."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._events.put_nowait(None)
