"""The three swappable parts of a segmented voice pipeline, as small protocols.

The pipeline engine (``switchboard.providers.pipeline``) owns turn-taking, history, barge-in and
the tool loop; it talks to its parts only through these protocols. The Deepgram provider plugs
in Deepgram STT, the Gemini text LLM and Deepgram TTS; the local provider plugs in Silero VAD +
Whisper, a rule engine and Piper. Tests plug in fakes.

Every part is asynchronous at this boundary; a part that does CPU work (Whisper, Piper) runs it
off the event loop inside its own implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from switchboard.providers.base import AudioSpec, SessionConfig

__all__ = [
    "ChatMessage",
    "LLMDone",
    "LLMEvent",
    "LLMFunctionCall",
    "LLMTextDelta",
    "PartsBuilder",
    "PipelineParts",
    "SpeechToText",
    "SttEvent",
    "SttSpeechStarted",
    "SttTranscript",
    "SttUtteranceEnd",
    "TextLLM",
    "TextToSpeech",
]


# -- STT ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SttSpeechStarted:
    """The recogniser (or its VAD) heard the caller start speaking."""

    audio_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SttTranscript:
    """A transcript of caller speech.

    ``is_final`` marks text that will not change; ``speech_final`` marks the end of an utterance
    by endpointing (Deepgram's ``speech_final``; the local STT sets both on each utterance).
    """

    text: str
    is_final: bool
    speech_final: bool = False
    confidence: float | None = None
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SttUtteranceEnd:
    """No more words came for a while after the last final word (Deepgram ``UtteranceEnd``)."""

    last_word_end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SttConnection:
    """The recogniser's socket was lost (``up`` False; it is reconnecting) or is back: the
    pipeline reports it as the session's ``session.reconnecting``/``reconnected`` (a failover
    counts its ``failover_after_s`` from the loss)."""

    up: bool
    attempt: int = 1
    reason: str = ""


SttEvent = SttSpeechStarted | SttTranscript | SttUtteranceEnd | SttConnection


class SpeechToText(Protocol):
    """Streaming speech recognition for one call."""

    @property
    def input_spec(self) -> AudioSpec:
        """The audio format ``send_audio`` expects."""
        ...

    async def start(self) -> None: ...

    async def send_audio(self, data: bytes) -> None: ...

    def events(self) -> AsyncIterator[SttEvent]:
        """Recognition events until ``close``."""
        ...

    async def finalize(self) -> None:
        """Ask for a final result for the audio so far (Deepgram ``Finalize``)."""
        ...

    async def close(self) -> None: ...


# -- LLM ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One entry of the conversation history, provider neutral.

    ``role`` ``"tool"`` carries a function result (``tool_call_id``, ``name``, ``content`` JSON);
    an ``"assistant"`` message may carry ``tool_calls`` (the calls the model made).
    """

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[LLMFunctionCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class LLMTextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class LLMFunctionCall:
    """A function the model called.

    ``signature`` is an opaque token that must go back with the call when the history is sent
    again (Gemini's ``thoughtSignature`` from thinking models); None when there is none.
    """

    call_id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class LLMDone:
    """The stream ended; token usage when the service reported it."""

    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None


LLMEvent = LLMTextDelta | LLMFunctionCall | LLMDone


class TextLLM(Protocol):
    """A streaming chat model with function calling.

    ``stream`` is cancellable: the engine cancels the consuming task on barge-in, and the
    implementation must then close its HTTP stream promptly.
    """

    def stream(
        self,
        *,
        system_prompt: str | None,
        history: list[ChatMessage],
        tools: list[dict[str, Any]],
        temperature: float | None = None,
    ) -> AsyncIterator[LLMEvent]:
        """Generate the next assistant turn; ``tools`` are in the flat seed function shape."""
        ...

    async def aclose(self) -> None: ...


# -- TTS ------------------------------------------------------------------------------------------
class TextToSpeech(Protocol):
    """Streaming synthesis for one call."""

    @property
    def output_spec(self) -> AudioSpec:
        """The audio format of what ``synthesize`` yields."""
        ...

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Audio for ``text`` as it becomes available; cancelling the iteration stops synthesis."""
        ...

    async def aclose(self) -> None: ...


# -- the three together ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PipelineParts:
    """One session's speech recognition, chat model and speech synthesis."""

    stt: SpeechToText
    llm: TextLLM
    tts: TextToSpeech


#: Builds the parts for a session configuration (audio formats, STT model, voice come from it).
PartsBuilder = Callable[[SessionConfig], PipelineParts]
