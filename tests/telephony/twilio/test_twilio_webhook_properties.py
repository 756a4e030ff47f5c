"""Properties of Twilio webhook security and TwiML: a signature holds for exactly what was
signed, and every TwiML document we build reads back, through the emulator's independent
parser, as what we meant."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from hypothesis import assume, given
from hypothesis import strategies as st

from switchboard.emulators.twilio.signing import twilio_signature
from switchboard.emulators.twilio.twiml import parse_twiml
from switchboard.telephony.twilio.webhooks import (
    HMAC_SHA1,
    HMAC_SHA256,
    compute_signature,
    dial_twiml,
    play_digits_twiml,
    reject_twiml,
    resume_is_fresh,
    resume_value,
    signature_algorithm,
    signed_payload,
    stream_twiml,
    validate_signature,
)

KEY = "k" * 32
_algorithms = st.sampled_from([HMAC_SHA1, HMAC_SHA256])
# Form values as Twilio sends them: any text (python-multipart decodes invalid UTF-8 with
# replacement characters, so no lone surrogates reach us).
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
_params = st.lists(st.tuples(_text, _text), max_size=6)
_paths = st.text("abcdefghijklmnopqrstuvwxyz0123456789/_-", min_size=1, max_size=20)
_urls = st.builds(
    lambda host, path, query: f"https://{host}/{path}" + (f"?{query}" if query else ""),
    st.sampled_from(["example.com", "example.com:8443", "sb.example.org"]),
    _paths,
    st.text("abc=&0123", max_size=12),
)
_xml_text = st.text(
    st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\ufffe\uffff"),
    max_size=40,
)


@given(_urls, _params, _algorithms)
def test_our_signature_is_twilios(url: str, params: list[tuple[str, str]], algorithm: str) -> None:
    ours = compute_signature(KEY, url, params, algorithm=algorithm)
    assert ours == twilio_signature(KEY, url, params, algorithm=algorithm)
    assert validate_signature(KEY, [url], params, ours, algorithm=algorithm)


@given(_urls, _params, _algorithms, st.data())
def test_any_change_to_url_params_or_signature_is_refused(
    url: str, params: list[tuple[str, str]], algorithm: str, data: st.DataObject
) -> None:
    signature = compute_signature(KEY, url, params, algorithm=algorithm)
    change = data.draw(st.sampled_from(["url", "add", "edit", "signature", "key", "algorithm"]))
    if change == "url":
        other = data.draw(_urls)
        assume(signed_payload(other, params) != signed_payload(url, params))
        assert not validate_signature(KEY, [other], params, signature, algorithm=algorithm)
    elif change == "add":
        extra = data.draw(st.tuples(_text, _text))
        assume(signed_payload(url, [*params, extra]) != signed_payload(url, params))
        assert not validate_signature(KEY, [url], [*params, extra], signature, algorithm=algorithm)
    elif change == "edit":
        assume(params)
        index = data.draw(st.integers(0, len(params) - 1))
        name, value = params[index]
        edited = [
            *params[:index],
            (name, value + data.draw(_text.filter(bool))),
            *params[index + 1 :],
        ]
        assume(signed_payload(url, edited) != signed_payload(url, params))
        assert not validate_signature(KEY, [url], edited, signature, algorithm=algorithm)
    elif change == "signature":
        forged = data.draw(st.text(max_size=60))
        assume(forged != signature)
        assert not validate_signature(KEY, [url], params, forged, algorithm=algorithm)
    elif change == "key":
        other_key = data.draw(st.text(min_size=1, max_size=40))
        assume(other_key != KEY)
        assert not validate_signature(other_key, [url], params, signature, algorithm=algorithm)
    else:
        other_algorithm = HMAC_SHA256 if algorithm == HMAC_SHA1 else HMAC_SHA1
        assert not validate_signature(KEY, [url], params, signature, algorithm=other_algorithm)


@given(_urls, _params.flatmap(lambda ps: st.tuples(st.just(ps), st.permutations(ps))))
def test_parameter_order_and_repeats_do_not_change_the_payload(
    url: str, params_and_order: tuple[list[tuple[str, str]], list[tuple[str, str]]]
) -> None:
    params, shuffled = params_and_order
    assert signed_payload(url, shuffled + params[:1]) == signed_payload(url, params)


@given(st.one_of(st.text(max_size=30), st.from_regex(r"[0-9]{1,500}\.[a-f0-9]{1,12}")))
def test_any_resume_value_is_judged_never_raised(value: str) -> None:
    assert resume_is_fresh(value, window_s=120.0) in (True, False)


def test_a_resume_value_from_far_in_the_future_is_stale_not_a_crash() -> None:
    # Regression: int(stamp) of 400 digits overflowed the float subtraction (OverflowError).
    assert not resume_is_fresh("9" * 400 + ".ab", window_s=120.0)
    assert not resume_is_fresh("\u0661\u0662.ab", window_s=120.0)  # Arabic-Indic digits
    assert resume_is_fresh(resume_value(now=1000.0), window_s=120.0, now=1010.0)


@given(st.binary(max_size=300), st.binary(max_size=300), _algorithms)
def test_json_webhooks_sign_the_body_by_its_hash(body: bytes, other: bytes, algorithm: str) -> None:
    url = "https://example.com/twilio/status?bodySHA256=" + hashlib.sha256(body).hexdigest()
    signature = compute_signature(KEY, url, None, algorithm=algorithm)
    assert validate_signature(KEY, [url], None, signature, algorithm=algorithm, body=body)
    if other != body:
        assert not validate_signature(KEY, [url], None, signature, algorithm=algorithm, body=other)


@given(st.text(max_size=60))
def test_any_settings_header_names_an_algorithm_or_is_refused(header: str) -> None:
    algorithm = signature_algorithm(header)
    signature = compute_signature(KEY, "https://example.com/x", [])
    if algorithm not in (HMAC_SHA1, HMAC_SHA256):
        assert not validate_signature(
            KEY, ["https://example.com/x"], [], signature, algorithm=algorithm
        )


@given(
    st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12), _xml_text, max_size=5
    ),
    _paths,
)
def test_stream_twiml_reads_back_with_every_parameter(params: dict[str, str], path: str) -> None:
    url = f"wss://example.com/{quote(path)}"
    (connect,) = parse_twiml(stream_twiml(url, params))
    assert connect.name == "Connect"
    (stream,) = connect.children
    assert stream.name == "Stream"
    assert stream.attrs["url"] == url
    assert stream.parameters() == params


@given(_xml_text)
def test_reject_twiml_says_the_text_then_hangs_up(message: str) -> None:
    say, hangup = parse_twiml(reject_twiml(message))
    assert (say.name, hangup.name) == ("Say", "Hangup")
    assert say.text == message.strip()


@given(
    st.one_of(
        st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
        st.from_regex(r"sip:[a-z0-9]{1,8}@[a-z]{1,8}\.example\.com", fullmatch=True),
    ),
    st.one_of(st.none(), st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)),
)
def test_dial_twiml_reads_back_as_the_destination(destination: str, caller_id: str | None) -> None:
    (dial,) = parse_twiml(dial_twiml(destination, caller_id=caller_id))
    (noun,) = dial.children
    assert noun.name == ("Sip" if destination.startswith("sip:") else "Number")
    assert noun.text == destination
    assert dial.attrs.get("callerId") == caller_id


@given(st.text("0123456789*#w", max_size=20), st.one_of(st.none(), _paths))
def test_play_digits_twiml_reads_back(digits: str, path: str | None) -> None:
    redirect = None if path is None else f"https://example.com/{path}?resume=1.x&a=b"
    verbs = parse_twiml(play_digits_twiml(digits, redirect_url=redirect))
    assert verbs[0].name == "Play"
    assert verbs[0].attrs["digits"] == digits
    if redirect is not None:
        assert verbs[-1].name == "Redirect"
        assert verbs[-1].text == redirect


@given(st.text(max_size=80), st.text(max_size=40))
def test_any_url_validates_to_a_bool(url: str, signature: str) -> None:
    # Regression (found by fuzz_webhooks): a URL whose port is not a number, or with an
    # unclosed IPv6 bracket, raised ValueError instead of the check answering False.
    assert validate_signature(KEY, [url], [], signature) in (True, False)
    assert not validate_signature(KEY, ["https://example.com:12ab/x"], [], signature)
    assert not validate_signature(KEY, ["https://exa[mple.com/x"], [], signature)
