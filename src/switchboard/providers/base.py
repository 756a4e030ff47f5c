"""The seed's provider types and protocols.

Every voice provider, whatever its wire protocol, looks the same to the rest of switchboard:

* it is configured by a :class:`SessionConfig`;
* caller audio goes in as :class:`AudioChunk` objects through ``send_audio``;
* everything that happens comes out of ``receive_events`` as :class:`ProviderEvent` objects whose
  ``type`` is one of :class:`ProviderEventType` and whose ``data`` keys are documented there;
* the bridge answers tool calls with ``handle_function_result`` and cuts the agent off with
  ``interrupt(played_ms)``.

Theory of operation of :class:`BaseProvider`'s lifecycle (legal transitions only)::

    DISCONNECTED ─connect()─▶ CONNECTING ─ok─▶ CONNECTED ─disconnect()─▶ DISCONNECTING ─▶ CLOSED
                                  │              │   ▲                                 ▲
                                  │ fail         │   │ restored                        │
                                  ▼              ▼   │                                 │
                                FAILED ◀─give up─ RECONNECTING ─disconnect()───────────┘

``FAILED`` and ``CLOSED`` are terminal: a provider object serves one session. Every transition
emits nothing by itself; subclasses emit ``session.reconnecting`` or ``error`` events as needed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from switchboard.errors import InvalidStateTransition

__all__ = [
    "AudioChunk",
    "AudioFormat",
    "AudioSpec",
    "BaseProvider",
    "ProviderCapabilities",
    "ProviderEvent",
    "ProviderEventType",
    "RealtimeEndToEndProvider",
    "SegmentedVoiceProvider",
    "SessionConfig",
    "SessionState",
    "TelephonyAdapter",
    "Usage",
]

logger = logging.getLogger(__name__)


class AudioFormat(StrEnum):
    """Audio encodings known to switchboard."""

    PCM16 = "pcm16"  # signed 16-bit little-endian, mono
    ULAW = "ulaw"  # G.711 μ-law, one byte per sample
    ALAW = "alaw"  # G.711 A-law, one byte per sample
    OPUS = "opus"
    MP3 = "mp3"

    @property
    def bytes_per_sample(self) -> int:
        """Bytes per mono sample for the raw formats (PCM16: 2, G.711: 1); 0 for compressed."""
        return {AudioFormat.PCM16: 2, AudioFormat.ULAW: 1, AudioFormat.ALAW: 1}.get(self, 0)


@dataclass(frozen=True, slots=True)
class AudioSpec:
    """An audio format at a sample rate, e.g. ``AudioSpec(AudioFormat.ULAW, 8000)``."""

    format: AudioFormat
    sample_rate: int

    def duration_ms(self, nbytes: int) -> float:
        """Duration in milliseconds of ``nbytes`` of this raw audio."""
        bps = self.format.bytes_per_sample
        if bps == 0:
            raise ValueError(f"duration of {self.format} audio is not known from its size")
        return nbytes / bps * 1000.0 / self.sample_rate

    def bytes_for_ms(self, ms: float) -> int:
        """Number of bytes holding ``ms`` milliseconds of this raw audio (whole samples)."""
        return int(self.sample_rate * ms / 1000.0) * self.format.bytes_per_sample


class SessionState(StrEnum):
    """The provider session lifecycle (see the module docstring for legal transitions)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"
    CLOSED = "closed"
    FAILED = "failed"


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


@dataclass(frozen=True, slots=True)
class ProviderCapabilities:
    """What a provider can do; used by ``select_best_provider`` and ``GET /v1/providers``."""

    realtime: bool = True
    multimodal: bool = False
    function_calling: bool = True
    interruption: bool = True
    transcription: bool = True
    audio_formats: tuple[AudioFormat, ...] = (AudioFormat.PCM16,)
    input_sample_rates: tuple[int, ...] = (24000,)
    output_sample_rates: tuple[int, ...] = (24000,)
    max_session_seconds: int | None = None
    languages: tuple[str, ...] = ("en",)
    cost_tier: str = "standard"
    typical_latency_ms: int = 500


@dataclass(slots=True)
class SessionConfig:
    """How a provider session should behave (the seed's shape).

    ``tools`` use the OpenAI function shape the seed shows::

        {"type": "function", "name": "get_weather", "description": "...",
         "parameters": {"type": "object", "properties": {...}, "required": [...]}}

    (the Chat-Completions nesting ``{"type": "function", "function": {...}}`` is accepted too;
    see :func:`function_tools`).
    """

    model_id: str | None = None
    audio_format: AudioFormat = AudioFormat.PCM16
    sample_rate: int = 24000
    system_prompt: str | None = None
    temperature: float | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    voice: str | None = None
    language: str = "en-US"
    greeting: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def audio_spec(self) -> AudioSpec:
        """The audio format the caller side speaks (what the bridge would rather not convert)."""
        return AudioSpec(self.audio_format, self.sample_rate)

    def function_tools(self) -> list[dict[str, Any]]:
        """Tools normalised to the flat shape ``{"type","name","description","parameters"}``."""
        out: list[dict[str, Any]] = []
        for tool in self.tools:
            spec = tool.get("function", tool)
            out.append(
                {
                    "type": "function",
                    "name": spec["name"],
                    "description": spec.get("description", ""),
                    "parameters": spec.get("parameters", {"type": "object", "properties": {}}),
                }
            )
        return out


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of audio: raw bytes in ``format`` at ``sample_rate`` Hz, mono."""

    data: bytes
    format: AudioFormat = AudioFormat.PCM16
    sample_rate: int = 24000
    timestamp: float = field(default_factory=time.monotonic)

    @property
    def spec(self) -> AudioSpec:
        return AudioSpec(self.format, self.sample_rate)

    @property
    def duration_ms(self) -> float:
        return self.spec.duration_ms(len(self.data))


@dataclass(frozen=True, slots=True)
class Usage:
    """Resource use reported by a provider for one response (or summed for a call)."""

    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    cached_input_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    input_audio_seconds: float = 0.0
    output_audio_seconds: float = 0.0
    tts_characters: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            **{name: getattr(self, name) + getattr(other, name) for name in self.__slots__}
        )

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__}


class ProviderEventType(StrEnum):
    """Event types and the keys of their ``data``.

    ``audio.output``      ``chunk`` (AudioChunk), ``response_id``, ``item_id`` (str | None)
    ``text.output``       ``text``, ``final`` (bool: False for a delta, True for the whole text),
                          ``response_id``, ``item_id``
    ``function_call``     ``call_id``, ``name``, ``arguments`` (dict, already parsed)
    ``caller.transcript`` ``text``, ``final`` (bool), ``item_id``
    ``speech.started``    ``audio_ms`` (position in the caller stream, if known), ``item_id``
    ``speech.stopped``    ``audio_ms``, ``item_id``
    ``interrupted``       ``response_id`` — the provider itself stopped speaking (barge-in)
    ``response.done``     ``response_id``, ``status`` (completed | cancelled | failed | incomplete),
                          ``reason`` (str | None), ``usage`` (Usage)
    ``session.reconnecting`` ``attempt``, ``reason``
    ``session.reconnected``  ``attempt``
    ``error``             ``code``, ``message``, ``fatal`` (bool)
    """

    AUDIO_OUTPUT = "audio.output"
    TEXT_OUTPUT = "text.output"
    FUNCTION_CALL = "function_call"
    CALLER_TRANSCRIPT = "caller.transcript"
    SPEECH_STARTED = "speech.started"
    SPEECH_STOPPED = "speech.stopped"
    INTERRUPTED = "interrupted"
    RESPONSE_DONE = "response.done"
    RECONNECTING = "session.reconnecting"
    RECONNECTED = "session.reconnected"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """Something a provider reports: a ``type`` and its ``data`` (keys per ProviderEventType)."""

    type: ProviderEventType
    data: Mapping[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.monotonic)


@runtime_checkable
class RealtimeEndToEndProvider(Protocol):
    """A speech-to-speech provider (OpenAI Realtime, Gemini Live) behind one session."""

    capabilities: ClassVar[ProviderCapabilities]

    @property
    def state(self) -> SessionState: ...

    @property
    def config(self) -> SessionConfig: ...

    @property
    def input_spec(self) -> AudioSpec:
        """The audio format ``send_audio`` expects (the bridge converts into it)."""
        ...

    @property
    def output_spec(self) -> AudioSpec:
        """The audio format of ``audio.output`` chunks."""
        ...

    async def connect(self) -> None: ...

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


@runtime_checkable
class TelephonyAdapter(Protocol):
    """Call control for one carrier (the seed's setup / answer / end operations, and more).

    Every ``call_id`` here is the carrier's own id (Twilio CallSid, Telnyx call_control_id).
    """

    name: ClassVar[str]

    async def setup(self) -> None:
        """Check credentials/configuration and open HTTP clients."""
        ...

    async def answer_call(self, call_id: str, **options: Any) -> None: ...

    async def end_call(self, call_id: str) -> None:
        """Hang up; a call that already ended counts as success."""
        ...

    async def transfer_call(self, call_id: str, destination: str) -> None: ...

    async def send_dtmf(self, call_id: str, digits: str) -> None: ...

    async def place_call(self, *, to: str, from_: str, **options: Any) -> str:
        """Dial out; returns the carrier's call id."""
        ...

    async def aclose(self) -> None: ...


class BaseProvider(abc.ABC):
    """Shared lifecycle for providers: enforced state machine and a bounded event queue.

    Subclasses implement the ``_do_*`` hooks and call :meth:`emit` from their receive loop.
    Public methods check the state first, so misuse raises :class:`InvalidStateTransition`
    instead of writing to a closed socket.
    """

    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities()
    #: Bound on undelivered events; when full, ``emit`` waits (backpressure on the socket reader).
    event_queue_size: ClassVar[int] = 512

    def __init__(self, config: SessionConfig) -> None:
        self._config = config
        self._state = SessionState.DISCONNECTED
        self._events: asyncio.Queue[ProviderEvent | None] = asyncio.Queue(self.event_queue_size)
        self._closed_event = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def config(self) -> SessionConfig:
        return self._config

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
    async def connect(self) -> None:
        """Open the session; returns once the provider is configured and ready for audio."""
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
