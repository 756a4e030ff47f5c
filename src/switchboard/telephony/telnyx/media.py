"""Sans-I/O codec for the Telnyx media-streaming websocket (one instance per stream).

Vendor doc: https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming and the
AsyncAPI page https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket
(``docs/wire/telnyx.md#media-streaming``).

Theory of operation
-------------------
Telnyx sends JSON text frames: ``connected``, ``start`` (call ids + ``media_format``), ``media``
(base64 RTP payload, no RTP header), ``dtmf``, ``mark`` (echo of a mark we sent, at playout),
``stop`` and ``error``. Frame order is *not* guaranteed ("use media.chunk, media.timestamp and
sequence_number to order frames"), so media frames pass through a small reorder window keyed
on ``media.chunk`` — a media-only counter — or, when a frame has no chunk, on
``sequence_number``. ``sequence_number`` alone would stall: it also counts non-media events,
and the doc's own example jumps from ``start`` #1 to ``media`` #4.

* ``_next`` is the next key expected. A frame with that key is released with every held frame
  now contiguous; a frame ahead of it is held (``reordered``); one behind it is a late
  duplicate and is dropped (``late``, ``dropped``).
* When more than ``reorder_window`` frames are held, the missing keys are given up as lost
  (``gaps``) and the held frames are released in order. ``stop`` flushes the window.
* Non-media events (rare and latency-sensitive) are released at once.
* Chunks are assumed to count from 1 (UNCONFIRMED; the doc's example shows chunk 2 as the
  second media frame). If they start higher, the first window's worth of frames is held once
  and the missing numbers are counted as ``gaps``; nothing is lost.

Outbound frames (bidirectional ``rtp`` mode) are ``media``, ``mark`` and ``clear``; they need no
``stream_id``. ``send_media`` is on the hot path, so it is a string template around base64.

``OPUS`` and ``G722`` streams are transcoded here (:mod:`.wideband`): media payloads are decoded
to PCM16 16 kHz as they leave the reorder window (in order, as the codecs need), a payload
given up as lost is concealed (at most ``max_conceal`` per gap), a bad one counts as
``malformed`` and is concealed too; ``send_media`` takes 20 ms PCM16 frames and encodes them.
The bridge sees an ordinary PCM16 stream (``StreamStarted.audio``).

L16 byte order is UNCONFIRMED for Telnyx: RTP L16 is big-endian (RFC 3551 §4.5.11), so the
codec assumes network order by default and swaps to/from the little-endian PCM16 the rest of
switchboard uses. ``l16_byteorder="little"`` turns the swap off if Telnyx turns out to send LE.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import heapq
import json
import logging
import sys
from typing import Any, Literal

import orjson

from switchboard.errors import AudioError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import (
    DtmfReceived,
    MarkAcknowledged,
    MediaEvent,
    MediaReceived,
    StreamConnected,
    StreamError,
    StreamStarted,
    StreamStopped,
)
from switchboard.telephony.telnyx.wideband import WIDEBAND_ENCODINGS, WireTranscoder, wideband_spec

__all__ = ["TelnyxMediaCodec", "audio_spec_for_encoding"]

logger = logging.getLogger(__name__)

ByteOrder = Literal["big", "little"]

_ENCODINGS: dict[str, AudioFormat] = {
    "PCMU": AudioFormat.ULAW,
    "AUDIO/X-MULAW": AudioFormat.ULAW,
    "PCMA": AudioFormat.ALAW,
    "AUDIO/X-ALAW": AudioFormat.ALAW,
    "L16": AudioFormat.PCM16,
    "AUDIO/L16": AudioFormat.PCM16,
}
_STAT_KEYS = ("frames_in", "frames_out", "malformed", "reordered", "gaps", "late", "dropped")


def audio_spec_for_encoding(encoding: str, sample_rate: int | None) -> AudioSpec | None:
    """Map a ``start.media_format`` to an :class:`AudioSpec` (None for codecs we cannot carry).

    Accepts the current ``PCMU``/``PCMA``/``L16`` names and the older MIME-ish
    ``audio/x-mulaw``/``audio/x-alaw`` (both appear in Telnyx docs).
    """
    if encoding.upper() in WIDEBAND_ENCODINGS:
        return wideband_spec(encoding, sample_rate)  # decoded to PCM16 by the codec
    fmt = _ENCODINGS.get(encoding.upper())
    if fmt is None:
        return None
    if fmt is AudioFormat.PCM16:
        return AudioSpec(fmt, int(sample_rate or 16000))
    return AudioSpec(fmt, int(sample_rate or 8000))


def _swap16(data: bytes) -> bytes:
    """Swap the bytes of every 16-bit sample (big-endian ⇄ little-endian)."""
    out = bytearray(data[: len(data) & ~1])
    out[0::2], out[1::2] = out[1::2], out[0::2]
    return bytes(out)


class TelnyxMediaCodec:
    """Parse Telnyx media frames into carrier-neutral events and encode outbound frames.

    Args:
        reorder_window: media frames held while waiting for a missing one.
        l16_byteorder: wire byte order of L16 payloads (UNCONFIRMED; default RFC 3551 "big").
        outbound_spec: the audio format ``send_media`` expects, i.e. what was asked for with
            ``stream_bidirectional_codec``. When None it follows ``start.media_format`` (we ask
            for the same codec both ways), PCMU 8 kHz until then. For L16 the caller passes
            little-endian PCM16 and the codec converts to ``l16_byteorder``.
        pcm_rate: the PCM rate an ``OPUS`` stream is decoded to and encoded from (the
            provider's, so nothing resamples); 16 kHz when None (see :mod:`.wideband`).
    """

    def __init__(
        self,
        *,
        reorder_window: int = 8,
        l16_byteorder: ByteOrder = "big",
        outbound_spec: AudioSpec | None = None,
        pcm_rate: int | None = None,
    ) -> None:
        self.reorder_window = reorder_window
        self.pcm_rate = pcm_rate
        self.l16_byteorder: ByteOrder = l16_byteorder
        self._follow_inbound = outbound_spec is None
        self.stream_id: str | None = None
        self.call_control_id: str | None = None
        self.inbound_spec: AudioSpec | None = None
        self._swap_in = False
        self._wire: WireTranscoder | None = None  # OPUS / G722 streams
        self.max_conceal = 5  # lost payloads concealed per gap (100 ms); longer gaps stay gaps
        self._set_outbound(outbound_spec or AudioSpec(AudioFormat.ULAW, 8000))
        self._next: int | None = None
        self._held: list[tuple[int, MediaReceived]] = []
        self._stats = dict.fromkeys(_STAT_KEYS, 0)

    @property
    def joins_frames(self) -> bool:
        """Raw audio (no OPUS/G722 wire transcoder) plays in chunks of 20 ms – 30 s."""
        return self._wire is None

    def _set_outbound(self, spec: AudioSpec) -> None:
        self.outbound_spec = spec
        self._frame_bytes = spec.bytes_for_ms(20)
        self._swap_out = spec.format is AudioFormat.PCM16 and self.l16_byteorder != sys.byteorder

    @property
    def stats(self) -> dict[str, int]:
        """Counters: frames_in, frames_out, malformed, reordered, gaps, late, dropped."""
        return dict(self._stats)

    # -- outbound (hot path) ---------------------------------------------------------------------
    def send_media(self, payload: bytes) -> str:
        """One outbound ``media`` message of ``outbound_spec`` audio (20 ms – 30 s per message;
        ``frames_out`` counts 20 ms frames)."""
        self._stats["frames_out"] += len(payload) // self._frame_bytes or 1
        if self._wire is not None and self._follow_inbound:
            payload = self._wire.encode(payload)
        elif self._swap_out:
            payload = _swap16(payload)
        b64 = base64.b64encode(payload).decode("ascii")
        return '{"event":"media","media":{"payload":"' + b64 + '"}}'

    def send_mark(self, name: str) -> str:
        """A ``mark``; Telnyx echoes it once everything queued before it has played."""
        return json.dumps({"event": "mark", "mark": {"name": name}}, separators=(",", ":"))

    def send_clear(self) -> str:
        """``clear``: stop playback, drop the queue (queued marks are echoed)."""
        return '{"event":"clear"}'

    # -- inbound ---------------------------------------------------------------------------------
    def receive(self, text: str) -> list[MediaEvent]:
        """Parse one inbound text frame; malformed frames are counted and logged, never raised."""
        try:
            msg = orjson.loads(text)
            if not isinstance(msg, dict):
                raise ValueError("frame is not a JSON object")
            return self._dispatch(msg)
        # RecursionError: arrays nested 10 000 deep; AttributeError: an object field that is
        # not an object; OverflowError: Infinity where a number was expected.
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            OverflowError,
            RecursionError,
            binascii.Error,
        ) as exc:
            self._stats["malformed"] += 1
            logger.warning("malformed Telnyx media frame (%d bytes): %s", len(text), exc)
            return []

    def _dispatch(self, msg: dict[str, Any]) -> list[MediaEvent]:
        seq = _int_or_none(msg.get("sequence_number"))
        match msg.get("event"):
            case "media":
                return self._on_media(msg["media"], seq)
            case "connected":
                return [StreamConnected()]
            case "start":
                return self._on_start(msg)
            case "dtmf":
                return [DtmfReceived(digit=str(msg["dtmf"]["digit"]))]
            case "mark":
                return [MarkAcknowledged(name=str(msg["mark"]["name"]))]
            case "stop":
                reason = (msg.get("stop") or {}).get("reason")
                return [*self._flush(), StreamStopped(reason=str(reason) if reason else None)]
            case "error":
                err = msg.get("payload") or msg.get("error") or {}
                code = err.get("code")
                text = str(err.get("detail") or err.get("title") or "unknown error")
                logger.warning("Telnyx media stream error %s: %s", code, text)
                return [StreamError(code=None if code is None else str(code), message=text)]
            case other:
                logger.debug("ignoring Telnyx media event %r", other)
                return []

    def _on_start(self, msg: dict[str, Any]) -> list[MediaEvent]:
        start = msg["start"]
        fmt = start.get("media_format") or {}
        encoding = str(fmt.get("encoding") or "PCMU")
        spec = audio_spec_for_encoding(encoding, _int_or_none(fmt.get("sample_rate")))
        self.stream_id = str(msg.get("stream_id") or start.get("stream_id") or "")
        self.call_control_id = str(start["call_control_id"])
        if spec is None:
            logger.error("Telnyx stream %s uses unsupported encoding %r", self.stream_id, encoding)
            return [StreamError(code="unsupported_encoding", message=encoding)]
        if encoding.upper() in WIDEBAND_ENCODINGS:
            try:
                rate = _int_or_none(fmt.get("sample_rate"))
                self._wire = WireTranscoder(encoding, rate, pcm_rate=self.pcm_rate)
            except AudioError as exc:  # no codec library: the call cannot be heard
                logger.error("Telnyx stream %s: %s", self.stream_id, exc)
                return [StreamError(code="unsupported_encoding", message=f"{encoding}: {exc}")]
            spec = self._wire.spec
        self.inbound_spec = spec
        self._swap_in = (
            self._wire is None
            and spec.format is AudioFormat.PCM16
            and self.l16_byteorder != sys.byteorder
        )
        if self._follow_inbound:
            self._set_outbound(spec)
        params = start.get("custom_parameters") or {}
        custom = {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {}
        if start.get("client_state"):
            custom.setdefault("client_state", str(start["client_state"]))
        return [
            StreamStarted(
                stream_id=self.stream_id,
                call_id=self.call_control_id,
                audio=spec,
                custom_parameters=custom,
                account_id=str(start["user_id"]) if start.get("user_id") else None,
            )
        ]

    def _on_media(self, media: dict[str, Any], seq: int | None) -> list[MediaEvent]:
        if media.get("track", "inbound") == "outbound":
            return []  # our own audio echoed back on both_tracks: not the caller
        payload = base64.b64decode(media["payload"], validate=True)
        if self._swap_in:
            payload = _swap16(payload)
        self._stats["frames_in"] += 1
        event = MediaReceived(
            payload=payload, timestamp_ms=_int_or_none(media.get("timestamp")), sequence=seq
        )
        chunk = _int_or_none(media.get("chunk"))
        key = seq if chunk is None else chunk
        if key is None:
            return self._decoded(event)
        if self._next is None:
            # Chunks count from 1 (the doc's example and Twilio's convention), so a swapped first
            # pair is still reordered; sequence numbers start wherever the first frame says.
            self._next = min(key, 1) if chunk is not None else key
        if key == self._next and not self._held:  # the common case: in order, nothing held
            self._next = key + 1
            return self._decoded(event)
        if key < self._next or any(k == key for k, _ in self._held):
            self._stats["late"] += 1
            self._stats["dropped"] += 1
            return []
        if key > self._next:
            self._stats["reordered"] += 1
        heapq.heappush(self._held, (key, event))
        return self._release()

    def _release(self) -> list[MediaEvent]:
        """Release held frames that became contiguous, giving up gaps when the window is full."""
        out: list[MediaEvent] = []
        assert self._next is not None
        while self._held:
            key = self._held[0][0]
            if key != self._next and len(self._held) <= self.reorder_window:
                break
            if key > self._next:
                self._stats["gaps"] += key - self._next
                out += self._concealed(key - self._next)
            out += self._decoded(heapq.heappop(self._held)[1])
            self._next = key + 1
        return out

    def _flush(self) -> list[MediaEvent]:
        out: list[MediaEvent] = []
        while self._held:
            key, event = heapq.heappop(self._held)
            if self._next is not None and key > self._next:
                self._stats["gaps"] += key - self._next
                out += self._concealed(key - self._next)
            self._next = key + 1
            out += self._decoded(event)
        return out

    def _decoded(self, event: MediaReceived) -> list[MediaEvent]:
        """``event`` as PCM16 for a transcoded stream (released in order), else unchanged."""
        if self._wire is None:
            return [event]
        try:
            pcm = self._wire.decode(event.payload)
        except AudioError as exc:
            self._stats["malformed"] += 1
            logger.warning("bad %s payload in Telnyx stream: %s", self._wire.encoding, exc)
            pcm = self._wire.conceal()
        return [dataclasses.replace(event, payload=pcm)] if pcm else []

    def _concealed(self, missing: int) -> list[MediaEvent]:
        """Stand-ins for ``missing`` lost payloads of a transcoded stream (up to max_conceal)."""
        if self._wire is None:
            return []
        wire = self._wire
        return [
            MediaReceived(payload=wire.conceal()) for _ in range(min(missing, self.max_conceal))
        ]


def _int_or_none(value: object) -> int | None:
    """Telnyx sends numbers as strings (``"sequence_number": "4"``); accept both."""
    if value is None or value == "":
        return None
    if isinstance(value, int | str):
        return int(value)  # ValueError on junk: the frame counts as malformed
    raise TypeError(f"expected a number, got {type(value).__name__}")
