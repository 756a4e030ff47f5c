"""Pure pieces of the OpenAI Realtime (GA) emulator: session state, validation, event builders.

Written from ``docs/wire/openai-realtime.md`` (vendor page:
https://platform.openai.com/docs/api-reference/realtime-client-events) against plain dicts,
independently of the client in ``switchboard.providers.openai_realtime``. Error ``code`` strings
mimic the service's style; the real strings are UNCONFIRMED
(``docs/wire/openai-realtime.md#errors``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
from typing import Any

__all__ = [
    "CLIENT_EVENT_TYPES",
    "ClientError",
    "IdMaker",
    "RealtimeSessionState",
    "format_rate",
    "validate_client_event",
]

CLIENT_EVENT_TYPES = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.truncate",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)
_SESSION_KEYS = frozenset(
    {
        "type",
        "model",
        "output_modalities",
        "instructions",
        "audio",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tracing",
        "truncation",
        "include",
    }
)
_FORMATS = frozenset({"audio/pcm", "audio/pcmu", "audio/pcma"})
_TURN_TYPES = frozenset({"server_vad", "semantic_vad"})
_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output"})


class ClientError(Exception):
    """A client event the service would refuse; becomes an ``error`` server event."""

    def __init__(self, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.type = "invalid_request_error"


class IdMaker:
    """Opaque ids in the service's customary style (``item_…``, ``resp_…``; a convention only)."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def __call__(self, prefix: str) -> str:
        return f"{prefix}_{next(self._n):06d}"


def format_rate(fmt: dict[str, Any]) -> tuple[str, int]:
    """``("pcm16"|"ulaw"|"alaw", rate)`` for a GA audio format object."""
    match fmt.get("type"):
        case "audio/pcmu":
            return "ulaw", 8000
        case "audio/pcma":
            return "alaw", 8000
        case _:
            return "pcm16", 24000


def _check_format(fmt: Any, param: str) -> None:
    if not isinstance(fmt, dict) or fmt.get("type") not in _FORMATS:
        raise ClientError("invalid_value", f"Invalid audio format {fmt!r}", param=param)
    if fmt["type"] == "audio/pcm" and fmt.get("rate", 24000) != 24000:
        raise ClientError("invalid_value", "audio/pcm supports rate 24000 only", param=param)


def _check_turn_detection(td: Any) -> None:
    if td is None:
        return
    if not isinstance(td, dict) or td.get("type") not in _TURN_TYPES:
        raise ClientError("invalid_value", f"Invalid turn_detection {td!r}", param="turn_detection")
    if td["type"] == "semantic_vad" and {"threshold", "silence_duration_ms"} & set(td):
        raise ClientError("unknown_parameter", "semantic_vad takes no threshold/silence settings")


class RealtimeSessionState:
    """The effective GA session configuration, updated with ``session.update`` semantics."""

    def __init__(self, session_id: str, model: str) -> None:
        self.voice_locked = False  # set once the model has produced audio
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 500,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
            },
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
        }

    @property
    def input_format(self) -> tuple[str, int]:
        return format_rate(self.session["audio"]["input"]["format"])

    @property
    def output_format(self) -> tuple[str, int]:
        return format_rate(self.session["audio"]["output"]["format"])

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = self.session["audio"]["input"]["turn_detection"]
        return td

    @property
    def voice(self) -> str:
        return str(self.session["audio"]["output"].get("voice"))

    def update(self, new: Any) -> dict[str, Any]:
        """Apply a ``session.update`` ``session`` object; returns the full effective config."""
        if not isinstance(new, dict):
            raise ClientError("invalid_type", "session must be an object", param="session")
        if new.get("type") not in ("realtime", "transcription"):
            raise ClientError(
                "missing_required_parameter", "session.type is required", param="session.type"
            )
        unknown = sorted(set(new) - _SESSION_KEYS)
        if unknown:  # e.g. beta fields, or temperature which GA does not have
            raise ClientError(
                "unknown_parameter",
                f"Unknown parameter: 'session.{unknown[0]}'.",
                param=f"session.{unknown[0]}",
            )
        mods = new.get("output_modalities")
        if mods is not None and mods not in (["audio"], ["text"]):
            raise ClientError("invalid_value", "output_modalities must be ['audio'] or ['text']")
        staged = copy.deepcopy(self.session)
        audio = new.get("audio") or {}
        for side in ("input", "output"):
            for key, value in (audio.get(side) or {}).items():
                if key == "format":
                    _check_format(value, f"session.audio.{side}.format")
                if key == "turn_detection":
                    _check_turn_detection(value)
                staged["audio"][side][key] = value
        new_voice = staged["audio"]["output"].get("voice")
        if self.voice_locked and new_voice != self.session["audio"]["output"].get("voice"):
            raise ClientError(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
            )
        for key in (
            "model",
            "output_modalities",
            "instructions",
            "tools",
            "tool_choice",
            "max_output_tokens",
        ):
            if key in new:
                staged[key] = new[key]
        for tool in staged["tools"]:
            if not isinstance(tool, dict) or tool.get("type") != "function" or not tool.get("name"):
                raise ClientError("invalid_value", f"Invalid tool {tool!r}", param="session.tools")
        self.session = staged
        return copy.deepcopy(staged)


def validate_client_event(event: Any) -> dict[str, Any]:
    """Check the envelope and required fields of a client event; returns it.

    Raises:
        ClientError: unknown type, missing field, bad base64, bad item.
    """
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ClientError("invalid_json", "Event must be a JSON object with a 'type'")
    kind = event["type"]
    if kind not in CLIENT_EVENT_TYPES:
        raise ClientError(
            "invalid_type", f"Invalid value: '{kind}'. Unknown event type.", param="type"
        )
    match kind:
        case "input_audio_buffer.append":
            audio = event.get("audio")
            if not isinstance(audio, str):
                raise ClientError("missing_required_parameter", "Missing 'audio'", param="audio")
            try:
                base64.b64decode(audio, validate=True)
            except binascii.Error as exc:
                raise ClientError("invalid_value", "audio is not base64", param="audio") from exc
        case "conversation.item.create":
            _check_item(event.get("item"))
        case "conversation.item.truncate":
            for key in ("item_id", "content_index", "audio_end_ms"):
                if key not in event:
                    raise ClientError("missing_required_parameter", f"Missing '{key}'", param=key)
            if not isinstance(event["audio_end_ms"], int) or event["audio_end_ms"] < 0:
                raise ClientError("invalid_value", "audio_end_ms must be a non-negative integer")
        case "response.create":
            response = event.get("response")
            if response is not None and not isinstance(response, dict):
                raise ClientError("invalid_type", "response must be an object", param="response")
            if isinstance(response, dict) and "temperature" in response:
                raise ClientError("unknown_parameter", "Unknown parameter: 'response.temperature'.")
        case _:
            pass
    return event


def _check_item(item: Any) -> None:
    if not isinstance(item, dict) or item.get("type") not in _ITEM_TYPES:
        raise ClientError("invalid_value", f"Invalid item {item!r}", param="item")
    match item["type"]:
        case "message":
            role = item.get("role")
            content = item.get("content")
            if role not in ("user", "assistant", "system") or not isinstance(content, list):
                raise ClientError("invalid_value", "message needs a role and content", param="item")
            allowed = {"assistant": {"output_text", "output_audio"}}.get(
                str(role), {"input_text", "input_audio", "input_image"}
            )
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in allowed:
                    raise ClientError("invalid_value", f"Invalid content part for {role}: {part!r}")
        case "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise ClientError("missing_required_parameter", f"function_call needs '{key}'")
        case _:
            for key in ("call_id", "output"):
                if not isinstance(item.get(key), str):
                    raise ClientError(
                        "missing_required_parameter", f"function_call_output needs '{key}'"
                    )
