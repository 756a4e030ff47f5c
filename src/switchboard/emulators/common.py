"""Pieces every emulator shares: scripted conversations, speech-like audio, an energy VAD.

Emulators answer with *scripted* turns. A :class:`Script` is consumed one turn per caller
utterance; each :class:`ScriptedTurn` says what the caller is deemed to have said (the emulated
transcript), optionally makes a function call first, then speaks ``say``. Scripts are plain data
so the CLI can load them from JSON/YAML: ``[{"caller": "what are your hours", "say": "9 to 5"},
{"tool": {"name": "end_call", "arguments": {}}, "say": "Goodbye!"}]``.

Agent audio is not speech but *speech-like*: a vowel-ish harmonic tone with syllable-rate
amplitude modulation, ``ms_per_char`` long per character of text (default 60 ms: about the pace
of a real voice), so durations, playout marks and barge-in arithmetic behave as in a real call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EnergyVAD", "Script", "ScriptedTurn", "VadEvent", "pcm16_rms", "speech_like_pcm16"]


@dataclass(frozen=True, slots=True)
class ScriptedTurn:
    """One scripted agent turn.

    Attributes:
        say: what the agent says (after the tool result, if ``tool`` is set).
        caller: the transcript reported for the caller utterance that triggers this turn.
        tool: ``{"name": ..., "arguments": {...}}`` — a function call made before speaking.
        text: set, the turn answers a caller *text* input containing it (keypad digits:
            ``"pressed 4 2"``) wherever it comes, instead of taking its place in the order.
    """

    say: str = ""
    caller: str = ""
    tool: Mapping[str, Any] | None = None
    text: str = ""

    @classmethod
    def from_obj(cls, obj: str | Mapping[str, Any] | ScriptedTurn) -> ScriptedTurn:
        if isinstance(obj, ScriptedTurn):
            return obj
        if isinstance(obj, str):
            return cls(say=obj)
        unknown = set(obj) - {"say", "caller", "tool", "text"}
        if unknown:
            raise ValueError(f"unknown scripted-turn keys: {sorted(unknown)}")
        tool = obj.get("tool")
        if tool is not None and "name" not in tool:
            raise ValueError("a scripted tool call needs a 'name'")
        return cls(
            say=str(obj.get("say", "")),
            caller=str(obj.get("caller", "")),
            tool=tool,
            text=str(obj.get("text", "")),
        )


@dataclass(slots=True)
class Script:
    """Scripted turns, consumed in order; ``default`` answers once the script runs out."""

    turns: list[ScriptedTurn] = field(default_factory=list)
    default: ScriptedTurn = ScriptedTurn(say="I hear you.", caller="(caller speech)")
    _next: int = 0

    @classmethod
    def from_obj(cls, turns: Iterable[str | Mapping[str, Any] | ScriptedTurn] | None) -> Script:
        return cls([ScriptedTurn.from_obj(t) for t in (turns or [])])

    def turn_for_text(self, text: str) -> ScriptedTurn | None:
        """The turn answering a caller text input (see ``ScriptedTurn.text``), if any."""
        for turn in self.turns:
            if turn.text and turn.text in text:
                return turn
        return None

    def next_turn(self) -> ScriptedTurn:
        while self._next < len(self.turns) and self.turns[self._next].text:
            self._next += 1  # text turns answer text inputs only
        if self._next < len(self.turns):
            turn = self.turns[self._next]
            self._next += 1
            return turn
        return self.default

    @property
    def consumed(self) -> int:
        return self._next


def speech_like_pcm16(
    text: str, sample_rate: int, *, ms_per_char: float = 60.0, amplitude: float = 0.3
) -> bytes:
    """PCM16 LE audio standing in for ``text`` spoken aloud (deterministic for equal input)."""
    n = max(1, int(len(text) * ms_per_char * sample_rate / 1000))
    t = np.arange(n, dtype=np.float64) / sample_rate
    f0 = 140.0 + 20.0 * (sum(map(ord, text)) % 7)
    wave = sum(np.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2, 3, 4))
    envelope = 0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t) ** 2  # ~4 syllables a second
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t + 1e-9) / 0.01)  # 10 ms fades: no clicks
    samples = wave / 2.1 * envelope * ramp * amplitude * 32767
    return bytes(samples.astype("<i2").tobytes())


def pcm16_rms(pcm: bytes) -> float:
    """RMS of PCM16 LE audio on a 0..1 scale (0 for empty input)."""
    if len(pcm) < 2:
        return 0.0
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(x * x)))


@dataclass(frozen=True, slots=True)
class VadEvent:
    """``kind`` is ``"start"`` or ``"stop"``; ``audio_ms`` is the position in the input stream."""

    kind: str
    audio_ms: int


class EnergyVAD:
    """Energy-threshold voice activity detection over a PCM16 stream, in 20 ms windows.

    Speech starts after ``start_ms`` of windows above ``threshold`` RMS and stops after
    ``silence_ms`` of windows below it (the defaults mirror server VAD's 500 ms silence).
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        threshold: float = 0.02,
        start_ms: int = 60,
        silence_ms: int = 500,
        prefix_padding_ms: int = 300,
    ) -> None:
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.start_ms = start_ms
        self.silence_ms = silence_ms
        self.prefix_padding_ms = prefix_padding_ms
        self._window = sample_rate * 20 // 1000 * 2
        self._buf = bytearray()
        self._pos_ms = 0
        self._loud_ms = 0
        self._quiet_ms = 0
        self.speaking = False
        self.speech_start_ms = 0

    @property
    def position_ms(self) -> int:
        return self._pos_ms

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Add audio; return the start/stop transitions it caused."""
        events: list[VadEvent] = []
        self._buf += pcm
        while len(self._buf) >= self._window:
            window = bytes(self._buf[: self._window])
            del self._buf[: self._window]
            self._pos_ms += 20
            loud = pcm16_rms(window) >= self.threshold
            if not self.speaking:
                self._loud_ms = self._loud_ms + 20 if loud else 0
                if self._loud_ms >= self.start_ms:
                    self.speaking = True
                    self._quiet_ms = 0
                    self.speech_start_ms = max(0, self._pos_ms - self._loud_ms)
                    events.append(VadEvent("start", self.speech_start_ms))
            else:
                self._quiet_ms = 0 if loud else self._quiet_ms + 20
                if self._quiet_ms >= self.silence_ms:
                    self.speaking = False
                    self._loud_ms = 0
                    events.append(VadEvent("stop", self._pos_ms - self._quiet_ms))
        return events
