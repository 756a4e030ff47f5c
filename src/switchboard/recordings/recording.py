"""One call's recording as it happens: carrier frames in, a stereo file out.

The call's session (``bridge/session.py``) hands a :class:`CallRecording` what crosses the
carrier socket, in the carrier's own format and at the session's clock: every caller frame it
reads (:meth:`caller_audio`), every agent frame at the moment it is sent (:meth:`agent_audio`)
and every ``clear`` (:meth:`cleared`). The :class:`~switchboard.recordings.tape.Tape` places
them on the call's timeline; about once a second what can no longer change is encoded to the
file (``.part`` until finished), so memory stays bounded whatever the call's length.

:meth:`finish` ends the file and renames it to its final name; it is idempotent and is called
when the call ends however it ends (the manager's ``finally``), so a call that fails still
leaves a valid file. A recording never fails a call: a disk or encoder error is logged once,
the partial file removed, and the call goes on unrecorded.

Redaction, for the keypad (``collect_digits(..., redact=True)``)
---------------------------------------------------------------
``session.recorder.redact(start_ms, end_ms)`` silences both channels (or ``channel="caller"``
/ ``"agent"``) between two instants of the session's clock (``session.now()``); ``end_ms=None``
keeps silencing until ``session.recorder.end_redaction(session.now())``. A span reported up to
:data:`~switchboard.recordings.tape.HOLDBACK_MS` after it began is still silenced in full.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.audio import StreamConverter
from switchboard.audio.stereo import RecordingFormat, StereoFileWriter, recording_rate
from switchboard.errors import AudioError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.recordings.files import PART_SUFFIX
from switchboard.recordings.tape import Channel, Tape

__all__ = ["CallRecording", "RecordingInfo"]

logger = logging.getLogger(__name__)

#: Samples are encoded to the file in pieces of about this length (fewer, larger writes).
_WRITE_EVERY_MS = 1000.0


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A finished recording: where it is and what it holds."""

    path: Path
    format: RecordingFormat
    sample_rate: int
    duration_s: float
    retention_days: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "sample_rate": self.sample_rate,
            "channels": {"left": "caller", "right": "agent as heard"},
            "duration_s": round(self.duration_s, 3),
            "retention_days": self.retention_days,
            "file": self.path.name,
        }


class CallRecording:
    """A stereo recording of one call (see module doc).

    Args:
        path: the finished file's path (written as ``path + ".part"`` until then).
        fmt: the file format.
        carrier: the carrier's audio (both directions use it).
        clock: the session's clock in milliseconds; the recording starts at its value now.
        retention_days: kept in the info for the record (the sweeper reads the directory).

    Raises:
        AudioError: the file cannot be opened (PyAV missing for the format, no permission).
    """

    def __init__(
        self,
        path: Path,
        fmt: RecordingFormat,
        carrier: AudioSpec,
        clock: Callable[[], float],
        *,
        retention_days: int | None = None,
        call_id: str = "",
    ) -> None:
        self.path = path
        self.format = fmt
        self.retention_days = retention_days
        self.rate = recording_rate(fmt, carrier.sample_rate)
        pcm = AudioSpec(AudioFormat.PCM16, self.rate)
        self._part = path.with_name(path.name + PART_SUFFIX)
        self._writer = StereoFileWriter(self._part, fmt, self.rate)
        self._inbound = StreamConverter(carrier, pcm)
        self._outbound = StreamConverter(carrier, pcm)
        self._clock = clock
        self.tape = Tape(self.rate, clock())
        self._written_to_ms = self.tape.start_ms
        self._stopped_at: float | None = None
        self._info: RecordingInfo | None = None
        self.failed = False
        self.log = logging.LoggerAdapter(logger, {"call_id": call_id})

    @property
    def active(self) -> bool:
        """Still recording (not stopped, finished or failed)."""
        return not self.failed and self._stopped_at is None and self._info is None

    # -- what the session reports ------------------------------------------------------------------
    def caller_audio(self, payload: bytes, now: float) -> None:
        """A caller frame (carrier format) read from the carrier at ``now``."""
        if self.active and payload:
            self._guard(lambda: self.tape.caller(self._inbound.process(payload), now), now)

    def agent_audio(self, payload: bytes, now: float) -> None:
        """An agent frame (carrier format) sent to the carrier at ``now``."""
        if self.active and payload:
            self._guard(lambda: self.tape.agent(self._outbound.process(payload), now), now)

    def cleared(self, now: float) -> None:
        """The carrier was told to drop what it has not played (a barge-in) at ``now``."""
        if self.active:
            self.tape.clear(now)

    def redact(
        self, start_ms: float, end_ms: float | None = None, channel: Channel = "both"
    ) -> bool:
        """Silence ``channel`` (``both``, ``caller`` or ``agent``) from ``start_ms`` to
        ``end_ms`` on the session's clock (None: until :meth:`end_redaction`).

        Returns False when the span began more than the hold-back ago and its beginning is
        already in the file (logged: that part is not silenced)."""
        if self._info is not None or self.failed:
            return False
        complete = self.tape.redact(start_ms, end_ms, channel)
        if not complete:
            self.log.warning("recording: a redaction came too late to silence all of its span")
        return complete

    def end_redaction(self, at_ms: float) -> None:
        """End the open redaction spans at ``at_ms`` (session clock)."""
        self.tape.end_redaction(at_ms)

    def stop(self, now: float) -> None:
        """The call ended at ``now``: nothing after it belongs to the recording."""
        if self._stopped_at is None:
            self._stopped_at = now

    # -- the file --------------------------------------------------------------------------------
    def finish(self) -> RecordingInfo | None:
        """Write the rest, close the file and give it its final name (idempotent).

        Returns the finished recording, or None when it failed."""
        if self._info is not None or self.failed:
            return self._info
        end = self._stopped_at if self._stopped_at is not None else self._clock()
        self._stopped_at = end
        try:
            left, right = self.tape.take(end, final=True)
            self._writer.write(left, right)
            self._writer.close()
            self._part.replace(self.path)
        except (AudioError, OSError) as exc:
            self._fail(exc)
            return None
        frames = self._writer.frames_written
        self._info = RecordingInfo(
            self.path, self.format, self.rate, frames / self.rate, self.retention_days
        )
        self.log.info("recording finished: %s (%.1f s)", self.path.name, frames / self.rate)
        return self._info

    def _guard(self, step: Callable[[], None], now: float) -> None:
        try:
            step()
            if now - self._written_to_ms >= self.tape.holdback_ms + _WRITE_EVERY_MS:
                left, right = self.tape.take(now)
                self._writer.write(left, right)
                self._written_to_ms = now - self.tape.holdback_ms
        except (AudioError, OSError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        self.log.warning("recording failed, the call goes on unrecorded: %s", exc)
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(OSError):
            self._part.unlink(missing_ok=True)
