"""The nearest voice of another provider, for a call that fails over mid-conversation.

Voices differ by provider; a caller who heard a female voice should not hear a male one after a
failover. Each known voice is classed (``f``/``m``) from the vendors' voice pages; the nearest
voice of the new provider is its default when that is of the same class, else its first voice of
that class, else its default.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["VOICE_CLASS", "nearest_voice"]

#: Voice → class, from the vendors' voice lists (OpenAI Realtime, Gemini Live, Deepgram Aura,
#: Piper). Voices not listed have no class: the new provider's default is used.
VOICE_CLASS: dict[str, str] = {
    # OpenAI Realtime
    "alloy": "f",
    "ash": "m",
    "ballad": "m",
    "coral": "f",
    "echo": "m",
    "sage": "f",
    "shimmer": "f",
    "verse": "m",
    "marin": "f",
    "cedar": "m",
    # Gemini Live
    "puck": "m",
    "charon": "m",
    "kore": "f",
    "fenrir": "m",
    "aoede": "f",
    "leda": "f",
    "orus": "m",
    "zephyr": "f",
    # Deepgram Aura
    "aura-asteria-en": "f",
    "aura-luna-en": "f",
    "aura-stella-en": "f",
    "aura-athena-en": "f",
    "aura-hera-en": "f",
    "aura-orion-en": "m",
    "aura-arcas-en": "m",
    "aura-perseus-en": "m",
    "aura-angus-en": "m",
    "aura-orpheus-en": "m",
    "aura-helios-en": "m",
    "aura-zeus-en": "m",
    "aura-2-thalia-en": "f",
    "aura-2-andromeda-en": "f",
    "aura-2-helena-en": "f",
    "aura-2-apollo-en": "m",
    # Piper (local)
    "en_us-joe-medium": "m",
}


def nearest_voice(voice: str | None, voices: Sequence[str], default: str | None) -> str | None:
    """The voice among ``voices`` (the new provider's) nearest to ``voice``.

    Returns ``voice`` itself when the new provider has it, ``default`` (the new provider's)
    when ``voice`` is None or unclassed, else the default or first voice of the same class.
    """
    if voice is None:
        return default
    if voice in voices:
        return voice
    wanted = VOICE_CLASS.get(voice.lower())
    if wanted is None:
        return default
    if default is not None and VOICE_CLASS.get(default.lower()) == wanted:
        return default
    return next((v for v in voices if VOICE_CLASS.get(v.lower()) == wanted), default)
