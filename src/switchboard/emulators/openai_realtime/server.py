"""The OpenAI Realtime (GA) emulator server: a WebSocket endpoint at ``/v1/realtime``.

Checks ``Authorization: Bearer <key>`` (401 otherwise) and the ``model`` query parameter (400
without it) at the upgrade, like the real endpoint (``docs/wire/openai-realtime.md#connection``;
https://developers.openai.com/api/docs/guides/realtime-websocket), then runs one
:class:`RealtimeConnection` per socket.

Only realtime models (:data:`REALTIME_MODELS`, ``docs/wire/openai-realtime.md#models``) are served.
Any other model is refused the way the service refuses a model that is not for this endpoint: the
upgrade succeeds, then an ``error`` event ``invalid_request_error`` / ``invalid_model`` ("Model
"<id>" is not supported in realtime mode.") and a close with code 4000, reason
``invalid_request_error.invalid_model`` (hurttlocker/o8#2165 saw ``invalid_model: not supported in
realtime mode`` for a non-realtime id; livekit/agents-js#1756 shows the same event and close for
transcription mode). The exact sentence, and that no ``session.created`` comes first, are
UNCONFIRMED; an id that does not exist at all fails later on the real service (``model_not_found``
in a failed ``response.done``), which the emulator does not distinguish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from switchboard.emulators.common import Script, ScriptedTurn
from switchboard.emulators.openai_realtime.connection import RealtimeConnection
from switchboard.emulators.openai_realtime.core import IdMaker

__all__ = ["OpenAIRealtimeEmulator", "run"]

logger = logging.getLogger(__name__)

ScriptLike = Script | Iterable[str | Mapping[str, Any] | ScriptedTurn] | None

#: Models the realtime endpoint serves (the openai SDK's beta and GA session model literals).
REALTIME_MODELS = frozenset(
    {
        "gpt-realtime",
        "gpt-realtime-2025-08-28",
        "gpt-4o-realtime-preview",
        "gpt-4o-realtime-preview-2024-10-01",
        "gpt-4o-realtime-preview-2024-12-17",
        "gpt-4o-realtime-preview-2025-06-03",
        "gpt-4o-mini-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
        "gpt-realtime-mini-2025-12-15",
        "gpt-realtime-1.5",
        "gpt-realtime-2",
        "gpt-realtime-2.1",
        "gpt-realtime-2.1-mini",
        "gpt-audio-1.5",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-10-06",
        "gpt-audio-mini-2025-12-15",
    }
)
INVALID_MODEL_CLOSE = (4000, "invalid_request_error.invalid_model")


class OpenAIRealtimeEmulator:
    """A loopback OpenAI Realtime server for tests and demos.

    Args:
        host: interface to bind.
        port: port to bind (0: any free port; read :attr:`port` after start).
        script: the scripted turns (see :class:`switchboard.emulators.common.Script`).
        echo: echo mode — every appended chunk comes straight back as output audio.
        api_key: the bearer key expected; ``None`` accepts any non-empty key.
        realtime: pace reply audio at playout speed (default: as fast as possible).
        chunk_ms: duration of each ``response.output_audio.delta``.
        ms_per_char: length of the speech-like reply audio per character of text.
        vad_threshold: RMS (0..1) above which caller audio counts as speech.
        drop_after_responses: close every connection (code 1011) after this many responses.
        record: keep every client and server event in :attr:`received` / :attr:`sent`.

    Attributes:
        received: client events received (parsed JSON), all connections, in order.
        sent: server events sent.
        violations: errors sent for client events the real service would refuse.
        connection_count: connections accepted so far.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: ScriptLike = None,
        echo: bool = False,
        api_key: str | None = None,
        realtime: bool = False,
        chunk_ms: int = 100,
        ms_per_char: float = 60.0,
        vad_threshold: float = 0.02,
        drop_after_responses: int | None = None,
        record: bool = True,
    ) -> None:
        self.host = host
        self._port = port
        self.script = script if isinstance(script, Script) else Script.from_obj(script)
        self.echo = echo
        self.api_key = api_key
        self.realtime = realtime
        self.chunk_ms = chunk_ms
        self.ms_per_char = ms_per_char
        self.vad_threshold = vad_threshold
        self.drop_after_responses = drop_after_responses
        self.record = record
        self.ids = IdMaker()
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.violations: list[dict[str, Any]] = []
        self.connection_count = 0
        #: Models refused at connection (not realtime models).
        self.refused_models: list[str] = []
        self.responses_done = 0
        #: failure injection (``fail``): refuse new connections (HTTP 503); send nothing more
        self.refuse_connections = False
        self.silent = False
        #: per connection, in order: the message items the client created — the conversation
        #: it was given — as ``(role, text)``
        self.histories: list[list[tuple[str, str]]] = []
        self._conns: set[RealtimeConnection] = set()
        self._server: Server | None = None
        self._drops: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await serve(
            self._handler, self.host, self._port, process_request=self._check, max_size=None
        )
        self._port = self._server.sockets[0].getsockname()[1] if self._server.sockets else 0

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> OpenAIRealtimeEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, usable as ``OPENAI_BASE_URL``."""
        return f"http://{self.host}:{self._port}/v1"

    # -- cues --------------------------------------------------------------------------------
    async def fail(self, mode: str) -> None:
        """Cue a provider failure: ``"drop"`` closes every connection (1011) and refuses new
        ones (HTTP 503) from now on; ``"silent"`` keeps connections open and reading but sends
        no more server events."""
        if mode == "silent":
            self.silent = True
            return
        self.refuse_connections = True
        await self.drop_connections()

    async def drop_connections(self, code: int = 1011) -> None:
        """Close every open connection abnormally (as a server fault would)."""
        for conn in list(self._conns):
            await conn.ws.close(code, "emulated drop")

    async def inject(self, text: str) -> None:
        """Send a raw frame (e.g. garbage, or a server ``error`` event) to every connection."""
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.ws.send(text)

    def response_finished(self) -> None:
        """Called by connections after each ``response.done`` (drives ``drop_after_responses``)."""
        self.responses_done += 1
        if self.drop_after_responses and self.responses_done == self.drop_after_responses:
            task = asyncio.get_running_loop().create_task(self.drop_connections())
            self._drops.add(task)
            task.add_done_callback(self._drops.discard)

    # -- server ------------------------------------------------------------------------------
    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path.rstrip("/") not in ("/v1/realtime", "/realtime"):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        auth = request.headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        if not key or (self.api_key is not None and key != self.api_key):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided\n")
        if self.refuse_connections:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service unavailable\n")
        if not parse_qs(url.query).get("model"):
            return connection.respond(HTTPStatus.BAD_REQUEST, "Missing model query parameter\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        model = parse_qs(urlsplit(ws.request.path).query)["model"][0]
        if model not in REALTIME_MODELS:
            await self._refuse_model(ws, model)
            return
        conn = RealtimeConnection(self, ws, model)
        self.histories.append(conn.given)
        self.connection_count += 1
        self._conns.add(conn)
        try:
            await conn.serve()
        except ConnectionClosed:  # a drop (``fail``, ``drop_connections``) or the client left
            pass
        except Exception:  # one bad connection must not take the emulator down
            logger.exception("openai emulator: connection failed")
        finally:
            self._conns.discard(conn)

    async def _refuse_model(self, ws: ServerConnection, model: str) -> None:
        self.refused_models.append(model)
        error = {
            "type": "invalid_request_error",
            "code": "invalid_model",
            "message": f'Model "{model}" is not supported in realtime mode.',
            "param": None,
            "event_id": None,
        }
        event = {"type": "error", "event_id": self.ids("event"), "error": error}
        if self.record:
            self.sent.append(event)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps(event))
        await ws.close(*INVALID_MODEL_CLOSE)


async def run(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    script: ScriptLike = None,
    echo: bool = False,
    **options: Any,
) -> None:
    """Serve the emulator until cancelled; prints one line with its base URL."""
    options.setdefault("record", False)
    async with OpenAIRealtimeEmulator(
        host=host, port=port, script=script, echo=echo, **options
    ) as emu:
        print(f"OpenAI Realtime emulator listening on {emu.base_url}", flush=True)
        await asyncio.Event().wait()
