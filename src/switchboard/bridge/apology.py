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

import asyncio
import importlib.util
import logging

from switchboard.bridge.failover import FailoverPolicy
from switchboard.media import AudioFormat, AudioSpec

__all__ = ["apology_audio", "preload_offline_voice"]

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, AudioSpec], bytes] = {}
#: syntheses under way, so that calls starting together wait for one instead of each running it
_pending: dict[tuple[str, AudioSpec], asyncio.Task[bytes | None]] = {}


async def apology_audio(text: str, spec: AudioSpec) -> bytes | None:
    """``text`` spoken in ``spec`` (the carrier's format), or None without the local extra.

    Each (text, format) is synthesised once: every call's failover watch asks for the filler
    when the call starts, and a hundred calls starting together must share one synthesis (each
    running its own cost seconds of CPU and ~0.5 MB of ONNX Runtime buffers per call). The
    synthesis is a task of its own, so a call that ends while waiting does not cancel it for
    the others."""
    key = (text, spec)
    if key in _cache:
        return _cache[key]
    task = _pending.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():  # (tests: loops)
        task = asyncio.create_task(_synthesize(text, spec), name="offline-voice")
        _pending[key] = task
        task.add_done_callback(lambda t: _done(key, t))
    return await asyncio.shield(task)


def _done(key: tuple[str, AudioSpec], task: asyncio.Task[bytes | None]) -> None:
    if _pending.get(key) is task:
        del _pending[key]
    if task.cancelled():  # the event loop closed under it
        return
    audio = task.result()  # _synthesize raises nothing but cancellation
    if audio is not None and len(_cache) < 32:
        _cache[key] = audio


async def _synthesize(text: str, spec: AudioSpec) -> bytes | None:
    try:
        from switchboard.providers.local.tts import PiperTTS
    except ImportError:
        logger.info("no offline TTS installed: the apology cannot be spoken")
        return None
    try:
        tts = PiperTTS(spec)
    except Exception as exc:  # the apology is best effort; the call ends either way
        logger.warning("offline voice unavailable: %s", exc)
        return None
    try:
        return b"".join([chunk async for chunk in tts.synthesize(text)])
    except Exception as exc:
        logger.warning("apology synthesis failed: %s", exc)
        return None
    finally:
        await tts.aclose()


async def preload_offline_voice() -> bool:
    """Load the offline voice now (app start-up) if the ``[local]`` extra is installed;
    returns whether it is loaded. A voice that fails to load is logged, not fatal: the
    apology and filler are then silent, as without the extra."""
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
    # The first synthesis sizes ONNX Runtime's buffers (~25 MB): done here, not by the first
    # call; and the default filler in telephone μ-law is then ready for every call.
    await apology_audio(FailoverPolicy().filler_text, AudioSpec(AudioFormat.ULAW, 8000))
    return True
