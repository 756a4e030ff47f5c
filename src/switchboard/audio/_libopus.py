"""libopus called directly through :mod:`ctypes`: the fast path behind the Opus codec classes.

Why not PyAV for a call's 50 packets a second each way: PyAV wraps every 20 ms packet in
FFmpeg ``AVFrame``/``AVPacket`` objects, and FFmpeg's libopus decoder always decodes at 48 kHz
and then resamples (swresample) to the stream's rate. Calling libopus itself decodes at the
stream's own rate (libopus does 8/12/16/24/48 kHz natively) and costs one foreign call per
packet: ~40 % less CPU per call-frame at 16 and 24 kHz (docs/benchmarks.md, "Opus codec").

Which libopus: the copy inside PyAV's wheel first (``av.libs/`` on Linux, ``av/.dylibs`` on
macOS) — the very library PyAV's own path uses, so both paths produce identical packets — then
the system's (``libopus.so.0`` from the ``libopus0`` package, found by
:func:`ctypes.util.find_library`). With neither, :func:`load_libopus` returns None and
:mod:`switchboard.audio.opus` falls back to PyAV (or reports what to install).

The encoder is set up exactly as FFmpeg's ``libopus`` encoder sets it up for our options
(FFmpeg ``libavcodec/libopusenc.c``, ``libopus_configure_encoder``): bitrate, complexity,
VBR on and *unconstrained* (libopus's own default is constrained). CTL request numbers are
from libopus ``include/opus_defines.h``.

Memory: each :class:`LibopusEncoder`/:class:`LibopusDecoder` owns one libopus state, freed by
:meth:`close` or when the object is collected (:func:`weakref.finalize`); a closed codec raises
:class:`AudioError` instead of handing libopus a dangling pointer. A state is not thread-safe,
like every per-stream codec here: one stream, one owner.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import logging
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from switchboard.errors import AudioError

__all__ = [
    "APPLICATIONS",
    "BANDWIDTHS",
    "LibopusDecoder",
    "LibopusEncoder",
    "libopus_path",
    "libopus_version",
    "load_libopus",
]

logger = logging.getLogger(__name__)

# include/opus_defines.h
_OPUS_OK = 0
_SET_BITRATE = 4002
_SET_MAX_BANDWIDTH = 4004
_SET_VBR = 4006
_SET_COMPLEXITY = 4010
_SET_VBR_CONSTRAINT = 4020
_RESET_STATE = 4028
#: ``application`` names → OPUS_APPLICATION_VOIP / _AUDIO / _RESTRICTED_LOWDELAY.
APPLICATIONS: dict[str, int] = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
#: Audio bandwidth in Hz → OPUS_BANDWIDTH_NARROWBAND … _FULLBAND (FFmpeg's ``cutoff`` values).
BANDWIDTHS: dict[int, int] = {4000: 1101, 6000: 1102, 8000: 1103, 12000: 1104, 20000: 1105}
#: Largest packet opus_encode may write: libopus's documented "4000 bytes is plenty".
_MAX_PACKET = 4000
#: Longest Opus packet (120 ms): the decoder's output buffer, in milliseconds.
_MAX_PACKET_MS = 120

_c_int_p = ctypes.POINTER(ctypes.c_int)
_SHLIB = (".dylib", ".dll")


def _candidates() -> Iterator[str]:
    """Where a libopus may be, best first (PyAV's bundled copy, then the system's).

    A generator: the system search (``ldconfig -p``, a subprocess) runs only when PyAV's copy
    is missing or unusable.
    """
    spec = importlib.util.find_spec("av")  # finds the package without importing FFmpeg
    if spec is not None and spec.submodule_search_locations:
        pkg = Path(next(iter(spec.submodule_search_locations)))
        for folder in (pkg.parent / "av.libs", pkg / ".dylibs"):  # Linux/Windows, macOS wheels
            for path in sorted(folder.glob("*opus*")):
                if ".so" in path.name or path.suffix in _SHLIB:
                    yield str(path)
    system = ctypes.util.find_library("opus")
    if system:
        yield system


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the prototypes we call (wrong types would corrupt memory, not raise)."""
    vp, i32, ci, cp = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int, ctypes.c_char_p
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "opus_get_version_string": (cp, []),
        "opus_strerror": (cp, [ci]),
        "opus_encoder_create": (vp, [i32, ci, ci, _c_int_p]),
        "opus_encoder_destroy": (None, [vp]),
        "opus_encode": (i32, [vp, cp, ci, cp, i32]),
        "opus_decoder_create": (vp, [i32, ci, _c_int_p]),
        "opus_decoder_destroy": (None, [vp]),
        "opus_decode": (ci, [vp, cp, i32, cp, ci, ci]),
        "opus_packet_get_samples_per_frame": (ci, [cp, i32]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    # opus_encoder_ctl / opus_decoder_ctl are variadic: only the fixed part (state, request)
    # is declared, so ctypes passes the one opus_int32 value (none for OPUS_RESET_STATE) as a
    # variadic argument, which is what ABIs that treat those apart (Apple arm64) need.
    for name in ("opus_encoder_ctl", "opus_decoder_ctl"):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ci, [vp, ci]
    return lib


@functools.cache
def load_libopus() -> ctypes.CDLL | None:
    """The first libopus that loads and has the API we call, or None (cached)."""
    for path in _candidates():
        try:
            lib = _bind(ctypes.CDLL(path))
        except (OSError, AttributeError) as exc:
            logger.debug("cannot use libopus at %s: %s", path, exc)
            continue
        logger.debug("libopus %s from %s", lib.opus_get_version_string().decode(), path)
        return lib
    return None


def libopus_version() -> str | None:
    """``"libopus 1.5.2"`` or the like, or None when no libopus loads."""
    lib = load_libopus()
    return None if lib is None else lib.opus_get_version_string().decode()


def libopus_path() -> str | None:
    """The file (or soname) the loaded libopus came from, or None."""
    lib = load_libopus()
    return None if lib is None else str(lib._name)


def _require() -> ctypes.CDLL:
    lib = load_libopus()
    if lib is None:
        raise AudioError("libopus cannot be loaded (neither PyAV's copy nor the system's)")
    return lib


def _strerror(lib: ctypes.CDLL, code: int) -> str:
    return f"{lib.opus_strerror(code).decode()} ({code})"


class LibopusEncoder:
    """One libopus encoder state: PCM16 frames of ``frame_ms`` → one packet each."""

    __slots__ = ("__weakref__", "_encode", "_free", "_out", "_state", "frame_samples")

    def __init__(
        self,
        sample_rate: int,
        frame_ms: int,
        *,
        bitrate: int,
        complexity: int,
        app: str,
        max_bandwidth_hz: int | None = None,
    ) -> None:
        lib = _require()
        err = ctypes.c_int()
        state = lib.opus_encoder_create(sample_rate, 1, APPLICATIONS[app], ctypes.byref(err))
        if err.value != _OPUS_OK or not state:
            raise AudioError(f"cannot create an Opus encoder: {_strerror(lib, err.value)}")
        self._state: int | None = state
        self._free = weakref.finalize(self, lib.opus_encoder_destroy, ctypes.c_void_p(state))
        settings = [
            (_SET_BITRATE, bitrate),
            (_SET_COMPLEXITY, complexity),
            (_SET_VBR, 1),
            (_SET_VBR_CONSTRAINT, 0),  # as FFmpeg's vbr=on: libopus's default is constrained
        ]
        if max_bandwidth_hz is not None:
            settings.append((_SET_MAX_BANDWIDTH, BANDWIDTHS[max_bandwidth_hz]))
        for request, value in settings:
            code = lib.opus_encoder_ctl(state, request, ctypes.c_int32(value))
            if code != _OPUS_OK:
                self.close()
                raise AudioError(f"Opus encoder setting {request}={value}: {_strerror(lib, code)}")
        self.frame_samples = sample_rate * frame_ms // 1000
        self._encode = lib.opus_encode
        self._out = ctypes.create_string_buffer(_MAX_PACKET)

    def encode(self, frame: bytes) -> list[bytes]:
        """Exactly ``frame_samples`` of PCM16 (native byte order) → ``[packet]``."""
        n = self._encode(self._live(), frame, self.frame_samples, self._out, _MAX_PACKET)
        if n < 0:
            raise AudioError(f"Opus encoding failed: {_strerror(_require(), n)}")
        return [ctypes.string_at(self._out, n)]

    def close(self) -> None:
        """Free the libopus state now (also done on garbage collection)."""
        self._state = None
        self._free()

    def _live(self) -> int:
        if self._state is None:
            raise AudioError("this Opus encoder is closed")
        return self._state


class LibopusDecoder:
    """One libopus decoder state: packets → PCM16 at ``sample_rate``, natively (no resampling)."""

    __slots__ = ("__weakref__", "_cap", "_decode", "_free", "_out", "_state", "sample_rate")

    def __init__(self, sample_rate: int) -> None:
        lib = _require()
        err = ctypes.c_int()
        state = lib.opus_decoder_create(sample_rate, 1, ctypes.byref(err))
        if err.value != _OPUS_OK or not state:
            raise AudioError(f"cannot create an Opus decoder: {_strerror(lib, err.value)}")
        self._state: int | None = state
        self._free = weakref.finalize(self, lib.opus_decoder_destroy, ctypes.c_void_p(state))
        self.sample_rate = sample_rate
        self._cap = sample_rate * _MAX_PACKET_MS // 1000
        self._out = ctypes.create_string_buffer(self._cap * 2)
        self._decode = lib.opus_decode

    def decode(self, packet: bytes) -> bytes:
        """One non-empty packet → PCM16 (raises AudioError on one libopus rejects)."""
        n = self._decode(self._live(), packet, len(packet), self._out, self._cap, 0)
        if n < 0:
            raise AudioError(f"bad Opus packet ({len(packet)} bytes): {_strerror(_require(), n)}")
        return ctypes.string_at(self._out, n * 2)

    def conceal(self, toc: int) -> bytes:
        """PLC for one lost frame of the configuration in TOC byte ``toc``."""
        lib = _require()
        samples = lib.opus_packet_get_samples_per_frame(bytes([toc]), self.sample_rate)
        n = self._decode(self._live(), None, 0, self._out, samples, 0)
        if n < 0:
            raise AudioError(f"Opus packet-loss concealment failed: {_strerror(lib, n)}")
        return ctypes.string_at(self._out, n * 2)

    def reset(self) -> None:
        """Forget the stream's history (OPUS_RESET_STATE)."""
        _require().opus_decoder_ctl(self._live(), _RESET_STATE)

    def close(self) -> None:
        """Free the libopus state now (also done on garbage collection)."""
        self._state = None
        self._free()

    def _live(self) -> int:
        if self._state is None:
            raise AudioError("this Opus decoder is closed")
        return self._state
