"""The emulated Deepgram text-to-speech: ``/v1/speak`` websocket and REST.

Wire facts: ``docs/wire/deepgram.md#speak-websocket`` and ``docs/wire/deepgram.md#speak-rest``
(vendor page: https://developers.deepgram.com/reference/text-to-speech/speak-streaming).

Written against plain dicts, independent of the client. Audio is :func:`speech_like_pcm16` of
realistic duration for the text, encoded to the requested encoding and rate.

Theory of operation of the websocket (:class:`SpeakCore`, pure): ``Speak`` messages append text
to a buffer; ``Flush`` turns the buffer into one audio job (the server layer sends the job's
audio as binary frames, then ``Flushed`` with the flush's ``sequence_id``); ``Clear`` drops the
buffer and any audio not yet sent, answered by ``Cleared``; ``Close`` flushes what is left and
closes. Flushes beyond ``flush_limit`` per 60 s of the server clock draw a ``Warning``.
"""

from __future__ import annotations

import struct
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.audio.g711 import pcm16_to_alaw, pcm16_to_ulaw
from switchboard.emulators.common import speech_like_pcm16

__all__ = [
    "AURA_VOICES",
    "SpeakCore",
    "SpeakJob",
    "SpeakParamError",
    "parse_speak_params",
    "synthesize",
    "wav_header",
]

WS_ENCODINGS = ("linear16", "mulaw", "alaw")
WS_RATES = (8000, 16000, 24000, 32000, 48000)
REST_RAW_ENCODINGS = ("linear16", "mulaw", "alaw")
AURA_1 = (
    "asteria",
    "luna",
    "stella",
    "athena",
    "hera",
    "orion",
    "arcas",
    "perseus",
    "angus",
    "orpheus",
    "helios",
    "zeus",
)
AURA_VOICES = frozenset(f"aura-{v}-en" for v in AURA_1)


class SpeakParamError(ValueError):
    """Deepgram would answer HTTP 400."""


def parse_speak_params(query: Mapping[str, str], *, rest: bool) -> dict[str, Any]:
    """Validate ``model``/``encoding``/``sample_rate``/``container`` with the documented defaults.

    REST defaults (media-output settings page): linear16, 24000 Hz, ``container=wav``.
    Websocket defaults: linear16, 24000 Hz, raw audio.
    """
    model = query.get("model", "aura-asteria-en")
    if not model.startswith("aura-"):
        raise SpeakParamError(f"unknown model {model!r}")
    encoding = query.get("encoding", "linear16")
    if encoding not in (REST_RAW_ENCODINGS if rest else WS_ENCODINGS):
        raise SpeakParamError(f"encoding {encoding!r} is not emulated")
    default_rate = "8000" if encoding in ("mulaw", "alaw") and rest else "24000"
    try:
        rate = int(query.get("sample_rate", default_rate))
    except ValueError:
        raise SpeakParamError("sample_rate must be an integer") from None
    if rate not in WS_RATES:
        raise SpeakParamError(f"sample_rate {rate} is not supported")
    container = query.get("container", "wav" if rest else "none")
    if container not in ("none", "wav"):
        raise SpeakParamError(f"container {container!r} is not emulated")
    return {"model": model, "encoding": encoding, "sample_rate": rate, "container": container}


def synthesize(text: str, encoding: str, sample_rate: int, *, ms_per_char: float = 60.0) -> bytes:
    """Speech-like audio for ``text`` in ``encoding`` at ``sample_rate``."""
    pcm = speech_like_pcm16(text, sample_rate, ms_per_char=ms_per_char)
    match encoding:
        case "mulaw":
            return pcm16_to_ulaw(pcm)
        case "alaw":
            return pcm16_to_alaw(pcm)
        case _:
            return pcm


def wav_header(nbytes: int, encoding: str, sample_rate: int) -> bytes:
    """A 44-byte RIFF/WAVE header (format 1 PCM, 6 A-law, 7 μ-law) for ``nbytes`` of data."""
    fmt, width = {"linear16": (1, 2), "alaw": (6, 1), "mulaw": (7, 1)}[encoding]
    return (
        b"RIFF"
        + struct.pack("<I", 36 + nbytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, fmt, 1, sample_rate, sample_rate * width, width, width * 8)
        + b"data"
        + struct.pack("<I", nbytes)
    )


@dataclass(frozen=True, slots=True)
class SpeakJob:
    """Audio to send for one Flush, then ``Flushed`` with ``sequence_id``."""

    sequence_id: int
    audio: bytes


@dataclass(slots=True)
class SpeakReply:
    messages: list[dict[str, Any]] = field(default_factory=list)
    job: SpeakJob | None = None
    clear: bool = False
    close: bool = False


class SpeakCore:
    """One emulated ``/v1/speak`` websocket (see the module docstring)."""

    def __init__(
        self,
        params: Mapping[str, Any],
        *,
        ms_per_char: float = 60.0,
        flush_limit: int = 20,
        max_chars: int = 2000,
    ) -> None:
        self.params = dict(params)
        self.ms_per_char = ms_per_char
        self.flush_limit = flush_limit
        self.max_chars = max_chars
        self.request_id = str(uuid.uuid4())
        self.violations: list[str] = []
        self.characters = 0
        self._text = ""
        self._sequence = 0
        self._flush_times: deque[float] = deque()

    def metadata(self) -> dict[str, Any]:
        """Sent when the socket opens."""
        return {
            "type": "Metadata",
            "request_id": self.request_id,
            "model_name": self.params["model"],
            "model_version": "2025-01-01.0",
            "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.params["model"])),
        }

    def control(self, message: Mapping[str, Any], now: float) -> SpeakReply:
        """A JSON text frame from the client; ``now`` is the server clock in seconds."""
        match message.get("type"):
            case "Speak":
                text = message.get("text")
                if not isinstance(text, str):
                    self.violations.append("Speak without a string 'text'")
                    return SpeakReply([self._warning("Speak needs text", "INVALID_INPUT")])
                if len(self._text) + len(text) > self.max_chars:
                    self.violations.append(f"more than {self.max_chars} characters before a Flush")
                self._text += text
                return SpeakReply()
            case "Flush":
                return self._flush(now)
            case "Clear":
                self._text = ""
                reply = SpeakReply(clear=True)
                reply.messages.append({"type": "Cleared", "sequence_id": self._sequence})
                return reply
            case "Close":
                reply = self._flush(now) if self._text else SpeakReply()
                reply.close = True
                return reply
            case other:
                self.violations.append(f"unknown speak message type {other!r}")
                return SpeakReply([self._warning(f"Unknown message type {other!r}", "UNKNOWN")])

    def _flush(self, now: float) -> SpeakReply:
        reply = SpeakReply()
        while self._flush_times and now - self._flush_times[0] > 60.0:
            self._flush_times.popleft()
        self._flush_times.append(now)
        if len(self._flush_times) > self.flush_limit:
            reply.messages.append(
                self._warning("Too many Flush messages: 20 per 60 seconds allowed.", "FLUSH_LIMIT")
            )
        text, self._text = self._text, ""
        self.characters += len(text)
        audio = (
            synthesize(
                text,
                self.params["encoding"],
                self.params["sample_rate"],
                ms_per_char=self.ms_per_char,
            )
            if text.strip()
            else b""
        )
        reply.job = SpeakJob(self._sequence, audio)
        self._sequence += 1
        return reply

    @staticmethod
    def _warning(description: str, code: str) -> dict[str, Any]:
        return {"type": "Warning", "description": description, "code": code}
