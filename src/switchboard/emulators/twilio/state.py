"""What one simulated Twilio call records, and what the REST side asked of it (plain data).

Shared by the caller (:mod:`.caller`), its media stream (:mod:`.stream`) and the REST emulator
(:mod:`.server`); it imports none of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from switchboard.emulators.report import CallReport

__all__ = ["CallControl", "TwilioCallReport"]


@dataclass(slots=True)
class TwilioCallReport(CallReport):
    """What happened on one simulated Twilio call: the shared facts (:class:`CallReport`;
    ``webhooks`` are the status callbacks) and Twilio's own.

    Attributes:
        dropped_ms: agent audio the caller never heard because a ``clear`` dropped it.
    """

    call_sid: str
    account_sid: str
    stream_sid: str | None = None
    outcome: str = "unknown"
    webhook_status: int | None = None
    marks_received: int = 0
    marks_acked: int = 0
    mark_names: list[str] = field(default_factory=list)
    dropped_ms: float = 0.0
    #: stream time (ms from the first caller frame) of each ``clear`` honoured
    clear_ms: list[float] = field(default_factory=list)
    dtmf_sent: str = ""
    digits_played: str = ""
    said: list[str] = field(default_factory=list)
    dialed: list[str] = field(default_factory=list)
    custom_parameters: dict[str, str] = field(default_factory=dict)
    close_code: int | None = None
    close_reason: str = ""
    recording: Path | None = None
    #: per media stream (leg) of the call, when it started and when the caller first heard
    #: something on it (``time.monotonic()``); a resumed call has several legs
    stream_starts: list[float] = field(default_factory=list)
    stream_ends: list[float] = field(default_factory=list)
    first_sounds: list[float] = field(default_factory=list)
    #: the ``<Connect action>`` requests made when a stream ended (URL, HTTP status)
    actions: list[tuple[str, int]] = field(default_factory=list)

    def summary(self) -> str:
        """A few human-readable lines: ids, durations, marks, clears."""
        return "\n".join(
            [
                f"call {self.call_sid} stream {self.stream_sid or '-'}: {self.outcome}",
                f"  call {self.call_ms / 1000:.2f} s, stream {self.stream_ms / 1000:.2f} s, "
                f"heard {self.heard_ms / 1000:.2f} s "
                f"(dropped by clear {self.dropped_ms / 1000:.2f} s)",
                f"  frames sent {self.frames_sent}, received {self.frames_received}; "
                f"marks {self.marks_acked}/{self.marks_received} acked; clears {self.clears}",
                f"  dtmf sent {self.dtmf_sent or '-'}; said {self.said or '-'}; "
                f"dialed {self.dialed or '-'}; close {self.close_code} {self.close_reason}",
            ]
            + ([f"  recording {self.recording}"] if self.recording else [])
            + [f"  VIOLATION {v}" for v in self.violations]
        )


class CallControl:
    """What the REST side asked of a live call: hang up, or run new TwiML."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.hangup = False
        self.twiml: str | None = None
        self.url: str | None = None
