"""An emulated answering machine: the callee of an outbound call that no person picks up.

It plays its recorded greeting, then a beep (1 kHz, 500 ms), then records in silence for
``listen_s``. Both carrier emulators use it as the callee's audio and time their AMD reports
from the start of the media stream, as the carriers' detectors listen to the same audio:

* Twilio ``DetectMessageEnd``: ``AnsweredBy=machine_end_beep`` once the beep has played
  (twilio.com/docs/voice/answering-machine-detection: for a machine the answer comes at the
  end of the greeting); ``Enable``: ``machine_start`` once ``speech_threshold_ms`` of greeting
  has been heard. A person: ``human`` after ``HUMAN_MS`` (a short "hello?" then silence).
* Telnyx ``premium``: ``call.machine.premium.detection.ended`` (``machine``) after the speech
  threshold, then ``call.machine.premium.greeting.ended`` (``beep_detected``) at the beep's
  end; a person: ``human_residence`` (developers.telnyx.com/docs/voice/programmable-voice/
  answering-machine-detection).
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass

import numpy as np

from switchboard.emulators.common import speech_like_pcm16

__all__ = ["HUMAN_MS", "AnsweringMachine"]

#: When a detector calls a person: after their short greeting and the silence that follows.
HUMAN_MS = 1200.0

_RATE = 8000


@dataclass(frozen=True, slots=True)
class AnsweringMachine:
    """A callee that is a machine (see the module docstring).

    Attributes:
        greeting: what its recorded greeting says (speech-like audio of the text).
        beep_ms: the beep's length.
        listen_s: how long it records after the beep before it hangs up.
        speech_threshold_ms: how much greeting a detector hears before it calls a machine.
    """

    greeting: str = "Hi, you have reached the voicemail of Sam. Please leave a message."
    beep_ms: float = 500.0
    listen_s: float = 20.0
    speech_threshold_ms: float = 2400.0

    @property
    def greeting_ms(self) -> float:
        return len(self.greeting_pcm()) / 2 / _RATE * 1000.0

    @property
    def beep_end_ms(self) -> float:
        """When the beep has played (from the start of the stream): the message may begin."""
        return self.greeting_ms + self.beep_ms

    @property
    def machine_start_ms(self) -> float:
        """When a detector hearing the greeting calls a machine."""
        return min(self.speech_threshold_ms, self.greeting_ms)

    def greeting_pcm(self) -> bytes:
        return speech_like_pcm16(self.greeting, _RATE, ms_per_char=55.0)

    def pcm(self) -> bytes:
        """Its whole side of the call: greeting, beep, silence (PCM16 LE 8 kHz)."""
        n = int(_RATE * self.beep_ms / 1000)
        t = np.arange(n) / _RATE
        beep = (np.sin(2 * math.pi * 1000.0 * t) * 0.4 * 32767).astype("<i2").tobytes()
        silence = bytes(int(_RATE * self.listen_s) * 2)
        return self.greeting_pcm() + beep + silence

    def wav(self) -> bytes:
        """:meth:`pcm` as a WAV file's bytes."""
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(_RATE)
            wav.writeframes(self.pcm())
        return out.getvalue()
