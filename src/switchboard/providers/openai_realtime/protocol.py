"""Sans-I/O OpenAI Realtime (GA) protocol: commands in, JSON texts out; server texts in, events out.

Implements the GA WebSocket dialect (no ``OpenAI-Beta`` header; vendor doc
https://platform.openai.com/docs/api-reference/realtime-server-events; our wire note
``docs/wire/openai-realtime.md#server-events``). No sockets, clock or tasks:
:class:`RealtimeProtocol` holds the session state and the thin asyncio layer in ``session.py``
moves the bytes.

Theory of operation::

    unconfigured ──start()/restore()──▶ session.update sent ──session.updated──▶ configured
        ▲   (audio appends and response requests are held while unconfigured, then flushed)
        └──────────── restore() after a reconnect (history replayed as conversation items)

    response:  idle ──response.create sent──▶ requested ──response.created──▶ active
                 ▲                                                         │
                 └─────────────── response.done (queued request sent) ◀────┘

Only one ``response.create`` is ever outstanding: a request made while a response is requested
or active is queued and sent after ``response.done``, so the server never answers
``conversation_already_has_active_response``. A response is requested after function results
only once every call of the response that asked for them has its output.

Commands (``start``, ``send_audio``, ``function_result``, ``interrupt``, ``restore``) return the
texts to send. :meth:`RealtimeProtocol.receive` returns :class:`ProviderEvent` objects; texts it
wants sent in reply (flushed audio, queued ``response.create``, error results for bad tool
arguments) are collected by :meth:`RealtimeProtocol.data_to_send`.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections import deque
from typing import Any

import orjson

from switchboard.errors import RemoteProtocolError
from switchboard.media import AudioChunk, AudioSpec, Usage
from switchboard.providers.backchannels import BACKCHANNELS
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    ErrorReport,
    FunctionCall,
    ProviderEvent,
    ResponseDone,
    ResponseInterrupted,
    SpeechStarted,
    SpeechStopped,
    TextOutput,
)
from switchboard.providers.openai_realtime import messages
from switchboard.providers.openai_realtime.gate import ResponseGate
from switchboard.providers.types import SessionConfig

__all__ = ["BENIGN_ERROR_CODES", "RealtimeProtocol"]

logger = logging.getLogger(__name__)

#: Server error codes that need no action (real code strings are UNCONFIRMED:
#: ``docs/wire/openai-realtime.md#errors``).
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active"})


def _dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'


class RealtimeProtocol:
    """The client side of one Realtime conversation (survives reconnects via :meth:`restore`).

    Args:
        config: the session configuration.
        model: the model id sent in ``session.update``.
        max_buffered_bytes: audio held while unconfigured (oldest dropped beyond it).
    """

    def __init__(
        self, config: SessionConfig, *, model: str, max_buffered_bytes: int = 480_000
    ) -> None:
        self.config = config
        self.model = model
        self.spec: AudioSpec = messages.audio_spec_for(config)
        self.configured = False
        self._ids = itertools.count(1)
        self._outbox: list[str] = []
        self._held_audio: deque[bytes] = deque()
        self._held_bytes = 0
        self._max_held = max_buffered_bytes
        self._greeted = config.greeting is None
        # responses
        self._requested_id: str | None = None  # event_id of our outstanding response.create
        self.active_response_id: str | None = None
        self._queued: dict[str, Any] | None = None  # a response.create waiting for response.done
        self._pending_calls: set[str] = set()  # calls of the last response still without output
        self._seen_calls: set[str] = set()
        # assistant audio
        self._audio_item: str | None = None
        self._audio_bytes: dict[str, int] = {}
        self._response_audio: dict[str, int] = {}
        # conversation history for replay: item key -> item (insertion ordered)
        self._history: dict[str, dict[str, Any]] = {}
        self._heard: dict[str, float] = {}  # truncated item -> fraction of its audio heard
        # a conversation carried over from another provider: replayed as items once configured
        for index, turn in enumerate(config.history):
            role = "assistant" if turn.role == "assistant" else "user"
            self._history[f"prior_{index}"] = messages.history_item(role, turn.text)
        self._seeded = bool(config.history)
        #: With turn-taking the client, not the server VAD, creates responses (see gate.py).
        self.gate: ResponseGate | None = None
        tt = config.extra.get("turn_taking")
        if tt is not None and config.extra.get("turn_detection", "server_vad") is not None:
            words = BACKCHANNELS.get(config.language.split("-")[0].lower(), BACKCHANNELS["en"])
            extra = frozenset(str(p).lower() for p in tt.get("backchannels", ()))
            self.gate = ResponseGate(words | extra if extra else words)  # shared when no extra

    # -- commands ----------------------------------------------------------------------------
    def start(self) -> list[str]:
        """The ``session.update`` that configures a new connection; on the first connection
        of a session that carries over a conversation, its items follow."""
        self.configured = False
        out = [_dumps(messages.session_update(self.config, model=self.model))]
        if self._seeded:
            self._seeded = False
            out += [self._item_create(item) for item in self.history()]
        return out

    @staticmethod
    def _item_create(item: dict[str, Any]) -> str:
        return _dumps({"type": "conversation.item.create", "item": item})

    def connection_lost(self) -> None:
        """The socket is gone: hold audio from now on and forget the server's response state.

        A response that was requested or active is lost with the connection; a queued request
        stays queued and is sent once the next session is configured.
        """
        self.configured = False
        self._requested_id = None
        self.active_response_id = None
        self._audio_item = None
        self._audio_bytes.clear()

    def restore(self) -> list[str]:
        """After a reconnect: reconfigure and replay the conversation so context survives."""
        self.connection_lost()
        self._seeded = False
        out = self.start()
        out += [self._item_create(item) for item in self.history()]
        return out

    def send_audio(self, data: bytes) -> list[str]:
        """``input_audio_buffer.append`` for ``data`` (in :attr:`spec`); held until configured."""
        if not data:
            return []
        if not self.configured:
            self._held_audio.append(data)
            self._held_bytes += len(data)
            while self._held_bytes > self._max_held and self._held_audio:
                self._held_bytes -= len(self._held_audio.popleft())
            return []
        return [self._append(data)]

    def function_result(self, call_id: str, result: Any) -> list[str]:
        """``conversation.item.create`` (function_call_output), then ``response.create`` if due."""
        output = result if isinstance(result, str) else json.dumps(result, default=str)
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        self._history[f"out:{call_id}"] = item
        self._pending_calls.discard(call_id)
        out: list[str] = []
        if self.configured:  # while unconfigured, restore() replays it from the history
            out.append(_dumps({"type": "conversation.item.create", "item": item}))
        if not self._pending_calls:
            out += self.request_response()
        return out

    def caller_text(self, text: str) -> list[str]:
        """A caller input as text (keypad digits): a user ``conversation.item.create`` with
        ``input_text``, then a ``response.create`` so the model answers it."""
        item = messages.history_item("user", text)
        self._history[f"text_{next(self._ids)}"] = item
        out: list[str] = []
        if self.configured:  # while unconfigured, restore() replays it from the history
            out.append(_dumps({"type": "conversation.item.create", "item": item}))
        return out + self.request_response()

    def request_response(self, response: dict[str, Any] | None = None) -> list[str]:
        """A ``response.create``, or nothing if one is outstanding (it is then queued)."""
        if self._requested_id or self.active_response_id or not self.configured:
            if self._queued is None or response:
                self._queued = response or {}
            return []
        event_id = f"sb_evt_{next(self._ids)}"
        self._requested_id = event_id
        event: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if response:
            event["response"] = response
        return [_dumps(event)]

    def say(self, text: str) -> list[str]:
        """Have the model speak ``text`` verbatim (re-prompt, goodbye) as its next response."""
        self._history[f"say_{next(self._ids)}"] = messages.history_item("assistant", text)
        return self.request_response({"instructions": messages.greeting_instructions(text)})

    def note(self, text: str, *, respond: bool = False) -> list[str]:
        """A ``system`` message item the caller does not hear (kept for replay), then a
        ``response.create`` when ``respond``."""
        item = {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": text}],
        }
        self._history[f"note_{next(self._ids)}"] = item
        out: list[str] = []
        if self.configured:  # while unconfigured, restore() replays it from the history
            out.append(_dumps({"type": "conversation.item.create", "item": item}))
        return out + (self.request_response() if respond else [])

    def interrupt(self, played_ms: int | None) -> list[str]:
        """Stop the agent: ``response.cancel`` if a response is active, then truncate the item.

        The truncation point is ``played_ms`` clamped to the audio actually received for the
        current assistant item (the server rejects ``audio_end_ms`` beyond it). With
        ``played_ms=None`` (playout unknown) nothing is truncated. The replay history keeps the
        same fraction of the item's transcript as was heard.
        """
        out: list[str] = []
        if self.gate is not None:
            self.gate.interrupted()
        if self.active_response_id:
            cancel = {"type": "response.cancel", "response_id": self.active_response_id}
            out.append(_dumps(cancel))
        self._queued = None
        item = self._audio_item
        if item is not None and played_ms is not None:
            received_ms = int(self.spec.duration_ms(self._audio_bytes.get(item, 0)))
            end_ms = max(0, min(int(played_ms), received_ms))
            out.append(
                _dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item,
                        "content_index": 0,
                        "audio_end_ms": end_ms,
                    }
                )
            )
            self._cut_transcript(item, end_ms, received_ms)
            self._audio_item = None
        return out

    def data_to_send(self) -> list[str]:
        """Texts produced while handling server events (drains the outbox)."""
        out, self._outbox = self._outbox, []
        return out

    def history(self) -> list[dict[str, Any]]:
        """The conversation as replayable items (empty messages left out)."""
        items: list[dict[str, Any]] = []
        for item in self._history.values():
            if item["type"] == "message" and not item["content"][0]["text"]:
                continue
            items.append(item)
        return items

    def audio_received_ms(self, item_id: str) -> float:
        """Milliseconds of assistant audio received for ``item_id``."""
        return self.spec.duration_ms(self._audio_bytes.get(item_id, 0))

    # -- receiving ---------------------------------------------------------------------------
    def receive(self, text: str | bytes) -> list[ProviderEvent]:
        """Handle one server frame.

        Raises:
            RemoteProtocolError: the frame is not a JSON object with a string ``type``.
        """
        try:
            msg = orjson.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested 10 000 deep
            raise RemoteProtocolError(f"server sent a non-JSON frame: {exc}") from exc
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise RemoteProtocolError("server event is not an object with a string 'type'")
        try:
            return self._dispatch(msg)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RemoteProtocolError(f"malformed {msg['type']!r} event: {exc!r}") from exc

    def _dispatch(self, msg: dict[str, Any]) -> list[ProviderEvent]:
        match msg["type"]:
            case "session.updated":
                return self._on_configured()
            case "response.created":
                self._requested_id = None
                self.active_response_id = msg["response"]["id"]
            case "response.output_audio.delta":
                return self._on_audio(msg)
            case "response.output_audio_transcript.delta" | "response.output_text.delta":
                self._add_assistant_text(msg["item_id"], msg["delta"])
                return [self._text(msg, msg["delta"], final=False)]
            case "response.output_audio_transcript.done" | "response.output_text.done":
                text = msg.get("transcript", msg.get("text")) or ""
                self._set_assistant_text(msg["item_id"], text)
                return [self._text(msg, text, final=True)]
            case "response.output_item.added":
                item = msg["item"]
                if item.get("type") == "message" and item.get("id"):
                    self._set_assistant_text(item["id"], "", create=True)
            case "response.function_call_arguments.done" | "response.output_item.done":
                return self._on_function_call(msg)
            case "response.done":
                return self._on_response_done(msg["response"])
            case "input_audio_buffer.speech_started":
                started = SpeechStarted(msg.get("audio_start_ms"), msg.get("item_id"))
                return [ProviderEvent(started)]
            case "input_audio_buffer.speech_stopped":
                stopped = SpeechStopped(msg.get("audio_end_ms"), msg.get("item_id"))
                return [ProviderEvent(stopped)]
            case "input_audio_buffer.committed":
                self._history.setdefault(msg["item_id"], messages.history_item("user", ""))
                if self.gate is not None and self.gate.committed(msg["item_id"]):
                    self._outbox += self.request_response()
            case "conversation.item.input_audio_transcription.delta":
                return [ProviderEvent(CallerTranscript(msg["delta"], False, msg["item_id"]))]
            case "conversation.item.input_audio_transcription.completed":
                transcript = msg["transcript"]
                self._history[msg["item_id"]] = messages.history_item("user", transcript)
                if self.gate is not None and self.gate.transcript(msg["item_id"], transcript):
                    self._outbox += self.request_response()
                return [ProviderEvent(CallerTranscript(transcript, True, msg["item_id"]))]
            case "conversation.item.input_audio_transcription.failed":
                return [self._error(msg["error"], fallback="transcription_failed")]
            case "error":
                return self._on_error(msg["error"])
            case other:
                logger.debug("< %s (ignored)", other)
        return []

    def _on_configured(self) -> list[ProviderEvent]:
        was = self.configured
        self.configured = True
        if was:
            return []
        while self._held_audio:
            self._outbox.append(self._append(self._held_audio.popleft()))
        self._held_bytes = 0
        if not self._greeted and self.config.greeting:
            self._greeted = True
            greeting = self.config.greeting
            self._history["greeting"] = messages.history_item("assistant", greeting)
            instructions = messages.greeting_instructions(greeting)
            self._outbox += self.request_response({"instructions": instructions})
        elif self._queued is not None:
            queued, self._queued = self._queued, None
            self._outbox += self.request_response(queued)
        return []

    def _on_audio(self, msg: dict[str, Any]) -> list[ProviderEvent]:
        try:
            pcm = base64.b64decode(msg["delta"], validate=True)
        except ValueError as exc:
            raise RemoteProtocolError("audio delta is not valid base64") from exc
        item_id = msg["item_id"]
        self._audio_item = item_id
        self._audio_bytes[item_id] = self._audio_bytes.get(item_id, 0) + len(pcm)
        rid = msg["response_id"]
        self._response_audio[rid] = self._response_audio.get(rid, 0) + len(pcm)
        chunk = AudioChunk(pcm, self.spec.format, self.spec.sample_rate)
        return [ProviderEvent(AudioOutput(chunk, response_id=rid, item_id=item_id))]

    def _on_function_call(self, msg: dict[str, Any]) -> list[ProviderEvent]:
        if msg["type"] == "response.output_item.done":
            item = msg["item"]
            if item.get("type") != "function_call":
                return []
            call_id, name, raw = item["call_id"], item["name"], item.get("arguments") or ""
        else:
            call_id, raw = msg["call_id"], msg.get("arguments") or ""
            name = msg.get("name")  # GA only; beta takes it from output_item.done
            if not name:
                return []
        if call_id in self._seen_calls:
            return []
        self._seen_calls.add(call_id)
        self._history[f"call:{call_id}"] = {
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": raw,
        }
        try:
            args = json.loads(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("arguments are not a JSON object")
        except ValueError as exc:
            logger.warning("function %s (%s): bad JSON arguments: %s", name, call_id, exc)
            self._outbox += self.function_result(
                call_id, {"error": f"invalid JSON arguments: {exc}"}
            )
            return [ProviderEvent(ErrorReport("invalid_function_arguments", str(exc), fatal=False))]
        self._pending_calls.add(call_id)
        return [ProviderEvent(FunctionCall(call_id, name, args))]

    def _on_response_done(self, response: dict[str, Any]) -> list[ProviderEvent]:
        rid = str(response.get("id") or "")
        if rid == self.active_response_id or self.active_response_id is None:
            self.active_response_id = None
            self._requested_id = None
        status = response.get("status", "completed")
        details = response.get("status_details") or {}
        reason = details.get("reason")
        usage = self._usage(response.get("usage") or {}, self._response_audio.pop(rid, 0))
        events: list[ProviderEvent] = []
        if status == "cancelled" and reason == "turn_detected":
            events.append(ProviderEvent(ResponseInterrupted(rid)))
        events.append(ProviderEvent(ResponseDone(rid, status, reason, usage)))
        if self._queued is not None and not self._pending_calls:
            queued, self._queued = self._queued, None
            self._outbox += self.request_response(queued)
        return events

    def _usage(self, usage: dict[str, Any], audio_bytes: int) -> Usage:
        inp = usage.get("input_token_details") or {}
        out = usage.get("output_token_details") or {}
        return Usage(
            input_text_tokens=int(inp.get("text_tokens") or 0),
            input_audio_tokens=int(inp.get("audio_tokens") or 0),
            cached_input_tokens=int(inp.get("cached_tokens") or 0),
            output_text_tokens=int(out.get("text_tokens") or 0),
            output_audio_tokens=int(out.get("audio_tokens") or 0),
            output_audio_seconds=self.spec.duration_ms(audio_bytes) / 1000.0,
        )

    def _on_error(self, error: dict[str, Any]) -> list[ProviderEvent]:
        code = error.get("code") or error.get("type") or "error"
        if error.get("event_id") and error.get("event_id") == self._requested_id:
            self._requested_id = None  # our response.create was refused: don't wait for it
        if code in BENIGN_ERROR_CODES:
            logger.debug("server error %s (benign): %s", code, error.get("message"))
            return []
        logger.warning("server error %s: %s", code, error.get("message"))
        return [self._error(error, fallback="error")]

    # -- helpers -----------------------------------------------------------------------------
    def _append(self, data: bytes) -> str:
        # The hot path (one per 20 ms per call): a string template, not json.dumps; base64 has
        # no character that needs JSON escaping. Same text as _dumps of the dict.
        return _APPEND_PREFIX + base64.b64encode(data).decode("ascii") + '"}'

    @staticmethod
    def _error(error: dict[str, Any], *, fallback: str) -> ProviderEvent:
        code = error.get("code") or error.get("type") or fallback
        return ProviderEvent(ErrorReport(code, str(error.get("message", "")), fatal=False))

    @staticmethod
    def _text(msg: dict[str, Any], text: str, *, final: bool) -> ProviderEvent:
        text_output = TextOutput(text, final, msg.get("response_id"), msg.get("item_id"))
        return ProviderEvent(text_output)

    def _set_assistant_text(self, item_id: str, text: str, *, create: bool = False) -> None:
        if create and item_id in self._history:
            return
        if item_id in self._heard:
            text = text[: round(len(text) * self._heard[item_id])]
        self._history[item_id] = messages.history_item("assistant", text)

    def _add_assistant_text(self, item_id: str, delta: str) -> None:
        item = self._history.setdefault(item_id, messages.history_item("assistant", ""))
        item["content"][0]["text"] += delta

    def _cut_transcript(self, item_id: str, end_ms: int, received_ms: int) -> None:
        if received_ms <= 0:
            return
        self._heard[item_id] = end_ms / received_ms
        item = self._history.get(item_id)
        if item is not None:
            text: str = item["content"][0]["text"]
            item["content"][0]["text"] = text[: round(len(text) * self._heard[item_id])]
