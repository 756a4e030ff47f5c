"""Speaking an apology when the provider has failed: with the offline TTS, if it is installed.

When a call's provider dies mid-call there is nothing left to speak with, so the caller would
hear silence and then a hang-up. If the ``[local]`` extra is installed, Piper says the agent's
apology instead (synthesised once per text and carrier format, then cached).

The same voice says a failover's filler ("One moment, please."), which each call's failover
watch synthesises when the call starts so that it is ready when needed. Loading the voice
(Piper's ONNX model) takes seconds of CPU, much of it holding the GIL: done at a worker's first
call, it stalled every call of that worker — under load for over 6 s, long enough for the
cluster to take the worker for dead. :func:`preload_offline_voice` loads it when the app starts,
before the worker takes calls.
"""

from __future__ import annotations

import importlib.util
import logging

from switchboard.media import AudioSpec

__all__ = ["apology_audio", "preload_offline_voice"]

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


async def preload_offline_voice() -> bool:
    """Load the offline voice now (app start-up) if the ``[local]`` extra is installed;
    returns whether it is loaded. A voice that fails to load is logged, not fatal: the
    apology and filler are then silent, as without the extra."""
    import asyncio

    try:
        from switchboard.providers.local import models
    except ImportError:
        return False
    if importlib.util.find_spec("piper") is None:
        return False
    try:
        await asyncio.get_running_loop().run_in_executor(models.tts_pool(), models.piper_voice)
    except Exception as exc:  # a broken install must not stop the gateway
        logger.warning("offline voice not loaded (apology and filler will be silent): %s", exc)
        return False
    return True
