"""One loopback server emulating Gemini: the Live websocket and REST ``streamGenerateContent``.

Both services share one port (Starlette on uvicorn), so ``GeminiEmulator.base_url`` works as
``GEMINI_BASE_URL`` for the Live provider (``ws://…/ws/google.ai.generativelanguage.v1beta.
GenerativeService.BidiGenerateContent``) and the text LLM client
(``http://…/v1beta/models/{model}:streamGenerateContent?alt=sse``) at once::

    async with GeminiEmulator(script=[{"caller": "hi", "say": "Hello!"}]) as emu:
        settings = load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url)
        ...
    assert not emu.violations
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from switchboard.emulators.common import Script, ScriptedTurn
from switchboard.emulators.gemini.live import LiveService
from switchboard.emulators.gemini.rest import RestCore, RestReply
from switchboard.emulators.loopback import LoopbackServer

__all__ = ["GeminiEmulator", "run"]

logger = logging.getLogger(__name__)

LIVE_PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
TurnSpec = str | Mapping[str, Any] | ScriptedTurn


class GeminiEmulator:
    """Gemini Live + REST on ``127.0.0.1:port`` (port 0 picks a free one).

    Args:
        host: address to bind.
        port: port to bind (0: any free port; read :attr:`port` after start).
        script: turns for both services (each keeps its own position).
        api_key: the key clients must present (``None``: any non-empty key).
        models: narrow the models this key may use (``None``: all the emulator knows); either
            way Live serves only Live models and REST only text models (:mod:`.models`), as
            the service does.
        speed: Live reply pacing, ×realtime (``realtime=False`` means as fast as possible).
        realtime: pace Live replies at ``speed``; False sends them without waiting.
        rest_chunk_delay_s: pause between SSE chunks (to test cancellation mid-stream).
        rest_call_ids: give REST ``functionCall`` parts an ``id``.
        go_away_after_s: send ``goAway`` this long after each Live setup (``None``: only on cue).
        binary_frames: send Live server JSON as binary frames, as Google does.
        echo: echo mode (for load tests) — every caller audio chunk comes straight back as
            model audio (16 kHz in, 24 kHz out), with no voice detection and no script.
        record: keep every client message in ``live.received`` (off for long echo runs).
        ssl_certfile: serve TLS (``https``/``wss``) with this certificate — the google-genai
            SDK's Live client only speaks ``wss``.
        ssl_keyfile: the certificate's private key.

    Attributes:
        live: the Live service (``live.violations``, ``live.received``, ``live.audio_bytes``…).
        rest: the REST core (``rest.violations``, ``rest.requests``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Iterable[TurnSpec] | None = None,
        api_key: str | None = None,
        models: Collection[str] | None = None,
        speed: float = 1.0,
        realtime: bool = True,
        rest_chunk_delay_s: float = 0.0,
        rest_call_ids: bool = True,
        go_away_after_s: float | None = None,
        binary_frames: bool = True,
        echo: bool = False,
        record: bool = True,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        turns = list(script or [])
        self.host = host
        self._port = port
        self.rest = RestCore(
            script=Script.from_obj(turns), api_key=api_key, models=models, call_ids=rest_call_ids
        )
        self.live = LiveService(
            turns=turns,
            api_key=api_key,
            models=models,
            speed=speed if realtime else 0.0,
            go_away_after_s=go_away_after_s,
            binary_frames=binary_frames,
            echo=echo,
            record=record,
        )
        self.rest_chunk_delay_s = rest_chunk_delay_s
        self._ssl = (ssl_certfile, ssl_keyfile)
        #: REST streams whose client went away before the last chunk.
        self.rest_streams_aborted = 0
        self._server: LoopbackServer | None = None

    # -- recorded state ------------------------------------------------------------------------
    @property
    def violations(self) -> list[str]:
        """Protocol violations seen by either service."""
        return [*self.live.violations, *self.rest.violations]

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` (``https`` with TLS) — set it as ``GEMINI_BASE_URL``."""
        scheme = "https" if self._ssl[0] else "http"
        return f"{scheme}://{self.host}:{self._port}"

    # -- lifecycle -----------------------------------------------------------------------------
    def app(self) -> Starlette:
        """The ASGI app serving both services."""
        return Starlette(
            routes=[
                Route("/{version}/models/{target}", self._rest_endpoint, methods=["POST"]),
                WebSocketRoute(LIVE_PATH, self._live_endpoint),
            ]
        )

    async def __aenter__(self) -> GeminiEmulator:
        self._server = LoopbackServer(
            self.app(),
            host=self.host,
            port=self._port,
            lifespan="off",
            ssl_certfile=self._ssl[0],
            ssl_keyfile=self._ssl[1],
        )
        await self._server.__aenter__()
        self._port = self._server.port
        logger.info("Gemini emulator on %s", self.base_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.live.close_all()
        if self._server is not None:
            await self._server.aclose()

    # -- REST ------------------------------------------------------------------------------------
    async def _rest_endpoint(self, request: Request) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        reply: RestReply = self.rest.handle(
            model=model,
            method=method,
            key=key,
            raw=await request.body(),
            version=request.path_params["version"],
        )
        if reply.error is not None:
            return JSONResponse(reply.error, status_code=reply.status)
        if request.query_params.get("alt") != "sse":
            return JSONResponse(reply.chunks)
        return StreamingResponse(self._sse(reply.chunks), media_type="text/event-stream")

    async def _sse(self, chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        sent = 0
        try:
            for chunk in chunks:
                if sent and self.rest_chunk_delay_s:
                    await asyncio.sleep(self.rest_chunk_delay_s)
                yield f"data: {json.dumps(chunk)}\r\n\r\n".encode()
                sent += 1
        finally:
            if sent < len(chunks):
                self.rest_streams_aborted += 1

    # -- Live ------------------------------------------------------------------------------------
    async def _live_endpoint(self, websocket: WebSocket) -> None:
        await self.live.serve(websocket, version=websocket.path_params["version"])


async def run(
    *, host: str = "127.0.0.1", port: int = 0, script: Any = None, **options: Any
) -> None:
    """Serve the Gemini emulator until cancelled; prints its base URL once ready."""
    async with GeminiEmulator(host=host, port=port, script=script, **options) as emu:
        print(f"gemini emulator: {emu.base_url}", flush=True)
        await asyncio.Event().wait()
