"""The options Whisper decodes with (no model needed: a recording stand-in for ``WhisperModel``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from switchboard.providers.local.stt import transcribe_pcm16


@dataclass
class _Segment:
    text: str
    avg_logprob: float


class RecordingWhisper:
    """Answers like ``faster_whisper.WhisperModel.transcribe`` and keeps what it was asked."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    def transcribe(self, audio: Any, **options: Any) -> tuple[Iterator[_Segment], object]:
        self.options = options
        return iter([_Segment(" Hello there. ", -0.1)]), object()


def test_greedy_decoding_without_the_temperature_fallback() -> None:
    whisper = RecordingWhisper()
    text, confidence = transcribe_pcm16(bytes(3200), 16000, model=whisper, window=False)
    assert text == "Hello there." and 0.9 < confidence < 0.91
    # faster-whisper's default is (0.0, 0.2, ..., 1.0): a decode that fails its thresholds is
    # redone by *sampling* at the next temperature, so the same audio can give another text.
    # One temperature of 0 with one beam is greedy decoding: nothing to fall back to.
    assert whisper.options["temperature"] == 0.0
    assert whisper.options["beam_size"] == 1
    assert whisper.options["condition_on_previous_text"] is False
