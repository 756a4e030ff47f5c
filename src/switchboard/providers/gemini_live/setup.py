"""The Live ``setup`` message (BidiGenerateContentSetup), built from a :class:`SessionConfig`.

Reference: https://ai.google.dev/api/live#bidigeneratecontentsetup and
``docs/wire/gemini.md#setup``. We send lowerCamelCase (proto3 JSON; the service also accepts
snake_case, which the SDK partly sends: ``docs/wire/gemini.md#field-spelling``).

``SessionConfig.extra`` keys understood here (all optional):

* ``vad``: ``{"disabled", "start_sensitivity", "end_sensitivity", "prefix_padding_ms",
  "silence_duration_ms"}`` → ``realtimeInputConfig.automaticActivityDetection``
  (sensitivities are ``HIGH``/``LOW`` or the full enum names);
* ``language_code``: → ``speechConfig.languageCode`` (not sent by default: native-audio
  models pick the language themselves);
* ``compression_trigger_tokens``: → ``contextWindowCompression.triggerTokens``;
* ``turn_taking`` (set when the bridge decides interruptions, ``bridge/turn_taking.py``):
  ``realtimeInputConfig.activityHandling`` ``NO_INTERRUPTION``, so a backchannel does not cut
  the model's reply; the bridge clears the caller's audio and drops the rest of the reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchboard.providers.base import SessionConfig
from switchboard.providers.gemini_text.schema import function_declarations

__all__ = ["LiveSetup"]

DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


def _sensitivity(kind: str, value: str) -> str:
    value = value.upper()
    return value if value.startswith(kind) else f"{kind}_SENSITIVITY_{value}"


@dataclass(slots=True)
class LiveSetup:
    """Everything the ``setup`` message carries except the resumption handle."""

    model: str
    voice: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    vad: dict[str, Any] = field(default_factory=dict)
    language_code: str | None = None
    compression_trigger_tokens: int | None = None
    bridge_interrupts: bool = False

    @classmethod
    def from_config(cls, config: SessionConfig) -> LiveSetup:
        """Read model, voice, prompt, temperature, tools and ``extra`` (see module doc)."""
        extra = config.extra
        trigger = extra.get("compression_trigger_tokens")
        return cls(
            model=(config.model_id or DEFAULT_MODEL).removeprefix("models/"),
            voice=config.voice,
            system_prompt=config.system_prompt,
            temperature=config.temperature,
            tools=config.function_tools(),
            vad=dict(extra.get("vad") or {}),
            language_code=extra.get("language_code"),
            compression_trigger_tokens=int(trigger) if trigger is not None else None,
            bridge_interrupts=extra.get("turn_taking") is not None,
        )

    def activity_detection(self) -> dict[str, Any]:
        """``automaticActivityDetection`` (server VAD; caller barge-in interrupts the model)."""
        vad = self.vad
        out: dict[str, Any] = {"disabled": bool(vad.get("disabled", False))}
        if "start_sensitivity" in vad:
            out["startOfSpeechSensitivity"] = _sensitivity("START", str(vad["start_sensitivity"]))
        if "end_sensitivity" in vad:
            out["endOfSpeechSensitivity"] = _sensitivity("END", str(vad["end_sensitivity"]))
        out["prefixPaddingMs"] = int(vad.get("prefix_padding_ms", 20))
        out["silenceDurationMs"] = int(vad.get("silence_duration_ms", 500))
        return out

    def message(self, handle: str | None) -> dict[str, Any]:
        """The ``{"setup": {...}}`` message; ``handle`` resumes an earlier session."""
        speech: dict[str, Any] = {}
        if self.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": self.voice}}
        if self.language_code:
            speech["languageCode"] = self.language_code
        gen: dict[str, Any] = {"responseModalities": ["AUDIO"]}
        if speech:
            gen["speechConfig"] = speech
        if self.temperature is not None:
            gen["temperature"] = self.temperature
        setup: dict[str, Any] = {"model": f"models/{self.model}", "generationConfig": gen}
        if self.system_prompt:
            setup["systemInstruction"] = {"role": "user", "parts": [{"text": self.system_prompt}]}
        declared = function_declarations(self.tools)
        if declared:
            setup["tools"] = declared
        setup["realtimeInputConfig"] = {
            "automaticActivityDetection": self.activity_detection(),
            "activityHandling": (
                "NO_INTERRUPTION" if self.bridge_interrupts else "START_OF_ACTIVITY_INTERRUPTS"
            ),
        }
        setup["inputAudioTranscription"] = {}
        setup["outputAudioTranscription"] = {}
        setup["sessionResumption"] = {"handle": handle} if handle else {}
        compression: dict[str, Any] = {"slidingWindow": {}}
        if self.compression_trigger_tokens is not None:
            compression["triggerTokens"] = self.compression_trigger_tokens
        setup["contextWindowCompression"] = compression
        return {"setup": setup}
