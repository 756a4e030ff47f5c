"""Sans-I/O Deepgram Aura text-to-speech: websocket messages, REST request, WAV unwrapping.

Wire facts: ``docs/wire/deepgram.md#speak-websocket`` and ``docs/wire/deepgram.md#speak-rest``
(vendor pages: https://developers.deepgram.com/reference/text-to-speech/speak-streaming,
https://developers.deepgram.com/docs/tts-ws-flush, https://developers.deepgram.com/docs/tts-ws-clear,
https://developers.deepgram.com/docs/tts-media-output-settings).

Websocket: client text frames ``Speak``/``Flush``/``Clear``/``Close``; server binary frames are
raw audio, text frames ``Metadata``/``Flushed``/``Cleared``/``Warning`` (:meth:`SpeakProtocol.
receive`). REST: ``POST /v1/speak`` with ``{"text"}``; the REST default container is WAV, so the
client asks for ``container=none`` and still unwraps a WAV body if one comes back
(:class:`WavUnwrapper`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Literal

from switchboard.errors import RemoteProtocolError
from switchboard.providers.base import AudioFormat, AudioSpec

__all__ = [
    "SpeakCleared",
    "SpeakEvent",
    "SpeakFlushed",
    "SpeakMetadata",
    "SpeakOptions",
    "SpeakProtocol",
    "SpeakWarning",
    "WavUnwrapper",
]

SpeakEncoding = Literal["linear16", "mulaw", "alaw"]
_FORMATS: dict[str, AudioFormat] = {
    "linear16": AudioFormat.PCM16,
    "mulaw": AudioFormat.ULAW,
    "alaw": AudioFormat.ALAW,
}
WS_SAMPLE_RATES = (8000, 16000, 24000, 32000, 48000)


@dataclass(frozen=True, slots=True)
class SpeakOptions:
    """Voice and output format (μ-law 8 kHz for phones, linear16 otherwise)."""

    model: str = "aura-asteria-en"
    encoding: SpeakEncoding = "mulaw"
    sample_rate: int = 8000

    def __post_init__(self) -> None:
        if self.sample_rate not in WS_SAMPLE_RATES:
            raise ValueError(f"Deepgram TTS sample rates are {WS_SAMPLE_RATES}")

    @property
    def output_spec(self) -> AudioSpec:
        return AudioSpec(_FORMATS[self.encoding], self.sample_rate)

    def ws_query(self) -> dict[str, str]:
        return {
            "model": self.model,
            "encoding": self.encoding,
            "sample_rate": str(self.sample_rate),
        }

    def rest_query(self) -> dict[str, str]:
        return {**self.ws_query(), "container": "none"}


@dataclass(frozen=True, slots=True)
class SpeakMetadata:
    request_id: str
    model_name: str


@dataclass(frozen=True, slots=True)
class SpeakFlushed:
    sequence_id: int


@dataclass(frozen=True, slots=True)
class SpeakCleared:
    sequence_id: int


@dataclass(frozen=True, slots=True)
class SpeakWarning:
    code: str
    description: str


SpeakEvent = SpeakMetadata | SpeakFlushed | SpeakCleared | SpeakWarning


class SpeakProtocol:
    """Speak websocket messages (stateless apart from counting flushes)."""

    def __init__(self) -> None:
        self.flushes = 0

    @staticmethod
    def speak(text: str) -> str:
        return json.dumps({"type": "Speak", "text": text})

    def flush(self) -> str:
        self.flushes += 1
        return json.dumps({"type": "Flush"})

    @staticmethod
    def clear() -> str:
        return json.dumps({"type": "Clear"})

    @staticmethod
    def close() -> str:
        return json.dumps({"type": "Close"})

    @staticmethod
    def receive(text: str) -> SpeakEvent | None:
        """Parse one server text frame (``None`` for unknown types).

        Raises:
            RemoteProtocolError: not JSON, or a known message without its fields.
        """
        try:
            message: dict[str, Any] = json.loads(text)
            match message["type"]:
                case "Metadata":
                    return SpeakMetadata(
                        str(message.get("request_id", "")), str(message.get("model_name", ""))
                    )
                case "Flushed":
                    return SpeakFlushed(int(message["sequence_id"]))
                case "Cleared":
                    return SpeakCleared(int(message["sequence_id"]))
                case "Warning":
                    return SpeakWarning(str(message.get("code", "")), str(message["description"]))
                case _:
                    return None
        except (ValueError, TypeError, KeyError, RecursionError) as exc:  # nested 10 000 deep
            raise RemoteProtocolError(f"Deepgram speak sent a malformed message: {exc}") from None


class WavUnwrapper:
    """Strips a RIFF/WAVE header from a streamed body; passes raw audio through untouched.

    Feed body pieces in order; audio comes out once the ``data`` chunk starts. Data that does not
    start with ``RIFF`` is returned as is.
    """

    def __init__(self) -> None:
        self._head = b""
        self._state: Literal["sniff", "header", "data"] = "sniff"
        self.was_wav = False

    def feed(self, piece: bytes) -> bytes:
        if self._state == "data":
            return piece
        self._head += piece
        if self._state == "sniff":
            if len(self._head) < 4:
                return b""
            if self._head[:4] != b"RIFF":
                self._state = "data"
                out, self._head = self._head, b""
                return out
            self.was_wav = True
            self._state = "header"
        return self._parse_header()

    def _parse_header(self) -> bytes:
        pos = 12  # "RIFF" size "WAVE"
        while len(self._head) >= pos + 8:
            chunk_id = self._head[pos : pos + 4]
            (size,) = struct.unpack("<I", self._head[pos + 4 : pos + 8])
            if chunk_id == b"data":
                self._state = "data"
                out, self._head = self._head[pos + 8 :], b""
                return out
            pos += 8 + size + (size & 1)
        return b""
