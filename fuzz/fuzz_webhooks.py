"""Fuzz the webhook and media-token checks: any request is accepted or refused, never a crash.

Twilio: ``validate_signature`` on any URL, form, signature and settings header answers a bool,
and a signature we compute validates. Telnyx: ``verify`` on any headers and body returns or
raises SignatureError; ``parse_event`` returns an event or raises RemoteProtocolError. Media
tokens: ``verify`` returns claims or raises SignatureError.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import atheris

with atheris.instrument_imports(include=["switchboard"]):
    from switchboard.errors import RemoteProtocolError, SignatureError
    from switchboard.security import TokenSigner
    from switchboard.telephony.telnyx.webhooks import (
        TelnyxSignatureVerifier,
        decode_client_state,
        parse_event,
    )
    from switchboard.telephony.twilio.webhooks import (
        compute_signature,
        resume_is_fresh,
        signature_algorithm,
        signed_payload,
        validate_signature,
    )

import contextlib

from fuzz.common import frames, run

KEY = "k" * 32
VERIFIER = TelnyxSignatureVerifier("6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=")
SIGNER = TokenSigner("s" * 32)


def _is_url(text: str) -> bool:
    """Whether ``text`` is a URL a server could have been configured with (Twilio signs it)."""
    try:
        return urlsplit(text).port is not None or True
    except ValueError:
        return False


def test_one_input(data: bytes) -> None:
    parts = frames(data) + [""] * 6
    url, name, value, signature, header, stamp = parts[:6]
    params = [(name, value), (value, name)]
    algorithm = signature_algorithm(header)
    assert validate_signature(KEY, [url], params, signature, algorithm=algorithm) in (True, False)
    if algorithm in ("HMAC_SHA1", "HMAC_SHA256") and _is_url(url):
        good = compute_signature(KEY, url, params, algorithm=algorithm)
        assert validate_signature(KEY, [url], params, good, algorithm=algorithm)
    signed_payload(url, params)
    resume_is_fresh(value, window_s=120.0)
    headers = {"telnyx-signature-ed25519": signature, "telnyx-timestamp": stamp}
    with contextlib.suppress(SignatureError):
        VERIFIER.verify(data, headers)
    with contextlib.suppress(RemoteProtocolError):
        parse_event(data)
    decode_client_state(value)
    with contextlib.suppress(SignatureError):
        SIGNER.verify(url, carrier="twilio")


if __name__ == "__main__":
    run(test_one_input)
