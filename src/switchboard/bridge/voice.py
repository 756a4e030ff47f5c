"""The caller's voice at our socket: a cheap per-frame test, and what its runs mean.

The bridge measures turn latency from the caller's last voiced frame at the carrier socket, not
from the provider's end-of-speech event (which comes after the provider's VAD hangover, or,
for the pipeline, after transcription). μ-law, the common case, costs one ``bytes.translate``
and a ``sum`` per 20 ms frame. :class:`CallerVoice` is the pure state the bridge core keeps
from those answers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from switchboard.audio import ulaw_to_pcm16
from switchboard.media import AudioFormat

__all__ = ["CallerVoice", "voice_detector"]


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


class CallerVoice:
    """What the runs of voiced caller frames tell the bridge core (pure; times in ms).

    Theory of operation: the runner tests every caller frame with :func:`voice_detector` and
    the core feeds the answer to :meth:`frame`.

    * The last voiced frame's arrival (``last_voice_ms``) is the caller's end of speech at our
      socket, earlier than any provider's end-of-speech event; turns are timed from it.
    * ``barge_in_frames`` voiced frames in a row are speech over whatever is playing. Providers
      with their own VAD events (OpenAI, the pipeline) report caller speech and the core acts
      on that; Gemini reports none, and once it has finished generating, the reply's audio
      still queued would play on over the caller. So until a provider has reported speech
      (``provider_reports_speech``), such a run starts a barge-in.
    * Voice not yet answered by an end of speech means a reply that starts now answers it,
      even when the provider never said the caller stopped (Gemini without VAD messages).
    """

    #: A caller frame's length: a voiced frame's speech ends this long after it arrived.
    FRAME_MS = 20.0
    #: Voice older than this is not the end of the speech a provider reports now.
    RECENT_MS = 5000.0

    def __init__(self, *, barge_in_frames: int = 12) -> None:
        #: consecutive voiced 20 ms frames that count as speech over agent audio (240 ms)
        self.barge_in_frames = barge_in_frames
        self.last_voice_ms: float | None = None
        self.provider_reports_speech = False
        self._run = 0  # consecutive voiced frames
        self._answered_ms = 0.0  # voice before this already ended a turn

    def frame(self, voiced: bool, now: float) -> bool:
        """Count one caller frame; True when it completes a run that should barge in."""
        if not voiced:
            self._run = 0
            return False
        self.last_voice_ms = now
        self._run += 1
        return self._run == self.barge_in_frames and not self.provider_reports_speech

    def speech_end(self, now: float) -> float:
        """The provider reported the end of speech at ``now``: when it really ended.

        That is the end of the last voiced frame when there was one in the last few seconds,
        else ``now``; the voice so far counts as answered.
        """
        self._answered_ms = now
        last = self.last_voice_ms
        return last + self.FRAME_MS if last is not None and now - last < self.RECENT_MS else now

    def unanswered_end(self, now: float) -> float | None:
        """The end of caller voice that no end of speech has answered yet (then answered at
        ``now``), or None."""
        last = self.last_voice_ms
        if last is None or last <= self._answered_ms:
            return None
        self._answered_ms = now
        return last + self.FRAME_MS
