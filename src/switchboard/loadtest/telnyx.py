"""One simulated Telnyx call of the load test: the emulated network places it, we talk on it.

Theory of operation
-------------------
With Telnyx the network drives the call: it posts signed webhooks and obeys the app's Call
Control commands. The load test therefore runs :class:`~switchboard.emulators.telnyx.TelnyxEmulator`
in-process (the app's ``TELNYX_BASE_URL`` points at it, its ``TELNYX_PUBLIC_KEY`` is the
emulator's) and :class:`TelnyxLoadCall` asks it to place an inbound call. When the app starts
the stream, the emulator calls this call's media-leg factory instead of its WAV caller: the
:class:`TaggedMediaLeg` dials the ``stream_url`` and lets a :class:`~.client.MediaMeter` send
tagged PCMU frames and measure their echoes (the same core as the Twilio call) — or, with
``codec="OPUS"``, one second of a voice pre-encoded once with the emulator's Opus codec,
sent round and round and measured by position (:class:`OpusFrames`); with ``codec="L16"``,
the same second of voice as linear PCM at the stream's rate in the wire's byte order
(:class:`L16Frames`), measured by position too (the app resamples it). When the meter
hangs up (``stop``), the emulator sends ``streaming.stopped`` and ``call.hangup``; the call is
ok when the media leg was, every webhook was answered 2xx and the emulator saw no violation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import uuid
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.telnyx import EmulatedCall, LegResult, TelnyxEmulator, WireFormat
from switchboard.emulators.telnyx.wirecodecs import OpusWire, opus_packet_ms
from switchboard.loadtest.client import CallStats, MediaMeter
from switchboard.loadtest.wire import TelnyxWire

__all__ = [
    "L16Frames",
    "OpusFrames",
    "TaggedMediaLeg",
    "TelnyxLoadCall",
    "new_telnyx_seed",
    "telnyx_public_key",
]


def new_telnyx_seed() -> str:
    """A fresh Ed25519 seed (base64 of 32 random bytes) for the load tool's emulator."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def telnyx_public_key(seed_b64: str) -> str:
    """The ``TELNYX_PUBLIC_KEY`` (base64 raw Ed25519 public key) that goes with ``seed_b64``.

    Raises:
        ValueError: the seed is not base64 of 32 bytes.
    """
    try:
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64, validate=True))
    except (ValueError, TypeError) as exc:
        raise ValueError("the Telnyx key must be base64 of a 32-byte Ed25519 seed") from exc
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


class OpusFrames:
    """A caller's Opus frames for the load test: one second of a quiet voice, encoded once.

    Encoding per call would cost the load generator as much as the server; the same 50
    packets, sent round and round, are a valid Opus stream (a jump in the audio each second).
    """

    _packets: list[bytes] | None = None

    def frame(self, k: int) -> bytes:
        """The packet of 20 ms frame ``k``."""
        packets = OpusFrames._packets
        if packets is None:
            # a voice at -50 dBFS, like the μ-law tags (±120): real codec work, yet below any
            # voice detector, so the echo provider never sees a caller barging in
            voice = speech_like_pcm16("the load test talks", 16000, amplitude=0.01)
            pcm = voice[: 16000 * 2]
            wire = OpusWire(16000)
            packets = OpusFrames._packets = [
                wire.encode(pcm[i : i + 640]) for i in range(0, 32000, 640)
            ]
        return packets[k % len(packets)]

    def duration_ms(self, payload: bytes) -> float:
        """From the packet's TOC (RFC 6716 §3.1)."""
        return opus_packet_ms(payload)


class L16Frames:
    """A caller's L16 frames for the load test: one second of a quiet voice, made once per
    rate and byte order, sent round and round (like :class:`OpusFrames`)."""

    _made: dict[tuple[int, str], list[bytes]] = {}  # noqa: RUF012 (a cache shared by calls)

    def __init__(self, sample_rate: int, byteorder: str = "big") -> None:
        self.sample_rate, self.byteorder = sample_rate, byteorder
        self._bytes_per_ms = sample_rate * 2 / 1000.0

    def frame(self, k: int) -> bytes:
        """The payload of 20 ms frame ``k``."""
        key = (self.sample_rate, self.byteorder)
        frames = L16Frames._made.get(key)
        if frames is None:
            # -50 dBFS, like the μ-law tags and OpusFrames: below any voice detector
            voice = speech_like_pcm16("the load test talks", self.sample_rate, amplitude=0.01)
            pcm = voice[: self.sample_rate * 2]
            if self.byteorder == "big":
                pcm = np.frombuffer(pcm, "<i2").astype(">i2").tobytes()
            size = int(self._bytes_per_ms * 20)
            frames = L16Frames._made[key] = [pcm[i : i + size] for i in range(0, len(pcm), size)]
        return frames[k % len(frames)]

    def duration_ms(self, payload: bytes) -> float:
        """Two bytes per sample at the stream's rate."""
        return len(payload) / self._bytes_per_ms


class TaggedMediaLeg:
    """The caller's media leg as the load test plays it (a ``MediaLeg`` for the emulator).

    Args:
        url: the app's ``stream_url``.
        start: the ``start`` object the emulator built (ids, from/to, client_state).
        inbound / outbound: the stream's formats; the load test needs PCMU (or, with
            ``codec="OPUS"``, OPUS) both ways.
        stats: the call's counters.
        duration_s, drain_s: see :class:`~.client.MediaMeter`.
        codec: ``"PCMU"`` (tagged frames), ``"OPUS"`` (:class:`OpusFrames`) or ``"L16"``
            (:class:`L16Frames`).
    """

    def __init__(
        self,
        *,
        url: str,
        start: dict[str, Any],
        inbound: WireFormat,
        outbound: WireFormat | None,
        stats: CallStats,
        duration_s: float,
        drain_s: float,
        codec: str = "PCMU",
    ) -> None:
        self.url = url
        self.inbound, self.outbound = inbound, outbound
        self.codec = codec
        self.result = LegResult(stream_id=str(uuid.uuid4()).upper())
        wire = TelnyxWire(
            stream_id=self.result.stream_id,
            start=start,
            encoding=inbound.codec,
            sample_rate=inbound.sample_rate,
        )
        frames: OpusFrames | L16Frames | None = None
        if codec == "OPUS":
            frames = OpusFrames()
        elif codec == "L16":
            frames = L16Frames(inbound.sample_rate, inbound.l16_byteorder)
        if frames is not None:
            frames.frame(0)  # encode the second of voice now, not on the first frame's clock
        self.meter = MediaMeter(stats, wire, duration_s=duration_s, drain_s=drain_s, codec=frames)
        self.connected = asyncio.Event()

    def request_stop(self, reason: str) -> None:
        """The network ends the stream (the app hung up or sent ``streaming_stop``)."""
        self.meter.halt(reason)
        self.result.ended_by = self.result.ended_by or reason

    async def run(self) -> LegResult:
        """Connect, stream tagged frames, hang up; never raises for network trouble."""
        s, r = self.meter.stats, self.result
        formats = (self.inbound.codec, self.outbound.codec if self.outbound else "mp3")
        try:
            if formats != (self.codec, self.codec):
                raise ValueError(f"the load test needs {self.codec} rtp both ways, got {formats}")
            async with connect(self.url, max_size=2**20, compression=None) as ws:
                self.connected.set()
                await self.meter.stream(ws)
                s.close_code = ws.close_code
            r.ended_by = r.ended_by or "caller_hangup"
        except (OSError, InvalidHandshake, ConnectionClosed, ValueError) as exc:
            s.error = f"{type(exc).__name__}: {exc}"[:200]
            r.connect_error = None if self.meter.started else s.error
            r.ended_by = r.ended_by or "connect_failed"
        finally:
            self.connected.set()
        r.frames_sent = s.frames_sent
        r.frames_received = s.bytes_returned // 160  # μ-law bytes, or their duration
        r.duration_ms = s.frames_sent * 20
        return r


class TelnyxLoadCall:
    """One simulated Telnyx call, placed by ``emulator`` to the app's webhook.

    Args:
        index: this call's number in the run.
        emulator: the running in-process emulator the app trusts and commands.
        webhook_url: the app's ``/telnyx/webhook``.
        duration_s, drain_s: see :class:`~.client.MediaMeter`.
        to / from_: the numbers of the call.
        answer_timeout_s: how long the app may take to start the media stream.
        codec: the stream codec the app's agent asks for (``PCMU``, ``OPUS`` or ``L16``).
    """

    def __init__(
        self,
        index: int,
        *,
        emulator: TelnyxEmulator,
        webhook_url: str,
        duration_s: float,
        drain_s: float = 1.0,
        to: str = "+15005550001",
        from_: str = "+15005550006",
        answer_timeout_s: float = 10.0,
        codec: str = "PCMU",
    ) -> None:
        self.codec = codec
        self.emulator = emulator
        self.webhook_url = webhook_url
        self.duration_s, self.drain_s = duration_s, drain_s
        self.to, self.from_ = to, from_
        self.answer_timeout_s = answer_timeout_s
        self.stats = CallStats(index=index, call_sid="")
        self.leg: TaggedMediaLeg | None = None

    @property
    def started(self) -> bool:
        return self.leg is not None and self.leg.meter.started

    def _make_leg(
        self,
        *,
        url: str,
        start: dict[str, Any],
        inbound: WireFormat,
        outbound: WireFormat | None,
        call_control_id: str,
    ) -> TaggedMediaLeg:
        if self.leg is not None:  # a second stream replaces the first: measure afresh
            self.stats = CallStats(index=self.stats.index, call_sid=call_control_id)
        self.leg = TaggedMediaLeg(
            url=url,
            start=start,
            inbound=inbound,
            outbound=outbound,
            stats=self.stats,
            duration_s=self.duration_s,
            drain_s=self.drain_s,
            codec=self.codec,
        )
        return self.leg

    async def run(self) -> CallStats:
        """Place the call, stream, hang up, wait for ``call.hangup``; never raises."""
        call = await self.emulator.place_inbound_call(
            to=self.to,
            from_=self.from_,
            webhook_url=self.webhook_url,
            media_leg_factory=self._make_leg,
        )
        self.stats.call_sid = call.call_control_id
        problem = await self._until_streaming(call)
        if problem is None:
            assert self.leg is not None and call.leg_task is not None
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(call.leg_task)
            try:
                await call.wait(self.answer_timeout_s)
            except TimeoutError:
                problem = "no call.hangup after the caller hung up"
        s = self.stats
        if self.leg is not None:
            self.leg.meter.finish()
        problem = problem or _call_problem(call)
        if problem and not s.error:
            s.error = problem[:200]
        s.ok = s.ok and not problem
        return s

    async def _until_streaming(self, call: EmulatedCall) -> str | None:
        """Wait for the app to answer and start the stream; a reason when it does not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.answer_timeout_s
        while self.leg is None or not self.leg.connected.is_set():
            if bad := [f"{e} answered HTTP {code}" for e, code in call.webhooks if code >= 300]:
                return "webhook " + bad[0]
            if bad := [f"{e} unreachable" for e, code in call.webhooks if code == 0]:
                return "webhook " + bad[0]
            if call.violations:
                return "emulator: " + call.violations[0]
            if not call.is_alive:
                return f"call ended before streaming ({call.ended_by})"
            if loop.time() >= deadline:
                return f"no media stream within {self.answer_timeout_s:g} s"
            await asyncio.sleep(0.05)
        return None


def _call_problem(call: EmulatedCall) -> str | None:
    """What went wrong on the network side of a finished call, if anything."""
    if call.violations:
        return "emulator: " + call.violations[0]
    if bad := [f"{e} answered HTTP {code}" for e, code in call.webhooks if not 200 <= code < 300]:
        return "webhook " + bad[0]
    if call.is_alive:
        return "call still up"
    if call.ended_by != "caller_hangup":
        return f"call ended by {call.ended_by}"
    return None
