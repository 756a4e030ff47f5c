"""The optional PyAV binding behind the Opus, MP3 and G.722 codecs (private helpers).

PyAV (``av``) wraps FFmpeg; its wheels carry libopus, LAME and FFmpeg's own G.722 and MP3
codecs. It is optional — ``pip install 'switchboard-voice[codecs]'`` brings it (the ``local``
extra does too) — so the core install stays lean: importing :mod:`switchboard.audio` never
needs it, and the codec classes raise one clear :class:`AudioError` when it is missing.

``av`` is imported on first use. Every FFmpeg failure is translated here into
:class:`AudioError` at the boundary.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from switchboard.errors import AudioError

if TYPE_CHECKING:
    import av
    from av.audio.codeccontext import AudioCodecContext
    from av.audio.frame import AudioFrame
    from av.audio.resampler import AudioResampler
else:

    class _LazyAv:
        """``av``, imported on first use: it loads FFmpeg (~0.15 s); G.711 calls never need it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(importlib.import_module("av"), name)

    av = _LazyAv()

__all__ = [
    "AV_AVAILABLE",
    "av",
    "av_errors",
    "codec_context",
    "drain",
    "frames_to_pcm",
    "load_av",
    "mono_resampler",
    "pcm_frame",
    "require_av",
]

#: Whether PyAV is installed (without importing it). The core install lacks it: Opus, MP3
#: and G.722 are then unavailable and G.711 is unaffected.
AV_AVAILABLE: bool = importlib.util.find_spec("av") is not None
INSTALL_HINT = "pip install 'switchboard-voice[codecs]'"


def require_av(what: str) -> None:
    """Raise :class:`AudioError` naming the extra to install when PyAV is missing."""
    if not AV_AVAILABLE:
        raise AudioError(f"{what} needs PyAV, which is not installed: {INSTALL_HINT}")


def load_av(what: str) -> None:
    """Import PyAV now (it loads FFmpeg, ~0.15 s), raising :class:`AudioError` when missing."""
    require_av(what)
    importlib.import_module("av")


@contextmanager
def av_errors(what: str) -> Iterator[None]:
    """Translate FFmpeg errors raised inside the block into :class:`AudioError`."""
    try:
        yield
    except av.error.FFmpegError as exc:
        raise AudioError(f"{what}: {exc.strerror or exc}") from exc


def codec_context(
    name: str,
    mode: str,
    *,
    sample_rate: int | None = None,
    sample_format: str | None = None,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> AudioCodecContext:
    """Open a mono FFmpeg audio codec context (one per stream: codec state is never shared)."""
    require_av(f"the {name} codec")
    with av_errors(f"cannot open the {name} codec"):
        ctx = av.CodecContext.create(name, "w" if mode == "w" else "r")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.layout = "mono"
        if sample_rate is not None:
            ctx.sample_rate = sample_rate
        if sample_format is not None:
            ctx.format = sample_format
        if bit_rate is not None:
            ctx.bit_rate = bit_rate
        if options:
            ctx.options = options
        ctx.open()
    return ctx


def mono_resampler(rate: int) -> AudioResampler:
    """A stateful FFmpeg resampler to PCM16 mono at ``rate`` (downmixes, converts formats)."""
    require_av("resampling decoded audio")
    return av.AudioResampler(format="s16", layout="mono", rate=rate)


def pcm_frame(samples: np.ndarray, rate: int, pts: int, *, planar: bool = False) -> AudioFrame:
    """Wrap PCM16 mono ``samples`` (int16 array) as an FFmpeg frame starting at ``pts``."""
    frame = av.AudioFrame.from_ndarray(
        samples.reshape(1, -1), format="s16p" if planar else "s16", layout="mono"
    )
    frame.sample_rate = rate
    frame.pts = pts
    return frame


def frames_to_pcm(frames: list[AudioFrame], resampler: AudioResampler | None) -> bytes:
    """PCM16 LE mono bytes of decoded ``frames``, through ``resampler`` when given.

    Without a resampler the frames must already be PCM16 mono (``s16``/``s16p``).
    """
    out: list[bytes] = []
    for frame in frames:
        for piece in resampler.resample(frame) if resampler is not None else [frame]:
            out.append(piece.to_ndarray().astype("<i2", copy=False).tobytes())
    return b"".join(out)


def drain(resampler: AudioResampler) -> bytes:
    """What ``resampler`` still holds (it cannot be used afterwards)."""
    return b"".join(
        f.to_ndarray().astype("<i2", copy=False).tobytes() for f in resampler.resample(None)
    )
