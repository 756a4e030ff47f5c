"""Sans-I/O Gemini Live (``BidiGenerateContent``) client protocol.

Reference: https://ai.google.dev/api/live (client and server messages;
``docs/wire/gemini.md#client-messages``, ``docs/wire/gemini.md#server-messages``).

Theory of operation::

    setup() ──▶ AWAITING_SETUP ──receive(setupComplete)──▶ (setup_complete) ──drain()──▶ READY
       ▲                 │ commands are buffered, in order                          │
       └── suspend() ◀───┴──────────── (goAway / drop / renewal: a new setup) ◀─────┘

* Commands (``send_audio``, ``send_text``, ``send_image``, ``function_result``) return the
  messages to write *now*: in READY, one message; otherwise ``[]`` and the message waits in an
  ordered buffer that :meth:`drain` hands over once the (new) connection's ``setupComplete`` came.
  Caller audio in the buffer is bounded (``max_buffered_audio_ms``; the oldest goes first, with a
  count in :attr:`dropped_audio_bytes`); tool results are never dropped except when cancelled.
* ``receive`` parses one server frame (text or binary JSON) into :mod:`.events`. Model turns are
  numbered (Gemini has no response ids). A turn opens at its first output and closes at
  ``turnComplete`` — or, after ``interrupted``, at ``turnComplete`` or at the next turn's first
  output, whichever comes first — so every turn yields exactly one :class:`TurnComplete`.
* ``interrupt(played_ms)``: Gemini has no truncate. Nothing is sent (with automatic activity
  detection the server already cut the turn on the caller's speech, and ``activityStart`` is only
  allowed with manual detection). The rest of the turn's audio is dropped locally, and the part of
  the transcript the caller heard (by the share of audio played) is reported as ``heard_text``.
* Caller transcription pieces are reported as they come (``final`` False); the whole utterance
  is reported once more as final when the server marks it ``finished`` or, failing that, when
  the model's answer begins.
* ``toolCallCancellation`` forgets those calls: results for them are dropped, also from the buffer.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import orjson

from switchboard.errors import LocalProtocolError, RemoteProtocolError
from switchboard.providers.gemini_live.events import (
    AudioDelta,
    FunctionCallRequested,
    GoAway,
    InputTranscript,
    Interrupted,
    LiveEvent,
    ModelText,
    OutputTranscript,
    ResumptionUpdate,
    SetupComplete,
    ToolCallCancelled,
    TurnComplete,
    VoiceActivity,
)
from switchboard.providers.gemini_live.setup import LiveSetup
from switchboard.providers.gemini_live.usage import usage_from_metadata
from switchboard.providers.types import HistoryTurn

__all__ = ["GeminiLiveProtocol", "ProtocolState"]

logger = logging.getLogger(__name__)

INPUT_RATE = 16000
OUTPUT_RATE = 24000
_RATE = re.compile(r"rate=(\d+)")


_AUDIO_PREFIX = (
    '{"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=' + str(INPUT_RATE) + '", "data": "'
)


class ProtocolState(StrEnum):
    AWAITING_SETUP = "awaiting_setup"
    READY = "ready"


class GeminiLiveProtocol:
    """Gemini Live client state: setup, ordered input buffering, turns, tool calls, resumption."""

    def __init__(self, setup: LiveSetup, *, max_buffered_audio_ms: int = 60_000) -> None:
        self.setup_config = setup
        self.state = ProtocolState.AWAITING_SETUP
        self.setup_complete = False
        #: Latest resumable handle from ``sessionResumptionUpdate`` (sent in the next setup).
        self.resumption_handle: str | None = None
        self.dropped_audio_bytes = 0
        self._max_audio = INPUT_RATE * 2 * max_buffered_audio_ms // 1000
        self._buffer: list[tuple[str, str, str, int]] = []  # (kind, call_id, message, pcm)
        self._buffered_audio = 0
        self._pending_calls: dict[str, str] = {}  # call_id -> name
        self._cancelled: set[str] = set()
        self._turns = 0
        self._turn_open = False
        self._turn_interrupted = False
        self._suppress_audio = False
        self._turn_text: list[str] = []
        self._turn_audio_bytes = 0
        self._heard_text: str | None = None
        self._usage: Mapping[str, Any] = {}
        self._input_text: list[str] = []

    # -- connection lifecycle --------------------------------------------------------------------
    def setup(self) -> str:
        """The ``setup`` message for a (new) connection; input is buffered until :meth:`drain`."""
        self.suspend()
        self.setup_complete = False
        return json.dumps(self.setup_config.message(self.resumption_handle))

    def suspend(self) -> None:
        """Buffer commands from now on (the connection is going away or gone)."""
        self.state = ProtocolState.AWAITING_SETUP

    def drain(self) -> list[str]:
        """Enter READY after ``setupComplete``; return the buffered messages, in order.

        Raises:
            LocalProtocolError: ``setupComplete`` has not been received.
        """
        if not self.setup_complete:
            raise LocalProtocolError("drain() before setupComplete")
        self.state = ProtocolState.READY
        out = [entry[2] for entry in self._buffer]
        self._buffer.clear()
        self._buffered_audio = 0
        return out

    def requeue(self, messages: list[str]) -> None:
        """Put messages that could not be written back at the front of the buffer."""
        self.suspend()
        self._buffer[:0] = [("requeued", "", m, 0) for m in messages]

    def _out(
        self, kind: str, message: dict[str, Any], call_id: str = "", pcm_bytes: int = 0
    ) -> list[str]:
        return self._out_text(kind, json.dumps(message), call_id, pcm_bytes)

    def _out_text(self, kind: str, text: str, call_id: str = "", pcm_bytes: int = 0) -> list[str]:
        if self.state is ProtocolState.READY:
            return [text]
        self._buffer.append((kind, call_id, text, pcm_bytes))
        self._buffered_audio += pcm_bytes
        while self._buffered_audio > self._max_audio:
            idx = next(i for i, entry in enumerate(self._buffer) if entry[0] == "audio")
            dropped = self._buffer.pop(idx)[3]
            self._buffered_audio -= dropped
            self.dropped_audio_bytes += dropped
        return []

    # -- commands --------------------------------------------------------------------------------
    def send_audio(self, pcm: bytes) -> list[str]:
        """Caller audio, PCM16 LE 16 kHz mono (``realtimeInput.audio``)."""
        # the hot path (every 20 ms per call): a template, not json.dumps; base64 needs no
        # JSON escaping. The same JSON as json.dumps of the message.
        data = base64.b64encode(pcm).decode("ascii")
        return self._out_text("audio", _AUDIO_PREFIX + data + '"}}}', pcm_bytes=len(pcm))

    def send_text(self, text: str) -> list[str]:
        """A complete user text turn (``clientContent`` with ``turnComplete``)."""
        turn = {"role": "user", "parts": [{"text": text}]}
        return self._out("text", {"clientContent": {"turns": [turn], "turnComplete": True}})

    def send_note(self, text: str, *, respond: bool = False) -> list[str]:
        """A text turn the caller does not hear (``clientContent``); the model answers it only
        when ``respond`` (``turnComplete``)."""
        turn = {"role": "user", "parts": [{"text": text}]}
        return self._out("text", {"clientContent": {"turns": [turn], "turnComplete": respond}})

    def history(self, turns: Sequence[HistoryTurn]) -> list[str]:
        """The conversation carried over from another provider, as ``clientContent`` turns
        (``user``/``model``) with ``turnComplete: false``: context, not a turn to answer."""
        if not turns:
            return []
        content = [
            {"role": "model" if t.role == "assistant" else "user", "parts": [{"text": t.text}]}
            for t in turns
            if t.text
        ]
        return self._out("text", {"clientContent": {"turns": content, "turnComplete": False}})

    def send_image(self, data: bytes, mime_type: str) -> list[str]:
        """An image frame: ``realtimeInput.video`` (SDK ``send_realtime_input(video=...)``)."""
        blob = {"mimeType": mime_type, "data": base64.b64encode(data).decode()}
        return self._out("image", {"realtimeInput": {"video": blob}})

    def function_result(self, call_id: str, result: Any) -> list[str]:
        """``toolResponse`` for a call; ``[]`` (dropped) when the call was cancelled.

        Raises:
            LocalProtocolError: the id was never issued by the server.
        """
        if call_id in self._cancelled:
            logger.info("dropping result for cancelled Gemini call %s", call_id)
            return []
        name = self._pending_calls.pop(call_id, None)
        if name is None:
            raise LocalProtocolError(f"no pending Gemini function call {call_id!r}")
        response = result if isinstance(result, dict) else {"result": result}
        fr = {"id": call_id, "name": name, "response": response}
        return self._out("tool", {"toolResponse": {"functionResponses": [fr]}}, call_id)

    def interrupt(self, played_ms: int | None) -> list[str]:
        """Stop the current turn locally (see the theory of operation); sends nothing."""
        if self._turn_open:
            self._heard_text = self._heard(played_ms)
            self._suppress_audio = not self._turn_interrupted
        return []

    def _heard(self, played_ms: int | None) -> str:
        text = "".join(self._turn_text)
        if played_ms is None or self._turn_audio_bytes == 0:
            return text
        total_ms = self._turn_audio_bytes / 2 / OUTPUT_RATE * 1000
        share = min(1.0, max(0.0, played_ms / total_ms))
        return text[: round(len(text) * share)]

    # -- server messages -------------------------------------------------------------------------
    @property
    def turn_open(self) -> bool:
        """A model turn is under way (output came, ``turnComplete`` not yet)."""
        return self._turn_open

    @property
    def response_id(self) -> str:
        return f"gemini-turn-{self._turns}"

    def receive(self, data: str | bytes) -> list[LiveEvent]:
        """Parse one server frame (JSON in a text or binary frame).

        Raises:
            RemoteProtocolError: not JSON, not a JSON object, or a field of the wrong type.
        """
        try:
            msg = orjson.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested 10 000 deep
            raise RemoteProtocolError(f"Gemini sent a frame that is not JSON: {exc}") from exc
        if not isinstance(msg, dict):
            raise RemoteProtocolError("Gemini sent JSON that is not an object")
        if isinstance(msg.get("usageMetadata"), dict):
            self._usage = msg["usageMetadata"]
        try:
            return self._dispatch(msg)
        # a field of the wrong JSON type deeper down ("functionCalls": 3, "parts": [true])
        except (AttributeError, TypeError, ValueError, KeyError, OverflowError) as exc:
            raise RemoteProtocolError(f"malformed Gemini message: {exc!r}") from exc

    def _dispatch(self, msg: dict[str, Any]) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        for key, value in msg.items():
            if not isinstance(value, dict) and key != "usageMetadata":
                raise RemoteProtocolError(f"Gemini message field {key!r} is not an object")
            match key:
                case "setupComplete":
                    self.setup_complete = True
                    events.append(SetupComplete(value.get("sessionId")))
                case "serverContent":
                    events += self._server_content(value)
                case "toolCall":
                    events += self._tool_call(value)
                case "toolCallCancellation":
                    ids = tuple(str(i) for i in value.get("ids", []))
                    self._cancel(ids)
                    events.append(ToolCallCancelled(ids))
                case "goAway":
                    events.append(GoAway(_duration_s(value.get("timeLeft"))))
                case "sessionResumptionUpdate":
                    handle = value.get("newHandle")
                    resumable = bool(value.get("resumable", False))
                    if handle and resumable:
                        self.resumption_handle = str(handle)
                    events.append(ResumptionUpdate(handle, resumable))
                case "voiceActivity":
                    kind = str(value.get("voiceActivityType", ""))
                    events.append(VoiceActivity(started=kind.endswith("START")))
                case "usageMetadata":
                    pass
                case _:
                    logger.debug("ignoring Gemini message %s", key)
        return events

    def _input_transcript(self, text: str, finished: bool) -> list[LiveEvent]:
        """Caller transcription: pieces as they come, then the whole utterance once final."""
        self._input_text.append(text)
        events: list[LiveEvent] = [InputTranscript(text, False)] if text and not finished else []
        if finished:
            events.append(InputTranscript("".join(self._input_text), True))
            self._input_text = []
        return events

    def _open_turn(self, events: list[LiveEvent]) -> None:
        if self._turn_open and self._turn_interrupted:
            events.append(self._close_turn())
        if self._input_text:  # the model answers: the caller's utterance is over
            events += self._input_transcript("", finished=True)
        if not self._turn_open:
            self._turns += 1
            self._turn_open = True

    def _close_turn(self) -> TurnComplete:
        status = "cancelled" if (self._turn_interrupted or self._suppress_audio) else "completed"
        reason = None
        if self._turn_interrupted:
            reason = "interrupted"
        elif self._suppress_audio:
            reason = "client_interrupt"
        done = TurnComplete(
            response_id=self.response_id,
            text="".join(self._turn_text),
            usage=usage_from_metadata(self._usage),
            status=status,
            reason=reason,
            heard_text=self._heard_text,
        )
        self._turn_open = self._turn_interrupted = self._suppress_audio = False
        self._turn_text, self._turn_audio_bytes, self._heard_text = [], 0, None
        self._usage = {}
        return done

    def _server_content(self, sc: Mapping[str, Any]) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        inp = sc.get("inputTranscription")
        if isinstance(inp, dict) and (inp.get("text") or inp.get("finished")):
            events += self._input_transcript(str(inp.get("text") or ""), bool(inp.get("finished")))
        parts = (sc.get("modelTurn") or {}).get("parts") or []
        out = sc.get("outputTranscription")
        if parts or (isinstance(out, dict) and out.get("text")):
            self._open_turn(events)
        for part in parts:
            events += self._part(part)
        if isinstance(out, dict) and out.get("text"):
            self._turn_text.append(str(out["text"]))
            events.append(OutputTranscript(str(out["text"]), self.response_id))
        if sc.get("interrupted") and self._turn_open and not self._turn_interrupted:
            self._turn_interrupted = True
            events.append(Interrupted(self.response_id))
        if sc.get("turnComplete"):
            if not self._turn_open:  # a turn with no output (e.g. only a tool call)
                self._open_turn(events)
            events.append(self._close_turn())
        return events

    def _part(self, part: Mapping[str, Any]) -> list[LiveEvent]:
        blob = part.get("inlineData")
        if isinstance(blob, dict) and str(blob.get("mimeType", "")).startswith("audio/"):
            try:
                pcm = _b64decode(str(blob.get("data", "")))
            except ValueError as exc:
                raise RemoteProtocolError("Gemini audio is not base64") from exc
            if self._suppress_audio or self._turn_interrupted:
                return []
            match = _RATE.search(str(blob["mimeType"]))
            self._turn_audio_bytes += len(pcm)
            return [
                AudioDelta(pcm, int(match.group(1)) if match else OUTPUT_RATE, self.response_id)
            ]
        if part.get("text") and not part.get("thought"):
            self._turn_text.append(str(part["text"]))
            return [ModelText(str(part["text"]), self.response_id)]
        return []

    def _tool_call(self, tc: Mapping[str, Any]) -> list[LiveEvent]:
        events: list[LiveEvent] = []
        for call in tc.get("functionCalls") or []:
            call_id = str(call.get("id") or "")
            if not call_id:
                raise RemoteProtocolError("Gemini functionCall without id")
            name = str(call.get("name", ""))
            self._pending_calls[call_id] = name
            events.append(FunctionCallRequested(call_id, name, dict(call.get("args") or {})))
        return events

    def _cancel(self, ids: tuple[str, ...]) -> None:
        for call_id in ids:
            self._cancelled.add(call_id)
            self._pending_calls.pop(call_id, None)
        self._buffer = [b for b in self._buffer if not (b[0] == "tool" and b[1] in ids)]


def _duration_s(value: Any) -> float:
    """Protobuf JSON ``Duration`` (``"10s"``, ``"1.5s"``) → seconds; 0 when unreadable."""
    try:
        return float(str(value).removesuffix("s"))
    except ValueError:
        return 0.0


def _b64decode(text: str) -> bytes:
    """Proto3 JSON ``bytes``: standard or URL-safe base64, padded or not (google-genai sends
    URL-safe)."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
