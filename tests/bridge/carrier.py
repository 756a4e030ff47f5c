"""A carrier media socket in memory, for the bridge's tests: the test plays the carrier.

:class:`MemoryCarrier` implements our own :class:`~switchboard.telephony.base.MediaSocket`
interface and speaks Twilio's media-stream messages on the other side: the test queues what the
caller sends (``start``, audio, DTMF, ``stop``, or the socket going away) and reads what the
bridge sent. Every mark is echoed as soon as it arrives, as if the caller's phone played audio
instantly; pacing itself is the bridge core's, tested without sockets.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from switchboard.errors import CallerDisconnected
from switchboard.telephony.base import StreamStarted
from switchboard.telephony.twilio.media import TwilioMediaCodec

__all__ = ["MemoryCarrier"]

FRAME = 160  # 20 ms of μ-law


class MemoryCarrier:
    """Our ``MediaSocket`` in memory, with the test as the Twilio side (see module docstring)."""

    def __init__(self, *, call_sid: str = "CA" + "0" * 32, echo_marks: bool = True) -> None:
        self.call_sid = call_sid
        self.stream_sid = "MZ" + "0" * 32
        self.echo_marks = echo_marks
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str | None] | None = None
        self.gone = False
        self._inbound: asyncio.Queue[str | None] = asyncio.Queue()
        self._seq = 0
        self._chunk = 0

    # -- MediaSocket -----------------------------------------------------------------------------
    async def receive_text(self) -> str:
        text = await self._inbound.get()
        if text is None:
            self.gone = True
            raise CallerDisconnected("the caller's socket went away")
        return text

    async def send_text(self, data: str) -> None:
        if self.gone or self.closed is not None:
            raise CallerDisconnected("the socket is closed")
        message = json.loads(data)
        self.sent.append(message)
        if message["event"] == "mark" and self.echo_marks:
            self.push("mark", mark={"name": message["mark"]["name"]})

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        if self.closed is None:
            self.closed = (code, reason)

    # -- the carrier's side ----------------------------------------------------------------------
    def push(self, event: str, **body: Any) -> None:
        """Queue one Twilio media-stream message from the carrier."""
        self._seq += 1
        message = {"event": event, "sequenceNumber": str(self._seq), **body}
        self._inbound.put_nowait(json.dumps({**message, "streamSid": self.stream_sid}))

    def start(self, codec: TwilioMediaCodec, **parameters: str) -> StreamStarted:
        """The ``start`` message, as ``codec`` (the session's) reads it."""
        self._seq += 1
        start = {
            "event": "start",
            "sequenceNumber": str(self._seq),
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": "AC" + "1" * 32,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": parameters,
            },
        }
        (started,) = codec.receive(json.dumps(start))
        assert isinstance(started, StreamStarted)
        return started

    def say(self, ulaw: bytes) -> None:
        """Queue the caller's audio (μ-law), in 20 ms media messages."""
        for i in range(0, len(ulaw), FRAME):
            frame = ulaw[i : i + FRAME].ljust(FRAME, b"\xff")
            self._chunk += 1
            media = {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * 20),
                "payload": base64.b64encode(frame).decode(),
            }
            self.push("media", media=media)

    def dtmf(self, digit: str) -> None:
        self.push("dtmf", dtmf={"track": "inbound_track", "digit": digit})

    def hang_up(self) -> None:
        """The caller hangs up: Twilio's ``stop``."""
        self.push("stop", stop={"accountSid": "AC" + "1" * 32, "callSid": self.call_sid})

    def go_away(self) -> None:
        """The socket drops without a ``stop``."""
        self._inbound.put_nowait(None)

    # -- what the bridge sent --------------------------------------------------------------------
    def events(self) -> list[str]:
        return [m["event"] for m in self.sent]

    def heard(self) -> bytes:
        """Every frame of agent audio the bridge sent (μ-law)."""
        return b"".join(
            base64.b64decode(m["media"]["payload"]) for m in self.sent if m["event"] == "media"
        )

    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.sent if m["event"] == "mark"]
