"""One simulated call of the load test: tagged frames, round trips, marks; the Twilio call.

Theory of operation
-------------------
:class:`MediaMeter` is the carrier-neutral media side of a call, given an open socket and the
carrier's message shapes (:mod:`.wire`). :class:`LoadCall` does what Twilio does on a call, as
cheaply as possible so that one process can drive hundreds of calls: it signs and posts the
voice webhook, reads ``<Stream url>`` and its ``<Parameter>``s from the TwiML and opens the
media socket with a signed upgrade; the Telnyx call is in :mod:`.telnyx`. The meter sends
``connected`` and ``start``. Then a sender loop sends one 20 ms μ-law frame every 20 ms on an
absolute schedule (``t0 + k·20 ms``, so a late wakeup is caught up rather than drifting); frame
``k`` carries tag ``k`` (:mod:`.tags`) and its send time is kept. The JSON of a media message is
a string template, so a frame costs one base64 encoding and one ``%`` format. When the network
ends the stream early (:meth:`MediaMeter.halt`), sending stops and the call is not ok.

The receiver decodes server ``media`` and plays it on a simulated loudspeaker, the emulators'
playout model (:class:`~switchboard.emulators.playout.PlayoutClock`) on loop time, which counts
durations and never copies audio: ``end`` is when everything received so far has played (a
payload starts at ``max(now, end)``). A ``mark`` is acknowledged when the audio before it has
played (the sender sends due acknowledgements on its next tick, as Twilio's playout does);
``clear`` drops the queue and acknowledges pending marks. A gap of at least :data:`STALL_MS`
between ``end`` and newly arriving audio (after audio has started) is a playout stall; any gap
longer than :data:`UNDERRUN_MS` (a frame or more of silence heard) is an underrun. Each stall is
kept (:class:`~.blame.Stall`) with how late the caller sent the frame that ended it and that
frame's round trip, so the runner can tell the load tool's lateness from the server's
(:mod:`.blame`).

A stream in another codec (Telnyx ``OPUS``) is given a :class:`FrameCodec`: frame ``k`` is its
``frame(k)`` and a returned payload counts for the audio it holds (an Opus TOC says how much);
no tag survives a lossy codec, so such a call always measures by position.

Round trips: a tag found in returned audio gives ``received − sent`` for its frame. When the
provider transcodes (PCM both ways) no tag survives; the call then measures by position: the
k-th 160 bytes returned are taken as frame k's echo. At the end the call stops sending, waits up
to ``drain_s`` for the rest, then sends ``stop``. Frames missing below the highest frame
returned are lost; frames after it are still queued.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from array import array
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from switchboard.emulators.playout import PlayoutClock
from switchboard.emulators.twilio.signing import http_form_of, twilio_signature
from switchboard.emulators.twilio.twiml import parse_twiml
from switchboard.loadtest.blame import Stall
from switchboard.loadtest.tags import FRAME_BYTES, TagScanner, tagged_frame
from switchboard.loadtest.wire import CallerWire, TwilioWire

__all__ = ["STALL_MS", "CallStats", "FrameCodec", "LoadCall", "MediaMeter", "SimulatedCall"]

#: A playout gap this long (ms) or longer, once audio has started, counts as a stall.
STALL_MS = 60.0
#: A playout gap longer than this (ms), once audio has started, counts as an underrun.
UNDERRUN_MS = 20.0
_FRAME_S = 0.020


@dataclass(slots=True)
class CallStats:
    """What one simulated call measured (times in milliseconds)."""

    index: int
    call_sid: str
    ok: bool = False
    error: str = ""
    mode: str = "tag"  # "tag" or "position" (no tag survived: transcoded audio)
    frames_sent: int = 0
    frames_returned: int = 0
    frames_lost: int = 0
    frames_queued: int = 0
    out_of_order: int = 0
    bytes_returned: int = 0
    marks_received: int = 0
    marks_acked: int = 0
    clears: int = 0
    stalls: int = 0
    stall_ms: float = 0.0
    underruns: int = 0
    underrun_ms: float = 0.0
    send_lag_max_ms: float = 0.0
    close_code: int | None = None
    rtt_ms: array[float] = field(default_factory=lambda: array("d"))
    stall_log: list[Stall] = field(default_factory=list)


class SimulatedCall(Protocol):
    """One simulated call of any carrier, as the runner sees it."""

    stats: CallStats

    @property
    def started(self) -> bool:
        """Whether media has started flowing."""
        ...

    async def run(self) -> CallStats:
        """Place the call, stream, hang up; never raises."""
        ...


class FrameCodec(Protocol):
    """The frames of a stream that is not μ-law (see the module docstring)."""

    def frame(self, k: int) -> bytes:
        """The payload of 20 ms frame ``k``."""
        ...

    def duration_ms(self, payload: bytes) -> float:
        """How much audio a returned payload holds."""
        ...


class MediaMeter:
    """The carrier-neutral media side of one call: tagged frames out, echoes and marks in.

    Args:
        stats: where to count (shared with the call).
        wire: the carrier's caller messages (:mod:`.wire`).
        duration_s: how long to send frames.
        drain_s: how long to wait for outstanding echoes after the last frame.
        codec: the stream's frames when it is not μ-law (then measured by position).
    """

    def __init__(
        self,
        stats: CallStats,
        wire: CallerWire,
        *,
        duration_s: float,
        drain_s: float,
        codec: FrameCodec | None = None,
    ) -> None:
        self.stats = stats
        self.wire = wire
        self.codec = codec
        self.duration_s = duration_s
        self.drain_s = drain_s
        self.started = False
        #: why the network ended the stream early (the app hung up), or None.
        self.halted: str | None = None
        self._sent_at = array("d")  # loop time (s) each frame was sent
        self._returned = bytearray()  # 1 per frame returned (tag mode)
        self._max_returned = -1
        self._scanner = TagScanner()
        self._playout = PlayoutClock()  # on loop time (s)
        self._seq = 0
        self._all_back = asyncio.Event()
        self._done_sending = False
        self._pos_rtt = array("d")  # round trips by position, used when no tag came back
        self._t0 = 0.0  # loop time frame 0 was due (frame k is due at t0 + k·20 ms)
        self._stall: tuple[float, float] | None = None  # (arrived, gap s) awaiting its frame
        self._loop = asyncio.get_running_loop()

    def halt(self, reason: str) -> None:
        """Stop sending at the next frame (the network ended the stream)."""
        if self.halted is None:
            self.halted = reason

    async def stream(self, ws: ClientConnection) -> None:
        """Run the media leg on an open socket: hello, frames, drain, acknowledgements, stop."""
        s = self.stats
        await ws.send(self.wire.connected())
        await ws.send(self.wire.start(self._next_seq()))
        self.started = True
        receiver = asyncio.create_task(self._receive(ws))
        try:
            await self._send_frames(ws)
            self._done_sending = True
            if self._back() >= s.frames_sent:
                self._all_back.set()
            if not receiver.done() and self.halted is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._all_back.wait(), self.drain_s)
            # listen until what came back has played, acknowledging the last marks
            await asyncio.sleep(max(0.0, min(self._playout.end - self._loop.time(), self.drain_s)))
            await self._send_acks(ws, self._loop.time())
            with contextlib.suppress(ConnectionClosed):
                await ws.send(self.wire.stop(self._next_seq()))
            s.ok = not receiver.done() and self.halted is None  # up until we hung up
            if receiver.done():
                s.error = "server closed the stream"
            elif self.halted is not None:
                s.error = f"stream ended by the network: {self.halted}"
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _send_frames(self, ws: ClientConnection) -> None:
        s, loop, media = self.stats, self._loop, self.wire.media
        b64 = base64.b64encode
        n_frames = round(self.duration_s / _FRAME_S)
        t0 = self._t0 = loop.time()
        for k in range(n_frames):
            due = t0 + k * _FRAME_S
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.halted is not None:
                return
            now = loop.time()
            lag = (now - due) * 1000.0
            if lag > s.send_lag_max_ms:
                s.send_lag_max_ms = lag
            if self._playout.pending_marks:
                await self._send_acks(ws, now)
            frame = tagged_frame(k) if self.codec is None else self.codec.frame(k)
            payload = b64(frame).decode()
            self._seq += 1
            self._sent_at.append(now)
            self._returned.append(0)
            await ws.send(media(self._seq, k + 1, k * 20, payload))
            s.frames_sent += 1

    async def _send_acks(self, ws: ClientConnection, now: float) -> None:
        for name in self._playout.due(now):
            with contextlib.suppress(ConnectionClosed):
                await ws.send(self.wire.mark(self._next_seq(), name))
            self.stats.marks_acked += 1

    async def _receive(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                self._on_message(raw if isinstance(raw, str) else raw.decode())

    # -- what the server sends -----------------------------------------------------------------
    def _on_message(self, raw: str) -> None:
        msg: dict[str, Any] = json.loads(raw)
        now = self._loop.time()
        match msg.get("event"):
            case "media":
                self._on_audio(base64.b64decode(msg["media"]["payload"]), now)
            case "mark":
                self.stats.marks_received += 1
                self._playout.mark(str(msg["mark"]["name"]), now)
            case "clear":
                self.stats.clears += 1
                self._playout.clear(now)
            case _:
                pass

    def _on_audio(self, payload: bytes, now: float) -> None:
        if self.codec is not None:
            self._on_coded_audio(payload, now)
            return
        s = self.stats
        gap = self._playout.add(len(payload) / 8000.0, now)
        if gap is not None and gap > UNDERRUN_MS / 1000.0:
            s.underruns += 1
            s.underrun_ms += gap * 1000.0
        if gap is not None and gap >= STALL_MS / 1000.0:
            s.stalls += 1
            s.stall_ms += gap * 1000.0
            self._stall = (now, gap)
        before = self._scanner.bytes_seen
        sent_at, returned, rtt = self._sent_at, self._returned, s.rtt_ms
        for k in self._scanner.feed(payload):
            if k >= len(sent_at) or returned[k]:
                continue  # not a frame of ours, or a duplicate
            if self._stall is not None:
                self._log_stall(k)
            returned[k] = 1
            if k < self._max_returned:
                s.out_of_order += 1
            else:
                self._max_returned = k
            s.frames_returned += 1
            rtt.append((now - sent_at[k]) * 1000.0)
        s.bytes_returned = self._scanner.bytes_seen
        if s.frames_returned == 0:  # no tag yet: count by position (transcoded audio)
            first = before // FRAME_BYTES
            last = min(s.bytes_returned // FRAME_BYTES, len(sent_at))
            for k in range(first, last):
                self._pos_rtt.append((now - sent_at[k]) * 1000.0)
            if self._stall is not None and first < len(sent_at):
                self._log_stall(first)
        if self._done_sending and self._back() >= s.frames_sent:
            self._all_back.set()

    def _on_coded_audio(self, payload: bytes, now: float) -> None:
        """Count a payload of another codec as the μ-law bytes of its duration (by position)."""
        assert self.codec is not None
        s = self.stats
        seconds = self.codec.duration_ms(payload) / 1000.0
        gap = self._playout.add(seconds, now)
        if gap is not None and gap >= STALL_MS / 1000.0:
            s.stalls += 1
            s.stall_ms += gap * 1000.0
            self._stall = (now, gap)
        before = s.bytes_returned
        s.bytes_returned += round(seconds * 8000)
        if self._stall is not None and before // FRAME_BYTES < s.frames_sent:
            self._log_stall(before // FRAME_BYTES)
        for k in range(before // FRAME_BYTES, min(s.bytes_returned // FRAME_BYTES, s.frames_sent)):
            self._pos_rtt.append((now - self._sent_at[k]) * 1000.0)
        if self._done_sending and self._back() >= s.frames_sent:
            self._all_back.set()

    def _log_stall(self, k: int) -> None:
        """Keep the pending stall, ended by the echo of frame ``k``."""
        assert self._stall is not None
        arrived, gap = self._stall
        self._stall = None
        sent = self._sent_at[k]
        self.stats.stall_log.append(
            Stall(
                at=arrived,
                gap_ms=gap * 1000.0,
                send_lag_ms=(sent - (self._t0 + k * _FRAME_S)) * 1000.0,
                rtt_ms=(arrived - sent) * 1000.0,
            )
        )

    def _back(self) -> int:
        s = self.stats
        return s.frames_returned if s.frames_returned else s.bytes_returned // FRAME_BYTES

    def finish(self) -> None:
        """Settle lost/queued counts (and position mode) once the stream is over."""
        s = self.stats
        if s.frames_returned == 0 and s.bytes_returned >= FRAME_BYTES:
            s.mode = "position"
            back = min(s.bytes_returned // FRAME_BYTES, s.frames_sent)
            s.frames_returned, s.frames_lost, s.frames_queued = back, 0, s.frames_sent - back
            s.rtt_ms = self._pos_rtt
            return
        s.frames_queued = s.frames_sent - 1 - self._max_returned
        s.frames_lost = s.frames_sent - s.frames_returned - s.frames_queued


class LoadCall:
    """One simulated Twilio call (see module docstring).

    Args:
        index: this call's number in the run (for the report).
        server: the app's base URL as it sees itself (``SWITCHBOARD_PUBLIC_URL``).
        auth_token: the Twilio auth token the app validates signatures with.
        duration_s: how long to send frames.
        drain_s: how long to wait for outstanding echoes after the last frame.
        account_sid / to / from_: webhook fields.
        http: a shared HTTP client.
    """

    def __init__(
        self,
        index: int,
        *,
        server: str,
        auth_token: str,
        duration_s: float,
        http: httpx.AsyncClient,
        drain_s: float = 1.0,
        account_sid: str = "AC" + "0" * 32,
        to: str = "+15005550001",
        from_: str = "+15005550006",
    ) -> None:
        self.server = server.rstrip("/")
        self.auth_token = auth_token
        self.duration_s = duration_s
        self.drain_s = drain_s
        self.account_sid, self.to, self.from_ = account_sid, to, from_
        self.http = http
        self.stats = CallStats(index=index, call_sid="CA" + secrets.token_hex(16))
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.meter: MediaMeter | None = None

    @property
    def started(self) -> bool:
        return self.meter is not None and self.meter.started

    async def run(self) -> CallStats:
        """Place the call, stream for ``duration_s``, drain, hang up; never raises."""
        s = self.stats
        try:
            url, params = await self._webhook()
            wire = TwilioWire(
                stream_sid=self.stream_sid,
                account_sid=self.account_sid,
                call_sid=s.call_sid,
                custom=params,
            )
            self.meter = MediaMeter(s, wire, duration_s=self.duration_s, drain_s=self.drain_s)
            headers = {"X-Twilio-Signature": twilio_signature(self.auth_token, http_form_of(url))}
            # no permessage-deflate offered (UNCONFIRMED whether Twilio offers it; it would
            # only add deflate cost on both ends for base64 audio)
            async with connect(
                url, additional_headers=headers, max_size=2**20, compression=None
            ) as ws:
                await self.meter.stream(ws)
                s.close_code = ws.close_code
        except (httpx.HTTPError, OSError, InvalidHandshake, ConnectionClosed, ValueError) as exc:
            s.error = f"{type(exc).__name__}: {exc}"[:200]
        if self.meter is not None:
            self.meter.finish()
        return s

    async def _webhook(self) -> tuple[str, dict[str, str]]:
        voice = f"{self.server}/twilio/voice"
        params = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", self.stats.call_sid),
            ("CallStatus", "ringing"),
            ("Called", self.to),
            ("Caller", self.from_),
            ("Direction", "inbound"),
            ("From", self.from_),
            ("To", self.to),
        ]
        resp = await self.http.post(
            voice,
            data=dict(params),
            headers={
                "X-Twilio-Signature": twilio_signature(self.auth_token, voice, params),
                "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            },
        )
        if resp.status_code != 200:
            raise ValueError(f"webhook answered HTTP {resp.status_code}")
        for verb in parse_twiml(resp.text):  # TwimlError is a ValueError
            streams = [c for c in verb.children if c.name == "Stream" and c.attrs.get("url")]
            if verb.name == "Connect" and streams:
                return streams[0].attrs["url"], streams[0].parameters()
        raise ValueError("webhook TwiML has no <Connect><Stream url>")
