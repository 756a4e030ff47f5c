"""How Twilio signs what it sends: ``X-Twilio-Signature`` (written independently of the client).

twilio.com/docs/usage/webhooks/webhooks-security: base64 HMAC-SHA1 (or HMAC-SHA256 with a
SharedKey) over the full URL followed by each POST parameter name+value, names sorted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

__all__ = ["http_form_of", "twilio_signature"]


def twilio_signature(
    key: str, url: str, params: Iterable[tuple[str, str]] = (), *, algorithm: str = "HMAC_SHA1"
) -> str:
    """The ``X-Twilio-Signature`` value for a request to ``url`` with form ``params``."""
    digest = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}[algorithm]
    data = url + "".join(name + value for name, value in sorted(set(params)))
    mac = hmac.new(key.encode(), data.encode(), digest)
    return base64.b64encode(mac.digest()).decode()


def http_form_of(url: str) -> str:
    """``wss://h/p`` → ``https://h/p`` (the form a third-party test signs upgrades with)."""
    if url.startswith("wss://"):
        return "https://" + url[6:]
    if url.startswith("ws://"):
        return "http://" + url[5:]
    return url
