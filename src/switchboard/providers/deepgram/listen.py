"""Sans-I/O Deepgram live transcription protocol (``/v1/listen``).

Wire facts: ``docs/wire/deepgram.md#live-transcription-messages`` (vendor page:
https://developers.deepgram.com/reference/speech-to-text/listen-streaming).

Theory of operation: :class:`ListenProtocol` turns commands into outbound frames (``audio`` →
the bytes to send as one binary frame; ``keep_alive``/``finalize``/``close_stream`` → JSON text)
and inbound JSON text into :mod:`~switchboard.providers.pipeline.components` STT events. It also
keeps the *unacknowledged* audio: everything sent after the end of the last final ``Results``
(``start + duration``, seconds since the socket's stream began). When a socket is lost, the I/O
layer calls :meth:`ListenProtocol.reconnected` and sends what it returns first on the new socket,
so no caller audio is lost; times reported by the new socket are shifted by the position where
the replay starts, keeping one timeline for the whole call. The buffer is capped
(``max_unacked_ms``): the oldest audio beyond it is dropped (and counted).

Developer docs: https://developers.deepgram.com/docs/audio-keep-alive,
https://developers.deepgram.com/docs/finalize, https://developers.deepgram.com/docs/close-stream,
https://developers.deepgram.com/docs/understand-endpointing-interim-results.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from switchboard.errors import RemoteProtocolError
from switchboard.providers.base import AudioFormat, AudioSpec
from switchboard.providers.pipeline.components import (
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
)

__all__ = ["ListenOptions", "ListenProtocol"]

logger = logging.getLogger(__name__)

ListenEncoding = Literal["linear16", "mulaw", "alaw"]
_FORMATS: dict[str, AudioFormat] = {
    "linear16": AudioFormat.PCM16,
    "mulaw": AudioFormat.ULAW,
    "alaw": AudioFormat.ALAW,
}


def _bool(value: bool) -> str:
    return "true" if value else "false"


@dataclass(frozen=True, slots=True)
class ListenOptions:
    """Query parameters of the live socket (defaults suit a phone call).

    ``endpointing`` is the silence in ms that ends an utterance (``None`` sends ``false``);
    ``utterance_end_ms`` needs ``interim_results``.
    """

    model: str = "nova-2"
    encoding: ListenEncoding = "mulaw"
    sample_rate: int = 8000
    language: str = "en-US"
    interim_results: bool = True
    punctuate: bool = True
    smart_format: bool = True
    endpointing: int | None = 300
    utterance_end_ms: int | None = 1000
    vad_events: bool = True

    @property
    def input_spec(self) -> AudioSpec:
        return AudioSpec(_FORMATS[self.encoding], self.sample_rate)

    def query(self) -> dict[str, str]:
        """The query string parameters, booleans lowercase as the SDK sends them."""
        query = {
            "model": self.model,
            "encoding": self.encoding,
            "sample_rate": str(self.sample_rate),
            "channels": "1",
            "language": self.language,
            "interim_results": _bool(self.interim_results),
            "punctuate": _bool(self.punctuate),
            "smart_format": _bool(self.smart_format),
            "endpointing": "false" if self.endpointing is None else str(self.endpointing),
            "vad_events": _bool(self.vad_events),
        }
        if self.utterance_end_ms is not None and self.interim_results:
            query["utterance_end_ms"] = str(self.utterance_end_ms)
        return query


class ListenProtocol:
    """The live transcription protocol state of one call (see the module docstring)."""

    def __init__(self, options: ListenOptions, *, max_unacked_ms: float = 30_000) -> None:
        self.options = options
        self.spec = options.input_spec
        self.max_unacked_ms = max_unacked_ms
        #: The last ``Metadata`` message (sent when a socket closes).
        self.metadata: dict[str, Any] | None = None
        #: ``Error`` messages received.
        self.errors: list[dict[str, Any]] = []
        self.dropped_bytes = 0
        self._offset_ms = 0.0  # call time where the current socket's stream time 0 is
        self._acked_ms = 0.0  # call time up to which audio is acknowledged by a final result
        self._unacked = bytearray()  # audio from _acked_ms on
        self._sent_ms = 0.0

    @property
    def sent_ms(self) -> float:
        """Caller audio given to :meth:`audio` so far, in ms."""
        return self._sent_ms

    @property
    def acknowledged_ms(self) -> float:
        return self._acked_ms

    @property
    def unacknowledged(self) -> bytes:
        return bytes(self._unacked)

    # -- commands ---------------------------------------------------------------------------------
    def audio(self, data: bytes) -> bytes:
        """Account caller audio; returns the binary frame to send."""
        self._unacked += data
        self._sent_ms += self.spec.duration_ms(len(data))
        limit = self.spec.bytes_for_ms(self.max_unacked_ms)
        if len(self._unacked) > limit:
            drop = len(self._unacked) - limit
            del self._unacked[:drop]
            self._acked_ms += self.spec.duration_ms(drop)
            self.dropped_bytes += drop
        return data

    @staticmethod
    def keep_alive() -> str:
        return json.dumps({"type": "KeepAlive"})

    @staticmethod
    def finalize() -> str:
        return json.dumps({"type": "Finalize"})

    @staticmethod
    def close_stream() -> str:
        return json.dumps({"type": "CloseStream"})

    def reconnected(self) -> bytes:
        """A new socket is open: returns the audio to replay on it first (unacknowledged)."""
        self._offset_ms = self._acked_ms
        return bytes(self._unacked)

    # -- events -----------------------------------------------------------------------------------
    def receive(self, text: str) -> list[SttEvent]:
        """Parse one server text frame.

        Raises:
            RemoteProtocolError: the frame is not a JSON object with a ``type``, or a known
                message lacks its required fields.
        """
        try:
            message = orjson.loads(text)
            kind = message["type"]
        except (ValueError, TypeError, KeyError, RecursionError):  # nested 10 000 deep
            raise RemoteProtocolError(
                f"Deepgram sent a malformed message: {text[:200]!r}"
            ) from None
        try:
            match kind:
                case "Results":
                    return self._results(message)
                case "SpeechStarted":
                    return [SttSpeechStarted(audio_ms=self._ms(message["timestamp"]))]
                case "UtteranceEnd":
                    return [SttUtteranceEnd(last_word_end_ms=self._ms(message["last_word_end"]))]
                case "Metadata":
                    self.metadata = message
                case "Error":
                    self.errors.append(message)
                    logger.warning(
                        "Deepgram listen error %s: %s",
                        message.get("code"),
                        message.get("description"),
                    )
                case _:
                    logger.debug("Deepgram listen: ignoring message type %r", kind)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise RemoteProtocolError(f"Deepgram {kind} message lacks {exc}") from None
        return []

    def _ms(self, seconds: float) -> int:
        return round(self._offset_ms + float(seconds) * 1000.0)

    def _results(self, message: dict[str, Any]) -> list[SttEvent]:
        alternative = message["channel"]["alternatives"][0]
        start = float(message["start"])
        end = start + float(message["duration"])
        is_final = bool(message.get("is_final"))
        if is_final:
            self._acknowledge(self._offset_ms + end * 1000.0)
        return [
            SttTranscript(
                text=str(alternative["transcript"]),
                is_final=is_final,
                speech_final=bool(message.get("speech_final")),
                confidence=alternative.get("confidence"),
                start_ms=self._ms(start),
                end_ms=self._ms(end),
            )
        ]

    def _acknowledge(self, upto_ms: float) -> None:
        if upto_ms <= self._acked_ms:
            return
        drop = min(len(self._unacked), self.spec.bytes_for_ms(upto_ms - self._acked_ms))
        del self._unacked[:drop]
        self._acked_ms += self.spec.duration_ms(drop)
