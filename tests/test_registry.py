"""The provider registry: configuration state, creation, selection scoring."""

from __future__ import annotations

from typing import Any, cast

import pytest

from switchboard.config import load_settings
from switchboard.errors import ConfigError
from switchboard.providers.base import BaseProvider, ConfigDefaults, SessionConfig
from switchboard.providers.registry import (
    ProviderRegistry,
    ProviderType,
    Requirements,
    TelephonyType,
    get_provider_registry,
)

ALL_KEYS = {"OPENAI_API_KEY": "o", "GEMINI_API_KEY": "g", "DEEPGRAM_API_KEY": "d"}


def registry(**env: str) -> ProviderRegistry:
    return get_provider_registry(load_settings(**env))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "DEEPGRAM_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TELNYX_API_KEY",
        "TELNYX_PUBLIC_KEY",
        "SWITCHBOARD_PROVIDER",
    ):
        monkeypatch.delenv(key, raising=False)


def test_seed_example_picks_gemini_when_all_configured() -> None:
    reg = registry(**ALL_KEYS)
    best = reg.select_best_provider(
        realtime=True, multimodal=True, function_calling=True, cost_preference="standard"
    )
    assert best is ProviderType.GEMINI


def test_requirements_as_a_mapping_as_keywords_or_both() -> None:
    reg = registry(**ALL_KEYS)
    seed = {"realtime": True, "multimodal": True, "function_calling": True}
    assert reg.select_best_provider(seed | {"cost_preference": "standard"}) is ProviderType.GEMINI
    assert reg.select_best_provider(seed, cost_preference="standard") is ProviderType.GEMINI
    assert reg.select_best_provider(Requirements(realtime=True), multimodal=True) is (
        ProviderType.GEMINI
    )
    assert reg.select_best_provider({}) is reg.select_best_provider()


@pytest.mark.parametrize(
    ("requirements", "keywords", "named"),
    [
        ({"realtime": True, "colour": "blue"}, {}, "unknown provider requirements: colour"),
        ({"cost_preference": "cheap"}, {}, "unknown cost_preference 'cheap'"),
        (Requirements(), {"latency": 10}, "unknown provider requirements: latency"),
        (None, {"realtime": True, "speed": 1}, "unknown provider requirements: speed"),
    ],
)
def test_a_bad_requirement_is_a_config_error_naming_it(
    requirements: Requirements | dict[str, object] | None, keywords: dict[str, Any], named: str
) -> None:
    reg = registry(**ALL_KEYS)
    with pytest.raises(ConfigError, match=named):
        reg.select_best_provider(requirements, **keywords)


def test_requirements_of_another_type_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Requirements or a mapping"):
        registry().select_best_provider(cast(Requirements, ["realtime"]))


def test_create_provider_fills_the_catalogue_defaults_for_either_form() -> None:
    reg = registry(**ALL_KEYS)
    config = SessionConfig(system_prompt="hi")
    provider = reg.create_provider(ProviderType.OPENAI, config)
    assert provider.config is config
    assert config.model_id == reg.catalog.providers["openai"].default_model
    assert config.voice == reg.catalog.providers["openai"].default_voice
    later = reg.create_provider(ProviderType.GEMINI)  # the config will come with connect()
    entry = reg.catalog.providers["gemini"]
    assert later.config_defaults == ConfigDefaults(entry.default_model, entry.default_voice)


def test_impossible_requirement_explains_every_exclusion() -> None:
    reg = registry(OPENAI_API_KEY="o")
    with pytest.raises(ConfigError) as info:
        reg.select_best_provider(Requirements(realtime=True, multimodal=True))
    message = str(info.value)
    assert "openai: lacks multimodal" in message
    assert "gemini: not configured (missing GEMINI_API_KEY)" in message
    assert "local: lacks realtime, multimodal" in message


def test_is_configured_names_missing_variables() -> None:
    reg = registry(GEMINI_API_KEY="g")
    assert reg.is_configured("openai") == (False, ("OPENAI_API_KEY",))
    assert reg.is_configured("deepgram") == (False, ("DEEPGRAM_API_KEY",))
    assert reg.is_configured("gemini") == (True, ())
    assert reg.is_configured("local") == (True, ())


def test_create_provider_without_keys_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as info:
        registry().create_provider(ProviderType.OPENAI)
    assert info.value.missing == ("OPENAI_API_KEY",)
    with pytest.raises(ConfigError, match="unknown provider"):
        registry().create_provider("nope")


def test_create_telephony_adapter_names_missing_variables() -> None:
    with pytest.raises(ConfigError) as info:
        registry(TWILIO_ACCOUNT_SID="AC1").create_telephony_adapter(TelephonyType.TWILIO)
    assert info.value.missing == ("TWILIO_AUTH_TOKEN",)
    with pytest.raises(ConfigError, match="TELNYX_API_KEY, TELNYX_PUBLIC_KEY"):
        registry().create_telephony_adapter(TelephonyType.TELNYX)


def test_lowest_cost_prefers_the_cheapest_configured() -> None:
    reg = registry(**ALL_KEYS)
    assert reg.select_best_provider(cost_preference="lowest") is ProviderType.LOCAL
    assert reg.select_best_provider(realtime=True, cost_preference="lowest") is ProviderType.GEMINI


def test_premium_preference_picks_openai_for_realtime() -> None:
    reg = registry(**ALL_KEYS)
    # openai has premium-tier models; gemini's are standard or budget.
    scores, _ = reg.score_providers(Requirements(realtime=True, cost_preference="premium"))
    assert scores["openai"] > scores["gemini"]


def test_unconfigured_gateway_falls_back_to_local() -> None:
    assert registry().select_best_provider() is ProviderType.LOCAL


def test_unknown_requirement_and_strategy_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown provider requirements: color"):
        Requirements.from_mapping({"color": "blue"})
    with pytest.raises(ConfigError, match="unknown strategy"):
        registry().select_best_provider(Requirements(strategy="fastest-ever"))


def test_list_providers_never_contains_secrets() -> None:
    reg = registry(OPENAI_API_KEY="sk-secret-value")
    infos = {i.name: i for i in reg.list_providers()}
    assert set(infos) == {"openai", "gemini", "deepgram", "local"}
    assert infos["openai"].configured
    assert "sk-secret-value" not in repr(infos)
    assert infos["gemini"].capabilities.multimodal
    assert infos["openai"].estimated_cost_per_minute > infos["gemini"].estimated_cost_per_minute


def test_register_custom_factory() -> None:
    reg = registry()
    made: list[str] = []

    def factory(config: object, *, settings: object) -> BaseProvider:
        made.append("x")
        return cast(BaseProvider, object())

    reg.register_provider("local", factory)
    reg.create_provider("local")
    assert made == ["x"]
    with pytest.raises(ConfigError, match="not described"):
        reg.register_provider("acme", factory)
