"""Events the Gemini Live protocol object reports (frozen, slotted; one per server fact).

Reference: ai.google.dev/api/live#bidigeneratecontentservermessage. Gemini has no response or
item ids; the protocol numbers model turns itself (``response_id`` = ``gemini-turn-<n>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard.providers.base import Usage

__all__ = [
    "AudioDelta",
    "FunctionCallRequested",
    "GoAway",
    "InputTranscript",
    "Interrupted",
    "LiveEvent",
    "ModelText",
    "OutputTranscript",
    "ResumptionUpdate",
    "SetupComplete",
    "ToolCallCancelled",
    "TurnComplete",
    "VoiceActivity",
]


@dataclass(frozen=True, slots=True)
class SetupComplete:
    """``setupComplete``: the session is configured; buffered input may flow."""

    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """Model audio (``modelTurn.parts[].inlineData``), PCM16 LE mono at ``sample_rate``."""

    pcm: bytes
    sample_rate: int
    response_id: str


@dataclass(frozen=True, slots=True)
class OutputTranscript:
    """A piece of the transcription of the model's audio (``outputTranscription.text``)."""

    text: str
    response_id: str


@dataclass(frozen=True, slots=True)
class ModelText:
    """A text part of the model turn (TEXT modality)."""

    text: str
    response_id: str


@dataclass(frozen=True, slots=True)
class InputTranscript:
    """Transcription of caller audio (``inputTranscription``); ``finished`` when final."""

    text: str
    finished: bool


@dataclass(frozen=True, slots=True)
class Interrupted:
    """``serverContent.interrupted``: the server stopped the turn (caller barge-in)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The end of a model turn.

    Attributes:
        text: the whole output transcription (and text parts) of the turn.
        status: ``completed``, or ``cancelled`` after an interruption.
        reason: ``interrupted`` (server barge-in), ``client_interrupt`` or None.
        heard_text: for an interrupted turn, the estimated part the caller heard.
    """

    response_id: str
    text: str
    usage: Usage
    status: str = "completed"
    reason: str | None = None
    heard_text: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionCallRequested:
    """One entry of ``toolCall.functionCalls``."""

    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallCancelled:
    """``toolCallCancellation``: results for these ids must not be sent."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GoAway:
    """``goAway``: the server will close in ``time_left_s`` seconds."""

    time_left_s: float


@dataclass(frozen=True, slots=True)
class ResumptionUpdate:
    """``sessionResumptionUpdate`` (the protocol keeps the latest resumable handle)."""

    handle: str | None
    resumable: bool


@dataclass(frozen=True, slots=True)
class VoiceActivity:
    """``voiceActivity`` (SDK 3.6.1; UNCONFIRMED on the Gemini API): caller speech edges."""

    started: bool


LiveEvent = (
    SetupComplete
    | AudioDelta
    | OutputTranscript
    | ModelText
    | InputTranscript
    | Interrupted
    | TurnComplete
    | FunctionCallRequested
    | ToolCallCancelled
    | GoAway
    | ResumptionUpdate
    | VoiceActivity
)
