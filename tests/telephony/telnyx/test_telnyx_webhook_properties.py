"""Properties of Telnyx webhook security and parsing: an Ed25519 signature holds for exactly the
signed timestamp and body, any body parses or is refused as malformed, client_state round-trips."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from tests.strategies import hostile_frames, json_values, odd_numbers

from switchboard.emulators.telnyx.webhooks import WebhookSender
from switchboard.errors import RemoteProtocolError, SignatureError
from switchboard.telephony.telnyx.webhooks import (
    TelnyxSignatureVerifier,
    decode_client_state,
    encode_client_state,
    parse_event,
)

NOW = 1_700_000_000
SENDER = WebhookSender(private_key_b64=base64.b64encode(b"\x07" * 32).decode())
VERIFIER = TelnyxSignatureVerifier(SENDER.public_key_b64)


def _signed(body: bytes, timestamp: int = NOW) -> dict[str, str]:
    return SENDER.sign(body, timestamp=timestamp)


@given(st.binary(max_size=500), st.integers(-300, 300))
def test_a_signed_body_within_the_window_is_accepted(body: bytes, skew: int) -> None:
    VERIFIER.verify(body, _signed(body, NOW + skew), now=NOW)


@given(st.binary(max_size=300), st.data())
def test_any_change_to_body_timestamp_or_signature_is_refused(
    body: bytes, data: st.DataObject
) -> None:
    headers = _signed(body)
    change = data.draw(st.sampled_from(["body", "timestamp", "signature", "drop", "header"]))
    if change == "body":
        other = data.draw(st.binary(max_size=300))
        assume(other != body)
        body = other
    elif change == "timestamp":
        stamp = data.draw(st.integers(NOW - 200, NOW + 200))
        assume(stamp != NOW)
        headers["telnyx-timestamp"] = str(stamp)
    elif change == "signature":
        raw = bytearray(base64.b64decode(headers["telnyx-signature-ed25519"]))
        index = data.draw(st.integers(0, 63))
        raw[index] ^= data.draw(st.integers(1, 255))
        headers["telnyx-signature-ed25519"] = base64.b64encode(bytes(raw)).decode()
    elif change == "drop":
        del headers[data.draw(st.sampled_from(["telnyx-signature-ed25519", "telnyx-timestamp"]))]
    else:  # any value in either header
        name = data.draw(st.sampled_from(["telnyx-signature-ed25519", "telnyx-timestamp"]))
        value = data.draw(st.text(max_size=500))
        assume(value.strip() != headers[name].strip())
        headers[name] = value
    with pytest.raises(SignatureError):
        VERIFIER.verify(body, headers, now=NOW)


@given(st.one_of(odd_numbers.map(str), st.from_regex(r"-?[0-9]{10,600}", fullmatch=True)))
def test_timestamps_of_any_size_are_refused_not_crashed_on(stamp: str) -> None:
    # Regression: a 400-digit timestamp overflowed ``now - ts`` (OverflowError → 500).
    headers = _signed(b"{}")
    headers["telnyx-timestamp"] = stamp
    with pytest.raises(SignatureError):
        VERIFIER.verify(b"{}", headers)  # the real clock: a float


@given(st.one_of(hostile_frames, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_body_parses_or_is_malformed(body: str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        parse_event(body.encode("utf-8", "surrogatepass"))


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": json_values,
            "event_type": json_values,
            "occurred_at": json_values,
            "payload": json_values,
        },
    ),
    st.one_of(json_values, st.fixed_dictionaries({"attempt": st.one_of(json_values, odd_numbers)})),
)
def test_events_with_fields_of_any_type_parse_or_are_malformed(
    data: dict[str, Any], meta: Any
) -> None:
    try:
        event = parse_event(json.dumps({"data": data, "meta": meta}))
    except RemoteProtocolError:
        return
    assert isinstance(event.id, str) and isinstance(event.event_type, str)
    assert isinstance(event.payload, dict) and isinstance(event.attempt, int)
    for key in event.payload:
        event.text(key)  # any payload value reads as text


@given(st.text(min_size=1, max_size=100))
def test_client_state_round_trips(value: str) -> None:
    assume(value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") == value)
    encoded = encode_client_state(value)  # (lone surrogates are not text we ever encode)
    assert decode_client_state(encoded) == value


@given(st.text(max_size=100))
def test_any_client_state_decodes_or_is_not_ours(value: str) -> None:
    decoded = decode_client_state(value)
    assert decoded is None or isinstance(decoded, str)
