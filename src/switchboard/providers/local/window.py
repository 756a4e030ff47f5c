"""Whisper on a 10-second window: a short utterance decoded in a third of the encoder's work.

faster-whisper always pads the log-mel features to Whisper's 30 s window (3000 frames), so the
encoder costs the same for "yes" as for a 30 s monologue; for a phone utterance of 1–3 s it is
almost all of a decode (0.15 s of 0.2 s on an idle core, 0.9 s of 1.1 s on a busy one).
CTranslate2 accepts shorter inputs (OpenNMT/CTranslate2#1446), and an utterance followed by
silence up to 10 s (1000 frames) decodes to the same text as with 30 s on the phrases we checked
(``docs/local-models.md``), about four times faster; a 5 s window made tiny.en repeat itself.
So :func:`transcribe_window` encodes the utterance padded with silence to :data:`WINDOW_S` and
decodes it greedily the way faster-whisper does with our options (``stt.py``): the same prompt
(no timestamps), suppressed tokens, and its no-speech rule (no-speech probability > 0.6 and
mean log-probability < -1: no words). Longer utterances use faster-whisper as before.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from switchboard.errors import ProviderError
from switchboard.providers.local import models

__all__ = ["WINDOW_S", "transcribe_window"]

#: The encoder window, in seconds (10 s = 1000 mel frames of 10 ms).
WINDOW_S = 10
#: Utterances longer than this (seconds) leave the window too little trailing silence.
MAX_AUDIO_S = 8.0
_NO_SPEECH_PROB = 0.6
_LOG_PROB = -1.0


@functools.cache
def _prompt_and_suppress(whisper: Any) -> tuple[Any, list[int], list[int]]:
    tokenizer_module = models.require("faster_whisper.tokenizer", "speech recognition")
    transcribe_module = models.require("faster_whisper.transcribe", "speech recognition")
    tokenizer = tokenizer_module.Tokenizer(
        whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe", language="en"
    )
    prompt = whisper.get_prompt(tokenizer, [], without_timestamps=True)
    suppress = transcribe_module.get_suppressed_tokens(tokenizer, [-1])
    return tokenizer, list(prompt), list(suppress)


def transcribe_window(audio: np.ndarray, whisper: Any) -> tuple[str, float] | None:
    """Decode ``audio`` (float32 at 16 kHz) on the short window; None when it is too long.

    Returns:
        The text (stripped, empty when Whisper hears no speech) and the mean token
        probability (0..1), as :func:`~.stt.transcribe_pcm16`.
    """
    if audio.size > MAX_AUDIO_S * 16000:
        return None
    ctranslate2 = models.require("ctranslate2", "speech recognition")
    extractor = whisper.feature_extractor
    frames = WINDOW_S * 100
    samples = frames * extractor.hop_length + extractor.hop_length
    padded = np.concatenate((audio, np.zeros(samples - audio.size, dtype=np.float32)))
    features = extractor(padded)[:, :frames]
    tokenizer, prompt, suppress = _prompt_and_suppress(whisper)
    try:
        encoded = whisper.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
            to_cpu=False,
        )
        result = whisper.model.generate(
            encoded,
            [prompt],
            beam_size=1,
            length_penalty=1,
            max_length=whisper.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppress,
            max_initial_timestamp_index=50,
        )[0]
    except (RuntimeError, ValueError) as exc:
        raise ProviderError(f"Whisper failed to transcribe: {exc}", fatal=False) from exc
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > _NO_SPEECH_PROB and avg_logprob < _LOG_PROB:
        return "", 0.0
    text = tokenizer.decode(tokens).strip()
    return text, float(np.exp(avg_logprob)) if text else 0.0
