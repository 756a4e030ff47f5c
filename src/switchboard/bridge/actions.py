"""What the bridge core decides: actions for the per-call runner to carry out.

Every action is a frozen, slotted dataclass; the runner dispatches them with ``match``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action",
    "ClearCallerBuffer",
    "HangUp",
    "InvokeTool",
    "RecordTimeline",
    "RecordTranscript",
    "RecordTurnLatency",
    "Say",
    "ScheduleWakeup",
    "SendMark",
    "SendToCaller",
    "TransferCall",
    "TruncateAssistant",
    "join_frames",
]


@dataclass(frozen=True, slots=True)
class SendToCaller:
    """Send one 20 ms frame of carrier-format audio to the caller (or whole frames together:
    :func:`join_frames`)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class SendMark:
    """Send a playout mark; the carrier echoes ``name`` once everything before it has played."""

    name: str


@dataclass(frozen=True, slots=True)
class ClearCallerBuffer:
    """Drop all agent audio buffered at the carrier (barge-in)."""


@dataclass(frozen=True, slots=True)
class TruncateAssistant:
    """Tell the provider the caller heard only ``played_ms`` of the current reply."""

    played_ms: int


@dataclass(frozen=True, slots=True)
class InvokeTool:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call through the carrier; ``reason`` becomes the record's end reason."""

    reason: str


@dataclass(frozen=True, slots=True)
class TransferCall:
    destination: str


@dataclass(frozen=True, slots=True)
class Say:
    """Have the agent speak ``text`` (re-prompt on silence, goodbye at the time limit)."""

    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleWakeup:
    """Call the core's ``tick`` again at ``at_ms`` (pacing and timers, no per-frame tasks)."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class RecordTranscript:
    role: str  # "caller" | "agent"
    text: str
    at_ms: float
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class RecordTurnLatency:
    turn: int
    latency_ms: float


@dataclass(frozen=True, slots=True)
class RecordTimeline:
    kind: str
    at_ms: float
    data: dict[str, Any] = field(default_factory=dict)


Action = (
    SendToCaller
    | SendMark
    | ClearCallerBuffer
    | TruncateAssistant
    | InvokeTool
    | HangUp
    | TransferCall
    | Say
    | ScheduleWakeup
    | RecordTranscript
    | RecordTurnLatency
    | RecordTimeline
)


def join_frames(actions: list[Action]) -> list[Action]:
    """``actions`` with each run of consecutive :class:`SendToCaller` made one, for carriers
    whose messages may carry several frames (``MediaCodec.joins_frames``): one message
    instead of one per 20 ms (JSON, base64, a WebSocket frame and a socket write each). Marks
    and every other action keep their place, so a mark still follows exactly the audio before
    it."""
    out: list[Action] = []
    for action in actions:
        last = out[-1] if out else None
        if isinstance(action, SendToCaller) and isinstance(last, SendToCaller):
            out[-1] = SendToCaller(last.payload + action.payload)
        else:
            out.append(action)
    return out
