"""Events the Gemini Live protocol object reports (frozen, slotted; one per server fact).

Reference: ai.google.dev/api/live#bidigeneratecontentservermessage. Gemini has no response or
item ids; the protocol numbers model turns itself (``response_id`` = ``gemini-turn-<n>``).

Each event's :meth:`payloads` are the provider events it stands for, in the payload classes every
provider reports (:mod:`switchboard.providers.events`); the session emits them as they are.
Events about the connection itself (``setupComplete``, ``goAway``, resumption handles, tool-call
cancellations) stand for none: the session acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard.media import AudioChunk, AudioFormat, Usage
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    FunctionCall,
    ProviderPayload,
    ResponseDone,
    ResponseInterrupted,
    SpeechStarted,
    SpeechStopped,
    TextOutput,
)

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

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """Model audio (``modelTurn.parts[].inlineData``), PCM16 LE mono at ``sample_rate``."""

    pcm: bytes
    sample_rate: int
    response_id: str

    def payloads(self) -> tuple[ProviderPayload, ...]:
        chunk = AudioChunk(self.pcm, AudioFormat.PCM16, self.sample_rate)
        return (AudioOutput(chunk, response_id=self.response_id),)


@dataclass(frozen=True, slots=True)
class OutputTranscript:
    """A piece of the transcription of the model's audio (``outputTranscription.text``)."""

    text: str
    response_id: str

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return (TextOutput(self.text, final=False, response_id=self.response_id),)


@dataclass(frozen=True, slots=True)
class ModelText:
    """A text part of the model turn (TEXT modality)."""

    text: str
    response_id: str

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return (TextOutput(self.text, final=False, response_id=self.response_id),)


@dataclass(frozen=True, slots=True)
class InputTranscript:
    """Transcription of caller audio (``inputTranscription``); ``finished`` when final."""

    text: str
    finished: bool

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return (CallerTranscript(self.text, final=self.finished),)


@dataclass(frozen=True, slots=True)
class Interrupted:
    """``serverContent.interrupted``: the server stopped the turn (caller barge-in)."""

    response_id: str

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return (ResponseInterrupted(self.response_id),)


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

    def payloads(self) -> tuple[ProviderPayload, ...]:
        """The turn's whole text (when it had any), then its end."""
        done = ResponseDone(self.response_id, self.status, self.reason, self.usage)
        if not self.text:
            return (done,)
        return (TextOutput(self.text, final=True, response_id=self.response_id), done)


@dataclass(frozen=True, slots=True)
class FunctionCallRequested:
    """One entry of ``toolCall.functionCalls``."""

    call_id: str
    name: str
    arguments: dict[str, Any]

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return (FunctionCall(self.call_id, self.name, self.arguments),)


@dataclass(frozen=True, slots=True)
class ToolCallCancelled:
    """``toolCallCancellation``: results for these ids must not be sent."""

    ids: tuple[str, ...]

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class GoAway:
    """``goAway``: the server will close in ``time_left_s`` seconds."""

    time_left_s: float

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class ResumptionUpdate:
    """``sessionResumptionUpdate`` (the protocol keeps the latest resumable handle)."""

    handle: str | None
    resumable: bool

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class VoiceActivity:
    """``voiceActivity`` (SDK 3.6.1; UNCONFIRMED on the Gemini API): caller speech edges."""

    started: bool

    def payloads(self) -> tuple[ProviderPayload, ...]:
        return (SpeechStarted() if self.started else SpeechStopped(),)


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
