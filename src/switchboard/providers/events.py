"""What providers report: :class:`ProviderEvent`, whose ``data`` is one typed payload per type.

Every provider — OpenAI Realtime, Gemini Live, the STT → LLM → TTS pipeline — reports the same
payload classes, so the bridge matches on them and mypy checks each field it reads::

    match event.data:
        case AudioOutput(chunk=chunk): ...
        case FunctionCall(call_id=call_id, name=name, arguments=arguments): ...

A payload is also a read-only mapping of its fields, so the seed's reads work as written::

    if event.type == "audio.output":
        audio_data = event.data["audio"]          # == event.data.chunk.data
    elif event.type == "function_call":
        call_id, name = event.data["call_id"], event.data["name"]

and ``event.data == {"text": ..., "final": ..., "item_id": ...}`` compares its keys and values.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from switchboard.media import AudioChunk, Usage

__all__ = [
    "AudioOutput",
    "CallerTranscript",
    "ErrorReport",
    "EventPayload",
    "FunctionCall",
    "ProviderEvent",
    "ProviderEventType",
    "ProviderPayload",
    "Reconnected",
    "Reconnecting",
    "ResponseDone",
    "ResponseInterrupted",
    "SpeechStarted",
    "SpeechStopped",
    "TextOutput",
]


class ProviderEventType(StrEnum):
    """Event types, each with its payload class (whose fields are the keys of ``data``).

    ``audio.output``         :class:`AudioOutput`: ``chunk``, ``audio``, ``response_id``,
                             ``item_id``
    ``text.output``          :class:`TextOutput`: ``text``, ``final``, ``response_id``, ``item_id``
    ``function_call``        :class:`FunctionCall`: ``call_id``, ``name``, ``arguments``
    ``caller.transcript``    :class:`CallerTranscript`: ``text``, ``final``, ``item_id``
    ``speech.started``       :class:`SpeechStarted`: ``audio_ms``, ``item_id``
    ``speech.stopped``       :class:`SpeechStopped`: ``audio_ms``, ``item_id``
    ``interrupted``          :class:`ResponseInterrupted`: ``response_id``
    ``response.done``        :class:`ResponseDone`: ``response_id``, ``status``, ``reason``,
                             ``usage`` (and ``ttfa_ms`` from the pipeline)
    ``session.reconnecting`` :class:`Reconnecting`: ``attempt``, ``reason``
    ``session.reconnected``  :class:`Reconnected`: ``attempt``
    ``error``                :class:`ErrorReport`: ``code``, ``message``, ``fatal``
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


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


class EventPayload(Mapping[str, Any]):
    """Base of the payloads: a read-only mapping view of the dataclass's fields.

    Two payloads are equal when they are of the same class with equal fields; a payload equals a
    plain mapping with the same keys and values (what the seed's ``data`` was).
    """

    __slots__ = ()
    event_type: ClassVar[ProviderEventType]
    #: Keys the view adds after the fields (properties of the payload).
    derived_keys: ClassVar[tuple[str, ...]] = ()
    #: Fields the view leaves out while they are None (only some providers fill them).
    optional_keys: ClassVar[tuple[str, ...]] = ()

    def _keys(self) -> tuple[str, ...]:
        keys = _field_names(type(self)) + self.derived_keys
        if self.optional_keys:
            keys = tuple(
                k for k in keys if k not in self.optional_keys or getattr(self, k) is not None
            )
        return keys

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventPayload):
            return type(self) is type(other) and dict(self) == dict(other)
        if isinstance(other, Mapping):
            return dict(self) == dict(other)
        return NotImplemented


# eq=False everywhere: EventPayload.__eq__ (mapping equality) is the one that applies.
@dataclass(frozen=True, slots=True, eq=False)
class AudioOutput(EventPayload):
    """Agent audio in the provider's ``output_spec``; ``audio`` is the chunk's bytes (the seed's
    key), ``chunk`` carries their format and rate (what the bridge converts from)."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.AUDIO_OUTPUT
    derived_keys: ClassVar[tuple[str, ...]] = ("audio",)

    chunk: AudioChunk
    response_id: str | None = None
    item_id: str | None = None

    @property
    def audio(self) -> bytes:
        return self.chunk.data


@dataclass(frozen=True, slots=True, eq=False)
class TextOutput(EventPayload):
    """Agent text: a delta (``final`` False) or the whole text of an item (``final`` True)."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.TEXT_OUTPUT

    text: str
    final: bool
    response_id: str | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class FunctionCall(EventPayload):
    """The model calls a tool; ``arguments`` are already parsed from JSON."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.FUNCTION_CALL

    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True, eq=False)
class CallerTranscript(EventPayload):
    """What the caller said, as recognised so far (``final`` when the turn's text is complete)."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.CALLER_TRANSCRIPT

    text: str
    final: bool
    item_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SpeechStarted(EventPayload):
    """The provider heard the caller start speaking (``audio_ms`` into the caller stream)."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.SPEECH_STARTED

    audio_ms: float | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SpeechStopped(EventPayload):
    """The provider heard the caller stop speaking."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.SPEECH_STOPPED

    audio_ms: float | None = None
    item_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ResponseInterrupted(EventPayload):
    """The provider itself stopped speaking (its own barge-in detection)."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.INTERRUPTED

    response_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ResponseDone(EventPayload):
    """A reply ended: ``status`` is completed | cancelled | failed | incomplete.

    ``ttfa_ms`` (the caller turn's time to first audio) comes from the pipeline only, and is
    left out of the mapping view when None.
    """

    event_type: ClassVar[ProviderEventType] = ProviderEventType.RESPONSE_DONE
    optional_keys: ClassVar[tuple[str, ...]] = ("ttfa_ms",)

    response_id: str | None
    status: str = "completed"
    reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    ttfa_ms: float | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Reconnecting(EventPayload):
    """The session lost its connection and is opening another (``attempt`` from 1)."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.RECONNECTING

    attempt: int
    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class Reconnected(EventPayload):
    """The session is connected again."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.RECONNECTED

    attempt: int


@dataclass(frozen=True, slots=True, eq=False)
class ErrorReport(EventPayload):
    """Something went wrong; after a ``fatal`` one the session is FAILED."""

    event_type: ClassVar[ProviderEventType] = ProviderEventType.ERROR

    code: str
    message: str
    fatal: bool = False


ProviderPayload = (
    AudioOutput
    | TextOutput
    | FunctionCall
    | CallerTranscript
    | SpeechStarted
    | SpeechStopped
    | ResponseInterrupted
    | ResponseDone
    | Reconnecting
    | Reconnected
    | ErrorReport
)


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """Something a provider reports: its ``data`` (a payload) and the ``type`` that names it."""

    data: ProviderPayload
    timestamp: float = field(default_factory=time.monotonic)

    @property
    def type(self) -> ProviderEventType:
        return self.data.event_type
