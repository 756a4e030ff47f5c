"""Builders for OpenAI Realtime (GA) client events, from a :class:`SessionConfig`.

Pure functions returning plain dicts shaped like ``openai.types.realtime.RealtimeClientEvent``
(GA dialect; vendor doc https://platform.openai.com/docs/api-reference/realtime-client-events,
``docs/wire/openai-realtime.md#client-events``).
"""

from __future__ import annotations

import logging
from typing import Any

from switchboard.providers.base import AudioFormat, AudioSpec, SessionConfig

__all__ = [
    "DEFAULT_TRANSCRIPTION_MODEL",
    "DEFAULT_TURN_DETECTION",
    "audio_spec_for",
    "greeting_instructions",
    "history_item",
    "session_update",
    "wire_format",
]

logger = logging.getLogger(__name__)

#: In the SDK's ``AudioTranscription.model`` literal (openai 3.57).
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"
#: GA server VAD with the documented defaults (``RealtimeAudioInputTurnDetection.ServerVad``).
DEFAULT_TURN_DETECTION: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}
_SERVER_VAD_KEYS = frozenset(
    {
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "idle_timeout_ms",
        "create_response",
        "interrupt_response",
    }
)
_SEMANTIC_VAD_KEYS = frozenset({"type", "eagerness", "create_response", "interrupt_response"})


def audio_spec_for(config: SessionConfig) -> AudioSpec:
    """The audio spec used both ways: G.711 passes through at 8 kHz, anything else is PCM 24 kHz.

    ``config.extra["provider_audio"] == "pcm16"`` (the agent's ``provider_audio``) forces PCM.
    """
    if config.extra.get("provider_audio") == "pcm16":
        return AudioSpec(AudioFormat.PCM16, 24000)
    match config.audio_format:
        case AudioFormat.ULAW:
            return AudioSpec(AudioFormat.ULAW, 8000)
        case AudioFormat.ALAW:
            return AudioSpec(AudioFormat.ALAW, 8000)
        case _:
            return AudioSpec(AudioFormat.PCM16, 24000)


def wire_format(spec: AudioSpec) -> dict[str, Any]:
    """GA ``RealtimeAudioFormats`` object for ``spec`` (``audio/pcm`` is 24 kHz only)."""
    match spec.format:
        case AudioFormat.ULAW:
            return {"type": "audio/pcmu"}
        case AudioFormat.ALAW:
            return {"type": "audio/pcma"}
        case _:
            return {"type": "audio/pcm", "rate": 24000}


def _turn_detection(config: SessionConfig) -> dict[str, Any] | None:
    raw = config.extra.get("turn_detection", "server_vad")
    if raw is None:
        return None  # no VAD: the client must commit and ask for responses itself
    if isinstance(raw, str):
        raw = {"type": raw}
    kind = raw.get("type", "server_vad")
    if kind == "semantic_vad":
        base: dict[str, Any] = {"type": "semantic_vad", "create_response": True}
        base["interrupt_response"] = True
        allowed = _SEMANTIC_VAD_KEYS
    else:
        base = dict(DEFAULT_TURN_DETECTION)
        allowed = _SERVER_VAD_KEYS
    base.update({k: v for k, v in raw.items() if k in allowed})
    if config.extra.get("turn_taking") is not None:
        # Switchboard decides interruptions (backchannels do not cut the reply): the server
        # VAD keeps reporting speech but no longer cancels or answers; the bridge sends
        # response.cancel and conversation.item.truncate when its rule fires
        # (bridge/turn_taking.py), and the client asks for replies (gate.py).
        base["interrupt_response"] = False
        base["create_response"] = False  # switchboard answers (openai_realtime/gate.py)
    dropped = sorted(set(raw) - allowed)
    if dropped:
        logger.debug("turn_detection keys not valid for %s dropped: %s", kind, dropped)
    return base


def _transcription(config: SessionConfig) -> dict[str, Any] | None:
    model = config.extra.get("transcription_model", DEFAULT_TRANSCRIPTION_MODEL)
    if model is None:
        return None
    out: dict[str, Any] = {"model": model}
    language = config.language.split("-")[0].lower() if config.language else ""
    if language:
        out["language"] = language  # ISO-639-1 per AudioTranscription.language
    return out


def session_update(config: SessionConfig, *, model: str) -> dict[str, Any]:
    """The GA ``session.update`` event for ``config``.

    ``config.temperature`` is not sent: GA ``RealtimeSessionCreateRequest`` has no temperature
    field (``docs/wire/openai-realtime.md#client-events``), so it is dropped with a debug log.
    """
    spec = audio_spec_for(config)
    if config.temperature is not None:
        logger.debug("temperature=%s dropped: not a GA Realtime session field", config.temperature)
    audio_out: dict[str, Any] = {"format": wire_format(spec)}
    if config.voice:
        audio_out["voice"] = config.voice
    session: dict[str, Any] = {
        "type": "realtime",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": config.system_prompt or "",
        "audio": {
            "input": {
                "format": wire_format(spec),
                "transcription": _transcription(config),
                "turn_detection": _turn_detection(config),
            },
            "output": audio_out,
        },
        "tools": config.function_tools(),
        "tool_choice": "auto",
    }
    return {"type": "session.update", "session": session}


def greeting_instructions(greeting: str) -> str:
    """Per-response instructions that make the model speak ``greeting`` verbatim."""
    return f"Say exactly: {greeting}"


def history_item(role: str, text: str) -> dict[str, Any]:
    """A ``message`` item replaying a transcript line (``input_text`` / ``output_text``)."""
    part_type = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": part_type, "text": text}]}
