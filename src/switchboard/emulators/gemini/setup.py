"""Checks on the Live ``setup`` message, with the close codes the real service uses.

https://ai.google.dev/api/live and observed closes (``docs/wire/gemini.md#close-codes``): ``1007``
"Request contains an invalid argument." for malformed JSON, unknown fields or bad values; ``1008``
(policy) for a model that does not exist or is not a Live model (``gemini-2.5-pro`` included: see
:mod:`.models`), or an unusable API key. Which of the two Google uses for a *bad key* is UNCONFIRMED
(``1007 "API key expired…"`` was also observed); the emulator answers 1008.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from switchboard.emulators.gemini.models import not_supported, serves
from switchboard.emulators.gemini.rest import get

__all__ = ["SETUP_FIELDS", "VOICES", "SetupError", "check_setup"]

SETUP_FIELDS = frozenset(
    {
        "model",
        "generationConfig",
        "systemInstruction",
        "tools",
        "realtimeInputConfig",
        "inputAudioTranscription",
        "outputAudioTranscription",
        "sessionResumption",
        "contextWindowCompression",
        "proactivity",
        "historyConfig",
        "safetySettings",
        "explicitVadSignal",
    }
)

#: docs.cloud.google.com …/live-api/configure-language-voice (30 voices).
VOICES = frozenset(
    {
        "Zephyr",
        "Kore",
        "Orus",
        "Autonoe",
        "Umbriel",
        "Erinome",
        "Laomedeia",
        "Schedar",
        "Achird",
        "Sadachbia",
        "Puck",
        "Fenrir",
        "Aoede",
        "Enceladus",
        "Algieba",
        "Algenib",
        "Achernar",
        "Gacrux",
        "Zubenelgenubi",
        "Sadaltager",
        "Charon",
        "Leda",
        "Callirrhoe",
        "Iapetus",
        "Despina",
        "Rasalgethi",
        "Alnilam",
        "Pulcherrima",
        "Vindemiatrix",
        "Sulafat",
    }
)

INVALID = "Request contains an invalid argument."


class SetupError(Exception):
    """A rejected connection: close with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def check_setup(
    msg: Mapping[str, Any],
    *,
    key: str | None,
    api_key: str | None,
    models: Collection[str] | None,
    version: str = "v1beta",
) -> dict[str, Any]:
    """Validate the first client message; return its ``setup`` object.

    ``models`` narrows the Live models this key may use (None: every Live model of
    :data:`~.models.LIVE_MODELS`); a model outside them closes 1008 as the service does.

    Raises:
        SetupError: with the close code and reason to send.
    """
    if set(msg) != {"setup"} or not isinstance(msg["setup"], dict):
        raise SetupError(1007, INVALID)
    if not key or (api_key is not None and key != api_key):
        raise SetupError(1008, "API key not valid. Please pass a valid API key.")
    setup: dict[str, Any] = msg["setup"]
    for name in setup:
        if _camel(name) not in SETUP_FIELDS:
            raise SetupError(
                1007,
                f"Invalid JSON payload received. Unknown name \"{name}\" at 'setup': "
                "Cannot find field.",
            )
    model = get(setup, "model")
    if not isinstance(model, str) or not model.startswith("models/"):
        raise SetupError(1007, INVALID)
    if not serves(model.removeprefix("models/"), "bidiGenerateContent", models):
        raise SetupError(
            1008, not_supported(model.removeprefix("models/"), "bidiGenerateContent", version)
        )
    gen = get(setup, "generationConfig") or {}
    modalities = get(gen, "responseModalities") or ["AUDIO"]
    if len(modalities) != 1 or modalities[0] not in ("AUDIO", "TEXT"):
        raise SetupError(1007, INVALID)
    voice_cfg = get(get(get(gen, "speechConfig") or {}, "voiceConfig") or {}, "prebuiltVoiceConfig")
    if voice_cfg is not None and get(voice_cfg, "voiceName") not in VOICES:
        raise SetupError(1007, INVALID)
    for tool in get(setup, "tools") or []:
        for decl in get(tool, "functionDeclarations") or []:
            if not decl.get("name"):
                raise SetupError(1007, INVALID)
    return setup
