"""Carrier-neutral media-stream events, the carrier names and the telephony adapter protocol.

Each carrier's sans-I/O media codec (``telephony/<carrier>/media.py``) turns the carrier's
websocket frames into these events and turns the bridge's outbound audio/marks/clears into the
carrier's frames, so the bridge never knows which carrier it talks to::

    class MediaCodec(Protocol):
        def receive(self, text: str) -> list[MediaEvent]   # one inbound websocket text frame
        def send_media(self, payload: bytes) -> str        # outbound carrier audio (20 ms frames)
        def send_mark(self, name: str) -> str
        def send_clear(self) -> str
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from switchboard.media import AudioSpec
from switchboard.telephony.amd import Verdict

__all__ = [
    "CallDirection",
    "CallHandler",
    "DtmfReceived",
    "IncomingCall",
    "MarkAcknowledged",
    "MediaCodec",
    "MediaEvent",
    "MediaReceived",
    "MediaSocket",
    "PreparedCall",
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


@runtime_checkable
class TelephonyAdapter(Protocol):
    """Call control for one carrier (the seed's setup / answer / end operations, and more).

    Every ``call_id`` here is the carrier's own id (Twilio CallSid, Telnyx call_control_id).
    The seed lists this protocol in ``providers/base.py``, which re-exports it.
    """

    name: ClassVar[str]

    async def setup(self) -> None:
        """Check credentials/configuration and open HTTP clients."""
        ...

    async def answer_call(self, call_id: str, **options: Any) -> None: ...

    async def hang_up(self, call_id: str) -> None:
        """Hang up; a call that already ended counts as success."""
        ...

    async def transfer_call(self, call_id: str, destination: str) -> None: ...

    async def send_dtmf(self, call_id: str, digits: str) -> None: ...

    async def place_call(self, *, to: str, from_: str, **options: Any) -> str:
        """Dial out; returns the carrier's call id."""
        ...

    async def aclose(self) -> None: ...


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

    @property
    def joins_frames(self) -> bool:
        """Whether one ``media`` message may carry several 20 ms frames (raw audio: G.711,
        L16), so the bridge sends the frames it releases together as one message; a packet
        codec (Opus) carries one packet per message."""
        ...

    def receive(self, text: str) -> list[MediaEvent]:
        """Parse one inbound text frame; malformed frames are counted, not raised."""
        ...

    def send_media(self, payload: bytes) -> str:
        """Encode outbound carrier-format audio: one 20 ms frame, or whole frames together
        when :attr:`joins_frames`."""
        ...

    def send_mark(self, name: str) -> str: ...

    def send_clear(self) -> str: ...

    @property
    def stats(self) -> dict[str, int]:
        """Counters: frames_in, frames_out, malformed, reordered, gaps, late, dropped."""
        ...


# -- the contract between carrier routes and the call manager --------------------------------------
class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """What a carrier webhook knows about a new call, handed to :meth:`CallHandler.prepare`."""

    carrier: TelephonyType
    carrier_call_id: str
    from_number: str
    to_number: str
    direction: CallDirection = CallDirection.INBOUND
    #: The carrier's account (Twilio AccountSid / Telnyx connection_id), when known.
    account_id: str | None = None
    #: Our call id, when the call was placed by us (outbound) and already has a record.
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """The call manager's answer: our call id and the agent/provider chosen for the call.

    ``accepted`` is False when no agent or provider can take the call; ``reason`` says why and
    the carrier route then ends the call politely (TwiML ``<Say>``+``<Hangup>`` / Telnyx hangup),
    or, when ``busy`` (this node is at ``SWITCHBOARD_MAX_CALLS``), rejects it as busy (TwiML
    ``<Reject reason="busy"/>`` / Telnyx ``reject`` with ``USER_BUSY``) without answering.
    ``wideband`` asks the carrier for L16 16 kHz where it can (Telnyx), because the provider
    gains from it; ``carrier_codec`` (Telnyx's name: ``PCMU``, ``PCMA``, ``L16``, ``OPUS``,
    ``G722``), when set, is the stream codec the agent chose and overrides it. ``pcm_rate`` is
    the provider's PCM input rate (None when it takes G.711): an Opus stream is decoded and
    encoded at that rate when Opus has it, so no resampler runs between carrier and provider.
    """

    call_id: str
    accepted: bool = True
    reason: str | None = None
    busy: bool = False
    agent: str | None = None
    provider: str | None = None
    wideband: bool = False
    carrier_codec: str | None = None
    pcm_rate: int | None = None


class MediaSocket(Protocol):
    """The websocket a carrier streams media over, as the bridge sees it.

    Our own small interface, so the bridge knows no web framework: the app wraps its
    framework's websocket in an adapter (``switchboard.app.media_socket``) that translates the
    framework's disconnect errors.
    """

    async def receive_text(self) -> str:
        """The next text frame.

        Raises:
            CallerDisconnected: the peer is gone (the caller hung up).
        """
        ...

    async def send_text(self, data: str) -> None:
        """Send one text frame.

        Raises:
            CallerDisconnected: the peer is gone, or the socket is already closed.
        """
        ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the socket (a socket already closed stays closed)."""
        ...


class CallHandler(Protocol):
    """What carrier routes call; implemented by ``switchboard.bridge.manager.CallManager``."""

    async def prepare(self, call: IncomingCall) -> PreparedCall:
        """Choose agent and provider for a new call and create its record."""
        ...

    async def run_media(
        self,
        *,
        call_id: str,
        carrier: TelephonyType,
        codec: MediaCodec,
        socket: MediaSocket,
        started: StreamStarted,
    ) -> None:
        """Bridge an authenticated media socket (after ``start``) until the call ends."""
        ...

    async def update_status(
        self, carrier: TelephonyType, carrier_call_id: str, status: str, **details: str
    ) -> None:
        """A carrier status callback / lifecycle webhook (ringing, answered, completed...)."""
        ...

    async def record_dtmf(self, carrier: TelephonyType, carrier_call_id: str, digit: str) -> None:
        """A DTMF digit reported out of band (Telnyx ``call.dtmf.received``)."""
        ...

    async def machine_detection(
        self, carrier: TelephonyType, carrier_call_id: str, verdict: Verdict, answered_by: str
    ) -> None:
        """An answering-machine verdict for an outbound call (Twilio ``AnsweredBy``, Telnyx
        ``call.machine.*``), as :mod:`switchboard.telephony.amd` reads it."""
        ...

    async def aclose(self) -> None:
        """The app is shutting down: end live calls (their records final) and close clients."""
        ...
