"""Our Standard Webhooks signatures, checked by the reference library (standardwebhooks)."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from switchboard.errors import ConfigError
from switchboard.integrations.signing import (
    WebhookSecret,
    generate_secret,
    sign,
    webhook_headers,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_headers_verify_with_the_reference_library() -> None:
    body = b'{"type":"call.started","data":{"call_id":"call_1"}}'
    headers = webhook_headers(WebhookSecret.parse(SECRET), "evt_1", body)
    assert Webhook(SECRET).verify(body, headers) == {
        "type": "call.started",
        "data": {"call_id": "call_1"},
    }
    assert headers["webhook-id"] == "evt_1"
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60


@given(
    msg_id=st.from_regex(r"evt_[A-Za-z0-9_-]{1,40}", fullmatch=True),
    body=st.binary(max_size=512),
    key=st.binary(min_size=24, max_size=64),
)
def test_any_message_signs_as_the_reference_does(msg_id: str, body: bytes, key: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    now = int(time.time())
    headers = webhook_headers(WebhookSecret.parse(secret), msg_id, body, timestamp=now)
    Webhook(secret).verify(body, headers, json_parse=False)  # raises when they differ
    assert sign(key, msg_id, now, body) == headers["webhook-signature"]


def test_a_changed_body_id_or_timestamp_is_refused() -> None:
    secret = WebhookSecret.parse(SECRET)
    body = b'{"a":1}'
    headers = webhook_headers(secret, "evt_1", body)
    reference = Webhook(SECRET)
    with pytest.raises(WebhookVerificationError):
        reference.verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        reference.verify(body, {**headers, "webhook-id": "evt_2"})
    stale = webhook_headers(secret, "evt_1", body, timestamp=int(time.time()) - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        reference.verify(body, stale)
    other = "whsec_" + base64.b64encode(bytes(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_unsigned_headers_have_no_signature() -> None:
    headers = webhook_headers(None, "evt_1", b"{}", timestamp=1_700_000_000)
    assert headers == {
        "content-type": "application/json",
        "webhook-id": "evt_1",
        "webhook-timestamp": "1700000000",
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("c2VjcmV0", "whsec_"),
        ("whsec_!!!not base64!!!", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "not 5"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "not 65"),
    ],
)
def test_malformed_secrets_are_refused_without_echoing_them(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        WebhookSecret.parse(value, name="SWITCHBOARD_WEBHOOK_SECRET")
    assert value.removeprefix("whsec_") not in str(caught.value)
    assert "SWITCHBOARD_WEBHOOK_SECRET" in str(caught.value)


def test_unpadded_base64_is_read_like_the_reference_reads_it() -> None:
    key = bytes(range(1, 26))  # 25 bytes: base64 with padding
    unpadded = "whsec_" + base64.b64encode(key).decode().rstrip("=")
    assert WebhookSecret.parse(unpadded).key == key


def test_the_secret_never_shows_in_its_repr() -> None:
    secret = WebhookSecret.parse(SECRET)
    assert repr(secret) == "WebhookSecret(**********)"
    assert SECRET[6:] not in repr(secret) and str(secret.key) not in repr(secret)


def test_generated_secrets_parse_and_differ() -> None:
    first, second = generate_secret(), generate_secret()
    assert first != second
    assert len(WebhookSecret.parse(first).key) == 32
    with pytest.raises(ValueError, match="n_bytes"):
        generate_secret(8)


def test_an_id_with_a_dot_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match=r"'\.'"):
        sign(bytes(32), "evt.1", 1, b"")
