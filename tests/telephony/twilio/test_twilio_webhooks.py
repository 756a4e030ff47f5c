"""Twilio signatures vs the SDK's RequestValidator (both directions), TwiML, replay guard."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from switchboard.telephony.twilio.webhooks import (
    HMAC_SHA1,
    HMAC_SHA256,
    ReplayGuard,
    compute_signature,
    dial_twiml,
    play_digits_twiml,
    reject_twiml,
    signature_algorithm,
    stream_twiml,
    url_variants,
    validate_signature,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "twilio"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


def _xml(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314  # TwiML we generated ourselves


def test_published_vectors() -> None:
    # twilio/twilio-python tests/unit/test_request_validator.py
    assert compute_signature("12345", URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    port_url = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert compute_signature("12345", port_url, PARAMS) == "kvajT1Ptam85bY51eRf/AJRuM3w="
    dup = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678")]
    dup += [("Digits", "1234"), ("Digits", "1234")]
    assert compute_signature("12345", URL, dup) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    sha256 = compute_signature("12345", URL, PARAMS, algorithm=HMAC_SHA256)
    assert sha256 == "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s="


def test_docs_example_fixture() -> None:
    hook = json.loads((FIXTURES / "voice_webhook.json").read_text())
    sig = compute_signature(hook["auth_token"], hook["url"], hook["params"])
    assert sig == hook["signature"]
    assert validate_signature(hook["auth_token"], [hook["url"]], hook["params"], sig)
    assert not validate_signature("wrong", [hook["url"]], hook["params"], sig)
    tampered = {**hook["params"], "Digits": "9999"}
    assert not validate_signature(hook["auth_token"], [hook["url"]], tampered, sig)


@pytest.mark.parametrize("algorithm", [HMAC_SHA1, HMAC_SHA256])
@pytest.mark.parametrize(
    "url",
    [URL, "https://mycompany.com:443/myapp.php?foo=1&bar=2", "http://h.example:1234/voice"],
)
def test_matches_sdk_both_directions(url: str, algorithm: str) -> None:
    sdk = RequestValidator("tok-ü")
    ours = compute_signature("tok-ü", url, PARAMS, algorithm=algorithm)
    assert ours == sdk.compute_signature(url, PARAMS, algorithm)
    assert sdk.validate(url, PARAMS, ours, algorithm)
    theirs = sdk.compute_signature(url, PARAMS, algorithm)
    assert validate_signature("tok-ü", [url], PARAMS, theirs, algorithm=algorithm)


def test_port_variants_accepted_like_sdk() -> None:
    signed_with_port = compute_signature("k", "https://a.example:443/x", PARAMS)
    assert validate_signature("k", ["https://a.example/x"], PARAMS, signed_with_port)
    signed_without = compute_signature("k", "https://a.example/x", PARAMS)
    assert validate_signature("k", ["https://a.example:443/x"], PARAMS, signed_without)
    assert url_variants("http://a.example/x?q=1") == [
        "http://a.example/x?q=1",
        "http://a.example:80/x?q=1",
    ]


def test_json_body_sha256() -> None:
    body = b'{"property": "value", "boolean": true}'
    digest = hashlib.sha256(body).hexdigest()
    assert digest == "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    url = f"{URL}&bodySHA256={digest}"
    sig = compute_signature("12345", url)
    assert sig == "a9nBmqA0ju/hNViExpshrM61xv4="
    assert RequestValidator("12345").validate(url, body.decode(), sig)
    assert validate_signature("12345", [url], None, sig, body=body)
    assert not validate_signature("12345", [url], None, sig, body=body + b" ")


def test_signature_settings_header() -> None:
    assert signature_algorithm(None) == HMAC_SHA1
    assert signature_algorithm("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256") == HMAC_SHA256
    assert not validate_signature("k", [URL], PARAMS, "x", algorithm="HMAC_MD5")
    assert not validate_signature("k", [URL], PARAMS, None)


def test_stream_twiml_parses_and_matches_sdk_shape() -> None:
    twiml = stream_twiml("wss://x.example/twilio/media", {"call_id": "c1", "token": 'a"<&>'})
    root = _xml(twiml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "wss://x.example/twilio/media"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"call_id": "c1", "token": 'a"<&>'}
    sdk = VoiceResponse()
    connect = sdk.connect()
    s = connect.stream(url="wss://x.example/twilio/media")
    s.parameter(name="call_id", value="c1")
    s.parameter(name="token", value='a"<&>')
    sdk_root = _xml(str(sdk))
    assert ET.tostring(sdk_root) == ET.tostring(root)


def test_other_twiml() -> None:
    root = _xml(reject_twiml("Sorry & goodbye"))
    assert [el.tag for el in root] == ["Say", "Hangup"]
    assert root[0].text == "Sorry & goodbye"
    dial = _xml(dial_twiml("+15551112222", caller_id="+15550001111"))
    assert dial[0].tag == "Dial"
    assert dial[0].get("callerId") == "+15550001111"
    assert dial[0][0].tag == "Number"
    assert dial[0][0].text == "+15551112222"
    assert _xml(dial_twiml("sip:bob@x.example"))[0][0].tag == "Sip"
    assert _xml(dial_twiml("sips:bob@x.example:5061"))[0][0].tag == "Sip"
    assert _xml(dial_twiml("SIPS:bob@x.example"))[0][0].tag == "Sip"
    play = _xml(play_digits_twiml("12#", redirect_url="https://h/twilio/voice?a=1&b=2"))
    assert play[0].get("digits") == "12#"
    assert play[1].tag == "Redirect"
    assert play[1].text == "https://h/twilio/voice?a=1&b=2"


def test_replay_guard() -> None:
    guard = ReplayGuard(ttl_s=10.0, max_entries=2)
    k1, k2, k3 = (ReplayGuard.key("u", "sig", str(i)) for i in range(3))
    assert ReplayGuard.key("ab", "c") != ReplayGuard.key("a", "bc")
    assert not guard.seen(k1, now=0.0)
    guard.remember(k1, now=0.0)
    assert guard.seen(k1, now=5.0)
    assert not guard.seen(k1, now=10.5)  # expired
    guard.remember(k1, now=11.0)
    guard.remember(k2, now=11.0)
    guard.remember(k3, now=11.0)
    assert not guard.seen(k1, now=11.0)  # evicted by the bound
    assert guard.seen(k3, now=11.0)
