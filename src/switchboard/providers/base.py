"""The seed's provider types and protocols.

Every voice provider, whatever its wire protocol, looks the same to the rest of switchboard:

* it is configured by a :class:`SessionConfig`, given when it is created or to ``connect``;
* caller audio goes in as :class:`AudioChunk` objects through ``send_audio``;
* everything that happens comes out of ``receive_events`` as :class:`ProviderEvent` objects whose
  ``data`` is one typed payload per :class:`ProviderEventType`, readable as the seed's mapping
  too (``event.data["audio"]``);
* the bridge answers tool calls with ``handle_function_result`` and cuts the agent off with
  ``interrupt(played_ms)``.

The value types are defined in :mod:`switchboard.providers.types`, the events and their payloads
in :mod:`switchboard.providers.events`, the audio vocabulary in :mod:`switchboard.media` and the
carrier protocol in :mod:`switchboard.telephony.base`; this module re-exports them under the
seed's import path.

Theory of operation of :class:`BaseProvider`'s lifecycle (legal transitions only)::

    DISCONNECTED ─connect()─▶ CONNECTING ─ok─▶ CONNECTED ─disconnect()─▶ DISCONNECTING ─▶ CLOSED
                                  │              │   ▲                                 ▲
                                  │ fail         │   │ restored                        │
                                  ▼              ▼   │                                 │
                                FAILED ◀─give up─ RECONNECTING ─disconnect()───────────┘

``FAILED`` and ``CLOSED`` are terminal: a provider object serves one session. Every transition
emits nothing by itself; subclasses emit ``session.reconnecting`` or ``error`` events as needed.
The configuration can be replaced only while DISCONNECTED (``connect(config)``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Protocol, runtime_checkable

from switchboard.errors import ConfigError, InvalidStateTransition, UnsupportedOperation
from switchboard.media import AudioChunk, AudioFormat, AudioSpec, Usage
from switchboard.providers.events import ProviderEvent, ProviderEventType
from switchboard.providers.types import (
    ConfigDefaults,
    ProviderCapabilities,
    SessionConfig,
    SessionState,
)
from switchboard.telephony.base import TelephonyAdapter

__all__ = [
    "AudioChunk",
    "AudioFormat",
    "AudioSpec",
    "BaseProvider",
    "ConfigDefaults",
    "ProviderCapabilities",
    "ProviderEvent",
    "ProviderEventType",
    "RealtimeEndToEndProvider",
    "SegmentedVoiceProvider",
    "SessionConfig",
    "SessionState",
    "TelephonyAdapter",
    "Usage",
    "disconnect_quietly",
]

logger = logging.getLogger(__name__)

_LEGAL: dict[SessionState, frozenset[SessionState]] = {
    SessionState.DISCONNECTED: frozenset({SessionState.CONNECTING, SessionState.CLOSED}),
    SessionState.CONNECTING: frozenset(
        {SessionState.CONNECTED, SessionState.FAILED, SessionState.DISCONNECTING}
    ),
    SessionState.CONNECTED: frozenset(
        {SessionState.RECONNECTING, SessionState.DISCONNECTING, SessionState.FAILED}
    ),
    SessionState.RECONNECTING: frozenset(
        {SessionState.CONNECTED, SessionState.FAILED, SessionState.DISCONNECTING}
    ),
    SessionState.DISCONNECTING: frozenset({SessionState.CLOSED, SessionState.FAILED}),
    SessionState.CLOSED: frozenset(),
    SessionState.FAILED: frozenset({SessionState.CLOSED}),
}


@runtime_checkable
class RealtimeEndToEndProvider(Protocol):
    """A speech-to-speech provider (OpenAI Realtime, Gemini Live) behind one session."""

    capabilities: ClassVar[ProviderCapabilities]

    @property
    def state(self) -> SessionState: ...

    @property
    def config(self) -> SessionConfig:
        """The session configuration (``ConfigError`` while none has been given)."""
        ...

    @property
    def input_spec(self) -> AudioSpec:
        """The audio format ``send_audio`` expects (the bridge converts into it)."""
        ...

    @property
    def output_spec(self) -> AudioSpec:
        """The audio format of ``audio.output`` chunks."""
        ...

    async def connect(self, config: SessionConfig | None = None) -> None:
        """Open the session with ``config``, or with the one given at creation when omitted."""
        ...

    async def send_audio(self, chunk: AudioChunk) -> None: ...

    def receive_events(self) -> AsyncIterator[ProviderEvent]: ...

    async def handle_function_result(self, call_id: str, result: Any) -> None: ...

    async def interrupt(self, played_ms: int | None = None) -> None: ...

    async def disconnect(self) -> None: ...


@runtime_checkable
class SegmentedVoiceProvider(RealtimeEndToEndProvider, Protocol):
    """An STT → LLM → TTS pipeline that looks like a realtime provider from outside."""

    async def say(self, text: str) -> None:
        """Speak ``text`` as the agent (greeting, apology), adding it to the history."""
        ...


class BaseProvider(abc.ABC):
    """Shared lifecycle for providers: enforced state machine and a bounded event queue.

    Subclasses implement the ``_do_*`` hooks and call :meth:`emit` from their receive loop.
    Public methods check the state first, so misuse raises :class:`InvalidStateTransition`
    instead of writing to a closed socket.

    The configuration comes either at creation (``Provider(config)``, then ``connect()``) or
    with ``connect(config)``, which replaces any given at creation. Subclasses that derive state
    from the configuration (a wire protocol, audio formats, STT/TTS parts) override
    :meth:`_adopt_config`, pass no configuration to ``super().__init__`` and call
    :meth:`_set_config` at the end of their own ``__init__``.

    Attributes:
        config_defaults: what :meth:`connect` fills into a configuration that leaves ``model_id``
            or ``voice`` unset (the registry sets the catalogue's defaults here).
    """

    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities()
    #: Bound on undelivered events; when full, ``emit`` waits (backpressure on the socket reader).
    event_queue_size: ClassVar[int] = 512
    #: How much caller audio the call bridge gathers into one :meth:`send_audio` (ms; 0: each
    #: carrier frame as it comes). A remote provider pays a message per send (JSON, base64, a
    #: masked WebSocket frame, the server's reply); 40 ms halves that against the carrier's 20
    #: ms frames for at most 20 ms more input latency (LiveKit Agents sends 100 ms chunks).
    input_batch_ms: ClassVar[int] = 0

    def __init__(self, config: SessionConfig | None = None) -> None:
        self._config: SessionConfig | None = config
        self.config_defaults = ConfigDefaults()
        self._state = SessionState.DISCONNECTED
        self._events: asyncio.Queue[ProviderEvent | None] = asyncio.Queue(self.event_queue_size)
        self._closed_event = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def config(self) -> SessionConfig:
        """The session configuration.

        Raises:
            ConfigError: none was given yet (``create_provider(type)`` before ``connect(config)``).
        """
        if self._config is None:
            raise ConfigError(
                f"{type(self).__name__} has no SessionConfig yet: pass one to "
                "create_provider(type, config) or to connect(config)"
            )
        return self._config

    def _set_config(self, config: SessionConfig) -> None:
        """Adopt ``config`` (see :meth:`_adopt_config`); only before the session is opened."""
        self._require(SessionState.DISCONNECTED, action="change the session configuration")
        self._config = self._adopt_config(config)

    def _adopt_config(self, config: SessionConfig) -> SessionConfig:
        """Hook: derive per-configuration state from ``config``; returns the config to keep.

        Called at creation and again by ``connect(config)``, always while DISCONNECTED, so what
        an earlier configuration built was never started. The default keeps ``config`` as is.
        """
        return config

    @property
    def input_spec(self) -> AudioSpec:
        return AudioSpec(AudioFormat.PCM16, 24000)

    @property
    def output_spec(self) -> AudioSpec:
        return AudioSpec(AudioFormat.PCM16, 24000)

    def _transition(self, new: SessionState) -> None:
        if new not in _LEGAL[self._state]:
            raise InvalidStateTransition(
                f"{type(self).__name__}: illegal transition {self._state} -> {new}"
            )
        logger.debug("%s: %s -> %s", type(self).__name__, self._state, new)
        self._state = new
        if new in (SessionState.CLOSED, SessionState.FAILED):
            self._end_events()

    def _require(self, *states: SessionState, action: str) -> None:
        if self._state not in states:
            raise InvalidStateTransition(
                f"{type(self).__name__}: cannot {action} while {self._state}"
            )

    # -- events --------------------------------------------------------------------------------
    async def emit(self, event: ProviderEvent) -> None:
        """Queue ``event`` for ``receive_events`` (waits while the queue is full)."""
        if not self._closed_event:
            await self._events.put(event)

    def emit_nowait(self, event: ProviderEvent) -> bool:
        """Queue ``event`` if there is room; returns False (and logs) when it was dropped."""
        if self._closed_event:
            return False
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("%s: event queue full, dropped %s", type(self).__name__, event.type)
            return False
        return True

    def _end_events(self) -> None:
        if self._closed_event:
            return
        self._closed_event = True
        # The sentinel must get in even when the queue is full: drop the oldest event for it.
        while True:
            try:
                self._events.put_nowait(None)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._events.get_nowait()

    async def receive_events(self) -> AsyncIterator[ProviderEvent]:
        """Yield events until the session is closed or failed."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    # -- public operations ---------------------------------------------------------------------
    async def connect(self, config: SessionConfig | None = None) -> None:
        """Open the session; returns once the provider is configured and ready for audio.

        Args:
            config: the session configuration (the seed's ``provider.connect(config)``); it
                replaces any given at creation. Unset ``model_id``/``voice`` are filled from
                :attr:`config_defaults`. Omit it to use the configuration given at creation.

        Raises:
            ConfigError: no configuration was given, here or at creation.
            InvalidStateTransition: the provider is not DISCONNECTED (a provider object serves
                one session).
        """
        if config is not None:
            self._set_config(self.config_defaults.fill(config))
        elif self._config is None:
            self._require(SessionState.DISCONNECTED, action="connect")
            raise ConfigError(
                f"{type(self).__name__}.connect() needs a SessionConfig: pass one to "
                "connect(config) or to create_provider(type, config)"
            )
        self._transition(SessionState.CONNECTING)
        try:
            await self._do_connect()
        except BaseException:
            if self._state is SessionState.CONNECTING:
                self._transition(SessionState.FAILED)
            raise
        if self._state is SessionState.CONNECTING:
            self._transition(SessionState.CONNECTED)

    async def send_audio(self, chunk: AudioChunk) -> None:
        """Send caller audio in :attr:`input_spec` (buffered by subclasses while reconnecting)."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="send audio")
        await self._do_send_audio(chunk)

    async def handle_function_result(self, call_id: str, result: Any) -> None:
        """Return a tool's result to the model, which then continues the response."""
        self._require(
            SessionState.CONNECTED, SessionState.RECONNECTING, action="return a function result"
        )
        await self._do_function_result(call_id, result)

    async def interrupt(self, played_ms: int | None = None) -> None:
        """Stop the agent; ``played_ms`` is how much of the current reply the caller heard."""
        self._require(SessionState.CONNECTED, SessionState.RECONNECTING, action="interrupt")
        await self._do_interrupt(played_ms)

    async def say(self, text: str) -> None:
        """Speak ``text`` as the agent (a reprompt, a goodbye), adding it to the conversation.

        Raises:
            UnsupportedOperation: this provider cannot speak arbitrary text (the default;
                providers that can override this).
        """
        raise UnsupportedOperation(f"{type(self).__name__} cannot speak arbitrary text")

    async def add_note(self, text: str, *, respond: bool = False) -> None:
        """Tell the agent ``text`` without the caller hearing it (an operator's whisper, what
        happened while an operator had the call); ``respond``: the agent answers it now.

        Raises:
            UnsupportedOperation: this provider cannot take a note (the default; providers
                that can override this).
        """
        raise UnsupportedOperation(f"{type(self).__name__} cannot take a note")

    async def send_caller_text(self, text: str) -> None:
        """Give the model a caller input as text (keypad digits: "caller pressed 4 2"),
        which it answers as a caller turn.

        Raises:
            UnsupportedOperation: this provider takes no text input (the default).
        """
        raise UnsupportedOperation(f"{type(self).__name__} takes no text input")

    async def disconnect(self) -> None:
        """Close the session (idempotent)."""
        if self._state in (SessionState.CLOSED,):
            return
        if self._state is SessionState.FAILED:
            self._transition(SessionState.CLOSED)
            return
        if self._state is SessionState.DISCONNECTED:
            self._transition(SessionState.CLOSED)
            return
        if self._state is SessionState.DISCONNECTING:  # a disconnect is already under way
            return
        self._transition(SessionState.DISCONNECTING)
        try:
            await self._do_disconnect()
        finally:
            self._finish_disconnect()

    def _finish_disconnect(self) -> None:
        if self._state is SessionState.DISCONNECTING:
            self._transition(SessionState.CLOSED)

    async def __aenter__(self) -> BaseProvider:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    # -- hooks -----------------------------------------------------------------------------------
    @abc.abstractmethod
    async def _do_connect(self) -> None: ...

    @abc.abstractmethod
    async def _do_send_audio(self, chunk: AudioChunk) -> None: ...

    @abc.abstractmethod
    async def _do_function_result(self, call_id: str, result: Any) -> None: ...

    @abc.abstractmethod
    async def _do_interrupt(self, played_ms: int | None) -> None: ...

    @abc.abstractmethod
    async def _do_disconnect(self) -> None: ...


async def disconnect_quietly(provider: BaseProvider | None, timeout_s: float = 5.0) -> None:
    """Disconnect ``provider`` at the end of its use, ignoring its errors and giving up after
    ``timeout_s``: the call is over either way. (``asyncio.timeout``, not ``wait_for``: on
    Python 3.11 ``wait_for`` can swallow a cancellation of the task that awaits it.)"""
    if provider is None:
        return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s):
            await provider.disconnect()
