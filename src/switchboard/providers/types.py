"""The seed's provider value types: session state, configuration and capabilities.

They live apart from :mod:`switchboard.providers.base` (the protocols and the lifecycle) only to
keep modules small. Provider events are :mod:`switchboard.providers.events`'s; the audio
vocabulary (:class:`AudioFormat`, :class:`AudioSpec`, :class:`AudioChunk`, :class:`Usage`) is
:mod:`switchboard.media`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from switchboard.media import AudioFormat, AudioSpec

__all__ = [
    "ConfigDefaults",
    "HistoryTurn",
    "ProviderCapabilities",
    "SessionConfig",
    "SessionState",
]


class SessionState(StrEnum):
    """The provider session lifecycle (see the module docstring for legal transitions)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"
    CLOSED = "closed"
    FAILED = "failed"


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


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """One line of a conversation a session starts with (a failover carries the call's
    conversation, as the caller heard it, to the next provider).

    Attributes:
        role: ``"user"`` (the caller) or ``"assistant"`` (the agent).
        text: what was said (an agent line cut at a barge-in holds only the part heard).
    """

    role: str
    text: str


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
    #: The conversation so far, oldest first: each provider gives it to its model in its own
    #: way when the session opens (empty for a new call).
    history: list[HistoryTurn] = field(default_factory=list)

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
class ConfigDefaults:
    """What a provider fills into a :class:`SessionConfig` that leaves it unset.

    The registry gives every provider it creates the catalogue's defaults (providers.yaml
    ``default_model`` and ``default_voice``), whether the configuration arrives with
    ``create_provider`` or later with ``connect``.
    """

    model_id: str | None = None
    voice: str | None = None

    def fill(self, config: SessionConfig) -> SessionConfig:
        """Set ``config``'s unset ``model_id`` and ``voice`` (in place) and return it."""
        if config.model_id is None:
            config.model_id = self.model_id
        if config.voice is None:
            config.voice = self.voice
        return config
