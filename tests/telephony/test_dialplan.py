"""The dial policy (toll-fraud guard): parsing, allow entries, high-cost ranges, decisions."""

from __future__ import annotations

import pytest

from switchboard.telephony.dialplan import (
    ANY_USER,
    AllowEntry,
    Destination,
    DialPlan,
    parse_allow_entry,
    parse_destination,
)


@pytest.mark.parametrize(
    ("text", "uri"),
    [
        ("+14155550100", "+14155550100"),
        ("  +1 (415) 555-0100 ", "+14155550100"),
        ("tel:+44.20.7946.0000", "+442079460000"),
        ("sip:Alice@PBX.example.com", "sip:alice@pbx.example.com"),
        (
            "SIPS:bob@pbx.example.com:5061;transport=tls",
            "sips:bob@pbx.example.com:5061;transport=tls",
        ),
        ("sip:pbx.example.com", "sip:pbx.example.com"),
    ],
)
def test_destinations_parse_and_normalise(text: str, uri: str) -> None:
    assert parse_destination(text).uri == uri


def test_a_sip_destination_keeps_user_and_host_apart() -> None:
    assert parse_destination("sip:+15550100@pbx.example.com") == Destination(
        uri="sip:+15550100@pbx.example.com", sip_user="+15550100", sip_host="pbx.example.com"
    )


@pytest.mark.parametrize(
    "text",
    [
        "4155550100",  # national form
        "0014155550100",  # international access prefix, not E.164
        "+0123456789",
        "+123",  # too short
        "+1234567890123456",  # too long
        "billing",
        "sip:alice@pbx.example.com?X-Evil=1",  # headers
        "sip:al%69ce@pbx.example.com",  # escapes
        "sip:alice@evil.net@pbx.example.com",  # two @
        "sip:alice@[::1]",
        "sip:alice@pbx.example.com:99999",
        "sip:alice@-pbx.example.com",
        "sip:alice@pbx.example.com;transport=tls;x=<y>",
        "sipx:alice@pbx.example.com",
    ],
)
def test_anything_else_is_not_a_destination(text: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164|SIP URI"):
        parse_destination(text)


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("+14155550100", AllowEntry("+14155550100", "number", "+14155550100")),
        ("+1 415 555 0100", AllowEntry("+1 415 555 0100", "number", "+14155550100")),
        ("+1415*", AllowEntry("+1415*", "prefix", "+1415")),
        ("+1*", AllowEntry("+1*", "prefix", "+1")),
        (
            "sip:Alice@pbx.example.com",
            AllowEntry("sip:Alice@pbx.example.com", "sip", "pbx.example.com", "alice"),
        ),
        (
            "sip:*@PBX.example.com",
            AllowEntry("sip:*@PBX.example.com", "sip", "pbx.example.com", ANY_USER),
        ),
        ("pbx.example.com", AllowEntry("pbx.example.com", "sip", "pbx.example.com", ANY_USER)),
    ],
)
def test_allow_entries_parse(text: str, entry: AllowEntry) -> None:
    assert parse_allow_entry(text) == entry


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("*", "would allow every destination"),
        ("+*", "would allow every destination"),
        ("sip:*@*", "would allow every destination"),
        ("+1415", r"not a full E.164 number; write '\+1415\*'"),
        ("+0*", "not a number prefix"),
        ("+1x*", "not a number prefix"),
        ("billing", "is not a number"),
        ("localhost", "is not a number"),
        ("sip:alice@pbx.example.com:5060", "no port or ;params"),
        ("sip:alice@pbx.example.com;transport=tls", "no port or ;params"),
        ("sip:al ice@pbx.example.com", "not a SIP URI"),
        ("sip:*@pbx.*.com", "is not a number"),
    ],
)
def test_bad_allow_entries_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_allow_entry(text)


def test_nothing_configured_denies_everything() -> None:
    plan = DialPlan()
    assert plan.denies_all
    decision = plan.check("+14155550100")
    assert not decision.allowed
    assert decision.destination == "+14155550100"
    assert decision.reason == "+14155550100 is not on the allow list"


def test_exact_numbers_and_prefixes() -> None:
    plan = DialPlan(["+14155550100", "+1212*"])
    assert plan.check("+1 415 555 0100").allowed
    assert not plan.check("+14155550101").allowed
    assert not plan.check("+141555501001").allowed  # an exact entry is not a prefix
    decision = plan.check("+12125550123")
    assert decision.allowed and decision.reason == "allowed by '+1212*'"
    assert not plan.check("+13125550123").allowed


@pytest.mark.parametrize(
    ("number", "range_"),
    [
        ("+19005550100", "+1900"),
        ("+18765550100", "+1876"),  # Jamaica, inside +1
        ("+18095550100", "+1809"),  # Dominican Republic
    ],
)
def test_a_broad_prefix_does_not_reach_high_cost_ranges(number: str, range_: str) -> None:
    plan = DialPlan(["+1*"])
    decision = plan.check(number)
    assert not decision.allowed
    assert f"high-cost range ({range_}," in decision.reason
    assert f"'{range_}*'" in decision.reason
    assert plan.check("+14155550100").allowed


def test_international_network_and_premium_ranges_are_refused_under_any_broad_prefix() -> None:
    plan = DialPlan(["+8*", "+9*", "+44*"])
    for number in ("+88212345678", "+8816123456", "+87012345678", "+97912345678", "+449012345678"):
        assert not plan.check(number).allowed, number
    assert plan.check("+442079460000").allowed  # a London number under +44*


def test_an_entry_inside_a_high_cost_range_allows_it() -> None:
    plan = DialPlan(["+1*", "+1876*", "+19005550100"])
    assert plan.check("+18765550100").reason == "allowed by '+1876*'"
    assert plan.check("+19005550100").allowed
    assert not plan.check("+19005550101").allowed


def test_sip_entries_match_host_exactly() -> None:
    plan = DialPlan(["sip:*@pbx.example.com", "sip:desk@office.example.org"])
    assert plan.check("sip:anyone@pbx.example.com;transport=tls").allowed
    assert plan.check("sips:anyone@PBX.example.com:5061").allowed
    assert plan.check("sip:desk@office.example.org").allowed
    assert not plan.check("sip:other@office.example.org").allowed
    for host in ("pbx.example.com.evil.net", "a.pbx.example.com", "example.com"):
        assert not plan.check(f"sip:anyone@{host}").allowed, host
    assert not plan.check("+14155550100").allowed  # SIP entries never allow numbers


def test_a_bare_host_entry_allows_every_user_at_that_host() -> None:
    plan = DialPlan(["pbx.example.com"])
    assert plan.check("sip:alice@pbx.example.com").allowed
    assert plan.check("sip:pbx.example.com").allowed


def test_directory_names_resolve_and_only_their_destinations_are_allowed() -> None:
    plan = DialPlan(directory={"Billing": "+1 555 010 0201", "desk": "sip:desk@pbx.example.com"})
    assert plan.names == ["billing", "desk"]
    billing = plan.check(" BILLING ")
    assert billing.allowed and billing.destination == "+15550100201"
    assert billing.reason == "allowed by \"directory 'Billing'\""
    assert plan.check("+15550100201").allowed  # the number itself
    assert plan.check("desk").destination == "sip:desk@pbx.example.com"
    assert not plan.check("sip:other@pbx.example.com").allowed  # a directory URI is exact
    assert not plan.check("+15550100202").allowed
    refused = plan.check("sales")
    assert not refused.allowed and refused.destination is None
    assert "not a phone number" in refused.reason


def test_a_directory_sip_uri_without_user_allows_only_that_uri() -> None:
    plan = DialPlan(directory={"pbx": "sip:pbx.example.com"})
    assert plan.check("pbx").allowed
    assert not plan.check("sip:alice@pbx.example.com").allowed


def test_directory_destinations_in_high_cost_ranges_are_the_owners_choice() -> None:
    plan = DialPlan(directory={"kingston": "+18765550100"})
    assert plan.check("kingston").allowed


def test_allow_list_and_directory_add_up() -> None:
    plan = DialPlan(["+1415*"], directory={"billing": "+15550100201"})
    assert plan.check("billing").allowed
    assert plan.check("+14155550100").allowed
    assert not plan.check("+15550100202").allowed


def test_every_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"'\*' would allow.*directory 'sales': 'x'"):
        DialPlan(["*", "+1415*"], directory={"sales": "x"})
