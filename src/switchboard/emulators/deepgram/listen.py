"""The emulated Deepgram live transcription stream (``/v1/listen``), as a pure per-socket core.

Written from ``docs/wire/deepgram.md#live-transcription-messages`` (vendor page:
https://developers.deepgram.com/reference/speech-to-text/listen-streaming) against plain dicts (it
does not use the client's codec).

Theory of operation: audio bytes arrive in the declared ``encoding``/``sample_rate``; they are
decoded to PCM16 and fed to an :class:`EnergyVAD` whose silence window is the ``endpointing``
value. Each utterance the VAD finds takes the next scripted turn's ``caller`` text as what the
caller said. While the caller speaks, interim ``Results`` (``is_final: false``) reveal the words
one by one (every ``interim_every_ms`` of audio); when the VAD hears the end, a final ``Results``
(``is_final: true``, ``speech_final: true`` unless ``endpointing=false``) carries the whole
transcript, and ``utterance_end_ms`` of further audio later an ``UtteranceEnd``. ``SpeechStarted``
is sent at the start when ``vad_events=true``. ``Finalize`` turns what was heard so far into a
final result marked ``from_finalize``; ``CloseStream`` finishes the utterance, sends ``Metadata``
and asks for a normal close. Times are seconds of audio since the stream started.

Whisper is not served here: "Live streaming is not available with Deepgram Whisper Cloud"
(``docs/wire/deepgram.md#live-transcription-connection``), so ``model=whisper…`` is refused at the
upgrade. The status the service answers is UNCONFIRMED (deepgram/deepgram-dotnet-sdk#304 saw
HTTP 405 for ``model=whisper-large``); the emulator answers 400 like its other parameter errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from switchboard.emulators.common import EnergyVAD, Script

__all__ = ["ListenCore", "ListenParams", "ListenReply", "parse_listen_params"]

ENCODINGS = {"linear16": 2, "mulaw": 1, "alaw": 1}
MODEL_ARCH = {"nova-3": "nova-3", "nova-2": "nova-2", "whisper": "whisper"}


class ListenParamError(ValueError):
    """The query string would make Deepgram refuse the upgrade (HTTP 400)."""


def _flag(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise ListenParamError(f"{name} must be true or false, got {value!r}")
    return value == "true"


@dataclass(frozen=True, slots=True)
class ListenParams:
    """The query parameters the emulator honours."""

    model: str = "nova-2"
    encoding: str = "linear16"
    sample_rate: int = 16000
    channels: int = 1
    interim_results: bool = False
    punctuate: bool = False
    smart_format: bool = False
    endpointing: int | None = 10  # None: endpointing=false
    utterance_end_ms: int | None = None
    vad_events: bool = False
    language: str = "en"


def parse_listen_params(query: Mapping[str, str]) -> tuple[ListenParams, list[str]]:
    """Validate the query string; returns the params and client mistakes worth recording.

    Raises:
        ListenParamError: Deepgram would answer the upgrade with HTTP 400.
    """
    notes: list[str] = []
    encoding = query.get("encoding")
    if encoding is not None and encoding not in ENCODINGS:
        raise ListenParamError(f"encoding {encoding!r} is not emulated (linear16, mulaw, alaw)")
    if encoding is not None and "sample_rate" not in query:
        raise ListenParamError("sample_rate is required when encoding is set")
    try:
        rate = int(query.get("sample_rate", "16000"))
        channels = int(query.get("channels", "1"))
    except ValueError as exc:
        raise ListenParamError(str(exc)) from None
    if channels != 1:
        raise ListenParamError("the emulator handles mono audio only")
    raw_endpointing = query.get("endpointing", "10")
    endpointing: int | None
    if raw_endpointing == "false":
        endpointing = None
    elif raw_endpointing.isdigit():
        endpointing = int(raw_endpointing)
    else:
        raise ListenParamError(f"endpointing must be an integer or false: {raw_endpointing!r}")
    interim = _flag(query, "interim_results")
    utterance_end = query.get("utterance_end_ms")
    if utterance_end is not None and not utterance_end.isdigit():
        raise ListenParamError("utterance_end_ms must be an integer")
    if utterance_end is not None and not interim:
        notes.append("utterance_end_ms needs interim_results=true (ignored)")
    if "model" not in query:
        notes.append("no model given (the service picks its default)")
    if query.get("model", "").split("-")[0] == "whisper":
        raise ListenParamError(
            f"model {query['model']!r} is not available for live streaming "
            "(Deepgram Whisper Cloud transcribes pre-recorded audio only)"
        )
    params = ListenParams(
        model=query.get("model", "nova-2"),
        encoding=encoding or "linear16",
        sample_rate=rate,
        channels=channels,
        interim_results=interim,
        punctuate=_flag(query, "punctuate"),
        smart_format=_flag(query, "smart_format"),
        endpointing=endpointing,
        utterance_end_ms=int(utterance_end) if utterance_end and interim else None,
        vad_events=_flag(query, "vad_events"),
        language=query.get("language", "en"),
    )
    return params, notes


@dataclass(slots=True)
class ListenReply:
    """What the server should send: JSON messages, then maybe a close (code, reason)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    close: tuple[int, str] | None = None


class ListenCore:
    """One emulated ``/v1/listen`` socket (see the module docstring)."""

    def __init__(
        self,
        params: ListenParams,
        script: Script,
        *,
        interim_every_ms: int = 300,
        vad_threshold: float = 0.02,
    ) -> None:
        self.params = params
        self.script = script
        self.interim_every_ms = interim_every_ms
        self.request_id = str(uuid.uuid4())
        self.model_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, params.model))
        self.violations: list[str] = []
        self.audio_bytes = 0
        silence = max(20, params.endpointing if params.endpointing is not None else 300)
        self._vad = EnergyVAD(params.sample_rate, threshold=vad_threshold, silence_ms=silence)
        self._bps = ENCODINGS[params.encoding]
        self._partial = b""
        self._sha = hashlib.sha256()
        self._words: list[str] = []  # the current utterance's scripted words
        self._utt_start_ms = 0
        self._finalized = False
        self._last_interim_ms = 0
        self._segment_start_ms = 0  # end of the last final result
        self._utterance_end_at: int | None = None
        self._last_word_end_ms = 0

    @property
    def position_ms(self) -> int:
        return self._vad.position_ms

    # -- inputs -----------------------------------------------------------------------------------
    def audio(self, data: bytes) -> ListenReply:
        """Caller audio (one binary frame)."""
        reply = ListenReply()
        self.audio_bytes += len(data)
        self._sha.update(data)
        data = self._partial + data
        usable = len(data) - len(data) % self._bps
        data, self._partial = data[:usable], data[usable:]
        match self.params.encoding:
            case "mulaw":
                pcm = ulaw_to_pcm16(data)
            case "alaw":
                pcm = alaw_to_pcm16(data)
            case _:
                pcm = data
        window = self.params.sample_rate * 20 // 1000 * 2
        for i in range(0, len(pcm), window):
            for event in self._vad.feed(pcm[i : i + window]):
                if event.kind == "start":
                    reply.messages += self._speech_start(event.audio_ms)
                else:
                    reply.messages += self._speech_stop(event.audio_ms)
            reply.messages += self._tick()
        return reply

    def control(self, message: Mapping[str, Any]) -> ListenReply:
        """A JSON text frame from the client."""
        match message.get("type"):
            case "KeepAlive":
                return ListenReply()
            case "Finalize":
                return ListenReply(self._finalize())
            case "CloseStream":
                messages = self._speech_stop(self.position_ms) if self._vad.speaking else []
                return ListenReply([*messages, self.metadata()], (1000, ""))
            case other:
                self.violations.append(f"unknown listen control message type {other!r}")
                return ListenReply(
                    [
                        {
                            "type": "Error",
                            "variant": "error",
                            "description": f"Unknown message type {other!r}.",
                            "code": "INVALID_MESSAGE",
                            "message": "Unknown message type.",
                        }
                    ]
                )

    # -- outputs ----------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The summary sent before the socket closes."""
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": self._sha.hexdigest(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "duration": round(self.position_ms / 1000, 3),
            "channels": 1,
            "models": [self.model_uuid],
            "model_info": {self.model_uuid: self._model_info()},
        }

    def _model_info(self) -> dict[str, str]:
        arch = MODEL_ARCH.get(self.params.model.split("-general")[0], self.params.model)
        return {"name": f"general-{arch}", "version": "2024-01-01.0", "arch": arch}

    def _speech_start(self, at_ms: int) -> list[dict[str, Any]]:
        turn = self.script.next_turn()
        self._words = (turn.caller or "").split()
        self._utt_start_ms = at_ms
        self._last_interim_ms = at_ms
        self._finalized = False
        self._utterance_end_at = None
        if not self.params.vad_events:
            return []
        return [{"type": "SpeechStarted", "channel": [0], "timestamp": round(at_ms / 1000, 3)}]

    def _speech_stop(self, at_ms: int) -> list[dict[str, Any]]:
        if self._finalized:
            return []
        self._finalized = True
        out = [self._results(self._words, at_ms, is_final=True)]
        if self._words and self.params.utterance_end_ms is not None:
            self._utterance_end_at = at_ms + self.params.utterance_end_ms
        return out

    def _finalize(self) -> list[dict[str, Any]]:
        words: list[str] = []
        if self._vad.speaking and not self._finalized:
            self._finalized = True
            words = self._words
        return [self._results(words, self.position_ms, is_final=True, from_finalize=True)]

    def _tick(self) -> list[dict[str, Any]]:
        pos = self.position_ms
        out: list[dict[str, Any]] = []
        if self._utterance_end_at is not None and pos >= self._utterance_end_at:
            self._utterance_end_at = None
            out.append(
                {
                    "type": "UtteranceEnd",
                    "channel": [0, 1],
                    "last_word_end": round(self._last_word_end_ms / 1000, 3),
                }
            )
        speaking = self._vad.speaking and not self._finalized and bool(self._words)
        due = pos - self._last_interim_ms >= self.interim_every_ms
        if speaking and self.params.interim_results and due:
            self._last_interim_ms = pos
            n = min(len(self._words), 1 + (pos - self._utt_start_ms) // self.interim_every_ms)
            out.append(self._results(self._words[:n], pos, is_final=False))
        return out

    def _results(
        self, words: list[str], end_ms: int, *, is_final: bool, from_finalize: bool = False
    ) -> dict[str, Any]:
        start_ms = self._segment_start_ms
        if is_final:
            self._segment_start_ms = end_ms
        word_start = max(start_ms, self._utt_start_ms)
        span = max(1, end_ms - word_start)
        items: list[dict[str, Any]] = []
        for i, word in enumerate(words):
            w_start = word_start + span * i // len(words)
            w_end = word_start + span * (i + 1) // len(words)
            items.append(
                {
                    "word": word.lower().strip(".,!?;:"),
                    "start": round(w_start / 1000, 3),
                    "end": round(w_end / 1000, 3),
                    "confidence": 0.98,
                    "punctuated_word": word,
                }
            )
        if is_final and items:
            self._last_word_end_ms = int(items[-1]["end"] * 1000)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round((end_ms - start_ms) / 1000, 3),
            "start": round(start_ms / 1000, 3),
            "is_final": is_final,
            "speech_final": is_final and not from_finalize and self.params.endpointing is not None,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": self._transcript(words),
                        "confidence": 0.98 if words else 0.0,
                        "words": items,
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": self._model_info(),
                "model_uuid": self.model_uuid,
            },
        }

    def _transcript(self, words: list[str]) -> str:
        text = " ".join(words)
        if not (self.params.punctuate or self.params.smart_format):
            return " ".join(w.lower().strip(".,!?;:") for w in words)
        if text and text[-1] not in ".!?":
            text += "."
        return text[:1].upper() + text[1:]
