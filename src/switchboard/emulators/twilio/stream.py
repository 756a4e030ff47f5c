"""One media stream of a simulated Twilio call: the 20 ms clock, playout, marks, clear, DTMF.

Messages follow twilio.com/docs/voice/media-streams/websocket-messages: ``connected``, ``start``
(sequenceNumber "1"), then ``media`` (chunk/timestamp from the stream start), ``dtmf``, ``mark``
acknowledgements and ``stop``, each with the next sequenceNumber.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from switchboard.emulators.playout import FRAME_BYTES, Playout
from switchboard.emulators.twilio.state import CallControl, TwilioCallReport

__all__ = ["CallerStream", "StreamOwner"]

_SILENCE = b"\xff" * FRAME_BYTES


def _new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class StreamOwner(Protocol):
    """The call a stream belongs to (:class:`~.caller.TwilioCaller`), as the stream uses it."""

    report: TwilioCallReport
    control: CallControl
    timeline: bytearray
    audio: bytes
    audio_t0: float | None
    speed: float
    linger_s: float
    min_linger_s: float
    max_call_s: float
    pending_dtmf: str
    dtmf_queue: asyncio.Queue[str]

    def send_dtmf(self, digits: str) -> None:
        """Queue ``digits`` to be sent on the live stream."""
        ...


class CallerStream:
    """One media stream of the call (see module docstring)."""

    def __init__(self, caller: StreamOwner, ws: ClientConnection, params: dict[str, str]) -> None:
        self.c = caller
        self.ws = ws
        self.params = params
        self.playout = Playout()
        self.seq = 0
        self.stream_sid = _new_sid("MZ")
        self.server_closed = False
        self.due_acks: list[str] = []

    def _next_seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    async def _send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg, separators=(",", ":")))

    async def run(self) -> None:
        c, r = self.c, self.c.report
        r.stream_sid = self.stream_sid
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = {
            "accountSid": r.account_sid,
            "streamSid": self.stream_sid,
            "callSid": r.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": self.params,
        }
        await self._send(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": start,
                "streamSid": self.stream_sid,
            }
        )
        receiver = asyncio.create_task(self._receive())
        try:
            await self._clock()
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
            r.stream_ends.append(time.monotonic())
            r.heard_ms = self.playout.heard_bytes / 8.0
            r.dropped_ms = self.playout.dropped_bytes / 8.0
            c.timeline += self.playout.timeline
            if self.ws.close_code is not None:
                r.close_code = self.ws.close_code
                r.close_reason = self.ws.close_reason or ""

    async def _clock(self) -> None:
        """The 20 ms clock: send a frame of caller audio, play a frame, ack marks, send DTMF."""
        c, r = self.c, self.c.report
        tick_s = 0.020 / c.speed
        audio = c.audio
        n_audio = (len(audio) + FRAME_BYTES - 1) // FRAME_BYTES
        linger = int(c.linger_s / 0.020)
        max_ticks = int(c.max_call_s / 0.020)
        t0 = time.monotonic()
        if c.audio_t0 is None:
            c.audio_t0 = t0
        # a later leg of the call (after a resume) goes on where the caller's voice is by now
        base = int((t0 - c.audio_t0) * c.speed / 0.020)
        r.stream_starts.append(t0)
        heard = False
        n = 0
        # wall-clock time of the last thing that kept the caller on the line (its own audio, or
        # sound from the server): linger_s is call time, min_linger_s the wall-clock floor
        last_busy, last_sound_tick = t0, self.playout.last_sound_tick
        while True:
            if self.server_closed:
                r.outcome = "server closed"
                break
            if c.control.event.is_set():
                r.outcome = "hangup by REST" if c.control.hangup else "redirected"
                await self._stop()
                break
            # hang up once our audio is out and nothing but silence has played for linger_s
            quiet = self.playout.ticks - max(self.playout.last_sound_tick, 0)
            i = base + n
            now = time.monotonic()
            if i <= n_audio or self.playout.last_sound_tick != last_sound_tick:
                last_busy, last_sound_tick = now, self.playout.last_sound_tick
            hang_up = i >= n_audio + linger and quiet >= linger
            if n >= max_ticks or (hang_up and now - last_busy >= c.min_linger_s):
                r.outcome = "caller hung up"
                await self._stop()
                break
            frame = audio[i * FRAME_BYTES : (i + 1) * FRAME_BYTES] if i < n_audio else b""
            frame += _SILENCE[: FRAME_BYTES - len(frame)]
            try:
                await self._media(frame, n)
                if i == n_audio and c.pending_dtmf:
                    c.send_dtmf(c.pending_dtmf)
                    c.pending_dtmf = ""
                while not c.dtmf_queue.empty():
                    await self._dtmf_msg(c.dtmf_queue.get_nowait())
                due, self.due_acks = self.due_acks, []
                for name in due + self.playout.tick():
                    await self._ack(name)
                if not heard and self.playout.last_sound_tick >= 0:
                    heard = True
                    r.first_sounds.append(time.monotonic())
            except ConnectionClosed:
                self.server_closed = True
                continue
            n += 1
            r.stream_ms = n * 20.0
            r.heard_ms = self.playout.heard_bytes / 8.0  # current while the call runs
            delay = t0 + n * tick_s - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.control.event.wait(), timeout=max(delay, 0.0))

    async def _media(self, frame: bytes, n: int) -> None:
        payload = base64.b64encode(frame).decode()
        media = {"track": "inbound", "chunk": str(n + 1), "timestamp": str(n * 20)}
        media["payload"] = payload
        msg = {"event": "media", "sequenceNumber": self._next_seq(), "media": media}
        await self._send({**msg, "streamSid": self.stream_sid})
        self.c.report.frames_sent += 1

    async def _dtmf_msg(self, digit: str) -> None:
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )
        self.c.report.dtmf_sent += digit

    async def _ack(self, name: str) -> None:
        await self._send(
            {
                "event": "mark",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )
        self.c.report.marks_acked += 1

    async def _stop(self) -> None:
        r = self.c.report
        with contextlib.suppress(ConnectionClosed):
            await self._send(
                {
                    "event": "stop",
                    "sequenceNumber": self._next_seq(),
                    "stop": {"accountSid": r.account_sid, "callSid": r.call_sid},
                    "streamSid": self.stream_sid,
                }
            )
            await self.ws.close()

    async def _receive(self) -> None:
        r = self.c.report
        try:
            async for raw in self.ws:
                self._handle(raw if isinstance(raw, str) else raw.decode(), r)
        except ConnectionClosed:
            pass
        finally:
            self.server_closed = True

    def _handle(self, raw: str, r: TwilioCallReport) -> None:
        try:
            msg = json.loads(raw)
            event = msg["event"]
        except (ValueError, KeyError, TypeError):
            r.violations.append(f"unparseable frame ({len(raw)} chars)")
            return
        if event in ("media", "mark", "clear") and msg.get("streamSid") != self.stream_sid:
            r.violations.append(f"{event} with streamSid {msg.get('streamSid')!r}")
        match event:
            case "media":
                try:
                    payload = base64.b64decode(msg["media"]["payload"], validate=True)
                except (KeyError, TypeError, ValueError) as exc:
                    r.violations.append(f"bad media payload: {type(exc).__name__}")
                    return
                r.frames_received += len(payload) // FRAME_BYTES or 1  # 20 ms frames
                self.playout.add_audio(payload)
            case "mark":
                try:
                    name = str(msg["mark"]["name"])
                except (KeyError, TypeError):
                    r.violations.append("mark without mark.name")
                    return
                r.marks_received += 1
                r.mark_names.append(name)
                for acked in self.playout.add_mark(name):
                    self._ack_soon(acked)
            case "clear":
                r.clears += 1
                r.clear_ms.append(r.stream_ms)
                for acked in self.playout.clear():
                    self._ack_soon(acked)
            case other:
                r.violations.append(f"unknown event {other!r} from server")

    def _ack_soon(self, name: str) -> None:
        """Acknowledge on the next tick (≤ 20 ms): the clock task owns all sending."""
        self.due_acks.append(name)
