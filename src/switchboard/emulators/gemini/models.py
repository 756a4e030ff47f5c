"""Which models the emulated Gemini API serves, on which method, and how its thinking models think.

The real ``models.list`` gives each model its ``supportedGenerationMethods``: Live models
(native-audio and half-cascade) list ``bidiGenerateContent``; text models such as
``gemini-2.5-pro`` list ``generateContent``/``streamGenerateContent`` and not
``bidiGenerateContent``. A model used on a method it lacks is refused as if it did not exist:

* Live setup: close ``1008`` with ``models/<id> is not found for API version <v>, or is not
  supported for bidiGenerateContent. Call ListModels to see the list of available models.``
  (seen for a text model on Live in google/adk-samples#23 with ``gemini-2.0-flash-001``, and for
  retired Live ids in google/adk-python#3964; ``docs/wire/gemini.md#models``);
* REST: ``404 NOT_FOUND`` with the same sentence ending ``…supported for generateContent…``.

Availability churns (``docs/wire/gemini.md#models`` marks the ids UNCONFIRMED at any date); the
tables hold the ids the seed and the wire note name, so tests cannot pass on a model the service
would refuse.

Thinking (``docs/wire/gemini.md#thinking-models``): ``gemini-2.5-pro``
always thinks — ``thinkingBudget`` 128..32768 or -1 (dynamic), and 0 is refused with
``400 INVALID_ARGUMENT "Budget 0 is invalid. This model only works in thinking mode."``
(quoted in many public clients); ``gemini-2.5-flash`` takes 0..24576 (0 turns thinking off);
``gemini-2.5-flash-lite`` 512..24576 or 0. The wording of the out-of-range error is UNCONFIRMED.
Thought summaries (``{"text": …, "thought": true}`` parts) are sent only when the request sets
``thinkingConfig.includeThoughts``; a ``functionCall`` part of a thinking model carries a
``thoughtSignature`` that the client should send back with it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LIVE_MODELS",
    "TEXT_MODELS",
    "THINKING",
    "ThinkingRange",
    "not_supported",
    "serves",
    "thinking_error",
    "thought_signature",
]

#: Models served on ``bidiGenerateContent`` (the Live websocket).
LIVE_MODELS = frozenset(
    {
        "gemini-2.5-flash-preview-native-audio-dialog",  # the seed's default
        "gemini-2.5-flash-exp-native-audio-thinking-dialog",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-live-2.5-flash-preview",
        "gemini-2.0-flash-live-001",
        "gemini-2.0-flash-live-preview-04-09",
        "gemini-2.0-flash-exp",
    }
)
#: Models served on ``generateContent`` / ``streamGenerateContent`` (REST, text out).
TEXT_MODELS = frozenset(
    {
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
        "gemini-2.0-flash-001",
        "gemini-2.0-flash-lite",
        "gemini-2.0-flash-exp",
    }
)


@dataclass(frozen=True, slots=True)
class ThinkingRange:
    """The ``thinkingBudget`` values a thinking model takes (-1, dynamic, is always allowed)."""

    low: int
    high: int
    can_disable: bool


THINKING: dict[str, ThinkingRange] = {
    "gemini-2.5-pro": ThinkingRange(128, 32768, can_disable=False),
    "gemini-2.5-flash": ThinkingRange(1, 24576, can_disable=True),
    "gemini-2.5-flash-lite": ThinkingRange(512, 24576, can_disable=True),
}

_METHOD_MODELS = {
    "bidiGenerateContent": LIVE_MODELS,
    "generateContent": TEXT_MODELS,
    "streamGenerateContent": TEXT_MODELS,
}


def serves(model: str, method: str, narrowed: Collection[str] | None = None) -> bool:
    """Whether ``model`` (no ``models/`` prefix) is served on ``method``.

    ``narrowed`` is the emulator's ``models`` option: the ids this key may use (None: all).
    """
    if narrowed is not None and model not in narrowed:
        return False
    return model in _METHOD_MODELS.get(method, frozenset())


def not_supported(model: str, method: str, version: str = "v1beta") -> str:
    """Google's message for a model that does not exist or lacks ``method``."""
    shown = "generateContent" if method == "streamGenerateContent" else method
    return (
        f"models/{model} is not found for API version {version}, or is not supported for "
        f"{shown}. Call ListModels to see the list of available models."
    )


def thinking_error(model: str, thinking: Mapping[str, Any]) -> str | None:
    """The 400 message for a ``thinkingConfig`` the model refuses, or None when it is fine."""
    budget = thinking.get("thinkingBudget", thinking.get("thinking_budget"))
    limits = THINKING.get(model)
    if budget is None or limits is None or budget == -1:
        return None
    if not isinstance(budget, int) or isinstance(budget, bool):
        return "Invalid value at 'generation_config.thinking_config.thinking_budget'"
    if budget == 0:
        return (
            None
            if limits.can_disable
            else ("Budget 0 is invalid. This model only works in thinking mode.")
        )
    if not limits.low <= budget <= limits.high:
        return (
            f"The thinking budget {budget} is invalid. Please choose a value between "
            f"{limits.low} and {limits.high}."
        )
    return None


def thought_signature(model: str, call_name: str, serial: int) -> str:
    """An opaque, deterministic stand-in for a ``thoughtSignature`` (base64, like Google's)."""
    digest = hashlib.sha256(f"{model}/{call_name}/{serial}".encode()).digest()
    return base64.b64encode(b"sig:" + digest).decode()
