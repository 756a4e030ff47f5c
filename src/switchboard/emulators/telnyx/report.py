"""The report of one simulated Telnyx call (what ``run_call`` returns and the CLI prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard.emulators.report import CallReport
from switchboard.emulators.telnyx.audio import write_wav

__all__ = ["TelnyxCallReport"]


@dataclass(slots=True)
class TelnyxCallReport(CallReport):
    """What happened on one emulated Telnyx call: the shared facts (:class:`CallReport`, with
    ``call_ms`` from ``call.initiated`` to ``call.hangup`` and ``webhooks`` the Call Control
    event deliveries) and Telnyx's own.

    Attributes:
        call_control_id: the call's Telnyx id (what the app's commands used).
        direction: ``incoming`` (placed to the app) or ``outgoing`` (dialled by the app).
        stream_id: the media stream's id (empty when no stream ran).
        marks: mark names echoed to the app, in playout order.
        commands: Call Control actions the app sent, in order (``dial`` for ``POST /v2/calls``).
        hangup_cause / hangup_source: as sent in ``call.hangup``.
        heard_pcm / heard_rate: the recording (PCM16 LE mono), silence where nothing played.
    """

    call_control_id: str
    direction: str
    from_number: str
    to_number: str
    stream_id: str = ""
    marks: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    command_bodies: list[dict[str, Any]] = field(default_factory=list)
    hangup_cause: str = ""
    hangup_source: str = ""
    ended_by: str = ""
    short_chunks: int = 0
    heard_pcm: bytes = b""
    heard_rate: int = 8000

    def write_wav(self, path: Path | str) -> None:
        """Write what the caller heard as a mono 16-bit WAV."""
        write_wav(path, self.heard_pcm, self.heard_rate)

    def summary(self) -> str:
        """A few human-readable lines: ids, durations, frames, marks, clears, commands."""
        hooks = ", ".join(f"{name}:{status}" for name, status in self.webhooks)
        lines = [
            f"telnyx call {self.call_control_id} ({self.direction}) "
            f"{self.from_number} -> {self.to_number}",
            f"  stream {self.stream_id or '-'}: call {self.call_ms} ms, "
            f"stream {self.stream_ms} ms, heard {self.heard_ms:.0f} ms",
            f"  frames sent {self.frames_sent}, received {self.frames_received}; "
            f"marks {len(self.marks)} {self.marks[:5]}{'...' if len(self.marks) > 5 else ''}; "
            f"clears {self.clears}",
            f"  commands: {' -> '.join(self.commands) or '-'}",
            f"  webhooks: {hooks or '-'}",
            f"  ended by {self.ended_by or '-'} (cause {self.hangup_cause or '-'}, "
            f"source {self.hangup_source or '-'})",
        ]
        if self.violations:
            lines.append(f"  VIOLATIONS: {'; '.join(self.violations)}")
        return "\n".join(lines)
