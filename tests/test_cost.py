"""Cost arithmetic against hand-computed figures (a fixed test catalogue, not live prices)."""

from __future__ import annotations

from datetime import date

import pytest

from switchboard.catalog import Catalog, load_catalog
from switchboard.cost import (
    CostBreakdown,
    ServedUsage,
    estimate_call_cost,
    estimate_served_cost,
    format_money,
)
from switchboard.errors import ConfigError
from switchboard.media import Usage

CATALOG = Catalog.model_validate(
    {
        "prices_as_of": "2026-11-01",
        "providers": {
            "openai": {
                "display_name": "OpenAI",
                "kind": "realtime",
                "endpoint": "openai.realtime",
                "default_model": "mini",
                "models": {
                    "mini": {
                        "endpoint": "openai.realtime",
                        "prices": {
                            "per_million_tokens": {
                                "input_text": 0.60,
                                "cached_input": 0.30,
                                "output_text": 2.40,
                                "input_audio": 10.00,
                                "output_audio": 20.00,
                            }
                        },
                    },
                    "big": {
                        "endpoint": "openai.realtime",
                        "prices": {"per_million_tokens": {"input_audio": 40.0}},
                    },
                },
            },
            "deepgram": {
                "display_name": "Deepgram",
                "kind": "segmented",
                "endpoint": "deepgram.listen",
                "default_model": "nova-2",
                "components": {"llm": "gemini-2.5-flash", "tts": "aura"},
                "models": {
                    "nova-2": {
                        "endpoint": "deepgram.listen",
                        "prices": {
                            "per_minute": {"input_audio": 0.0058},
                            "per_million_tokens": {"input_text": 0.30, "output_text": 2.50},
                            "per_thousand_characters": 0.015,
                        },
                    }
                },
            },
            "local": {
                "display_name": "Local",
                "kind": "segmented",
                "endpoint": "local",
                "default_model": "tiny",
                "models": {"tiny": {"endpoint": "local", "prices": {}}},
            },
        },
        "telephony": {
            "twilio": {"display_name": "Twilio", "prices": {"per_minute": {"call": 0.0125}}},
            "telnyx": {"display_name": "Telnyx", "prices": {"per_minute": {"call": 0.0055}}},
        },
    }
)


def test_openai_tokens_and_twilio_minutes() -> None:
    usage = Usage(
        input_text_tokens=1000,
        cached_input_tokens=2000,
        input_audio_tokens=3200,
        output_text_tokens=500,
        output_audio_tokens=4000,
    )
    cost = estimate_call_cost(
        CATALOG, provider="openai", model="mini", usage=usage, carrier="twilio", carrier_seconds=61
    )
    assert [line.text for line in cost.lines] == [
        "openai input text tokens: 1,000 × $0.6/M = $0.0006",
        "openai cached input tokens: 2,000 × $0.3/M = $0.0006",
        "openai input audio tokens: 3,200 × $10/M = $0.032",
        "openai output text tokens: 500 × $2.4/M = $0.0012",
        "openai output audio tokens: 4,000 × $20/M = $0.08",
        "twilio call minutes: 2 × $0.0125/min = $0.025",  # 61 s bills two started minutes
    ]
    assert cost.provider_total == pytest.approx(0.1144)
    assert cost.telephony_total == pytest.approx(0.025)
    assert cost.total == pytest.approx(0.1394)
    assert (cost.currency, cost.prices_as_of) == ("USD", date(2026, 11, 1))


def test_pipeline_minutes_tokens_characters_and_exact_carrier_time() -> None:
    usage = Usage(
        input_audio_seconds=90,
        input_text_tokens=1200,
        output_text_tokens=300,
        tts_characters=850,
        output_audio_seconds=40,  # no per-minute output price: no line
    )
    cost = estimate_call_cost(
        CATALOG,
        provider="deepgram",
        model=None,  # default model nova-2
        usage=usage,
        carrier="telnyx",
        carrier_seconds=90,
        round_up_carrier_minutes=False,
    )
    amounts = {line.item: line.amount for line in cost.lines}
    assert amounts == pytest.approx(
        {
            "input text tokens": 0.00036,
            "output text tokens": 0.00075,
            "input audio minutes": 0.0087,
            "TTS characters": 0.01275,
            "call minutes": 0.00825,
        }
    )
    assert cost.total == pytest.approx(0.03081)
    assert "deepgram llm component gemini-2.5-flash priced with model nova-2" in cost.notes
    tts = next(line for line in cost.lines if line.item == "TTS characters")
    assert tts.text == "deepgram TTS characters: 850 × $0.015/1K chars = $0.01275"


def test_a_call_two_providers_served_sums_both_and_bills_the_carrier_once() -> None:
    first = ServedUsage("openai", Usage(input_audio_tokens=3200), model="big")  # the agent's
    second = ServedUsage("deepgram", Usage(input_audio_seconds=60, tts_characters=1000))
    cost = estimate_served_cost(CATALOG, [first, second], carrier="twilio", carrier_seconds=61)
    assert [line.text for line in cost.lines] == [
        "openai input audio tokens: 3,200 × $40/M = $0.128",
        "deepgram input audio minutes: 1 × $0.0058/min = $0.0058",
        "deepgram TTS characters: 1,000 × $0.015/1K chars = $0.015",
        "twilio call minutes: 2 × $0.0125/min = $0.025",
    ]
    alone = [
        estimate_call_cost(
            CATALOG,
            provider=s.provider,
            model=s.model,
            usage=s.usage,
            carrier=None,
            carrier_seconds=0,
        ).total
        for s in (first, second)
    ]
    assert cost.provider_total == pytest.approx(sum(alone))
    assert cost.total == pytest.approx(sum(alone) + 0.025)
    assert "deepgram tts component aura priced with model nova-2" in cost.notes


def test_free_provider_and_no_carrier() -> None:
    cost = estimate_call_cost(
        CATALOG,
        provider="local",
        model=None,
        usage=Usage(input_audio_seconds=60),
        carrier=None,
        carrier_seconds=60,
    )
    assert (cost.lines, cost.total) == ((), 0.0)


def test_other_model_of_same_provider() -> None:
    cost = estimate_call_cost(
        CATALOG,
        provider="openai",
        model="big",
        usage=Usage(input_audio_tokens=1_000_000, output_audio_tokens=5),
        carrier=None,
        carrier_seconds=0,
    )
    assert [(x.item, x.amount) for x in cost.lines] == [("input audio tokens", 40.0)]


@pytest.mark.parametrize(
    ("provider", "model", "carrier", "message"),
    [
        ("nope", None, None, "provider 'nope'"),
        ("openai", "gpt-9", None, "model 'gpt-9'"),
        ("openai", None, "acme", "carrier 'acme'"),
    ],
)
def test_unknown_names_raise_config_error(
    provider: str, model: str | None, carrier: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        estimate_call_cost(
            CATALOG,
            provider=provider,
            model=model,
            usage=Usage(),
            carrier=carrier,
            carrier_seconds=10,
        )


def test_round_trip_through_dict() -> None:
    cost = estimate_call_cost(
        CATALOG,
        provider="openai",
        model=None,
        usage=Usage(output_audio_tokens=1234),
        carrier="twilio",
        carrier_seconds=5,
    )
    data = cost.as_dict()
    assert data["lines"][0]["text"] == "openai output audio tokens: 1,234 × $20/M = $0.02468"
    assert CostBreakdown.from_dict(data) == cost


def test_packaged_catalogue_prices_every_model() -> None:
    catalog = load_catalog()
    usage = Usage(input_audio_tokens=100, output_audio_tokens=100, input_audio_seconds=6.0)
    for name, entry in catalog.providers.items():
        for model in entry.models:
            cost = estimate_call_cost(
                catalog,
                provider=name,
                model=model,
                usage=usage,
                carrier="twilio",
                carrier_seconds=30,
            )
            assert cost.total >= cost.telephony_total > 0


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0.032, "$0.032"), (10.0, "$10"), (1234.5, "$1,234.5"), (0.0, "$0"), (0.0000004, "$0")],
)
def test_format_money(amount: float, text: str) -> None:
    assert format_money(amount) == text
