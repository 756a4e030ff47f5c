"""Emulated Gemini Live ``BidiGenerateContent`` websocket.

Written from ``docs/wire/gemini.md`` only (vendor page: https://ai.google.dev/api/live), never
from the client's codec.

Theory of operation, per connection::

    accept ─▶ first message must be a valid ``setup`` (else close 1007 / 1008) ─▶ setupComplete
      caller audio (realtimeInput.audio | mediaChunks, 16 kHz PCM) ─▶ EnergyVAD
        speech start while a reply plays      ─▶ serverContent.interrupted (reply stops)
        speech start while a tool call pends  ─▶ toolCallCancellation (UNCONFIRMED trigger)
        clientContent / realtimeInput.text "Say exactly: X" ─▶ reply X (script not consumed)
        speech stop / clientContent turn / realtimeInput.text ─▶ next scripted turn:
           inputTranscription(caller) ─▶ toolCall … (waits for toolResponse) ─▶ reply
      reply = modelTurn audio chunks (24 kHz) interleaved with outputTranscription, paced at
              ``speed`` × realtime ─▶ generationComplete ─▶ turnComplete + usageMetadata
              ─▶ sessionResumptionUpdate (when the setup asked for resumption)
      cue (``go_away``) ─▶ sessionResumptionUpdate + goAway{timeLeft} ─▶ close after timeLeft

Echo mode (``echo=True``, for load tests such as ``bench/capacity.py --provider gemini``): each
caller audio chunk comes straight back as one ``modelTurn`` chunk, raised from 16 to 24 kHz by
linear interpolation (the sample before the chunk carried over, so the chunking does not
matter), with no voice detection, script or turn ends: the cost per chunk stays small at
hundreds of calls.

A :class:`Conversation` (script position, pending tool call, byte counts) outlives its
connection: a setup with ``sessionResumption.handle`` continues it. Both camelCase and
snake_case field names are accepted everywhere (proto3 JSON).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard.emulators.common import (
    EnergyVAD,
    Script,
    ScriptedTurn,
    speech_like_pcm16,
)
from switchboard.emulators.gemini.conversation import Conversation
from switchboard.emulators.gemini.rest import get
from switchboard.emulators.gemini.setup import SetupError, check_setup

__all__ = ["Conversation", "LiveConnection", "LiveService"]

logger = logging.getLogger(__name__)

OUT_RATE = 24000
IN_RATE = 16000
CHUNK_MS = 100


class LiveService:
    """All Live connections of one emulator, plus what tests assert on.

    Attributes:
        received: every client message (parsed JSON), in arrival order, across connections.
        violations: what a real service would reject or a careful client must not do.
        audio_bytes: caller audio bytes received, over all connections.
        images: number of image blobs received.
        setups: every accepted ``setup`` object.
        close_codes: close codes the emulator sent on rejected setups.
    """

    def __init__(
        self,
        *,
        turns: Iterable[Any],
        api_key: str | None,
        models: Collection[str] | None,
        speed: float,
        go_away_after_s: float | None,
        binary_frames: bool,
        echo: bool = False,
        record: bool = True,
    ) -> None:
        self.turns = [ScriptedTurn.from_obj(t) for t in turns]
        self.api_key = api_key
        self.models = set(models) if models is not None else None
        self.speed = speed
        self.go_away_after_s = go_away_after_s
        self.binary_frames = binary_frames
        self.echo = echo
        self.record = record
        self.received: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.setups: list[dict[str, Any]] = []
        self.close_codes: list[int] = []
        self.images = 0
        #: Caller audio bytes per connection, in connection order.
        self.audio_by_connection: list[int] = []
        self.connections: list[LiveConnection] = []
        self.handles: dict[str, Conversation] = {}
        #: Every conversation, resumed or not, in creation order.
        self.conversations: list[Conversation] = []
        #: Failure injection: reject every setup with this (code, reason) while set.
        self.reject_setups: tuple[int, str] | None = None
        #: Failure injection: connections stay open and read, but send nothing more.
        self.silent = False
        self._ids = itertools.count(1)
        self.call_ids = itertools.count(1)

    @property
    def audio_bytes(self) -> int:
        return sum(conv.audio_bytes for conv in self.conversations)

    async def serve(self, ws: WebSocket, *, version: str) -> None:
        """Run one websocket connection to its end."""
        await ws.accept()
        try:
            first = await ws.receive()
        except WebSocketDisconnect:
            return
        raw = first.get("text") or first.get("bytes")
        if raw is None:
            return
        key = ws.headers.get("x-goog-api-key") or ws.query_params.get("key")
        try:
            if version not in ("v1", "v1beta", "v1alpha"):
                raise SetupError(1008, f"API version {version} is not supported.")
            msg = _loads(raw)
            self.received.append(msg)
            if self.reject_setups is not None:
                raise SetupError(*self.reject_setups)
            setup = check_setup(
                msg, key=key, api_key=self.api_key, models=self.models, version=version
            )
            conv = self._conversation(setup)
        except SetupError as exc:
            self.close_codes.append(exc.code)
            await ws.close(exc.code, _reason(exc.reason))
            return
        self.setups.append(setup)
        conn = LiveConnection(self, ws, conv, setup, index=len(self.audio_by_connection))
        self.audio_by_connection.append(0)
        self.connections.append(conn)
        try:
            await conn.run()
        finally:
            self.connections.remove(conn)

    def _conversation(self, setup: Mapping[str, Any]) -> Conversation:
        handle = get(get(setup, "sessionResumption") or {}, "handle")
        if handle:
            conv = self.handles.get(str(handle))
            if conv is None:
                raise SetupError(1007, "Request contains an invalid argument.")
            return conv
        conv = Conversation(next(self._ids), Script.from_obj(self.turns))
        self.conversations.append(conv)
        return conv

    def new_handle(self, conv: Conversation) -> str:
        conv.handles += 1
        handle = f"h-{conv.id}-{conv.handles}"
        self.handles[handle] = conv
        return handle

    async def go_away(self, time_left_s: float = 1.0) -> None:
        """Cue: every open connection gets ``goAway`` and is closed ``time_left_s`` later."""
        for conn in list(self.connections):
            await conn.go_away(time_left_s)

    async def fail(self, mode: str) -> None:
        """Cue a provider failure: ``"drop"`` closes every connection (1011) and rejects every
        new setup (1011) from now on — reconnects and resumption fail; ``"silent"`` keeps the
        connections open and reading but sends nothing more."""
        if mode == "silent":
            self.silent = True
            return
        self.reject_setups = (1011, "Internal error occurred.")
        await self.drop_all()

    @property
    def histories(self) -> list[list[tuple[str, str]]]:
        """The conversation each new conversation was given before its first turn
        (``clientContent`` turns without ``turnComplete``): ``(role, text)`` lines."""
        return [conv.given for conv in self.conversations]

    async def drop_all(self, code: int = 1011, reason: str = "Internal error occurred.") -> None:
        """Cue: close every connection abruptly (a server-side failure)."""
        for conn in list(self.connections):
            await conn.close(code, reason)

    async def send_raw(self, data: str | bytes) -> None:
        """Cue: send a frame as is to every connection (garbage tests)."""
        for conn in list(self.connections):
            await conn.send_frame(data)

    async def close_all(self) -> None:
        for conn in list(self.connections):
            await conn.close(1001, "emulator shutting down")


def _say_verbatim(text: str | None) -> str | None:
    """The words of a ``Say exactly: …`` / ``Say: …`` text turn (how clients script a greeting),
    the convention every switchboard emulator follows; None for any other turn."""
    stripped = (text or "").strip()
    for prefix in ("Say exactly:", "Say:"):
        if stripped.startswith(prefix):
            return stripped[len(prefix) :].strip()
    return None


def _reason(text: str) -> str:
    """A close reason fits a control frame: at most 123 bytes of UTF-8."""
    return text.encode()[:123].decode("utf-8", "ignore")


def _usage(prompt: int, response: int) -> dict[str, Any]:
    """``usageMetadata`` at Gemini's 25 audio tokens a second."""
    return {
        "promptTokenCount": prompt,
        "responseTokenCount": response,
        "totalTokenCount": prompt + response,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": prompt}],
        "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
    }


def _loads(raw: str | bytes) -> dict[str, Any]:
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SetupError(1007, "Request contains an invalid argument.") from None
    if not isinstance(msg, dict):
        raise SetupError(1007, "Request contains an invalid argument.")
    return msg


class LiveConnection:
    """One websocket after an accepted setup (see the module's theory of operation)."""

    def __init__(
        self,
        service: LiveService,
        ws: WebSocket,
        conv: Conversation,
        setup: dict[str, Any],
        *,
        index: int = 0,
    ) -> None:
        self.service = service
        self.index = index
        self.ws = ws
        self.conv = conv
        self.setup = setup
        vad_cfg = get(get(setup, "realtimeInputConfig") or {}, "automaticActivityDetection") or {}
        self.auto_vad = not get(vad_cfg, "disabled", False)
        handling = get(get(setup, "realtimeInputConfig") or {}, "activityHandling")
        #: ``NO_INTERRUPTION``: caller activity does not cut the model's reply; a caller turn
        #: that ends meanwhile is answered once the reply is done.
        self.interruptible = handling != "NO_INTERRUPTION"
        self.resumable = get(setup, "sessionResumption") is not None
        if conv.vad is None:
            silence_ms = int(get(vad_cfg, "silenceDurationMs", 300))
            conv.vad = EnergyVAD(IN_RATE, silence_ms=silence_ms)
        self.vad: EnergyVAD = conv.vad
        self._reply: asyncio.Task[None] | None = None
        self._timers: list[asyncio.Task[None]] = []
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._echo_last = 0  # echo mode: the last caller sample, for interpolation across chunks

    # -- output ------------------------------------------------------------------------------------
    async def send(self, msg: dict[str, Any]) -> None:
        text = json.dumps(msg)
        await self.send_frame(text.encode() if self.service.binary_frames else text)

    async def send_frame(self, data: str | bytes) -> None:
        if self._closed or self.service.silent:
            return
        async with self._send_lock:
            with contextlib.suppress(Exception):  # the peer may be gone; reading notices
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_text(data)

    async def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.ws.close(code, _reason(reason))

    async def go_away(self, time_left_s: float) -> None:
        if self.resumable:
            await self._resumption_update()
        await self.send({"goAway": {"timeLeft": f"{time_left_s:g}s"}})
        self._timers.append(asyncio.create_task(self._close_later(time_left_s)))

    async def _close_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.close(1000, "session time limit reached")

    async def _resumption_update(self) -> None:
        handle = self.service.new_handle(self.conv)
        await self.send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    # -- main loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.send({"setupComplete": {}})
        if self.resumable:
            await self._resumption_update()
        if self.service.go_away_after_s is not None:
            self._timers.append(asyncio.create_task(self._go_away_later()))
        try:
            while True:
                frame = await self.ws.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                raw = frame.get("text") or frame.get("bytes") or ""
                try:
                    msg = _loads(raw)
                except SetupError as exc:
                    await self.close(exc.code, exc.reason)
                    return
                if self.service.record:
                    self.service.received.append(msg)
                if not await self._dispatch(msg):
                    return
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            self._closed = True
            for task in [*self._timers, self._reply]:
                if task is not None:
                    task.cancel()

    async def _go_away_later(self) -> None:
        assert self.service.go_away_after_s is not None
        await asyncio.sleep(self.service.go_away_after_s)
        await self.go_away(5.0)

    async def _dispatch(self, msg: dict[str, Any]) -> bool:
        if len(msg) != 1:
            self.service.violations.append(f"message with {len(msg)} top-level fields")
        for key, value in msg.items():
            match key:
                case "realtimeInput" | "realtime_input":
                    await self._realtime_input(value)
                case "clientContent" | "client_content":
                    await self._client_content(value)
                case "toolResponse" | "tool_response":
                    await self._tool_response(value)
                case "setup":
                    self.service.violations.append("second setup on one connection")
                case _:
                    reason = (
                        f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                    )
                    await self.close(1007, reason)
                    return False
        return True

    # -- input -----------------------------------------------------------------------------------
    async def _realtime_input(self, ri: Mapping[str, Any]) -> None:
        blobs = list(get(ri, "mediaChunks") or [])
        for key in ("audio", "video"):
            if get(ri, key) is not None:
                blobs.append(get(ri, key))
        for blob in blobs:
            await self._blob(blob)
        if get(ri, "text"):
            await self._caller_turn(str(get(ri, "text")))
        if get(ri, "audioStreamEnd") and self.vad.speaking:
            self.vad.speaking = False
            await self._caller_turn(None)
        if get(ri, "activityStart") is not None:
            if self.auto_vad:
                self.service.violations.append("activityStart with automatic VAD enabled")
            await self._speech_started()
        if get(ri, "activityEnd") is not None:
            await self._caller_turn(None)

    async def _blob(self, blob: Mapping[str, Any]) -> None:
        mime = str(get(blob, "mimeType", ""))
        try:
            data = _b64decode(str(get(blob, "data", "")))
        except (binascii.Error, ValueError):
            self.service.violations.append("blob data is not base64")
            return
        if mime.startswith("image/"):
            self.service.images += 1
            return
        if mime.replace(" ", "") != "audio/pcm;rate=16000":
            self.service.violations.append(f"unexpected audio mime type {mime!r}")
        if len(data) % 2:
            self.service.violations.append("odd-length PCM16 audio")
        self.conv.audio_bytes += len(data)
        self.service.audio_by_connection[self.index] += len(data)
        if self.service.echo:
            await self._echo(data)
            return
        self.conv.utterance_bytes += len(data)
        if not self.auto_vad:
            return
        for event in self.vad.feed(data):
            if event.kind == "start":
                await self._speech_started()
            else:
                await self._caller_turn(None)

    async def _echo(self, pcm16: bytes) -> None:
        """Send caller audio (16 kHz) back as model audio (24 kHz; see the module docstring)."""
        samples = np.frombuffer(pcm16[: len(pcm16) & ~1], dtype="<i2")
        if not samples.size:
            return
        n_out = samples.size * OUT_RATE // IN_RATE
        points = np.concatenate(([self._echo_last], samples)).astype(np.float64)
        # output sample j sits at input position j·2/3 after the carried-over sample
        where = np.arange(1, n_out + 1) * (IN_RATE / OUT_RATE)
        out = np.interp(where, np.arange(points.size), points).round().astype("<i2")
        self._echo_last = int(samples[-1])
        text = _ECHO_TEMPLATE % base64.b64encode(out.tobytes()).decode()
        await self.send_frame(text.encode() if self.service.binary_frames else text)

    async def _speech_started(self) -> None:
        if not self.interruptible:
            return
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()
            self._reply = None
            await self.send({"serverContent": {"interrupted": True}})
            # Whether a turnComplete follows an interruption is UNCONFIRMED; the emulator sends
            # one (with usage) so the cut turn is accounted for.
            await self.send(
                {"serverContent": {"turnComplete": True}, "usageMetadata": _usage(10, 0)}
            )
        if self.conv.pending_call is not None:
            call_id, _ = self.conv.pending_call
            self.conv.pending_call = None
            await self.send({"toolCallCancellation": {"ids": [call_id]}})

    async def _client_content(self, cc: Mapping[str, Any]) -> None:
        texts = [
            str(get(p, "text"))
            for turn in get(cc, "turns") or []
            for p in get(turn, "parts") or []
            if get(p, "text")
        ]
        for text in texts:
            self.conv.transcript.append(("user", text))
        if not get(cc, "turnComplete", False):  # context given, not a turn to answer
            for turn in get(cc, "turns") or []:
                role = str(get(turn, "role") or "user")
                for part in get(turn, "parts") or []:
                    if get(part, "text"):
                        self.conv.given.append((role, str(get(part, "text"))))
        if get(cc, "turnComplete", False):
            await self._caller_turn(" ".join(texts))

    async def _tool_response(self, tr: Mapping[str, Any]) -> None:
        for resp in get(tr, "functionResponses") or []:
            call_id = resp.get("id")
            if not call_id:
                self.service.violations.append("functionResponse without id")
            if not isinstance(resp.get("response"), dict):
                self.service.violations.append("functionResponse.response is not an object")
            pending = self.conv.pending_call
            if pending is None or pending[0] != call_id:
                self.service.violations.append(f"functionResponse for unknown call {call_id!r}")
                continue
            self.conv.pending_call = None
            self._start_reply(self._speak(pending[1].say))

    # -- turns -----------------------------------------------------------------------------------
    async def _caller_turn(self, text: str | None) -> None:
        """The caller finished an utterance (``text`` is None for audio)."""
        await self._speech_started()
        verbatim = _say_verbatim(text)
        if verbatim is not None:  # "Say exactly: …" speaks the words, the script stays put
            self._start_reply(self._speak(verbatim))
            return
        by_text = self.conv.script.turn_for_text(text) if text else None
        turn = by_text or self.conv.script.next_turn()
        heard = text if text is not None else turn.caller
        prompt_ms = self.conv.utterance_bytes / 2 / IN_RATE * 1000
        self.conv.utterance_bytes = 0
        if text is None and heard and get(self.setup, "inputAudioTranscription") is not None:
            transcription = {"text": heard, "finished": True}
            await self.send({"serverContent": {"inputTranscription": transcription}})
        if text is None:
            self.conv.transcript.append(("user", heard))
        if turn.tool is not None:
            call_id = f"function-call-{next(self.service.call_ids)}"
            self.conv.pending_call = (call_id, turn)
            call = {
                "id": call_id,
                "name": turn.tool["name"],
                "args": dict(turn.tool.get("arguments", {})),
            }
            await self.send({"toolCall": {"functionCalls": [call]}})
            return
        self._start_reply(self._speak(turn.say, prompt_ms=prompt_ms))

    def _start_reply(self, coro: Any) -> None:
        running = self._reply
        if running is not None and not running.done():  # NO_INTERRUPTION: after the reply

            async def after() -> None:
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                await coro

            self._reply = asyncio.create_task(after())
            return
        self._reply = asyncio.create_task(coro)

    async def _speak(self, text: str, *, prompt_ms: float = 0.0) -> None:
        # a scripted turn with nothing to say (noise, a backchannel): no audio, just the end
        audio = speech_like_pcm16(text, OUT_RATE) if text else b""
        step = OUT_RATE * CHUNK_MS // 1000 * 2
        chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
        words = text.split(" ")
        per_chunk = max(1, -(-len(words) // max(1, len(chunks))))
        transcribe = get(self.setup, "outputAudioTranscription") is not None
        for i, chunk in enumerate(chunks):
            blob = {
                "mimeType": f"audio/pcm;rate={OUT_RATE}",
                "data": base64.b64encode(chunk).decode(),
            }
            await self.send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
            said = words[i * per_chunk : (i + 1) * per_chunk]
            if transcribe and said:
                piece = " ".join(said) + (" " if (i + 1) * per_chunk < len(words) else "")
                await self.send({"serverContent": {"outputTranscription": {"text": piece}}})
            if self.service.speed > 0:
                await asyncio.sleep(CHUNK_MS / 1000 / self.service.speed)
            else:
                await asyncio.sleep(0)
        self.conv.transcript.append(("model", text))
        await self.send({"serverContent": {"generationComplete": True}})
        prompt = 10 + int(prompt_ms / 1000 * 25)
        response = int(len(audio) / 2 / OUT_RATE * 25)
        usage = _usage(prompt, response)
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
        if self.resumable:
            await self._resumption_update()


#: One echoed chunk (a template: ``json.dumps`` of a dict per 20 ms chunk costs more).
_ECHO_TEMPLATE = (
    '{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate='
    + str(OUT_RATE)
    + '","data":"%s"}}]}}}'
)


def _b64decode(text: str) -> bytes:
    """Proto3 JSON ``bytes``: standard or URL-safe base64, padded or not (google-genai sends
    URL-safe)."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
