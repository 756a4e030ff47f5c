"""What a simulated caller sends on the media socket, per carrier (pure string building).

Twilio and Telnyx media streams carry the same thing (20 ms μ-law frames, marks, a stop) in
different JSON: Twilio uses camelCase and a top-level ``streamSid``
(https://www.twilio.com/docs/voice/media-streams/websocket-messages,
``docs/wire/twilio.md#media-stream-messages``), Telnyx snake_case and a top-level ``stream_id``
(https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming,
``docs/wire/telnyx.md#media-streaming``). What the app sends back is read the same way for both
(``media.payload``, ``mark.name``, ``clear``), so only the caller's side needs a dialect.

A media frame is a ``%`` template (sequence number, chunk, timestamp, base64 payload), so a
frame costs one format on the hot path.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = ["CallerWire", "TelnyxWire", "TwilioWire"]


class CallerWire(Protocol):
    """The caller's messages on one media socket (sequence numbers are the caller's)."""

    def connected(self) -> str:
        """The first message (``connected``)."""
        ...

    def start(self, seq: int) -> str:
        """The ``start`` message."""
        ...

    def media(self, seq: int, chunk: int, timestamp_ms: int, payload_b64: str) -> str:
        """One inbound ``media`` frame."""
        ...

    def mark(self, seq: int, name: str) -> str:
        """A ``mark`` acknowledgement (the audio before it has played)."""
        ...

    def stop(self, seq: int) -> str:
        """The caller's ``stop`` (hang-up)."""
        ...


class TwilioWire:
    """Twilio Media Streams messages for one stream.

    Args:
        stream_sid: the ``MZ…`` stream SID.
        account_sid, call_sid: the call's identity.
        custom: the ``<Parameter>``s of the TwiML ``<Stream>`` (``start.customParameters``).
    """

    def __init__(
        self, *, stream_sid: str, account_sid: str, call_sid: str, custom: dict[str, str]
    ) -> None:
        self.stream_sid, self.account_sid, self.call_sid = stream_sid, account_sid, call_sid
        self.custom = custom
        self._media = (
            '{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
            '"timestamp":"%d","payload":"%s"},"streamSid":"' + stream_sid + '"}'
        )

    def _msg(self, event: str, seq: int, body: dict[str, Any]) -> str:
        msg = {"event": event, "sequenceNumber": str(seq), event: body}
        return json.dumps({**msg, "streamSid": self.stream_sid})

    def connected(self) -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self, seq: int) -> str:
        return self._msg(
            "start",
            seq,
            {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self.custom,
            },
        )

    def media(self, seq: int, chunk: int, timestamp_ms: int, payload_b64: str) -> str:
        return self._media % (seq, chunk, timestamp_ms, payload_b64)

    def mark(self, seq: int, name: str) -> str:
        return self._msg("mark", seq, {"name": name})

    def stop(self, seq: int) -> str:
        return self._msg("stop", seq, {"accountSid": self.account_sid, "callSid": self.call_sid})


class TelnyxWire:
    """Telnyx media-streaming messages for one stream (PCMU 8 kHz from the caller).

    Args:
        stream_id: the stream's UUID (top-level ``stream_id`` of every message).
        start: the ``start`` object (``user_id``, ``call_control_id``, ``from``, ``to``…),
            without ``media_format`` (added here: PCMU, 8000 Hz, mono).
        encoding, sample_rate: another ``media_format`` (``OPUS``, 16000).
    """

    def __init__(
        self,
        *,
        stream_id: str,
        start: dict[str, Any],
        encoding: str = "PCMU",
        sample_rate: int = 8000,
    ) -> None:
        self.stream_id = stream_id
        self.start_body = {
            **start,
            "media_format": {"encoding": encoding, "sample_rate": sample_rate, "channels": 1},
        }
        self._media = (
            '{"event":"media","sequence_number":"%d","media":{"track":"inbound","chunk":"%d",'
            '"timestamp":"%d","payload":"%s"},"stream_id":"' + stream_id + '"}'
        )

    def _msg(self, event: str, seq: int, body: dict[str, Any]) -> str:
        msg = {"event": event, "sequence_number": str(seq), event: body}
        return json.dumps({**msg, "stream_id": self.stream_id})

    def connected(self) -> str:
        return json.dumps({"event": "connected", "version": "1.0.0"})

    def start(self, seq: int) -> str:
        return self._msg("start", seq, self.start_body)

    def media(self, seq: int, chunk: int, timestamp_ms: int, payload_b64: str) -> str:
        return self._media % (seq, chunk, timestamp_ms, payload_b64)

    def mark(self, seq: int, name: str) -> str:
        return self._msg("mark", seq, {"name": name})

    def stop(self, seq: int) -> str:
        body = {k: self.start_body.get(k, "") for k in ("user_id", "call_control_id")}
        return self._msg("stop", seq, body)
