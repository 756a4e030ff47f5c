"""Telnyx Call Control webhooks: Ed25519 signature verification, event parsing, de-duplication.

Vendor docs: https://developers.telnyx.com/docs/voice/programmable-voice/receiving-webhooks and
https://developers.telnyx.com/docs/development/sdk/python/webhooks; the official SDK's
``telnyx/lib/webhook_verification.py`` (``docs/wire/telnyx.md#webhooks``,
``docs/wire/telnyx.md#webhook-signature``).

A webhook is signed over ``f"{telnyx-timestamp}|{raw body}"`` with the account's Ed25519 key;
``telnyx-signature-ed25519`` carries the base64 signature and ``telnyx-timestamp`` the Unix
seconds. The public key (``TELNYX_PUBLIC_KEY``) is the base64 of the raw 32-byte key; the
SPKI DER form (``302a300506032b6570032100`` + key) is accepted too. Deliveries older or newer
than 300 s are replays and are rejected, like the SDK does.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from switchboard.errors import ConfigError, RemoteProtocolError, SignatureError

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TIMESTAMP_TOLERANCE_S",
    "SeenEvents",
    "TelnyxEvent",
    "TelnyxSignatureVerifier",
    "decode_client_state",
    "encode_client_state",
    "parse_event",
]

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TIMESTAMP_TOLERANCE_S = 300
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class TelnyxSignatureVerifier:
    """Verify ``telnyx-signature-ed25519`` on raw webhook bodies.

    Args:
        public_key_b64: ``TELNYX_PUBLIC_KEY`` (base64 raw 32-byte key, or SPKI DER).
        tolerance_s: accepted clock difference between ``telnyx-timestamp`` and now.

    Raises:
        ConfigError: the key is not base64 of a 32-byte Ed25519 key.
    """

    def __init__(self, public_key_b64: str, *, tolerance_s: float = TIMESTAMP_TOLERANCE_S) -> None:
        try:
            raw = base64.b64decode(public_key_b64.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError("TELNYX_PUBLIC_KEY is not valid base64") from exc
        if len(raw) == len(_SPKI_PREFIX) + 32 and raw.startswith(_SPKI_PREFIX):
            raw = raw[len(_SPKI_PREFIX) :]
        if len(raw) != 32:
            raise ConfigError(f"TELNYX_PUBLIC_KEY must be a 32-byte Ed25519 key, got {len(raw)}")
        self._key = Ed25519PublicKey.from_public_bytes(raw)
        self.tolerance_s = tolerance_s

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
        """Check one delivery; returns quietly when it is authentic and fresh.

        Args:
            body: the exact raw request body (never re-serialised JSON).
            headers: request headers; names are matched case-insensitively.
            now: the current Unix time (tests pin it).

        Raises:
            SignatureError: missing headers, undecodable or wrong signature, tampered body, or a
                timestamp outside the tolerance window. The message says which.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        signature_b64 = lowered.get(SIGNATURE_HEADER)
        timestamp = lowered.get(TIMESTAMP_HEADER)
        if not signature_b64 or not timestamp:
            missing = [h for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER) if not lowered.get(h)]
            raise SignatureError(f"missing header(s): {', '.join(missing)}")
        try:
            ts = int(timestamp.strip())
        except ValueError as exc:
            raise SignatureError("telnyx-timestamp is not an integer") from exc
        current = time.time() if now is None else now
        # int(current): a float minus a 400-digit int overflows; int - int does not.
        if abs(int(current) - ts) > self.tolerance_s:
            raise SignatureError(f"timestamp outside the {self.tolerance_s:g} s window")
        try:
            signature = base64.b64decode(signature_b64.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SignatureError("signature is not valid base64") from exc
        if len(signature) != 64:
            raise SignatureError(f"signature must be 64 bytes, got {len(signature)}")
        try:
            self._key.verify(signature, timestamp.strip().encode() + b"|" + body)
        except InvalidSignature as exc:
            raise SignatureError("signature does not match the body") from exc


@dataclass(frozen=True, slots=True)
class TelnyxEvent:
    """One webhook's ``data`` object.

    Attributes:
        id: the event id (the de-duplication key: retries repeat it).
        event_type: e.g. ``call.initiated``, ``call.hangup``.
        payload: the event's ``payload`` object, as sent.
        attempt: ``meta.attempt`` (1 on first delivery).
    """

    id: str
    event_type: str
    occurred_at: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1

    @property
    def call_control_id(self) -> str | None:
        value = self.payload.get("call_control_id")
        return str(value) if value else None

    def text(self, key: str, default: str = "") -> str:
        """``payload[key]`` as a string (``default`` when absent or null)."""
        value = self.payload.get(key)
        return default if value is None else str(value)


def parse_event(body: bytes | str) -> TelnyxEvent:
    """Parse a webhook body ``{"data": {...}, "meta": {...}}``.

    Raises:
        RemoteProtocolError: not JSON, or no ``data.event_type`` / ``data.id``.
    """
    try:
        doc = json.loads(body)
        data = doc["data"]
        meta = doc.get("meta") or {}
        return TelnyxEvent(
            id=str(data["id"]),
            event_type=str(data["event_type"]),
            occurred_at=data.get("occurred_at"),
            payload=dict(data.get("payload") or {}),
            attempt=int(meta.get("attempt") or 1),
        )
    # RecursionError: arrays nested 10 000 deep; OverflowError: "attempt": Infinity.
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        raise RemoteProtocolError(f"malformed Telnyx webhook: {exc!r}") from exc


class SeenEvents:
    """A bounded LRU of webhook ids, so a retried delivery is processed once."""

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self._ids: OrderedDict[str, None] = OrderedDict()

    def check_and_add(self, event_id: str) -> bool:
        """True the first time ``event_id`` is seen; False for a repeat."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.maxsize:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


def encode_client_state(value: str) -> str:
    """``client_state`` is opaque base64 that Telnyx echoes on later webhooks."""
    return base64.b64encode(value.encode()).decode("ascii")


def decode_client_state(value: str | None) -> str | None:
    """Inverse of :func:`encode_client_state`; None when absent or not ours."""
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        return None
