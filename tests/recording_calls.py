"""One recording ``CallHandler`` for the route tests: what the app's routes asked, and an echo.

The routes (webhooks, media sockets, the calls API) are tested against this small fake instead
of the real call manager, so each test sees exactly what reached the handler. On a media socket
it optionally greets the caller first (tone frames, then a ``greeting`` mark, as the bridge
does), echoes the caller's audio with a mark every ``mark_every`` frames, and records acks,
DTMF, the stop and the codec's stats in one :class:`MediaRun` per stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from switchboard.audio import pcm16_to_ulaw
from switchboard.errors import CallerDisconnected
from switchboard.telephony.amd import Verdict
from switchboard.telephony.base import (
    DtmfReceived,
    IncomingCall,
    MarkAcknowledged,
    MediaCodec,
    MediaReceived,
    MediaSocket,
    PreparedCall,
    StreamStarted,
    StreamStopped,
    TelephonyType,
)

__all__ = ["TONE", "MediaRun", "RecordingCalls"]

#: one second of a 440 Hz tone, μ-law 8 kHz
TONE = pcm16_to_ulaw(
    (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2").tobytes()
)


@dataclass
class MediaRun:
    """One media stream the handler ran."""

    call_id: str
    started: StreamStarted
    echoed: int = 0
    acks: list[str] = field(default_factory=list)
    dtmf: list[str] = field(default_factory=list)  # in band, on the media socket
    stopped: bool = False  # the carrier sent ``stop``
    disconnected: bool = False  # the socket closed without one
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordingCalls:
    """A ``CallHandler`` that records everything and echoes caller audio.

    Args:
        accept: answer ``prepare`` with an accepted call (else refused, "no agent").
        wideband: ask for 16 kHz media where the carrier offers it.
        greeting_frames: 20 ms tone frames sent before anything else, then a ``greeting`` mark.
        flood_then_clear: after the greeting, 2 s of tone, a ``flood`` mark and a ``clear``.
        mark_every: a mark after every this many echoed frames.
    """

    accept: bool = True
    wideband: bool = False
    greeting_frames: int = 0
    flood_then_clear: bool = False
    mark_every: int = 10
    prepared: list[IncomingCall] = field(default_factory=list)
    statuses: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    dtmf: list[str] = field(default_factory=list)  # out of band (Telnyx webhooks)
    verdicts: list[tuple[Verdict, str]] = field(default_factory=list)  # AMD (outbound)
    runs: list[MediaRun] = field(default_factory=list)
    closed: bool = False  # the app closed its handler at shutdown

    async def prepare(self, call: IncomingCall) -> PreparedCall:
        self.prepared.append(call)
        return PreparedCall(
            call_id=call.call_id or f"call-{len(self.prepared)}",
            accepted=self.accept,
            reason=None if self.accept else "no agent",
            wideband=self.wideband,
        )

    async def run_media(
        self,
        *,
        call_id: str,
        carrier: TelephonyType,
        codec: MediaCodec,
        socket: MediaSocket,
        started: StreamStarted,
    ) -> None:
        run = MediaRun(call_id, started)
        self.runs.append(run)
        if self.greeting_frames:
            for _ in range(self.greeting_frames):
                await socket.send_text(codec.send_media(TONE[:160]))
            await socket.send_text(codec.send_mark("greeting"))
        if self.flood_then_clear:
            for _ in range(100):  # 2 s the caller will not get to hear
                await socket.send_text(codec.send_media(TONE[:160]))
            await socket.send_text(codec.send_mark("flood"))
            await socket.send_text(codec.send_clear())
        try:
            while not run.stopped:
                for event in codec.receive(await socket.receive_text()):
                    match event:
                        case MediaReceived(payload=payload):
                            await socket.send_text(codec.send_media(payload))
                            run.echoed += 1
                            if run.echoed % self.mark_every == 0:
                                await socket.send_text(codec.send_mark(f"echo-{run.echoed}"))
                        case MarkAcknowledged(name=name):
                            run.acks.append(name)
                        case DtmfReceived(digit=digit):
                            run.dtmf.append(digit)
                        case StreamStopped():
                            run.stopped = True
        except CallerDisconnected:  # the socket closed without a stop
            run.disconnected = True
        finally:
            run.stats = dict(codec.stats)

    async def update_status(
        self, carrier: TelephonyType, carrier_call_id: str, status: str, **details: str
    ) -> None:
        self.statuses.append((carrier_call_id, status, details))

    async def record_dtmf(self, carrier: TelephonyType, carrier_call_id: str, digit: str) -> None:
        self.dtmf.append(digit)

    async def machine_detection(
        self, carrier: TelephonyType, carrier_call_id: str, verdict: Verdict, answered_by: str
    ) -> None:
        self.verdicts.append((verdict, answered_by))

    async def aclose(self) -> None:
        self.closed = True
