"""Emulated Telnyx calls: state, webhook payloads, and the report each call ends with."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from switchboard.emulators.telnyx.audio import AudioSource
from switchboard.emulators.telnyx.caller import LegResult, MediaLeg
from switchboard.emulators.telnyx.report import TelnyxCallReport

__all__ = ["CallState", "EmulatedCall"]

CallState = Literal["parked", "bridging", "answered", "hangup"]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class EmulatedCall:
    """One call leg on the emulated network.

    ``await call.wait()`` returns the :class:`TelnyxCallReport` once ``call.hangup`` was delivered.
    """

    direction: Literal["incoming", "outgoing"]
    from_number: str
    to_number: str
    connection_id: str
    webhook_url: str | None
    audio: AudioSource = None
    dtmf: str = ""
    swap_every: int = 0
    call_control_id: str = field(default_factory=lambda: "v3:" + secrets.token_urlsafe(24))
    call_leg_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    call_session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: CallState = "parked"
    client_state: str | None = None
    start_time: str = field(default_factory=_now_iso)
    commands: list[str] = field(default_factory=list)
    command_bodies: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[tuple[str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    leg: MediaLeg | None = None
    leg_task: asyncio.Task[LegResult] | None = None
    legs: list[LegResult] = field(default_factory=list)
    stream_url: str | None = None
    #: when the first media leg started (a later leg's audio goes on from the wall clock)
    first_leg_at: float | None = None
    hangup_cause: str = ""
    hangup_source: str = ""
    ended_by: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    report: TelnyxCallReport | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def is_alive(self) -> bool:
        return self.state != "hangup"

    def payload(self, **extra: Any) -> dict[str, Any]:
        """The common webhook payload fields (``CallInitiated`` & co in the SDK types)."""
        base: dict[str, Any] = {
            "call_control_id": self.call_control_id,
            "call_leg_id": self.call_leg_id,
            "call_session_id": self.call_session_id,
            "connection_id": self.connection_id,
            "client_state": self.client_state,
            "from": self.from_number,
            "to": self.to_number,
            "direction": self.direction,
            "state": self.state,
            "start_time": self.start_time,
            "tags": [],
        }
        base.update(extra)
        return base

    def hangup_payload(self) -> dict[str, Any]:
        """The ``call.hangup`` payload for the cause and source the call ended with."""
        return self.payload(
            hangup_cause=self.hangup_cause,
            hangup_source=self.hangup_source,
            sip_hangup_cause="200",
            end_time=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            call_quality_stats=None,
        )

    async def wait(self, timeout_s: float | None = None) -> TelnyxCallReport:
        """Wait (up to ``timeout_s``) for the call to end and its ``call.hangup`` delivery."""
        await asyncio.wait_for(self.done.wait(), timeout_s)
        assert self.report is not None
        return self.report

    def build_report(self, speed: float) -> TelnyxCallReport:
        """Fold the call and its media legs into a :class:`TelnyxCallReport`."""
        heard = bytearray()
        rate = 8000
        for leg in self.legs:
            heard += leg.heard_pcm
            rate = leg.heard_rate
        last = self.legs[-1] if self.legs else None
        violations = list(self.violations)
        return TelnyxCallReport(
            call_control_id=self.call_control_id,
            direction=self.direction,
            from_number=self.from_number,
            to_number=self.to_number,
            stream_id=last.stream_id if last else "",
            call_ms=round((self.ended_at - self.started_at) * 1000 * speed),
            stream_ms=sum(leg.duration_ms for leg in self.legs),
            frames_sent=sum(leg.frames_sent for leg in self.legs),
            frames_received=sum(leg.frames_received for leg in self.legs),
            marks=[m for leg in self.legs for m in leg.marks],
            clears=sum(leg.clears for leg in self.legs),
            heard_ms=sum(leg.heard_ms for leg in self.legs),
            commands=list(self.commands),
            command_bodies=list(self.command_bodies),
            webhooks=list(self.webhooks),
            hangup_cause=self.hangup_cause,
            hangup_source=self.hangup_source,
            ended_by=self.ended_by,
            short_chunks=sum(leg.short_chunks for leg in self.legs),
            violations=violations,
            heard_pcm=bytes(heard),
            heard_rate=rate,
        )
