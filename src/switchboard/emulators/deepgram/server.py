"""One loopback server emulating Deepgram: live ``/v1/listen``, ``/v1/speak`` websocket and REST.

All three share one port (Starlette on uvicorn), so ``DeepgramEmulator.base_url`` is a drop-in
``DEEPGRAM_BASE_URL``::

    async with DeepgramEmulator(script=[{"caller": "what are your hours"}]) as emu:
        settings = load_settings(DEEPGRAM_API_KEY="k", DEEPGRAM_BASE_URL=emu.base_url)
        ...
    assert not emu.violations

Idle listen sockets are closed like the real service: no audio and no text message for
``idle_timeout_s`` (10 s on the real service, https://developers.deepgram.com/docs/audio-keep-alive)
→ close code 1011 with a ``NET-0001`` reason (the close code is UNCONFIRMED;
``docs/wire/deepgram.md#keep-alive-and-idle-close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard.emulators.common import Script, ScriptedTurn
from switchboard.emulators.deepgram.listen import ListenCore, ListenParamError, parse_listen_params
from switchboard.emulators.deepgram.speak import (
    SpeakCore,
    SpeakJob,
    SpeakParamError,
    parse_speak_params,
    synthesize,
    wav_header,
)
from switchboard.emulators.loopback import LoopbackServer

__all__ = ["IDLE_CLOSE_CODE", "DeepgramEmulator", "run"]

logger = logging.getLogger(__name__)

IDLE_CLOSE_CODE = 1011
IDLE_CLOSE_REASON = (
    "NET-0001: Deepgram did not receive audio data or a text message within the timeout window."
)
TurnSpec = str | Mapping[str, Any] | ScriptedTurn


def _error_body(code: str, message: str) -> dict[str, str]:
    # Deepgram REST error shape (err_code/err_msg/request_id) — UNCONFIRMED for every endpoint.
    return {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}


class DeepgramEmulator:
    """Deepgram listen + speak on ``host:port`` (port 0 picks a free one).

    Args:
        host: address to bind.
        port: port to bind (0: any free port; read :attr:`port` after start).
        script: turns whose ``caller`` text is the transcript of each caller utterance.
        api_key: the key clients must present (``None``: any non-empty key).
        idle_timeout_s: close listen sockets idle this long (real service: 10 s).
        speed: speak audio pacing, ×realtime (with ``realtime=True``).
        realtime: pace speak websocket audio; False sends it as fast as possible.
        chunk_ms: speak websocket audio frame length.
        tts_latency_s: delay before the first audio of each Flush or REST request.
        ms_per_char: synthetic speech length per character.
        interim_every_ms: audio between two interim results.
        flush_limit: Flushes allowed per 60 s before a Warning.

    Attributes:
        violations: client mistakes a real service would reject or that break the docs.
        listen_queries / speak_queries: query parameters of each accepted socket.
        listen_controls / speak_messages: JSON messages received, in order.
        listen_audio_bytes: audio bytes received over all listen sockets.
        idle_closes: listen sockets closed for idleness.
        rest_requests: ``{"query", "text"}`` of each REST synthesis.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Iterable[TurnSpec] | Script | None = None,
        api_key: str | None = None,
        idle_timeout_s: float = 10.0,
        speed: float = 1.0,
        realtime: bool = True,
        chunk_ms: int = 100,
        tts_latency_s: float = 0.0,
        ms_per_char: float = 60.0,
        interim_every_ms: int = 300,
        flush_limit: int = 20,
    ) -> None:
        self.host = host
        self._port = port
        self.script = script if isinstance(script, Script) else Script.from_obj(script)
        self.api_key = api_key
        self.idle_timeout_s = idle_timeout_s
        self.pace = (1.0 / speed) if realtime and speed > 0 else 0.0
        self.chunk_ms = chunk_ms
        self.tts_latency_s = tts_latency_s
        self.ms_per_char = ms_per_char
        self.interim_every_ms = interim_every_ms
        self.flush_limit = flush_limit
        self.violations: list[str] = []
        self.listen_queries: list[dict[str, str]] = []
        self.listen_controls: list[dict[str, Any]] = []
        self.listen_audio_bytes = 0
        self.idle_closes = 0
        self.speak_queries: list[dict[str, str]] = []
        self.speak_messages: list[dict[str, Any]] = []
        self.rest_requests: list[dict[str, Any]] = []
        self._listen_sockets: set[WebSocket] = set()
        #: failure injection: refuse new listen sockets / send no more results (``fail``)
        self.refuse_listen = False
        self.silent = False
        self._server: LoopbackServer | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` — set it as ``DEEPGRAM_BASE_URL``."""
        return f"http://{self.host}:{self._port}"

    # -- lifecycle --------------------------------------------------------------------------------
    def app(self) -> Starlette:
        """The ASGI app serving listen and speak."""
        return Starlette(
            routes=[
                WebSocketRoute("/v1/listen", self._listen),
                WebSocketRoute("/v1/speak", self._speak_ws),
                Route("/v1/speak", self._speak_rest, methods=["POST"]),
            ]
        )

    async def __aenter__(self) -> DeepgramEmulator:
        self._server = LoopbackServer(self.app(), host=self.host, port=self._port, lifespan="off")
        await self._server.__aenter__()
        self._port = self._server.port
        logger.info("Deepgram emulator on %s", self.base_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._listen_sockets):
            with contextlib.suppress(Exception):
                await ws.close(1001, "emulator shutting down")
        if self._server is not None:
            await self._server.aclose()

    async def fail(self, mode: str) -> None:
        """Cue a provider failure: ``"drop"`` closes every listen socket (1011) and refuses
        new ones (HTTP 503) from now on; ``"silent"`` keeps the sockets open and reading but
        sends no more results."""
        if mode == "silent":
            self.silent = True
            return
        self.refuse_listen = True
        await self.drop_listen_sockets(1011, "Internal server error")

    async def drop_listen_sockets(self, code: int = IDLE_CLOSE_CODE, reason: str = "") -> int:
        """Close every open listen socket now (a test hook); returns how many were open."""
        sockets = list(self._listen_sockets)
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close(code, reason or IDLE_CLOSE_REASON)
        return len(sockets)

    # -- auth -------------------------------------------------------------------------------------
    def _key_of(self, headers: Headers) -> tuple[str | None, str | None]:
        """The presented key and the subprotocol to echo (browser ``token, <key>`` form)."""
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("token", "bearer") and key:
            return key.strip(), None
        protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        if len(protocols) == 2 and protocols[0].lower() == "token" and protocols[1]:
            return protocols[1], protocols[0]
        return None, None

    def _authorized(self, key: str | None) -> bool:
        return bool(key) and (self.api_key is None or key == self.api_key)

    # -- listen -----------------------------------------------------------------------------------
    async def _listen(self, ws: WebSocket) -> None:
        if self.refuse_listen:  # failure injection (``fail("drop")``)
            body = _error_body("Service Unavailable", "The service is unavailable.")
            await ws.send_denial_response(JSONResponse(body, status_code=503))
            return
        key, subprotocol = self._key_of(ws.headers)
        if not self._authorized(key):
            body = _error_body("INVALID_AUTH", "Invalid credentials.")
            await ws.send_denial_response(JSONResponse(body, status_code=401))
            return
        query = dict(ws.query_params)
        try:
            params, notes = parse_listen_params(query)
        except ListenParamError as exc:
            self.violations.append(f"listen rejected: {exc}")
            body = _error_body("Bad Request", str(exc))
            await ws.send_denial_response(JSONResponse(body, status_code=400))
            return
        self.violations += notes
        self.listen_queries.append(query)
        await ws.accept(subprotocol=subprotocol)
        core = ListenCore(params, self.script, interim_every_ms=self.interim_every_ms)
        self._listen_sockets.add(ws)
        try:
            await self._listen_loop(ws, core)
        except WebSocketDisconnect:
            pass
        finally:
            self._listen_sockets.discard(ws)
            self.violations += core.violations

    async def _listen_loop(self, ws: WebSocket, core: ListenCore) -> None:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), timeout=self.idle_timeout_s)
            except TimeoutError:
                self.idle_closes += 1
                await ws.close(IDLE_CLOSE_CODE, IDLE_CLOSE_REASON)
                return
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                data: bytes = message["bytes"]
                if not data:
                    self.violations.append("empty binary frame (use CloseStream)")
                self.listen_audio_bytes += len(data)
                reply = core.audio(data)
            else:
                try:
                    control = json.loads(message.get("text") or "")
                except ValueError:
                    self.violations.append("listen text frame is not JSON")
                    continue
                if not isinstance(control, dict):
                    self.violations.append("listen text frame is not a JSON object")
                    continue
                self.listen_controls.append(control)
                reply = core.control(control)
            for out in reply.messages:
                if not self.silent:  # failure injection: accepted, then silent
                    await ws.send_text(json.dumps(out))
            if reply.close is not None:
                await ws.close(*reply.close)
                return

    # -- speak websocket --------------------------------------------------------------------------
    async def _speak_ws(self, ws: WebSocket) -> None:
        key, subprotocol = self._key_of(ws.headers)
        if not self._authorized(key):
            body = _error_body("INVALID_AUTH", "Invalid credentials.")
            await ws.send_denial_response(JSONResponse(body, status_code=401))
            return
        query = dict(ws.query_params)
        try:
            params = parse_speak_params(query, rest=False)
        except SpeakParamError as exc:
            self.violations.append(f"speak rejected: {exc}")
            body = _error_body("Bad Request", str(exc))
            await ws.send_denial_response(JSONResponse(body, status_code=400))
            return
        self.speak_queries.append(query)
        await ws.accept(subprotocol=subprotocol)
        core = SpeakCore(params, ms_per_char=self.ms_per_char, flush_limit=self.flush_limit)
        session = _SpeakSession(self, ws, core)
        try:
            await session.run()
        except WebSocketDisconnect:
            pass
        finally:
            await session.stop()
            self.violations += core.violations

    # -- speak REST -------------------------------------------------------------------------------
    async def _speak_rest(self, request: Request) -> Response:
        key, _ = self._key_of(request.headers)
        if not self._authorized(key):
            return JSONResponse(_error_body("INVALID_AUTH", "Invalid credentials."), 401)
        query = dict(request.query_params)
        try:
            params = parse_speak_params(query, rest=True)
            body = json.loads(await request.body())
        except SpeakParamError as exc:
            return JSONResponse(_error_body("Bad Request", str(exc)), 400)
        except ValueError:
            return JSONResponse(_error_body("Bad Request", "body is not JSON"), 400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return JSONResponse(_error_body("Bad Request", "text is required"), 400)
        self.rest_requests.append({"query": query, "text": text})
        if self.tts_latency_s:
            await asyncio.sleep(self.tts_latency_s)
        audio = synthesize(
            text, params["encoding"], params["sample_rate"], ms_per_char=self.ms_per_char
        )
        media_type = "application/octet-stream"
        if params["container"] == "wav":
            audio = wav_header(len(audio), params["encoding"], params["sample_rate"]) + audio
            media_type = "audio/wav"
        headers = {
            "dg-request-id": str(uuid.uuid4()),
            "dg-model-name": params["model"],
            "dg-char-count": str(len(text)),
        }
        return Response(audio, media_type=media_type, headers=headers)


class _SpeakSession:
    """Runs one speak websocket: a reader, and a sender task for audio jobs (so Clear can cut)."""

    def __init__(self, emulator: DeepgramEmulator, ws: WebSocket, core: SpeakCore) -> None:
        self.emu = emulator
        self.ws = ws
        self.core = core
        self.jobs: asyncio.Queue[SpeakJob] = asyncio.Queue()
        self.lock = asyncio.Lock()
        self.sender: asyncio.Task[None] | None = None

    async def send_json(self, message: Mapping[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_text(json.dumps(message))

    async def run(self) -> None:
        await self.send_json(self.core.metadata())
        self.sender = asyncio.create_task(self._send_jobs())
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                self.core.violations.append("binary frame sent to /v1/speak")
                continue
            try:
                control = json.loads(message.get("text") or "")
            except ValueError:
                self.core.violations.append("speak text frame is not JSON")
                continue
            self.emu.speak_messages.append(control)
            reply = self.core.control(control, time.monotonic())
            if reply.clear:
                await self._restart_sender()
            for out in reply.messages:
                await self.send_json(out)
            if reply.job is not None:
                self.jobs.put_nowait(reply.job)
            if reply.close:
                await self.jobs.join()
                await self.ws.close(1000)
                return

    async def _restart_sender(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sender
        while not self.jobs.empty():
            self.jobs.get_nowait()
            self.jobs.task_done()
        self.sender = asyncio.create_task(self._send_jobs())

    async def _send_jobs(self) -> None:
        spec_rate = self.core.params["sample_rate"]
        width = 2 if self.core.params["encoding"] == "linear16" else 1
        step = spec_rate * self.emu.chunk_ms // 1000 * width
        while True:
            job = await self.jobs.get()
            try:
                if self.emu.tts_latency_s:
                    await asyncio.sleep(self.emu.tts_latency_s)
                for i in range(0, len(job.audio), step):
                    async with self.lock:
                        await self.ws.send_bytes(job.audio[i : i + step])
                    if self.emu.pace:
                        await asyncio.sleep(self.emu.chunk_ms / 1000 * self.emu.pace)
                await self.send_json({"type": "Flushed", "sequence_id": job.sequence_id})
            finally:
                self.jobs.task_done()

    async def stop(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.sender


async def run(
    *, host: str = "127.0.0.1", port: int = 0, script: Any = None, **options: Any
) -> None:
    """Serve the Deepgram emulator until cancelled; prints its base URL once ready."""
    async with DeepgramEmulator(host=host, port=port, script=script, **options) as emu:
        print(f"deepgram emulator: {emu.base_url}", flush=True)
        await asyncio.Event().wait()
