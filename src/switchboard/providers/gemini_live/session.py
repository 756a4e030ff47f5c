"""Gemini Live provider: the asyncio I/O around :class:`GeminiLiveProtocol`.

Why raw ``websockets`` and not the google-genai SDK's ``client.aio.live``: the SDK forces the
``wss`` scheme on its websocket base URL (``_websocket_base_url``), so it cannot reach a plain
``ws://127.0.0.1:PORT`` emulator; it hides the socket, so we could not open the *next* connection
while the current one still delivers audio (goAway handover), nor buffer and replay input across
a reconnect ourselves; and it would couple our wire format to SDK releases (3.x moved the default
API version to ``v1``). The SDK's types are still used in tests to check every message we send.

Theory of operation::

    connect: open ws (x-goog-api-key header) ─▶ send setup ─▶ wait setupComplete ─▶ drain buffer
             ─▶ reader task + renewal timer (max session: renew before ``renew_after_s``)
    goAway / unexpected close / renewal timer / failed write:
        CONNECTED ─▶ RECONNECTING (emit session.reconnecting{attempt, reason})
           protocol.suspend(): caller audio and tool results are buffered, not dropped
           open a new ws with setup.sessionResumption.handle = latest handle (old ws keeps
           delivering the tail of the current reply meanwhile) ─▶ setupComplete
           ─▶ switch to the new ws, flush the buffer in order; the old ws is closed once its
              model turn is over (or just before the goAway deadline)
        ─▶ CONNECTED (emit session.reconnected{attempt})
        after ``max_reconnect_attempts`` failures (or a 1007/1008 setup rejection):
        emit error{fatal: True} ─▶ FAILED

Malformed server frames raise :class:`RemoteProtocolError` in the protocol; the session logs them,
emits a non-fatal ``error`` event and carries on.

``interrupt(played_ms)`` puts nothing on the wire (Gemini has no truncate; see
:mod:`.protocol`): the server's own activity detection already cut the turn when the caller spoke,
and the rest of the turn's audio is dropped locally. ``response.done`` for such a turn has status
``cancelled``. The websockets handshake debug log never shows the API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from switchboard.audio import StreamConverter
from switchboard.config import Settings
from switchboard.errors import ConfigError, ProviderError, RemoteProtocolError
from switchboard.providers.base import (
    AudioChunk,
    AudioFormat,
    AudioSpec,
    BaseProvider,
    ProviderCapabilities,
    SessionConfig,
    SessionState,
)
from switchboard.providers.events import ErrorReport, ProviderEvent, Reconnected, Reconnecting
from switchboard.providers.gemini_live.events import GoAway, LiveEvent, ToolCallCancelled
from switchboard.providers.gemini_live.protocol import GeminiLiveProtocol
from switchboard.providers.gemini_live.setup import LiveSetup
from switchboard.providers.sockets import close_socket, connect_provider

__all__ = ["GeminiLiveProvider"]

logger = logging.getLogger(__name__)


class _RedactApiKey(logging.Filter):
    """websockets logs handshake headers at DEBUG: hide the ``x-goog-api-key`` value."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() == "x-goog-api-key":
            record.args = (args[0], "<redacted>")
        return True


#: Logger handed to websockets for the connection's frames (``>``/``<`` lines at DEBUG).
wire_logger = logging.getLogger(f"{__name__}.wire")


def _redacting_wire_logger() -> logging.Logger:
    """:data:`wire_logger` with the key filter, attached on first connect (not on import)."""
    if not any(isinstance(f, _RedactApiKey) for f in wire_logger.filters):
        wire_logger.addFilter(_RedactApiKey())
    return wire_logger


Connector = Callable[..., Awaitable[ClientConnection]]
LIVE_PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
FATAL_CLOSE_CODES = frozenset({1007, 1008})
#: The catalogue endpoint this provider speaks to (``providers.yaml`` ``endpoint``).
LIVE_ENDPOINT = "gemini.live"
#: How long a replaced connection may finish its reply when no goAway deadline is known.
RETIRE_GRACE_S = 10.0


class GeminiLiveProvider(BaseProvider):
    """Gemini Live speech-to-speech session (``ProviderType.GEMINI``).

    Args:
        config: session configuration (model id without ``models/``, voice, prompt, tools…),
            or ``None`` to give it to :meth:`connect` instead.
        settings: ``gemini_api_key`` and ``gemini_base_url`` (``ws_url`` derived from it).
        connector: :func:`~switchboard.providers.sockets.connect_provider` (the default), or
            ``websockets.asyncio.client.connect``, or a stand-in with its signature.
        api_version: path version (``v1beta``; the SDK 3.x default is ``v1``).
        max_reconnect_attempts: connection attempts per reconnect before giving up.
        reconnect_backoff_s: first pause between attempts (doubles each time).
        setup_timeout_s: how long to wait for ``setupComplete``.
        renew_after_s: reconnect (resuming) this long after each connect, before the 60-minute
            session limit (``None`` disables).

    Raises:
        ConfigError: no ``GEMINI_API_KEY``; or (here, or in ``connect(config)``) a model that
            the catalogue does not list as a Live model (``endpoint: gemini.live``), such as
            ``gemini-2.5-pro``: the message names the Live models and the pipeline alternative.
    """

    input_batch_ms: ClassVar[int] = 40  # see BaseProvider: one append per two carrier frames
    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities(
        realtime=True,
        multimodal=True,
        audio_formats=(AudioFormat.PCM16,),
        input_sample_rates=(16000,),
        output_sample_rates=(24000,),
        max_session_seconds=3600,
        languages=("en", "es", "fr", "de", "it", "pt", "ja", "hi", "zh"),
        typical_latency_ms=600,
    )

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        settings: Settings,
        connector: Connector | None = None,
        api_version: str = "v1beta",
        max_reconnect_attempts: int = 3,
        reconnect_backoff_s: float = 0.5,
        setup_timeout_s: float = 15.0,
        renew_after_s: float | None = 55 * 60,
    ) -> None:
        super().__init__()
        key = settings.secret("gemini_api_key")
        if not key:
            raise ConfigError("Gemini Live needs GEMINI_API_KEY", missing=("GEMINI_API_KEY",))
        self._key = key
        self._catalog = settings.catalog
        self._url = settings.gemini_ws_url + LIVE_PATH.format(version=api_version)
        self._connector: Connector = connector or connect_provider
        self._max_attempts = max(1, max_reconnect_attempts)
        self._backoff = reconnect_backoff_s
        self._setup_timeout = setup_timeout_s
        self._renew_after = renew_after_s
        self._protocol: GeminiLiveProtocol | None = None
        self._ws: ClientConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._converter: StreamConverter | None = None
        self._go_away_deadline: float | None = None
        self._turn_idle = asyncio.Event()  # set while no model turn is under way
        self._switched = False  # the running reconnect has switched to its new connection
        self._again: str | None = None  # reconnect once more after the running one
        self._turn_idle.set()
        if config is not None:
            self._set_config(config)

    def _adopt_config(self, config: SessionConfig) -> SessionConfig:
        setup = LiveSetup.from_config(config)
        # Refuse a model the Live API does not serve (gemini-2.5-pro...) now, with the Live
        # models and the pipeline alternative named, not mid-ring with a 1008 close at setup.
        self._catalog.session_model(
            "gemini", setup.model, serves=LIVE_ENDPOINT, llm_model=config.extra.get("llm_model")
        )
        self._protocol = GeminiLiveProtocol(setup)
        return config

    @property
    def protocol(self) -> GeminiLiveProtocol:
        """The sans-I/O wire protocol of this session (``ConfigError`` before a config)."""
        if self._protocol is None:
            raise ConfigError(
                "GeminiLiveProvider has no SessionConfig yet: pass one to "
                "create_provider(type, config) or to connect(config)"
            )
        return self._protocol

    @property
    def input_spec(self) -> AudioSpec:
        return AudioSpec(AudioFormat.PCM16, 16000)

    @property
    def output_spec(self) -> AudioSpec:
        return AudioSpec(AudioFormat.PCM16, 24000)

    # -- public extras -------------------------------------------------------------------------
    async def send_text(self, text: str) -> None:
        """Add a user text turn (``clientContent``); the model answers it."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="send text")
        await self._send(self.protocol.send_text(text))

    async def send_caller_text(self, text: str) -> None:
        """A caller input as text (keypad digits): a complete user turn the model answers."""
        await self.send_text(text)

    async def say(self, text: str) -> None:
        """Speak ``text`` as the agent (a "Say exactly" text turn, as the greeting is)."""
        await self.send_text(f"Say exactly: {text}")

    async def add_note(self, text: str, *, respond: bool = False) -> None:
        """A ``clientContent`` turn the caller does not hear; answered now when ``respond``."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="add a note")
        await self._send(self.protocol.send_note(text, respond=respond))

    async def send_image(self, data: bytes, mime_type: str = "image/jpeg") -> None:
        """Show the model an image (``realtimeInput.video`` frame)."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="send an image")
        await self._send(self.protocol.send_image(data, mime_type))

    # -- hooks ---------------------------------------------------------------------------------
    async def _do_connect(self) -> None:
        ws = await self._open()
        self._attach(ws)
        await self._send(self.protocol.history(self.config.history))  # before held audio
        await self._send(self.protocol.drain())
        self._start_renewal()
        if self.config.greeting:
            await self._send(self.protocol.send_text(f"Say exactly: {self.config.greeting}"))

    async def _do_send_audio(self, chunk: AudioChunk) -> None:
        data = chunk.data
        if chunk.spec != self.input_spec:
            if self._converter is None:
                self._converter = StreamConverter(chunk.spec, self.input_spec)
            data = self._converter.process(data)
        if data:
            await self._send(self.protocol.send_audio(data))

    async def _do_function_result(self, call_id: str, result: Any) -> None:
        await self._send(self.protocol.function_result(call_id, result))

    async def _do_interrupt(self, played_ms: int | None) -> None:
        await self._send(self.protocol.interrupt(played_ms))

    async def _do_disconnect(self) -> None:
        current = asyncio.current_task()
        for task in [self._renew_task, self._reconnect_task, *self._tasks]:
            if task is not None and task is not current:
                task.cancel()
        ws, self._ws = self._ws, None
        if ws is not None:
            await self._close_ws(ws)
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- connections ---------------------------------------------------------------------------
    async def _open(self) -> ClientConnection:
        """Connect, send setup, wait for ``setupComplete``.

        Raises:
            ProviderError: connection failure, timeout, or the server closed (``code`` = close
                code; ``fatal`` for 1007/1008, which a retry cannot fix).
        """
        try:
            ws = await self._connector(
                self._url,
                additional_headers={"x-goog-api-key": self._key},
                open_timeout=self._setup_timeout,
                max_size=None,
                # no permessage-deflate: base64 audio barely compresses, and deflating and
                # inflating every 20 ms message was ~9 % of a core at 100 calls (py-spy)
                compression=None,
                logger=_redacting_wire_logger(),
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise ProviderError(f"cannot connect to Gemini Live: {exc}", fatal=False) from exc
        try:
            await ws.send(self.protocol.setup())
            async with asyncio.timeout(self._setup_timeout):
                while not self.protocol.setup_complete:
                    await self._dispatch(self._parse(await ws.recv()))
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            reason = exc.rcvd.reason if exc.rcvd else "no close frame"
            raise ProviderError(
                f"Gemini Live closed the session during setup: {code} {reason}",
                code=str(code),
                fatal=code in FATAL_CLOSE_CODES,
            ) from exc
        except TimeoutError as exc:
            await self._close_ws(ws)
            raise ProviderError("Gemini Live sent no setupComplete", fatal=False) from exc
        except BaseException:  # cancelled (disconnect during a reconnect) or a bug: no leak
            await self._close_ws(ws)
            raise
        logger.info("Gemini Live session ready (model=%s)", self.protocol.setup_config.model)
        return ws

    def _attach(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._spawn(self._read(ws))

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _close_ws(self, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await close_socket(ws)

    async def _retire(self, ws: ClientConnection, deadline: float | None) -> None:
        """Close a replaced connection once its model turn is over (or at the deadline)."""
        loop = asyncio.get_running_loop()
        until = deadline if deadline is not None else loop.time() + RETIRE_GRACE_S
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(until):
                    await self._turn_idle.wait()
        finally:
            await self._close_ws(ws)

    async def _read(self, ws: ClientConnection) -> None:
        reason = "connection closed"
        try:
            async for raw in ws:  # a retired connection still delivers its reply's tail
                await self._dispatch(self._parse(raw))
        except ConnectionClosed:
            pass
        if ws.close_code is not None:
            reason = f"connection closed ({ws.close_code} {ws.close_reason or ''})".strip()
        if ws is self._ws:
            self._schedule_reconnect(reason)

    async def _send(self, messages: list[str]) -> None:
        if not messages:
            return
        async with self._send_lock:
            for i, message in enumerate(messages):
                ws = self._ws
                try:
                    if ws is None:
                        raise ConnectionError("no connection")
                    await ws.send(message)
                except (ConnectionClosed, ConnectionError):
                    self.protocol.requeue(messages[i:])
                    self._schedule_reconnect("write failed")
                    return

    def _parse(self, raw: str | bytes) -> list[LiveEvent]:
        try:
            return self.protocol.receive(raw)
        except RemoteProtocolError as exc:
            logger.warning("Gemini Live: %s", exc)
            self.emit_nowait(ProviderEvent(ErrorReport("protocol_error", str(exc), fatal=False)))
            return []

    # -- events ----------------------------------------------------------------------------------
    async def _dispatch(self, events: list[LiveEvent]) -> None:
        await self._dispatch_events(events)
        if self.protocol.turn_open:
            self._turn_idle.clear()
        else:
            self._turn_idle.set()

    async def _dispatch_events(self, events: list[LiveEvent]) -> None:
        for ev in events:
            for payload in ev.payloads():
                await self.emit(ProviderEvent(payload))
            match ev:
                case GoAway(time_left_s=left):
                    logger.info("Gemini goAway: %.1fs left", left)
                    loop = asyncio.get_running_loop()
                    self._go_away_deadline = loop.time() + max(0.0, left - 0.5)
                    self._schedule_reconnect("goAway")
                case ToolCallCancelled(ids=ids):
                    logger.info("Gemini cancelled function calls %s", ", ".join(ids))
                case _:
                    pass

    # -- reconnection ----------------------------------------------------------------------------
    def _start_renewal(self) -> None:
        if self._renew_task is not None:
            self._renew_task.cancel()
        if self._renew_after is not None:
            self._renew_task = asyncio.create_task(self._renew(self._renew_after))

    async def _renew(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._schedule_reconnect("session renewal")

    def _schedule_reconnect(self, reason: str) -> None:
        """Start a reconnect (at most one runs; a loss of its new connection queues another)."""
        self.protocol.suspend()
        running = self._reconnect_task is not None and not self._reconnect_task.done()
        if running and self._switched:
            self._again = reason  # the new connection failed before the reconnect finished
            return
        if running or self._state is not SessionState.CONNECTED:
            return
        self._reconnect_task = asyncio.create_task(self._reconnect(reason))

    async def _reconnect(self, reason: str | None) -> None:
        while reason is not None and self._state is SessionState.CONNECTED:
            self._again = None
            self._switched = False
            if not await self._reconnect_once(reason):
                return
            reason = self._again

    async def _reconnect_once(self, reason: str) -> bool:
        """One reconnect with bounded attempts; False when the session failed or closed."""
        self._transition(SessionState.RECONNECTING)
        logger.info("Gemini Live reconnecting: %s", reason)
        old = self._ws
        error: ProviderError | None = None
        for attempt in range(1, self._max_attempts + 1):
            await self.emit(ProviderEvent(Reconnecting(attempt, reason)))
            try:
                ws = await self._open()
            except ProviderError as exc:
                error = exc
                logger.warning("Gemini Live reconnect attempt %d failed: %s", attempt, exc)
                if exc.fatal or attempt == self._max_attempts:
                    break
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
                continue
            if self._state is not SessionState.RECONNECTING:  # disconnect() meanwhile
                await self._close_ws(ws)
                return False
            async with self._send_lock:
                self._ws = ws
                self._switched = True
                self._spawn(self._read(ws))
                pending = self.protocol.drain()
            await self._send(pending)
            if old is not None:
                self._spawn(self._retire(old, self._go_away_deadline))
            self._go_away_deadline = None
            self._transition(SessionState.CONNECTED)
            self._start_renewal()
            await self.emit(ProviderEvent(Reconnected(attempt)))
            return True
        if self._renew_task is not None:
            self._renew_task.cancel()
        message = f"Gemini Live could not reconnect: {error}"
        await self.emit(ProviderEvent(ErrorReport("reconnect_failed", message, fatal=True)))
        if old is not None:
            await self._close_ws(old)
        if self._state is SessionState.RECONNECTING:
            self._transition(SessionState.FAILED)
        return False
