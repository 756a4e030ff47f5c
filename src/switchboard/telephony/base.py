"""Carrier-neutral media-stream events and the telephony adapter protocol.

Each carrier's sans-I/O media codec (``telephony/<carrier>/media.py``) turns the carrier's
websocket frames into these events and turns the bridge's outbound audio/marks/clears into the
carrier's frames, so the bridge never knows which carrier it talks to::

    class MediaCodec(Protocol):
        def receive(self, text: str) -> list[MediaEvent]   # one inbound websocket text frame
        def send_media(self, payload: bytes) -> str        # one outbound frame of carrier audio
        def send_mark(self, name: str) -> str
        def send_clear(self) -> str
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from switchboard.providers.base import AudioSpec, TelephonyAdapter

__all__ = [
    "DtmfReceived",
    "MarkAcknowledged",
    "MediaCodec",
    "MediaEvent",
    "MediaReceived",
    "StreamConnected",
    "StreamError",
    "StreamStarted",
    "StreamStopped",
    "TelephonyAdapter",
    "TelephonyType",
]


class TelephonyType(StrEnum):
    """Carriers switchboard can terminate calls from."""

    TWILIO = "twilio"
    TELNYX = "telnyx"


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """The carrier opened the media socket (Twilio ``connected``, Telnyx ``connected``)."""


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """Stream metadata arrived; audio follows.

    Attributes:
        stream_id: Twilio streamSid / Telnyx stream_id.
        call_id: Twilio CallSid / Telnyx call_control_id.
        audio: format and rate of inbound audio (μ-law 8 kHz on Twilio).
        custom_parameters: Twilio ``<Parameter>`` values / Telnyx token query data.
    """

    stream_id: str
    call_id: str
    audio: AudioSpec
    custom_parameters: dict[str, str] = field(default_factory=dict)
    account_id: str | None = None
    tracks: tuple[str, ...] = ("inbound",)


@dataclass(frozen=True, slots=True)
class MediaReceived:
    """One frame of caller audio, in sequence order (the codec reorders and counts gaps)."""

    payload: bytes
    timestamp_ms: int | None = None
    sequence: int | None = None


@dataclass(frozen=True, slots=True)
class MarkAcknowledged:
    """The carrier finished playing everything sent before the mark ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str


@dataclass(frozen=True, slots=True)
class StreamStopped:
    """The carrier ended the stream (the caller hung up or the call was redirected)."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StreamError:
    """The carrier reported a stream error (Telnyx ``error``)."""

    code: str | None
    message: str


MediaEvent = (
    StreamConnected
    | StreamStarted
    | MediaReceived
    | MarkAcknowledged
    | DtmfReceived
    | StreamStopped
    | StreamError
)


class MediaCodec(Protocol):
    """Sans-I/O codec for one carrier media websocket (one instance per call)."""

    def receive(self, text: str) -> list[MediaEvent]:
        """Parse one inbound text frame; malformed frames are counted, not raised."""
        ...

    def send_media(self, payload: bytes) -> str:
        """Encode one outbound frame of carrier-format audio (20 ms recommended)."""
        ...

    def send_mark(self, name: str) -> str: ...

    def send_clear(self) -> str: ...

    @property
    def stats(self) -> dict[str, int]:
        """Counters: frames_in, frames_out, malformed, reordered, gaps, late, dropped."""
        ...
