"""OpenAI Realtime (GA) provider: the thin asyncio/websockets layer over :class:`RealtimeProtocol`.

Connects to ``{OPENAI_BASE_URL as ws}/realtime?model=<model>`` with ``Authorization: Bearer``
and no ``OpenAI-Beta`` header (GA dialect; vendor guide
https://developers.openai.com/api/docs/guides/realtime-websocket,
``docs/wire/openai-realtime.md#connection``).

Theory of operation: one supervisor task owns the connection. It reads frames into the protocol
object, emits the events and sends whatever the protocol wants sent. When the socket closes
without :meth:`disconnect`, the supervisor reconnects with exponential backoff (bounded by
``max_reconnect_attempts``), emitting ``session.reconnecting``/``session.reconnected``; the
protocol re-sends ``session.update`` and replays the conversation. Audio sent meanwhile is held
by the protocol. After the bound: a fatal ``error`` event and state FAILED. A renewal timer
reconnects the same way ``renew_margin_s`` before ``max_session_seconds`` (providers.yaml), at
a moment when no response is active, so a long call is never dropped at the 30-minute limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, ClassVar
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from switchboard.audio import StreamConverter
from switchboard.config import Settings
from switchboard.errors import ConfigError, ProviderError, RemoteProtocolError
from switchboard.flags import Flag
from switchboard.providers.base import (
    AudioChunk,
    AudioFormat,
    AudioSpec,
    BaseProvider,
    ProviderCapabilities,
    SessionConfig,
    SessionState,
)
from switchboard.providers.events import (
    AudioOutput,
    ErrorReport,
    ProviderEvent,
    Reconnected,
    Reconnecting,
    SpeechStarted,
)
from switchboard.providers.openai_realtime.gate import ResponseGate
from switchboard.providers.openai_realtime.protocol import RealtimeProtocol
from switchboard.providers.sockets import close_socket, connect_provider

__all__ = ["OpenAIRealtimeProvider"]

logger = logging.getLogger(__name__)

#: The catalogue endpoint this provider speaks to (``providers.yaml`` ``endpoint``).
REALTIME_ENDPOINT = "openai.realtime"


class OpenAIRealtimeProvider(BaseProvider):
    """A :class:`RealtimeEndToEndProvider` speaking the OpenAI Realtime GA WebSocket protocol.

    Args:
        config: the session configuration (see ``messages.session_update`` for the mapping;
            ``temperature`` is dropped because GA sessions have no such field), or ``None`` to
            give it to :meth:`connect` instead.
        settings: supplies ``openai_ws_url``, the API key and providers.yaml limits.
        connect_timeout_s: time allowed to open the socket and get ``session.updated``.
        max_reconnect_attempts: reconnect attempts after an unexpected close before FAILED.
        backoff_base_s: first reconnect delay; doubles per attempt (capped at ``backoff_max_s``).
        max_session_seconds: session limit (default providers.yaml ``max_session_seconds``).
        renew_margin_s: renew the session this long before the limit.

    Raises:
        ConfigError: (here, or in ``connect(config)``) a model the catalogue does not list as a
            realtime model (``endpoint: openai.realtime``); the message names those it does.
    """

    input_batch_ms: ClassVar[int] = 40  # see BaseProvider: one append per two carrier frames
    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities(
        audio_formats=(AudioFormat.PCM16, AudioFormat.ULAW, AudioFormat.ALAW),
        input_sample_rates=(24000, 8000),
        output_sample_rates=(24000, 8000),
        max_session_seconds=1800,
    )

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        settings: Settings,
        connect_timeout_s: float = 10.0,
        max_reconnect_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        max_session_seconds: float | None = None,
        renew_margin_s: float = 60.0,
    ) -> None:
        super().__init__()
        entry = settings.catalog.providers.get("openai")
        self._default_model = entry.default_model if entry else "gpt-realtime"
        if max_session_seconds is None:
            max_session_seconds = (entry.max_session_seconds if entry else None) or 1800
        self._ws_base = settings.openai_ws_url
        self._catalog = settings.catalog
        self._url = ""
        self._key = settings.secret("openai_api_key") or ""
        self._protocol: RealtimeProtocol | None = None
        self._converter: StreamConverter | None = None
        self._connect_timeout = connect_timeout_s
        self._max_attempts = max_reconnect_attempts
        self._backoff = (backoff_base_s, backoff_max_s)
        self._session_limit = max_session_seconds
        self._renew_margin = renew_margin_s
        self._ws: ClientConnection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None  # a renewal under way
        self._renew_timer: asyncio.TimerHandle | None = None  # when the next one is due
        self._configured = Flag()
        self._idle = Flag()
        self._renewing = False
        self._audible_until = 0.0  # when agent audio received so far has played (monotonic s)
        if config is not None:
            self._set_config(config)

    def _adopt_config(self, config: SessionConfig) -> SessionConfig:
        model = config.model_id or self._default_model
        # The realtime endpoint refuses other models (invalid_model, close 4000): say so now.
        self._catalog.session_model(
            "openai", model, serves=REALTIME_ENDPOINT, llm_model=config.extra.get("llm_model")
        )
        self._url = f"{self._ws_base}/realtime?{urlencode({'model': model})}"
        self._protocol = RealtimeProtocol(config, model=model)
        self._converter = None
        return config

    @property
    def _proto(self) -> RealtimeProtocol:
        if self._protocol is None:
            raise ConfigError(
                "OpenAIRealtimeProvider has no SessionConfig yet: pass one to "
                "create_provider(type, config) or to connect(config)"
            )
        return self._protocol

    @property
    def input_spec(self) -> AudioSpec:
        return self._proto.spec

    @property
    def output_spec(self) -> AudioSpec:
        return self._proto.spec

    # -- hooks -------------------------------------------------------------------------------
    async def _do_connect(self) -> None:
        self._ws = await self._dial()
        await self._send(self._proto.start())
        self._supervisor = asyncio.create_task(self._supervise(), name="openai-realtime")
        try:
            await asyncio.wait_for(self._configured.wait(), self._connect_timeout)
        except TimeoutError as exc:
            await self._stop_tasks()
            raise ProviderError("OpenAI Realtime: no session.updated in time") from exc
        if self._state is not SessionState.CONNECTING:  # failed while configuring
            raise ProviderError("OpenAI Realtime: session ended while configuring")
        logger.info("openai realtime: connected (%s)", self._proto.spec.format)

    async def _do_send_audio(self, chunk: AudioChunk) -> None:
        data, spec = chunk.data, self._proto.spec
        # (compared field by field: building chunk.spec per 20 ms frame showed in profiles)
        if chunk.format is not spec.format or chunk.sample_rate != spec.sample_rate:
            # e.g. the seed's PCM16 16 kHz: the wire wants 24 kHz
            if self._converter is None or self._converter.source != chunk.spec:
                self._converter = StreamConverter(chunk.spec, self._proto.spec)
            data = self._converter.process(data)
        if data:
            await self._send(self._proto.send_audio(data))

    async def _do_function_result(self, call_id: str, result: Any) -> None:
        await self._send(self._proto.function_result(call_id, result))

    async def say(self, text: str) -> None:
        """Speak ``text`` as the agent (after any response in progress)."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="say")
        await self._send(self._proto.say(text))

    async def add_note(self, text: str, *, respond: bool = False) -> None:
        """A system message the caller does not hear; answered now when ``respond``."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="add a note")
        await self._send(self._proto.note(text, respond=respond))

    async def send_caller_text(self, text: str) -> None:
        """A caller input as text (keypad digits): a user item, then a response."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="send text")
        await self._send(self._proto.caller_text(text))

    async def _do_interrupt(self, played_ms: int | None) -> None:
        self._audible_until = 0.0  # the bridge cleared the caller's buffer
        await self._send(self._proto.interrupt(played_ms))

    async def _do_disconnect(self) -> None:
        await self._stop_tasks()
        logger.info("openai realtime: disconnected")

    # -- I/O ---------------------------------------------------------------------------------
    async def _dial(self) -> ClientConnection:
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            return await asyncio.wait_for(
                # No permessage-deflate: base64 audio barely compresses, and deflating every
                # 20 ms append cost ~10 % of a server core at 50 calls (bench/capacity.py).
                connect_provider(
                    self._url, additional_headers=headers, max_size=None, compression=None
                ),
                self._connect_timeout,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ProviderError(
                f"OpenAI Realtime refused the connection (HTTP {status})",
                code=f"http_{status}",
                fatal=status in (401, 403, 404),
            ) from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ProviderError(f"OpenAI Realtime: cannot connect: {exc}") from exc

    async def _send(self, texts: list[str]) -> None:
        ws = self._ws
        for text in texts:
            if ws is None:
                logger.debug("> dropped (no connection), %d bytes", len(text))
                continue
            logger.debug("> %d bytes", len(text))
            try:
                await ws.send(text)
            except ConnectionClosed:
                logger.debug("> dropped (connection closed), %d bytes", len(text))
                return

    async def _stop_tasks(self) -> None:
        self._cancel_renewal_timer()
        for task in (self._renewer, self._supervisor):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._ws is not None:
            await close_socket(self._ws)
            self._ws = None

    async def _supervise(self) -> None:
        try:
            self._start_renewer()
            while True:
                assert self._ws is not None
                await self._read(self._ws)
                if self._state in (SessionState.DISCONNECTING, SessionState.CLOSED):
                    return
                if not await self._reconnect():
                    return
        except Exception as exc:  # a bug here must end this session, never hang it
            logger.exception("openai realtime: session supervisor failed")
            await self.emit(ProviderEvent(ErrorReport("internal_error", repr(exc), fatal=True)))
            if self._state in (SessionState.CONNECTED, SessionState.RECONNECTING):
                self._transition(SessionState.FAILED)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                await self._handle(frame)
        except ConnectionClosed as exc:
            logger.info("openai realtime: connection closed (%s)", exc)

    async def _handle(self, frame: str | bytes) -> None:
        logger.debug("< %d bytes", len(frame))
        try:
            events = self._proto.receive(frame)
        except RemoteProtocolError as exc:
            logger.warning("openai realtime: bad server frame: %s", exc)
            await self.emit(ProviderEvent(ErrorReport("protocol_error", str(exc), fatal=False)))
            return
        gate = self._proto.gate
        for event in events:
            if gate is not None:
                self._watch_overlap(gate, event)
            await self.emit(event)
        await self._send(self._proto.data_to_send())
        if self._proto.configured:
            self._configured.set()
        if self._proto.active_response_id is None:
            self._idle.set()
        else:
            self._idle.clear()

    def _watch_overlap(self, gate: ResponseGate, event: ProviderEvent) -> None:
        """Tell the gate whether caller speech began over agent audio (playout estimated:
        the bridge plays agent audio in real time from when it arrives)."""
        now = time.monotonic()
        match event.data:
            case AudioOutput(chunk=chunk):
                start = max(self._audible_until, now)
                self._audible_until = start + chunk.duration_ms / 1000.0
            case SpeechStarted(item_id=item_id) if item_id is not None:
                gate.speech_started(item_id, overlapped=now < self._audible_until)
            case _:
                pass

    async def _reconnect(self) -> bool:
        reason = "session renewal" if self._renewing else "connection lost"
        self._renewing = False
        self._proto.connection_lost()  # hold caller audio until the new session is configured
        if self._state is SessionState.CONNECTED:
            self._transition(SessionState.RECONNECTING)
        self._ws = None
        self._configured.clear()
        for attempt in range(1, self._max_attempts + 1):
            await self.emit(ProviderEvent(Reconnecting(attempt, reason)))
            if attempt > 1 or reason != "session renewal":
                delay = min(self._backoff[0] * 2 ** (attempt - 1), self._backoff[1])
                await asyncio.sleep(delay)
            try:
                ws = await self._dial()
            except ProviderError as exc:
                logger.warning("openai realtime: reconnect %d failed: %s", attempt, exc)
                if exc.fatal and exc.code is not None:
                    break
                continue
            self._ws = ws
            await self._send(self._proto.restore())
            if self._state is SessionState.RECONNECTING:
                self._transition(SessionState.CONNECTED)
            await self.emit(ProviderEvent(Reconnected(attempt)))
            self._start_renewer()
            return True
        self._cancel_renewal_timer()
        if self._renewer is not None:
            self._renewer.cancel()
        message = f"OpenAI Realtime: gave up after {self._max_attempts} reconnect attempts"
        await self.emit(ProviderEvent(ErrorReport("reconnect_failed", message, fatal=True)))
        if self._state in (SessionState.RECONNECTING, SessionState.CONNECTING):
            self._transition(SessionState.FAILED)
        return False

    def _start_renewer(self) -> None:
        # A loop timer until the renewal is due, not a task sleeping for half an hour: one
        # task and its frame less per call for the whole call (bench/capacity.py memory).
        if self._renewer is not None and not self._renewer.done():
            self._renewer.cancel()
        self._cancel_renewal_timer()
        wait = max(0.0, self._session_limit - self._renew_margin)
        loop = asyncio.get_running_loop()
        self._renew_timer = loop.call_later(wait, self._renewal_due, self._ws)

    def _cancel_renewal_timer(self) -> None:
        if self._renew_timer is not None:
            self._renew_timer.cancel()
            self._renew_timer = None

    def _renewal_due(self, ws: ClientConnection | None) -> None:
        self._renew_timer = None
        if self._state in (SessionState.DISCONNECTING, SessionState.CLOSED, SessionState.FAILED):
            return
        self._renewer = asyncio.get_running_loop().create_task(self._renew(ws), name="openai-renew")

    async def _renew(self, ws: ClientConnection | None) -> None:
        with contextlib.suppress(TimeoutError):  # renew between responses when possible
            await asyncio.wait_for(self._idle.wait(), self._renew_margin * 0.8)
        if ws is None or ws is not self._ws:
            return
        logger.warning(
            "openai realtime: renewing session before the %.0f s limit", self._session_limit
        )
        self._renewing = True
        self._proto.connection_lost()
        await close_socket(ws, 1000, "session renewal")
