"""The caller's end of a Telnyx media stream: connect to ``stream_url``, talk, listen, play out.

Written from ``docs/wire/telnyx.md#media-streaming`` (vendor page:
https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming) against plain dicts
(it never imports the client codec).

Theory of operation
-------------------
One clock drives the leg. Every tick (20 ms of call time, ``speed`` times faster than real time
when asked) the caller sends its next inbound ``media`` frame, if any is left, and plays 20 ms
of the outbound queue (or silence) into the recording — so the recorded WAV is faithful to the
call's timeline: silence where nothing was played, audio where it was.

A reader task takes the app's frames. ``media`` appends decoded audio to the queue; ``mark`` is
recorded at the queue's end position and echoed once playout passes it (at once if the queue is
empty); ``clear`` empties the queue and echoes every pending mark. The queue, marks and
recording are the emulators' shared :class:`~switchboard.emulators.playout.Playout`, here
counting PCM16 bytes. Frames the real service would reject are recorded in ``violations``.

The leg ends when the caller has said everything and heard the queue out plus ``tail_ms`` of
silence (the caller hangs up), when ``request_stop`` is called (the app hung up or stopped the
stream), after ``max_ms`` of call time, or when the app closes the socket. It always ends with
``stop`` and a clean close when the socket is still open.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

from switchboard.emulators.playout import Playout
from switchboard.emulators.telnyx.audio import WireFormat
from switchboard.errors import AudioError

__all__ = ["CallerMediaLeg", "LegResult", "MediaLeg", "MediaLegFactory"]

logger = logging.getLogger(__name__)

FRAME_MS = 20


@dataclass
class LegResult:
    """What the caller's media leg did and heard."""

    stream_id: str
    frames_sent: int = 0
    frames_received: int = 0
    marks: list[str] = field(default_factory=list)
    clears: int = 0
    heard_ms: float = 0.0
    duration_ms: int = 0
    ended_by: str = ""
    heard_pcm: bytearray = field(default_factory=bytearray)
    heard_rate: int = 8000
    connect_error: str | None = None
    #: outbound chunks under the documented 20 ms minimum (played anyway).
    short_chunks: int = 0
    #: the event loop's time when the app's first audio arrived (None: it sent none)
    first_sound_at: float | None = None
    #: the event loop's time when the leg ended
    ended_at: float = 0.0


class MediaLeg(Protocol):
    """What the emulator needs of a caller's media leg (:class:`CallerMediaLeg` is one).

    ``run`` connects to ``url`` and streams until the leg ends; ``request_stop`` asks it to
    end (the app hung up or stopped the stream). Another implementation (the load test's
    tagged-frame caller) can stand in through ``TelnyxEmulator(media_leg_factory=...)``.
    """

    url: str

    def request_stop(self, reason: str) -> None: ...

    async def run(self) -> LegResult: ...


class MediaLegFactory(Protocol):
    """Builds the caller's media leg for one stream of a call.

    Called with the ``stream_url``, the ``start`` object to send (without ``media_format``),
    the inbound wire format (``stream_codec``) and the outbound one (None unless
    bidirectional ``rtp``), and the call's ``call_control_id``.
    """

    def __call__(
        self,
        *,
        url: str,
        start: dict[str, Any],
        inbound: WireFormat,
        outbound: WireFormat | None,
        call_control_id: str,
    ) -> MediaLeg: ...


class CallerMediaLeg:
    """Stream ``audio`` to the app's media websocket as Telnyx would, and record the answer.

    Args:
        url: the ``stream_url`` from ``streaming_start`` / ``answer`` / dial.
        start: the ``start`` object to send (call ids, from/to, client_state...), without
            ``media_format`` (added here from ``inbound``).
        inbound: format of caller audio on the wire (``stream_codec``).
        outbound: format the app must send back (``stream_bidirectional_codec``); None when
            bidirectional ``rtp`` was not requested (the default mp3 mode).
        audio: PCM16 LE at ``inbound.sample_rate``: what the caller says.
        speed: 1.0 is real time; 10.0 runs the call clock ten times faster.
        tail_ms: silence the caller waits for, after hearing everything, before hanging up.
        min_tail_s: wall-clock floor on that wait, so a sped-up clock does not hang up while
            the app's answer is still in flight.
        max_ms: longest call (call time).
        dtmf: digits the caller presses after speaking (one per 100 ms).
        swap_every: deliver every Nth pair of media frames out of order (0: never).
        on_dtmf: called with each digit (the server sends ``call.dtmf.received``).
        violations: list the leg appends protocol violations to.
    """

    def __init__(
        self,
        *,
        url: str,
        start: dict[str, Any],
        inbound: WireFormat,
        outbound: WireFormat | None,
        audio: bytes,
        speed: float = 1.0,
        tail_ms: int = 400,
        min_tail_s: float = 0.3,
        max_ms: int = 60_000,
        dtmf: str = "",
        swap_every: int = 0,
        on_dtmf: Callable[[str], object] | None = None,
        violations: list[str] | None = None,
    ) -> None:
        self.url = url
        self.start = start
        self.inbound = inbound
        self.outbound = outbound
        self.audio = audio
        self.speed = speed
        self.tail_ms = tail_ms
        self.min_tail_s = min_tail_s
        self.max_ms = max_ms
        self.dtmf = dtmf
        self.swap_every = swap_every
        self.on_dtmf = on_dtmf
        self.violations = violations if violations is not None else []
        rate = outbound.sample_rate if outbound else inbound.sample_rate
        self.result = LegResult(stream_id=str(uuid.uuid4()).upper(), heard_rate=rate)
        self._seq = 0
        # PCM16 LE at heard_rate; its timeline is the recording
        self.playout = Playout(frame_bytes=rate * FRAME_MS // 1000 * 2, silence=b"\x00", quiet=None)
        self.result.heard_pcm = self.playout.timeline
        self._stop_reason: str | None = None
        self._wake = asyncio.Event()

    def request_stop(self, reason: str) -> None:
        """End the leg at the next tick (the app hung up or sent ``streaming_stop``)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake.set()

    # -- the leg ---------------------------------------------------------------------------------
    async def run(self) -> LegResult:
        """Connect, stream and record until the leg ends; never raises for network trouble."""
        try:
            async with connect(self.url, open_timeout=10, max_size=2**22) as ws:
                reader = asyncio.create_task(self._read(ws))
                try:
                    await self._talk(ws)
                except websockets.ConnectionClosed:  # closed under a send: not a connect failure
                    if self._stop_reason is None:
                        self._stop_reason = "app_closed_socket"
                    self.result.ended_by = self.result.ended_by or self._stop_reason
                finally:
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await self._send(
                            ws,
                            "stop",
                            stop={"user_id": self._user_id, "call_control_id": self._ccid},
                        )
                        await ws.close()
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed) as exc:
            self.result.connect_error = f"{type(exc).__name__}: {exc}"
            self.result.ended_by = self.result.ended_by or "connect_failed"
            logger.warning("media leg to %s failed: %s", self.url, self.result.connect_error)
        self.result.ended_at = asyncio.get_running_loop().time()
        return self.result

    @property
    def _ccid(self) -> str:
        return str(self.start.get("call_control_id", ""))

    @property
    def _user_id(self) -> str:
        return str(self.start.get("user_id", ""))

    async def _send(self, ws: ClientConnection, event: str, **body: Any) -> None:
        self._seq += 1
        msg = {"event": event, "sequence_number": str(self._seq), **body}
        msg["stream_id"] = self.result.stream_id
        await ws.send(json.dumps(msg))

    async def _talk(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"event": "connected", "version": "1.0.0"}))
        fmt = {
            "encoding": self.inbound.codec,
            "sample_rate": self.inbound.sample_rate,
            "channels": 1,
        }
        await self._send(ws, "start", start={**self.start, "media_format": fmt})
        step = self.inbound.sample_rate * FRAME_MS // 1000 * 2
        frames = [self.audio[i : i + step] for i in range(0, len(self.audio), step)]
        digits = list(self.dtmf)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tick, idle_ms, held, last_busy = 0, 0, None, t0
        while True:
            if self._stop_reason is not None:
                self.result.ended_by = self._stop_reason
                break
            if tick < len(frames):
                frame = self._media_frame(frames[tick], tick)
                if self.swap_every and tick % self.swap_every == 0 and held is None:
                    held = frame  # deliver after the next one: out of order
                else:
                    await ws.send(frame)
                    if held is not None:
                        await ws.send(held)
                        held = None
            elif held is not None:
                await ws.send(held)
                held = None
            elif digits and tick % 5 == 0:
                digit = digits.pop(0)
                await self._send(ws, "dtmf", dtmf={"digit": digit})
                if self.on_dtmf:
                    self.on_dtmf(digit)
            played = await self._play(ws)
            tick += 1
            self.result.duration_ms = tick * FRAME_MS
            talking = tick < len(frames) or held is not None or digits
            if talking or played or self.playout.queued or self.playout.pending_marks:
                idle_ms, last_busy = 0, loop.time()
            else:
                idle_ms += FRAME_MS
                # The wall-clock floor lets in-flight answers arrive on a fast clock.
                if idle_ms >= self.tail_ms and loop.time() - last_busy >= self.min_tail_s:
                    self.result.ended_by = "caller_hangup"
                    break
            if self.result.duration_ms >= self.max_ms:
                self.result.ended_by = "max_duration"
                break
            delay = t0 + tick * FRAME_MS / 1000 / self.speed - loop.time()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _media_frame(self, pcm: bytes, tick: int) -> str:
        self._seq += 1
        self.result.frames_sent += 1
        payload = base64.b64encode(self.inbound.encode(pcm)).decode("ascii")
        return json.dumps(
            {
                "event": "media",
                "sequence_number": str(self._seq),
                "media": {
                    "track": "inbound",
                    "chunk": str(tick + 1),
                    "timestamp": str(tick * FRAME_MS),
                    "payload": payload,
                },
                "stream_id": self.result.stream_id,
            }
        )

    async def _play(self, ws: ClientConnection) -> bool:
        """Play one tick of the queue into the recording; echo marks that playout passed."""
        played = self.playout.play()
        self.result.heard_ms += played / 2 * 1000 / self.result.heard_rate
        while (name := self.playout.next_due()) is not None:
            await self._ack_mark(ws, name)  # one at a time: the reader may ack meanwhile
        return bool(played)

    async def _ack_mark(self, ws: ClientConnection, name: str) -> None:
        self.result.marks.append(name)
        await self._send(ws, "mark", mark={"name": name})

    # -- the app's frames ------------------------------------------------------------------------
    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    self.violations.append(
                        "binary frame on the media socket (Telnyx wants JSON text)"
                    )
                    continue
                await self._on_frame(ws, raw)
        except websockets.ConnectionClosed:
            pass
        if self._stop_reason is None:
            self.request_stop("app_closed_socket")

    async def _on_frame(self, ws: ClientConnection, raw: str) -> None:
        try:
            msg = json.loads(raw)
            event = msg["event"]
        except (ValueError, KeyError, TypeError):
            self.violations.append(f"malformed frame from app: {raw[:80]!r}")
            return
        match event:
            case "media":
                self._on_media(msg)
            case "mark":
                name = (msg.get("mark") or {}).get("name")
                if not isinstance(name, str) or not name:
                    self.violations.append("mark without mark.name")
                    return
                for acked in self.playout.add_mark(name):  # nothing queued: echoed at once
                    await self._ack_mark(ws, acked)
            case "clear":
                self.result.clears += 1
                for acked in self.playout.clear():
                    await self._ack_mark(ws, acked)
            case _:
                self.violations.append(f"unknown event from app: {event!r}")

    def _on_media(self, msg: dict[str, Any]) -> None:
        if self.outbound is None:
            self.violations.append("media sent but bidirectional rtp mode was not requested")
            return
        try:
            payload = base64.b64decode(msg["media"]["payload"], validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            self.violations.append("media frame without a valid base64 media.payload")
            return
        try:
            payload_ms = self.outbound.payload_ms(payload)
            short = payload_ms < FRAME_MS
            pcm = self.outbound.decode(payload)
        except AudioError as exc:  # e.g. not an Opus packet: Telnyx would not play it
            self.violations.append(f"invalid {self.outbound.codec} media payload: {exc}")
            return
        if short:
            self.result.short_chunks += 1  # the doc asks for 20 ms – 30 s per chunk
        self.result.frames_received += int(payload_ms // FRAME_MS) or 1  # 20 ms frames
        if self.result.first_sound_at is None:
            self.result.first_sound_at = asyncio.get_running_loop().time()
        self.playout.add_audio(pcm)
