"""Ed25519 webhook verification, event parsing and de-duplication (pure)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from switchboard.errors import ConfigError, RemoteProtocolError, SignatureError
from switchboard.telephony.telnyx.webhooks import (
    SeenEvents,
    TelnyxSignatureVerifier,
    decode_client_state,
    encode_client_state,
    parse_event,
)

FIXTURE = Path(__file__).parents[2] / "fixtures" / "telnyx" / "webhook_call_initiated.json"
NOW = 1_764_000_000


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _public_b64(key: Ed25519PrivateKey, fmt: PublicFormat = PublicFormat.Raw) -> str:
    enc = Encoding.Raw if fmt is PublicFormat.Raw else Encoding.DER
    return base64.b64encode(key.public_key().public_bytes(enc, fmt)).decode()


def _headers(key: Ed25519PrivateKey, body: bytes, ts: int = NOW) -> dict[str, str]:
    signature = key.sign(f"{ts}|".encode() + body)
    return {
        "Telnyx-Signature-Ed25519": base64.b64encode(signature).decode(),
        "Telnyx-Timestamp": str(ts),
    }


BODY = json.dumps(json.loads(FIXTURE.read_text())["body"]).encode()


def test_good_signature_verifies(key: Ed25519PrivateKey) -> None:
    TelnyxSignatureVerifier(_public_b64(key)).verify(BODY, _headers(key, BODY), now=NOW + 10)


def test_spki_der_public_key_is_accepted(key: Ed25519PrivateKey) -> None:
    verifier = TelnyxSignatureVerifier(_public_b64(key, PublicFormat.SubjectPublicKeyInfo))
    verifier.verify(BODY, _headers(key, BODY), now=NOW)


def test_signature_by_another_key_is_rejected(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError, match="does not match"):
        TelnyxSignatureVerifier(_public_b64(key)).verify(BODY, _headers(other, BODY), now=NOW)


def test_tampered_body_is_rejected(key: Ed25519PrivateKey) -> None:
    headers = _headers(key, BODY)
    tampered = BODY.replace(b"+12025550133", b"+19995550133")
    with pytest.raises(SignatureError, match="does not match"):
        TelnyxSignatureVerifier(_public_b64(key)).verify(tampered, headers, now=NOW)


def test_reserialised_json_is_not_the_signed_body(key: Ed25519PrivateKey) -> None:
    headers = _headers(key, BODY)
    reserialised = json.dumps(json.loads(BODY), indent=1).encode()
    with pytest.raises(SignatureError):
        TelnyxSignatureVerifier(_public_b64(key)).verify(reserialised, headers, now=NOW)


def test_tampered_timestamp_is_rejected(key: Ed25519PrivateKey) -> None:
    headers = _headers(key, BODY)
    headers["Telnyx-Timestamp"] = str(NOW + 1)
    with pytest.raises(SignatureError, match="does not match"):
        TelnyxSignatureVerifier(_public_b64(key)).verify(BODY, headers, now=NOW)


@pytest.mark.parametrize("age", [301, -301, 10_000])
def test_stale_or_future_timestamp_is_rejected(key: Ed25519PrivateKey, age: int) -> None:
    verifier = TelnyxSignatureVerifier(_public_b64(key))
    with pytest.raises(SignatureError, match="window"):
        verifier.verify(BODY, _headers(key, BODY, ts=NOW - age), now=NOW)


def test_timestamp_at_the_window_edge_is_accepted(key: Ed25519PrivateKey) -> None:
    TelnyxSignatureVerifier(_public_b64(key)).verify(BODY, _headers(key, BODY, NOW - 300), now=NOW)


@pytest.mark.parametrize("drop", ["Telnyx-Signature-Ed25519", "Telnyx-Timestamp"])
def test_missing_header_is_rejected(key: Ed25519PrivateKey, drop: str) -> None:
    headers = _headers(key, BODY)
    del headers[drop]
    with pytest.raises(SignatureError, match="missing header"):
        TelnyxSignatureVerifier(_public_b64(key)).verify(BODY, headers, now=NOW)


@pytest.mark.parametrize(
    ("signature", "message"),
    [("%%%", "base64"), (base64.b64encode(b"x" * 63).decode(), "64 bytes")],
)
def test_undecodable_signature_is_rejected(
    key: Ed25519PrivateKey, signature: str, message: str
) -> None:
    headers = _headers(key, BODY)
    headers["Telnyx-Signature-Ed25519"] = signature
    with pytest.raises(SignatureError, match=message):
        TelnyxSignatureVerifier(_public_b64(key)).verify(BODY, headers, now=NOW)


def test_non_integer_timestamp_is_rejected(key: Ed25519PrivateKey) -> None:
    headers = _headers(key, BODY)
    headers["Telnyx-Timestamp"] = "yesterday"
    with pytest.raises(SignatureError, match="integer"):
        TelnyxSignatureVerifier(_public_b64(key)).verify(BODY, headers, now=NOW)


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_bad_public_key_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="TELNYX_PUBLIC_KEY"):
        TelnyxSignatureVerifier(bad)


def test_parse_event_reads_the_envelope() -> None:
    event = parse_event(BODY)
    assert event.id == "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"
    assert event.event_type == "call.initiated"
    assert event.call_control_id is not None
    assert event.call_control_id.startswith("v3:")
    assert event.text("direction") == "incoming"
    assert event.text("missing", "dflt") == "dflt"
    assert event.attempt == 1


@pytest.mark.parametrize("body", [b"", b"[]", b'{"data": {}}', b'{"data": {"id": "x"}}'])
def test_parse_event_rejects_malformed(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_event(body)


def test_seen_events_is_a_bounded_lru() -> None:
    seen = SeenEvents(maxsize=2)
    assert seen.check_and_add("a")
    assert not seen.check_and_add("a")
    assert seen.check_and_add("b")
    assert seen.check_and_add("c")  # evicts "a"
    assert len(seen) == 2
    assert seen.check_and_add("a")


def test_client_state_round_trip() -> None:
    assert decode_client_state(encode_client_state("call-123")) == "call-123"
    assert decode_client_state(None) is None
    assert decode_client_state("***") is None
