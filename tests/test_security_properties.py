"""Properties of the media tokens: a token holds for exactly what was signed, and any string a
query can carry is verified or refused with SignatureError, never a crash."""

from __future__ import annotations

import base64

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from switchboard.errors import SignatureError
from switchboard.security import TokenSigner

SIGNER = TokenSigner("s" * 32)
NOW = 1_700_000_000.0
_ids = st.text(max_size=40)


@given(_ids, st.sampled_from(["twilio", "telnyx"]), _ids)
def test_a_token_verifies_as_what_was_signed(call_id: str, carrier: str, sid: str) -> None:
    token = SIGNER.sign(call_id, carrier, carrier_call_id=sid, now=NOW)
    claims = SIGNER.verify(token, carrier=carrier, now=NOW + 1)
    assert (claims.call_id, claims.carrier, claims.carrier_call_id) == (call_id, carrier, sid)


def _mac(token: str) -> bytes | None:
    """The MAC bytes of a token, or None when its MAC is not base64url (a forged length)."""
    try:
        return base64.urlsafe_b64decode(token.partition(".")[2] + "==")
    except ValueError:
        return None


@given(_ids, st.data())
def test_any_change_to_a_token_is_refused(call_id: str, data: st.DataObject) -> None:
    token = SIGNER.sign(call_id, "twilio", carrier_call_id="CA1", now=NOW)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii"))
    forged = token[:index] + replacement + token[index + 1 :]
    # base64url's last character may carry unused bits: a change there can decode the same.
    assume(_mac(forged) != _mac(token) or forged.partition(".")[0] != token.partition(".")[0])
    assume(forged != token)
    with pytest.raises(SignatureError):
        SIGNER.verify(forged, carrier="twilio", now=NOW)
    with pytest.raises(SignatureError):
        TokenSigner("t" * 32).verify(token, carrier="twilio", now=NOW)
    with pytest.raises(SignatureError):
        SIGNER.verify(token, carrier="telnyx", now=NOW)
    with pytest.raises(SignatureError):
        SIGNER.verify(token, carrier="twilio", now=NOW + SIGNER.ttl_s + 1)


@given(
    st.one_of(
        st.text(max_size=200),
        st.text(max_size=200).map(lambda t: f"{t}.{t}"),
        st.integers(1, 60_000).map(
            lambda n: base64.urlsafe_b64encode(b"[" * n).decode().rstrip("=") + ".AAAA"
        ),
    )
)
def test_any_string_is_verified_or_refused(token: str) -> None:
    # Regression: the claims were parsed before the MAC was checked, so an unsigned body of
    # 30 000 nested arrays raised RecursionError in the media socket's handshake.
    with pytest.raises(SignatureError):
        SIGNER.verify(token, carrier="twilio", now=NOW)
