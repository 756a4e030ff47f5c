"""What the pure :class:`~switchboard.providers.pipeline.turns.TurnManager` asks the engine to do.

Frozen dataclasses, one per kind of action; :data:`TurnAction` is their union. The asyncio engine
(:mod:`.engine`) carries them out in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.providers.events import ProviderEventType, ProviderPayload
from switchboard.providers.pipeline.components import ChatMessage

__all__ = [
    "CancelLLM",
    "CancelSpeech",
    "EmitEvent",
    "FinalizeSTT",
    "RecordLatency",
    "SpeakSentence",
    "StartLLM",
    "TurnAction",
    "WaitEndpoint",
]


@dataclass(frozen=True, slots=True)
class EmitEvent:
    """Emit a provider event whose payload is ``data``."""

    data: ProviderPayload

    @property
    def type(self) -> ProviderEventType:
        return self.data.event_type


@dataclass(frozen=True, slots=True)
class StartLLM:
    """Start an LLM stream for ``response_id`` over ``history``; feed its events back."""

    response_id: str
    history: tuple[ChatMessage, ...]


@dataclass(frozen=True, slots=True)
class CancelLLM:
    response_id: str


@dataclass(frozen=True, slots=True)
class SpeakSentence:
    """Synthesize ``text``; report audio with ``on_audio`` and the end with ``on_sentence_done``."""

    response_id: str
    sentence_id: int
    text: str


@dataclass(frozen=True, slots=True)
class CancelSpeech:
    """Stop synthesis and drop queued sentences of ``response_id``."""

    response_id: str


@dataclass(frozen=True, slots=True)
class FinalizeSTT:
    """Ask the recogniser to finalize what it heard so far."""


@dataclass(frozen=True, slots=True)
class RecordLatency:
    """A caller turn's time to first audio, for the provider's ``ttfa_ms`` list."""

    ttfa_ms: float


@dataclass(frozen=True, slots=True)
class WaitEndpoint:
    """Call ``endpoint_due`` at ``at`` (monotonic s): a held turn's wait may be over (its
    caller-audio deadline was passed, or its backstop is due; ``endpoint_wait.py``)."""

    at: float


TurnAction = (
    EmitEvent
    | StartLLM
    | CancelLLM
    | SpeakSentence
    | CancelSpeech
    | FinalizeSTT
    | RecordLatency
    | WaitEndpoint
)
