"""Deepgram live transcription over a websocket: the I/O side of :class:`ListenProtocol`.

Theory of operation: one *reader* task owns the socket's life. It reads frames into the protocol
and queues the STT events for :meth:`DeepgramSTT.events`. When the socket closes without our
asking (Deepgram closes sockets idle for 10 s with ``NET-0001``; networks drop), it reconnects
— up to ``max_reconnects`` times in a row, with a growing pause — and, holding the send lock,
replays the unacknowledged audio before any new audio, so the recogniser hears the whole call.
Audio given to :meth:`send_audio` while no socket is open is only buffered. A *keep-alive* task
sends ``KeepAlive`` when no audio was sent for ``keepalive_s`` (the docs ask for one every 3–5 s
of silence). A rejected key (HTTP 401) or exhausted reconnects end :meth:`events` with
:class:`ProviderError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from switchboard.config import Settings
from switchboard.errors import ConfigError, ProviderError, RemoteProtocolError
from switchboard.providers.base import AudioSpec
from switchboard.providers.deepgram.listen import ListenOptions, ListenProtocol
from switchboard.providers.pipeline.components import SttConnection, SttEvent
from switchboard.providers.sockets import close_socket, connect_provider

__all__ = ["DeepgramSTT", "deepgram_key"]

logger = logging.getLogger(__name__)

Connector = Callable[..., Any]  # websockets.asyncio.client.connect or a stand-in
_REPLAY_FRAME = 32_000  # bytes per replayed frame (4 s of μ-law 8 kHz)


def deepgram_key(settings: Settings) -> str:
    """The Deepgram API key, or :class:`ConfigError` naming ``DEEPGRAM_API_KEY``."""
    key = settings.secret("deepgram_api_key")
    if not key:
        raise ConfigError("Deepgram needs DEEPGRAM_API_KEY", missing=("DEEPGRAM_API_KEY",))
    return key


class DeepgramSTT:
    """Streaming Deepgram recognition for one call (implements ``SpeechToText``).

    Args:
        settings: supplies ``deepgram_api_key`` and ``deepgram_ws_url``.
        options: query parameters (model, encoding, rate, endpointing…).
        keepalive_s: send ``KeepAlive`` after this much time without audio (``None``: never).
        max_reconnects: consecutive failed reconnects before giving up.
        reconnect_delay_s: first pause before reconnecting (doubles per failed attempt).
        connector: :func:`~switchboard.providers.sockets.connect_provider` (the default), or
            ``websockets.asyncio.client.connect``, or a compatible callable.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        options: ListenOptions | None = None,
        keepalive_s: float | None = 4.0,
        max_reconnects: int = 5,
        reconnect_delay_s: float = 0.1,
        connector: Connector = connect_provider,
    ) -> None:
        self._key = deepgram_key(settings)
        self.options = options or ListenOptions()
        self.url = f"{settings.deepgram_ws_url}/v1/listen?{urlencode(self.options.query())}"
        self.protocol = ListenProtocol(self.options)
        self.keepalive_s = keepalive_s
        self.max_reconnects = max_reconnects
        self.reconnect_delay_s = reconnect_delay_s
        self._connector = connector
        self._ws: ClientConnection | None = None
        self._live = False
        self._closing = False
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[SttEvent | None] = asyncio.Queue()
        self._error: ProviderError | None = None
        self._reader: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._last_send = time.monotonic()
        #: Sockets opened after the first (transparent reconnects).
        self.reconnects = 0

    @property
    def input_spec(self) -> AudioSpec:
        return self.options.input_spec

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the socket; raises :class:`ProviderError` if Deepgram refuses it."""
        self._ws = await self._open()
        self._live = True
        self._reader = asyncio.create_task(self._read_loop(), name="deepgram-listen")
        if self.keepalive_s:
            self._keepalive = asyncio.create_task(self._keepalive_loop(), name="deepgram-keepalive")

    async def close(self) -> None:
        """Send ``CloseStream``, wait briefly for the last results, and close."""
        if self._closing:
            return
        self._closing = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        async with self._lock:
            if self._live and self._ws is not None:
                with contextlib.suppress(ConnectionClosed, OSError):
                    await self._ws.send(self.protocol.close_stream())
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), timeout=2.0)
            self._reader.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await close_socket(self._ws)
        self._live = False
        self._queue.put_nowait(None)

    # -- audio and control ------------------------------------------------------------------------
    async def send_audio(self, data: bytes) -> None:
        """Send caller audio (buffered while reconnecting; never lost)."""
        async with self._lock:
            frame = self.protocol.audio(data)
            if self._live and self._ws is not None:
                try:
                    await self._ws.send(frame)
                    self._last_send = time.monotonic()
                except (ConnectionClosed, OSError):
                    self._live = False  # the reader reconnects and replays it

    async def finalize(self) -> None:
        """Ask Deepgram to finalize the audio so far (``Finalize``)."""
        await self._send_text(self.protocol.finalize())

    async def _send_text(self, text: str) -> None:
        async with self._lock:
            if self._live and self._ws is not None:
                with contextlib.suppress(ConnectionClosed, OSError):
                    await self._ws.send(text)
                    self._last_send = time.monotonic()

    async def events(self) -> AsyncIterator[SttEvent]:
        """Recognition events until :meth:`close`; raises :class:`ProviderError` on failure."""
        while True:
            event = await self._queue.get()
            if event is None:
                if self._error is not None:
                    raise self._error
                return
            yield event

    # -- tasks ------------------------------------------------------------------------------------
    async def _open(self) -> ClientConnection:
        headers = {"Authorization": f"Token {self._key}"}
        try:
            ws: ClientConnection = await self._connector(
                self.url, additional_headers=headers, compression=None, open_timeout=10
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            code = "unauthorized" if status in (401, 403) else f"http_{status}"
            raise ProviderError(
                f"Deepgram refused the listen socket: HTTP {status}", code=code
            ) from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ProviderError(
                f"cannot connect to Deepgram listen: {type(exc).__name__}", code="connect_failed"
            ) from exc
        logger.info("Deepgram listen socket open (model=%s)", self.options.model)
        return ws

    async def _read_loop(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for frame in ws:
                    if isinstance(frame, bytes):
                        logger.debug(
                            "Deepgram listen: unexpected binary frame of %d bytes", len(frame)
                        )
                        continue
                    try:
                        for event in self.protocol.receive(frame):
                            self._queue.put_nowait(event)
                    except RemoteProtocolError as exc:
                        logger.warning("%s", exc)
            except ConnectionClosed:
                pass
            if self._closing:
                return
            logger.info(
                "Deepgram listen socket closed (code=%s reason=%r); reconnecting",
                ws.close_code,
                ws.close_reason,
            )
            self._live = False
            self._queue.put_nowait(SttConnection(False, 1, f"closed {ws.close_code}"))
            try:
                await self._reconnect()
            except ProviderError as exc:
                self._error = exc
                self._queue.put_nowait(None)
                return

    async def _reconnect(self) -> None:
        delay = self.reconnect_delay_s
        for attempt in range(1, self.max_reconnects + 1):
            await asyncio.sleep(delay)
            try:
                ws = await self._open()
            except ProviderError as exc:
                if exc.code == "unauthorized" or attempt == self.max_reconnects:
                    raise
                delay *= 2
                continue
            async with self._lock:
                replay = self.protocol.reconnected()
                try:
                    for i in range(0, len(replay), _REPLAY_FRAME):
                        await ws.send(replay[i : i + _REPLAY_FRAME])
                except ConnectionClosed:
                    delay *= 2
                    continue
                self._ws, self._live = ws, True
                self._last_send = time.monotonic()
            self.reconnects += 1
            self._queue.put_nowait(SttConnection(True, attempt))
            logger.info("Deepgram listen reconnected; replayed %d bytes", len(replay))
            return
        raise ProviderError("Deepgram listen socket could not be restored", code="reconnect_failed")

    async def _keepalive_loop(self) -> None:
        assert self.keepalive_s is not None
        while True:
            await asyncio.sleep(self.keepalive_s / 4)
            if time.monotonic() - self._last_send >= self.keepalive_s:
                await self._send_text(self.protocol.keep_alive())
