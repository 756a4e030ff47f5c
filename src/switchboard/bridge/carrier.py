"""The carrier's end of one call, as the session drives it: frames out, the apology, REST control.

:class:`CarrierLink` holds what a :class:`~switchboard.bridge.session.CallSession` needs of the
carrier apart from reading caller frames: sending the codec's frames over the media socket
(telling the session when the caller is gone), playing a last message to the end once the
call's loops have stopped (the apology after a provider failure), and carrying out the hang-up
or transfer the bridge core decided through the carrier's REST API. Every wait here is bounded,
so a carrier that stops answering cannot hold a call open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from switchboard.audio import Framer
from switchboard.bridge.actions import HangUp, TransferCall
from switchboard.bridge.sink import CallSink
from switchboard.errors import CallerDisconnected, SwitchboardError
from switchboard.media import AudioSpec
from switchboard.telephony.base import MarkAcknowledged, MediaCodec, MediaSocket, StreamStopped

__all__ = ["CarrierControl", "CarrierLink"]

#: How long a carrier REST request (hang up, transfer) may take.
_REST_TIMEOUT_S = 10.0
#: How long past its own length a last message may take to be played and acknowledged.
_PLAYOUT_SLACK_MS = 2000


class CarrierControl(Protocol):
    """Carrier REST operations for this call (hang up, transfer); the manager binds the ids."""

    async def hang_up(self) -> None: ...

    async def transfer(self, destination: str) -> None: ...

    async def send_dtmf(self, digits: str) -> None:
        """Play DTMF ``digits`` to the far end (navigating a phone menu)."""
        ...


class CarrierLink:
    """One call's carrier side: its media socket, spoken to through the carrier's codec, and its
    REST call control.

    Args:
        codec: the carrier's media codec for this call.
        socket: the carrier's media socket.
        control: the carrier's REST operations for this call; None when the carrier has none
            configured (closing the media socket ends a Twilio ``<Connect>`` anyway).
        sink: where the call's timeline goes.
        clock: the session's clock (milliseconds).
        log: the call's logger.
    """

    def __init__(
        self,
        *,
        codec: MediaCodec,
        socket: MediaSocket,
        control: CarrierControl | None,
        sink: CallSink,
        clock: Callable[[], float],
        log: logging.LoggerAdapter[Any],
    ) -> None:
        self.codec = codec
        self.socket = socket
        self.control = control
        self.sink = sink
        self._clock = clock
        self.log = log

    async def send(self, text: str) -> bool:
        """Send one frame the codec made; False when the caller is gone."""
        try:
            await self.socket.send_text(text)
        except (CallerDisconnected, OSError):
            return False
        return True

    async def play_to_end(self, audio: bytes, spec: AudioSpec, mark: str) -> bool:
        """Clear what the carrier holds, play ``audio`` (``spec``, the carrier's format) and wait
        until the carrier has played it (``mark`` echoed) or the time it needs has passed.

        For the end of a call, once its loops have stopped: this reads the socket itself.
        Returns False when the caller hung up or the socket closed first.
        """
        framer = Framer(spec)
        frames = framer.push(audio) + framer.flush()
        codec, socket = self.codec, self.socket
        try:
            await socket.send_text(codec.send_clear())
            for frame in frames:
                await socket.send_text(codec.send_media(frame))
            await socket.send_text(codec.send_mark(mark))
            deadline = self._clock() + len(frames) * 20 + _PLAYOUT_SLACK_MS
            while self._clock() < deadline:
                text = await asyncio.wait_for(
                    socket.receive_text(), (deadline - self._clock()) / 1000
                )
                events = codec.receive(text)
                if any(isinstance(e, MarkAcknowledged) and e.name == mark for e in events):
                    break
                if any(isinstance(e, StreamStopped) for e in events):
                    return False
        except (CallerDisconnected, OSError, TimeoutError):
            return False
        return True

    async def carry_out(self, action: HangUp | TransferCall | None) -> None:
        """Tell the carrier to hang up or transfer, as the bridge core decided (None: nothing)."""
        match action:
            case HangUp():
                await self._hang_up()
            case TransferCall(destination=destination):
                await self._transfer(destination)
            case None:
                pass

    async def close(self, reason: str) -> None:
        """Close the media socket (normal closure, ``reason`` as the close reason)."""
        with contextlib.suppress(Exception):
            await self.socket.close(1000, reason)

    async def _hang_up(self) -> None:
        if self.control is None:
            return  # closing the media socket ends a Twilio <Connect>; nothing else to do
        try:
            await asyncio.wait_for(self.control.hang_up(), _REST_TIMEOUT_S)
        except (SwitchboardError, TimeoutError, OSError) as exc:
            self.log.warning("carrier hang-up failed: %s", exc)

    async def _transfer(self, destination: str) -> None:
        if self.control is None:
            self.log.warning("no carrier control: cannot transfer to %s", destination)
            return
        try:
            await asyncio.wait_for(self.control.transfer(destination), _REST_TIMEOUT_S)
        except (SwitchboardError, TimeoutError, OSError) as exc:
            self.log.warning("transfer failed: %s", exc)
            self.sink.timeline("call.transfer_failed", self._clock(), {"error": str(exc)})
