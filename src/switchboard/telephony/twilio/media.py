"""Sans-I/O codec for Twilio Media Streams (twilio.com/docs/voice/media-streams/websocket-messages).

Theory of operation
-------------------
One :class:`TwilioMediaCodec` per call. :meth:`~TwilioMediaCodec.receive` takes one inbound
websocket text frame and returns carrier-neutral events (``telephony.base``); the ``send_*``
methods return outbound text frames. No sockets, no clock.

Every message after ``connected`` carries a string ``sequenceNumber`` (``start`` is "1", each
later message +1). Frames are released strictly in sequence order:

* the expected frame is released at once (the hot path: no buffering, no sorting);
* a frame from the future is held in a small reorder buffer; when the buffer exceeds
  ``reorder_window`` frames the missing ones are declared lost (``gaps`` += how many) and the
  buffer is released up to the next hole;
* a frame older than the next expected one (a duplicate, or one already declared lost) is
  dropped (``late``);
* ``stop`` flushes whatever is buffered, in order, before :class:`StreamStopped`.

Malformed frames (bad JSON, unknown event, bad base64, missing fields) are logged at DEBUG and
counted in ``malformed``; they never raise. Outbound media uses a precomputed string template
(no ``json.dumps`` per frame): base64 has no characters that need JSON escaping.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

import orjson

from switchboard.errors import LocalProtocolError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import (
    DtmfReceived,
    MarkAcknowledged,
    MediaEvent,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
)

__all__ = ["TWILIO_AUDIO", "TwilioMediaCodec"]

logger = logging.getLogger(__name__)

#: Twilio streams G.711 μ-law 8 kHz mono both ways; 20 ms = 160 bytes.
TWILIO_AUDIO = AudioSpec(AudioFormat.ULAW, 8000)
_STAT_NAMES = (
    "frames_in",
    "frames_out",
    "malformed",
    "reordered",
    "gaps",
    "late",
    "dropped",
    "marks_out",
    "clears_out",
)


class TwilioMediaCodec:
    """Twilio Media Streams ⇄ ``MediaEvent`` (satisfies ``telephony.base.MediaCodec``).

    Args:
        reorder_window: how many out-of-order frames to hold while waiting for a missing one
            (4 frames = 80 ms of audio) before declaring it lost.
    """

    #: μ-law payloads of any length play in order (the bridge joins frames released together)
    joins_frames = True

    def __init__(self, *, reorder_window: int = 4) -> None:
        self.reorder_window = reorder_window
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self._expected: int | None = None
        self._pending: dict[int, dict[str, Any]] = {}
        self._media_prefix = ""
        self._stats = dict.fromkeys(_STAT_NAMES, 0)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: frames_in, frames_out, malformed, reordered, gaps, late, dropped, ..."""
        return dict(self._stats)

    # -- inbound -----------------------------------------------------------------------------------
    def receive(self, text: str) -> list[MediaEvent]:
        """Parse one inbound frame; returns the events now releasable in sequence order."""
        self._stats["frames_in"] += 1
        try:
            msg = orjson.loads(text)
        except (ValueError, RecursionError):  # RecursionError: arrays nested 10 000 deep
            return self._malformed("invalid JSON", len(text))
        if not isinstance(msg, dict):
            return self._malformed("not an object", len(text))
        event = msg.get("event")
        if event == "connected":
            return [StreamConnected()]
        raw_seq = msg.get("sequenceNumber")
        try:
            seq = int(raw_seq) if raw_seq is not None else None
        except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
            return self._malformed("bad sequenceNumber", len(text))
        if seq is None or event == "start" or self._expected is None:
            # Unsequenced, or the first sequenced frame: it defines the origin.
            events = self._decode(msg)
            if seq is not None and self._expected is None:
                self._expected = seq + 1
            return events
        expected = self._expected
        if seq == expected and not self._pending:
            self._expected = seq + 1
            return self._decode(msg)
        if seq < expected or seq in self._pending:
            self._stats["late"] += 1
            logger.debug("late or duplicate frame seq=%d (expected %d)", seq, expected)
            return []
        self._pending[seq] = msg
        if seq != expected:
            self._stats["reordered"] += 1
        if event == "stop":
            return self._flush(everything=True)
        return self._flush(everything=len(self._pending) > self.reorder_window)

    def _flush(self, *, everything: bool) -> list[MediaEvent]:
        events: list[MediaEvent] = []
        assert self._expected is not None
        while self._pending:
            if self._expected in self._pending:
                events.extend(self._decode(self._pending.pop(self._expected)))
                self._expected += 1
                continue
            if not everything:
                break
            nxt = min(self._pending)
            self._stats["gaps"] += nxt - self._expected
            logger.debug("lost frames %d..%d", self._expected, nxt - 1)
            self._expected = nxt
            everything = len(self._pending) > self.reorder_window or self._has_stop()
        return events

    def _has_stop(self) -> bool:
        return any(m.get("event") == "stop" for m in self._pending.values())

    def _decode(self, msg: dict[str, Any]) -> list[MediaEvent]:
        try:
            match msg.get("event"):
                case "media":
                    media = msg["media"]
                    if media.get("track", "inbound") not in ("inbound", "inbound_track"):
                        self._stats["dropped"] += 1
                        return []
                    payload = base64.b64decode(media["payload"], validate=True)
                    ts = media.get("timestamp")
                    seq = msg.get("sequenceNumber")
                    return [
                        MediaReceived(
                            payload,
                            timestamp_ms=int(ts) if ts is not None else None,
                            sequence=int(seq) if seq is not None else None,
                        )
                    ]
                case "start":
                    return [self._start(msg)]
                case "mark":
                    return [MarkAcknowledged(str(msg["mark"]["name"]))]
                case "dtmf":
                    return [DtmfReceived(str(msg["dtmf"]["digit"]))]
                case "stop":
                    return [StreamStopped(reason="stop")]
                case other:
                    return self._malformed(f"unknown event {other!r}", 0)
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            OverflowError,
            binascii.Error,
        ) as exc:
            return self._malformed(f"{msg.get('event')!r} frame: {type(exc).__name__}", 0)

    def _start(self, msg: dict[str, Any]) -> StreamStarted:
        start = msg["start"]
        stream_sid = str(start.get("streamSid") or msg["streamSid"])
        fmt = start.get("mediaFormat") or {}
        encoding = fmt.get("encoding", "audio/x-mulaw")
        if encoding != "audio/x-mulaw":
            logger.warning("unexpected Twilio media encoding %r; assuming μ-law", encoding)
        custom = start.get("customParameters") or {}
        started = StreamStarted(
            stream_id=stream_sid,
            call_id=str(start["callSid"]),
            audio=AudioSpec(AudioFormat.ULAW, int(fmt.get("sampleRate", 8000))),
            custom_parameters={str(k): str(v) for k, v in custom.items()},
            account_id=start.get("accountSid"),
            tracks=tuple(str(t) for t in start.get("tracks") or ("inbound",)),
        )
        # Only a start that parsed whole starts the stream (a half-read one once left a stream
        # id without the media template, and send_media wrote frames that were not JSON).
        self.stream_sid, self.call_sid = stream_sid, started.call_id
        # streamSid is Twilio's (MZ + hex); json.dumps keeps the template valid whatever it is.
        self._media_prefix = (
            '{"event":"media","streamSid":' + json.dumps(stream_sid) + ',"media":{"payload":"'
        )
        return started

    def _malformed(self, why: str, size: int) -> list[MediaEvent]:
        self._stats["malformed"] += 1
        logger.debug("malformed Twilio media frame (%s, %d chars)", why, size)
        return []

    # -- outbound ----------------------------------------------------------------------------------
    def _sid(self) -> str:
        if self.stream_sid is None:
            raise LocalProtocolError("cannot send on a Twilio stream before its 'start' message")
        return self.stream_sid

    def send_media(self, payload: bytes) -> str:
        """One outbound ``media`` message of μ-law 8 kHz audio (whole 20 ms frames of 160
        bytes; ``frames_out`` counts the frames)."""
        if not self._media_prefix:
            self._sid()
        self._stats["frames_out"] += len(payload) // 160 or 1
        return self._media_prefix + base64.b64encode(payload).decode("ascii") + '"}}'

    def send_mark(self, name: str) -> str:
        """A ``mark``: Twilio echoes it back when the audio sent before it has played."""
        self._stats["marks_out"] += 1
        return json.dumps({"event": "mark", "streamSid": self._sid(), "mark": {"name": name}})

    def send_clear(self) -> str:
        """A ``clear``: Twilio drops buffered audio and returns every pending mark."""
        self._stats["clears_out"] += 1
        return json.dumps({"event": "clear", "streamSid": self._sid()})
