"""Speaking an apology when the provider has failed: with the offline TTS, if it is installed.

When a call's provider dies mid-call there is nothing left to speak with, so the caller would
hear silence and then a hang-up. If the ``[local]`` extra is installed, Piper says the agent's
apology instead (synthesised once per text and carrier format, then cached).
"""

from __future__ import annotations

import logging

from switchboard.media import AudioSpec

__all__ = ["apology_audio"]

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, AudioSpec], bytes] = {}


async def apology_audio(text: str, spec: AudioSpec) -> bytes | None:
    """``text`` spoken in ``spec`` (the carrier's format), or None without the local extra."""
    key = (text, spec)
    if key in _cache:
        return _cache[key]
    try:
        from switchboard.providers.local.tts import PiperTTS
    except ImportError:
        logger.info("no offline TTS installed: the apology cannot be spoken")
        return None
    tts = PiperTTS(spec)
    try:
        audio = b"".join([chunk async for chunk in tts.synthesize(text)])
    except Exception as exc:  # the apology is best effort; the call ends either way
        logger.warning("apology synthesis failed: %s", exc)
        return None
    finally:
        await tts.aclose()
    if len(_cache) < 32:
        _cache[key] = audio
    return audio
