"""Short-lived signed tokens that tie a carrier media socket to the webhook that created the call.

A webhook that passed the carrier's signature check mints a token for the call; the media
websocket must present it (Twilio: a ``<Parameter>`` in ``start.customParameters``; Telnyx: the
``token`` query parameter of the stream URL) before any audio flows. The token is
``base64url(json claims) + "." + base64url(HMAC-SHA256)``, with an expiry, so a leaked stream URL
is useless after a minute and a forged one never works. The claims name our call id, the carrier
and the carrier's own id for the call (Twilio CallSid, Telnyx call_control_id), which the media
route compares with the id the socket's ``start`` message announces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from switchboard.errors import SignatureError

__all__ = ["CallToken", "TokenSigner", "same_secret"]


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of a credential someone sent and the one expected.

    ``hmac.compare_digest`` raises ``TypeError`` on non-ASCII ``str``, and a header or a query
    string can carry anything: the UTF-8 bytes are compared instead.
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class CallToken:
    """The verified claims of a media token."""

    call_id: str
    carrier: str
    expires_at: float
    #: The carrier's id of the call the token was minted for ("" when none was bound).
    carrier_call_id: str = ""


class TokenSigner:
    """Mints and verifies media tokens with one process-wide secret.

    Args:
        secret: the HMAC key (``SWITCHBOARD_SIGNING_SECRET``); a random one when None or empty,
            which is fine for a single process but not for several workers behind a balancer.
        ttl_s: token lifetime; the carrier opens the media socket within seconds of the webhook.
    """

    def __init__(self, secret: str | bytes | None = None, *, ttl_s: float = 60.0) -> None:
        if not secret:  # unset or empty: an empty HMAC key would let anyone mint tokens
            secret = secrets.token_bytes(32)
        own = secret.encode() if isinstance(secret, str) else secret
        self._source: Callable[[], bytes] = lambda: own
        self.ttl_s = ttl_s

    def follow(self, key: Callable[[], bytes]) -> None:
        """Sign and verify with the key ``key()`` gives at each use from now on: the
        cluster's shared media-token key, which the cluster may replace after Redis lost it."""
        if not key():
            raise ValueError("an empty media-token key would let anyone mint tokens")
        self._source = key

    @property
    def _key(self) -> bytes:
        return self._source()

    def sign(
        self,
        call_id: str,
        carrier: str,
        *,
        carrier_call_id: str = "",
        now: float | None = None,
    ) -> str:
        """A token for ``call_id`` on ``carrier`` valid for ``ttl_s`` seconds.

        Args:
            call_id: our call id.
            carrier: ``"twilio"`` or ``"telnyx"``.
            carrier_call_id: the carrier's id of the call, bound into the token so a media
                socket cannot steer another call.
            now: the clock (tests).
        """
        exp = (time.time() if now is None else now) + self.ttl_s
        claims = {"c": call_id, "k": carrier, "e": round(exp, 3), "s": carrier_call_id}
        body = _b64e(json.dumps(claims).encode())
        mac = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
        return f"{body}.{_b64e(mac)}"

    def verify(self, token: str | None, *, carrier: str, now: float | None = None) -> CallToken:
        """Return the token's claims.

        Raises:
            SignatureError: missing, malformed, forged, expired, or for another carrier.
        """
        if not token:
            raise SignatureError("missing media token")
        body, sep, mac = token.partition(".")
        if not sep:
            raise SignatureError("malformed media token")
        try:  # a query string can carry any text: non-ASCII is malformed, not a crash
            expected = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
            given = _b64d(mac)
        except (ValueError, UnicodeError) as exc:
            raise SignatureError("malformed media token") from exc
        if not hmac.compare_digest(expected, given):
            raise SignatureError("media token signature does not match")
        try:  # only what we signed is parsed (never a stranger's JSON nested 30 000 deep)
            claims = json.loads(_b64d(body))
        except (ValueError, UnicodeError) as exc:
            raise SignatureError("malformed media token") from exc
        if not isinstance(claims, dict) or not {"c", "k", "e"} <= set(claims):
            raise SignatureError("malformed media token")
        if claims["k"] != carrier:
            raise SignatureError(f"media token is for {claims['k']!r}, not {carrier!r}")
        if float(claims["e"]) < (time.time() if now is None else now):
            raise SignatureError("media token expired")
        return CallToken(
            call_id=str(claims["c"]),
            carrier=carrier,
            expires_at=float(claims["e"]),
            carrier_call_id=str(claims.get("s") or ""),
        )
