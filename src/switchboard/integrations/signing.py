"""Standard Webhooks signatures: what every request switchboard sends to a user's URL carries.

The scheme (https://www.standardwebhooks.com, ``spec/standard-webhooks.md``) signs
``"{webhook-id}.{webhook-timestamp}.{body}"`` with HMAC-SHA256 under a shared secret and sends
three headers::

    webhook-id: evt_2b0c...                  stable per message: receivers de-duplicate on it
    webhook-timestamp: 1767225600            integer seconds since the epoch, of this attempt
    webhook-signature: v1,K5oZfzN95Z9UVu1E...  base64 of the HMAC; several may be space-separated

Secrets are written ``whsec_`` + base64 of 24 to 64 random bytes (the form the scheme's
reference libraries read; the bytes are the HMAC key). This module is pure: no clock unless
:func:`webhook_headers` is given none, no I/O. Verification is the receiver's business (the
tests check our signatures with the reference ``standardwebhooks`` package, not with this code).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from switchboard.errors import ConfigError

__all__ = [
    "SECRET_PREFIX",
    "WebhookSecret",
    "generate_secret",
    "sign",
    "webhook_headers",
]

#: The prefix of a Standard Webhooks secret.
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
_MIN_KEY_BYTES = 24  # the scheme's lower bound; shorter keys are refused, not padded
_MAX_KEY_BYTES = 64


@dataclass(frozen=True, slots=True, repr=False)
class WebhookSecret:
    """A parsed signing key; its repr never shows the key.

    Build it with :meth:`parse` from the ``whsec_…`` form.
    """

    key: bytes

    @classmethod
    def parse(cls, value: str, *, name: str = "SWITCHBOARD_WEBHOOK_SECRET") -> WebhookSecret:
        """Read ``whsec_<base64>`` (24 to 64 bytes of key).

        Args:
            value: the secret as configured.
            name: what to call it in errors (the variable or agents.yaml key).

        Raises:
            ConfigError: not ``whsec_`` + base64, or a key of the wrong length. The message
                names ``name`` and never contains the value.
        """
        text = value.strip()
        if not text.startswith(SECRET_PREFIX):
            raise ConfigError(f"{name} must be a Standard Webhooks secret: whsec_<base64>")
        encoded = text[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"{name}: the part after whsec_ is not base64") from exc
        if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
            raise ConfigError(
                f"{name} must hold {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES} bytes of key, "
                f"not {len(key)} (e.g. whsec_ + base64 of 32 random bytes)"
            )
        return cls(key)

    def __repr__(self) -> str:
        return "WebhookSecret(**********)"

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """:func:`sign` with this key."""
        return sign(self.key, msg_id, timestamp, body)


def generate_secret(n_bytes: int = 32) -> str:
    """A new random secret in the ``whsec_…`` form."""
    if not _MIN_KEY_BYTES <= n_bytes <= _MAX_KEY_BYTES:
        raise ValueError(f"n_bytes must be {_MIN_KEY_BYTES}..{_MAX_KEY_BYTES}")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(n_bytes)).decode("ascii")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message.

    Args:
        key: the HMAC key (``WebhookSecret.key``).
        msg_id: the ``webhook-id`` header value.
        timestamp: the ``webhook-timestamp`` header value, integer seconds.
        body: the request body exactly as sent.
    """
    if "." in msg_id:  # the id is a field of the signed string: a dot would make it ambiguous
        raise ValueError("a webhook id may not contain '.'")
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(
    secret: WebhookSecret | None, msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The request headers of one delivery attempt.

    Args:
        secret: the signing key; None sends ``webhook-id`` and ``webhook-timestamp`` unsigned
            (a receiver that insists on signatures will refuse them, as it should).
        msg_id: the message's stable id (the same on every retry).
        body: the JSON body as sent.
        timestamp: seconds since the epoch; now when omitted. Each attempt is signed afresh,
            so a retry hours later is not refused as stale by the receiver's tolerance window.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
    }
    if secret is not None:
        headers["webhook-signature"] = secret.sign(msg_id, ts, body)
    return headers
