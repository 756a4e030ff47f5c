"""One emulated OpenAI Realtime (GA) WebSocket session.

Theory of operation: ``session.created`` on connect; each client event is validated (refusals
become ``error`` events and are recorded as violations) and dispatched with ``match``. Caller
audio feeds an energy VAD (server_vad/semantic_vad alike): speech start → ``speech_started``
(and barge-in: the active response ends ``cancelled``/``turn_detected``), speech stop →
``speech_stopped``, ``committed``, the user item and its transcript (the script's ``caller``
text), then a scripted response. A response runs as a task that streams speech-like audio in
the session's output format; a scripted ``tool`` turn first answers with a function call and
speaks ``say`` after the client's ``function_call_output`` + ``response.create``. In echo mode
each append is sent straight back as audio within one endless response.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from switchboard.audio.g711 import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.emulators.common import EnergyVAD, ScriptedTurn, speech_like_pcm16
from switchboard.emulators.openai_realtime.core import (
    ClientError,
    RealtimeSessionState,
    validate_client_event,
)
from switchboard.emulators.openai_realtime.host import EmulatorHost
from switchboard.emulators.openai_realtime.responses import run_response

__all__ = ["RealtimeConnection"]

logger = logging.getLogger(__name__)

_USAGE = {
    "total_tokens": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "input_token_details": {"text_tokens": 0, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 0, "audio_tokens": 0},
}


_DELTA = (
    '{"event_id": "%s", "type": "response.output_audio.delta", "response_id": "%s", '
    '"item_id": "%s", "output_index": 0, "content_index": 0, "delta": "%s"}'
)


def _to_pcm16(data: bytes, fmt: str) -> bytes:
    match fmt:
        case "ulaw":
            return ulaw_to_pcm16(data)
        case "alaw":
            return alaw_to_pcm16(data)
        case _:
            return data[: len(data) // 2 * 2]


def _from_pcm16(pcm: bytes, fmt: str) -> bytes:
    match fmt:
        case "ulaw":
            return pcm16_to_ulaw(pcm)
        case "alaw":
            return pcm16_to_alaw(pcm)
        case _:
            return pcm


def _say_from_instructions(instructions: str) -> str:
    text = instructions.strip()
    for prefix in ("Say exactly:", "Say:"):
        if text.lower().startswith(prefix.lower()):
            return text[len(prefix) :].strip()
    return text


class RealtimeConnection:
    """State and behaviour of one client connection (created by the emulator server)."""

    def __init__(self, emu: EmulatorHost, ws: ServerConnection, model: str) -> None:
        self.emu = emu
        self.ws = ws
        self.ids = emu.ids
        self.state = RealtimeSessionState(self.ids("sess"), model)
        self.items: dict[str, dict[str, Any]] = {}  # item id -> item
        self.item_audio_ms: dict[str, float] = {}
        self.last_item: str | None = None
        self._vad = self._new_vad()
        self._buffered_ms = 0.0
        self._speech_item: str | None = None
        self._response: tuple[str, asyncio.Task[None]] | None = None
        self._pending_say: str | None = None  # spoken after a scripted tool call's output
        self._committed_turn: ScriptedTurn | None = None  # a manual commit's turn
        self._text_turn: ScriptedTurn | None = None  # the answer to a user text item
        self._echo: tuple[str, str] | None = None  # (response id, item id)
        #: message items the client created, as ``(role, text)``: the conversation it gave
        self.given: list[tuple[str, str]] = []

    # -- I/O ---------------------------------------------------------------------------------
    async def send(self, event: dict[str, Any]) -> None:
        if self.emu.silent:  # failure injection: accepted, then silent
            return
        event = {"event_id": self.ids("event"), **event}
        if self.emu.record:
            self.emu.sent.append(event)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(event))

    async def send_error(self, err: ClientError, event_id: str | None, *, violation: bool) -> None:
        error = {
            "type": err.type,
            "code": err.code,
            "message": err.message,
            "param": err.param,
            "event_id": event_id,
        }
        if violation:
            self.emu.violations.append(error)
        await self.send({"type": "error", "error": error})

    async def serve(self) -> None:
        await self.send({"type": "session.created", "session": self.state.session})
        try:
            async for frame in self.ws:
                await self.on_frame(frame)
        finally:
            await self._stop_response(None)

    async def on_frame(self, frame: str | bytes) -> None:
        try:
            event = json.loads(frame)
        except ValueError:
            await self.send_error(ClientError("invalid_json", "Invalid JSON"), None, violation=True)
            return
        if self.emu.record:
            self.emu.received.append(event)
        event_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            await self.dispatch(validate_client_event(event))
        except ClientError as err:
            benign = err.code == "response_cancel_not_active"  # a race, not a client bug
            await self.send_error(err, event_id, violation=not benign)

    # -- dispatch ----------------------------------------------------------------------------
    async def dispatch(self, event: dict[str, Any]) -> None:
        match event["type"]:
            case "session.update":
                before = (self.state.input_format, self.state.turn_detection)
                session = self.state.update(event.get("session"))
                if (self.state.input_format, self.state.turn_detection) != before:
                    self._vad = self._new_vad()
                await self.send({"type": "session.updated", "session": session})
            case "input_audio_buffer.append":
                await self._on_append(event["audio"])
            case "input_audio_buffer.commit":
                if self._buffered_ms <= 0:
                    raise ClientError("input_audio_buffer_commit_empty", "buffer is empty")
                turn = self.emu.script.next_turn()  # manual turns (turn_detection null)
                self._committed_turn = turn
                await self._commit(self.ids("item"), turn)
            case "input_audio_buffer.clear":
                self._buffered_ms = 0.0
                await self.send({"type": "input_audio_buffer.cleared"})
            case "conversation.item.create":
                await self._add_item(dict(event["item"]), event.get("previous_item_id"))
            case "conversation.item.truncate":
                await self._truncate(event)
            case "conversation.item.delete":
                if self.items.pop(event.get("item_id", ""), None) is None:
                    raise ClientError("item_not_found", f"Item {event.get('item_id')} not found")
                await self.send({"type": "conversation.item.deleted", "item_id": event["item_id"]})
            case "conversation.item.retrieve":
                item = self.items.get(event.get("item_id", ""))
                if item is None:
                    raise ClientError("item_not_found", f"Item {event.get('item_id')} not found")
                await self.send({"type": "conversation.item.retrieved", "item": item})
            case "response.create":
                await self._on_response_create(event.get("response") or {})
            case "response.cancel":
                if self._response is None and self._echo is None:
                    raise ClientError("response_cancel_not_active", "no active response")
                active = self._response[0] if self._response else None
                wanted = event.get("response_id")
                if wanted is not None and wanted != active and self._echo is None:
                    raise ClientError("invalid_value", f"response {wanted} is not active")
                await self._stop_response("client_cancelled")
            case _:  # output_audio_buffer.clear: WebRTC/SIP only
                raise ClientError("invalid_value", f"{event['type']} is not supported on WebSocket")

    async def _on_append(self, audio_b64: str) -> None:
        fmt, rate = self.state.input_format
        if self.emu.echo:
            await self._echo_audio(audio_b64, fmt)
            return
        pcm = _to_pcm16(base64.b64decode(audio_b64), fmt)
        self._buffered_ms += len(pcm) / 2 * 1000 / rate
        for vad_event in self._vad.feed(pcm):
            if vad_event.kind == "start":
                await self._speech_started(vad_event.audio_ms)
            else:
                await self._speech_stopped(vad_event.audio_ms)

    # -- turns -------------------------------------------------------------------------------
    async def _speech_started(self, audio_ms: int) -> None:
        td = self.state.turn_detection
        if td is None:
            return
        self._speech_item = self.ids("item")
        prefix = int(td.get("prefix_padding_ms", 300) or 0)
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": max(0, audio_ms - prefix),
                "item_id": self._speech_item,
            }
        )
        if self._response is not None and td.get("interrupt_response", True):
            await self._stop_response("turn_detected")

    async def _speech_stopped(self, audio_ms: int) -> None:
        td = self.state.turn_detection
        if td is None or self._speech_item is None:
            return
        item_id, self._speech_item = self._speech_item, None
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_ms,
                "item_id": item_id,
            }
        )
        turn = self.emu.script.next_turn()
        await self._commit(item_id, turn)
        if td.get("create_response", True):
            if self._response is None:
                self._start(turn.tool, turn.say)
        else:  # the client answers (or not) with response.create
            self._committed_turn = turn

    async def _commit(self, item_id: str, turn: ScriptedTurn) -> None:
        previous = self.last_item
        self._buffered_ms = 0.0
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items[item_id] = item
        self.last_item = item_id
        await self.send(
            {"type": "conversation.item.added", "item": item, "previous_item_id": previous}
        )
        await self.send(
            {"type": "conversation.item.done", "item": item, "previous_item_id": previous}
        )
        if self.state.session["audio"]["input"].get("transcription") and turn.caller:
            base = {"item_id": item_id, "content_index": 0}
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    **base,
                    "delta": turn.caller,
                }
            )
            usage = {"type": "duration", "seconds": round(len(turn.caller) * 0.06, 3)}
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    **base,
                    "transcript": turn.caller,
                    "usage": usage,
                }
            )

    async def _add_item(self, item: dict[str, Any], previous: str | None) -> None:
        item.setdefault("id", self.ids("item"))
        item["object"] = "realtime.item"
        item.setdefault("status", "completed")
        if item["id"] in self.items:
            raise ClientError("item_already_exists", f"Item {item['id']} already exists")
        self.items[item["id"]] = item
        if item.get("type") == "message":
            text = " ".join(str(p.get("text") or "") for p in item.get("content", []))
            self.given.append((str(item.get("role")), text.strip()))
        if item.get("type") == "message" and item.get("role") == "user":
            text = " ".join(
                str(part.get("text", ""))
                for part in item.get("content", [])
                if part.get("type") == "input_text"
            )
            if text:
                self._text_turn = self.emu.script.turn_for_text(text)
        elif item.get("type") == "message" and item.get("role") == "assistant":
            self._text_turn = None  # a carried-over history answered its own user lines
        prev = previous if previous is not None else self.last_item
        self.last_item = item["id"]
        await self.send({"type": "conversation.item.added", "item": item, "previous_item_id": prev})
        await self.send({"type": "conversation.item.done", "item": item, "previous_item_id": prev})

    async def _truncate(self, event: dict[str, Any]) -> None:
        item_id = event["item_id"]
        item = self.items.get(item_id)
        if item is None or item.get("role") != "assistant":
            raise ClientError("item_not_found", f"No assistant item {item_id!r}", param="item_id")
        have = self.item_audio_ms.get(item_id, 0.0)
        if event["audio_end_ms"] > have:
            raise ClientError(
                "invalid_value",
                f"Audio content of {have:.0f}ms is already shorter than {event['audio_end_ms']}ms",
                param="audio_end_ms",
            )
        self.item_audio_ms[item_id] = float(event["audio_end_ms"])
        for part in item.get("content", []):
            part["transcript"] = None  # the service drops the transcript of truncated audio
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": event["content_index"],
                "audio_end_ms": event["audio_end_ms"],
            }
        )

    async def _on_response_create(self, response: dict[str, Any]) -> None:
        if self._response is not None:
            raise ClientError(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress.",
            )
        if response.get("instructions"):
            self._start(None, _say_from_instructions(str(response["instructions"])))
        elif self._pending_say is not None:
            say, self._pending_say = self._pending_say, None
            self._start(None, say)
        else:
            turn, self._committed_turn = self._committed_turn, None
            text_turn, self._text_turn = self._text_turn, None
            turn = turn or text_turn or self.emu.script.next_turn()
            self._start(turn.tool, turn.say)

    # -- responses ---------------------------------------------------------------------------
    def _start(self, tool: Any, say: str) -> None:
        rid = self.ids("resp")
        if tool is not None:
            self._pending_say = say
        task = asyncio.create_task(run_response(self, rid, tool, say))
        self._response = (rid, task)
        task.add_done_callback(lambda _t: self._finished(rid))

    def _finished(self, rid: str) -> None:
        if self._response is not None and self._response[0] == rid:
            self._response = None

    async def _stop_response(self, reason: str | None) -> None:
        if self._echo is not None and reason is not None:
            rid, _item = self._echo
            self._echo = None
            await self._send_done(rid, "cancelled", reason, [])
        if self._response is None:
            return
        rid, task = self._response
        self._response = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if reason is not None:
            output = [item for item in self.items.values() if item.pop("_resp", None) == rid]
            await self._send_done(rid, "cancelled", reason, output)

    async def _send_done(
        self, rid: str, status: str, reason: str | None, output: list[dict[str, Any]]
    ) -> None:
        details = {"type": status, "reason": reason} if reason else None
        response = {
            "id": rid,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": output,
            "output_modalities": ["audio"],
            "usage": _USAGE,
        }
        await self.send({"type": "response.done", "response": response})
        self.emu.response_finished()

    async def _echo_audio(self, audio_b64: str, fmt: str) -> None:
        if self._echo is None:
            rid, item_id = self.ids("resp"), self.ids("item")
            self._echo = (rid, item_id)
            await self.send(
                {"type": "response.created", "response": {"id": rid, "status": "in_progress"}}
            )
        rid, item_id = self._echo
        out_fmt, _rate = self.state.output_format
        if out_fmt != fmt:  # transcoded only when the formats differ (G.711 ⇄ G.711 is exact)
            pcm = _to_pcm16(base64.b64decode(audio_b64), fmt)
            audio_b64 = base64.b64encode(_from_pcm16(pcm, out_fmt)).decode()
        if self.emu.record:
            event = {
                "type": "response.output_audio.delta",
                "response_id": rid,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": audio_b64,
            }
            await self.send(event)
            return
        # Unrecorded (load tests): one string template per delta instead of a dict + json.dumps;
        # ids and base64 need no JSON escaping, and the text is what json.dumps would give.
        text = _DELTA % (self.ids("event"), rid, item_id, audio_b64)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(text)

    def _new_vad(self) -> EnergyVAD:
        td = self.state.turn_detection
        silence = int((td or {}).get("silence_duration_ms", 500) or 500)
        _fmt, rate = self.state.input_format
        return EnergyVAD(rate, threshold=self.emu.vad_threshold, silence_ms=silence)

    def audio_for(self, text: str) -> bytes:
        """Speech-like audio for ``text`` in the session's output format."""
        fmt, rate = self.state.output_format
        return _from_pcm16(speech_like_pcm16(text, rate, ms_per_char=self.emu.ms_per_char), fmt)
