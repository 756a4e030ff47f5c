"""Is the caller's voice in this frame? A cheap per-frame test, used to time turns.

The bridge measures turn latency from the caller's last voiced frame at the carrier socket, not
from the provider's end-of-speech event (which comes after the provider's VAD hangover, or,
for the pipeline, after transcription). μ-law, the common case, costs one ``bytes.translate``
and a ``sum`` per 20 ms frame.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from switchboard.audio import ulaw_to_pcm16
from switchboard.media import AudioFormat

__all__ = ["voice_detector"]


def _ulaw_magnitude_table() -> bytes:
    """μ-law code → |sample| >> 7 (0..255), for a translate-and-sum loudness estimate."""
    pcm = ulaw_to_pcm16(bytes(range(256)))
    values = [
        abs(int.from_bytes(pcm[i : i + 2], "little", signed=True)) >> 7 for i in range(0, 512, 2)
    ]
    return bytes(min(255, v) for v in values)


_ULAW_MAGNITUDE = _ulaw_magnitude_table()
#: Mean |sample| >> 7 above which a caller frame counts as voice (about -42 dBFS).
_VOICE_LEVEL = 2


def voice_detector(fmt: AudioFormat) -> Callable[[bytes], bool]:
    """A cheap per-frame "is the caller's voice in this frame" test for ``fmt`` audio.

    Used only to time the end of the caller's speech at our socket (turn latency); μ-law, the
    common case, costs one ``bytes.translate`` and a ``sum`` per 20 ms frame.
    """
    if fmt is AudioFormat.ULAW:
        return lambda frame: sum(frame.translate(_ULAW_MAGNITUDE)) > _VOICE_LEVEL * len(frame)
    if fmt is AudioFormat.PCM16:
        level = _VOICE_LEVEL << 7

        def pcm16(frame: bytes) -> bool:
            samples = np.frombuffer(frame, dtype="<i2", count=len(frame) // 2)
            return bool(samples.size) and float(np.abs(samples, dtype=np.int32).mean()) > level

        return pcm16
    return lambda frame: False
