"""The local provider runs Whisper tiny.en and its rules: other models are refused at creation."""

from __future__ import annotations

import pytest

from switchboard.config import load_settings
from switchboard.errors import ConfigError
from switchboard.providers.base import SessionConfig
from switchboard.providers.registry import ProviderRegistry

REGISTRY = ProviderRegistry(load_settings())


def test_a_model_the_local_provider_cannot_run_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        REGISTRY.create_provider("local", SessionConfig(model_id="whisper-base"))
    assert "'whisper-base' is not in the catalogue" in str(info.value)
    assert "local models for local: whisper-tiny.en" in str(info.value)


def test_an_llm_model_is_refused_because_the_rules_are_the_llm() -> None:
    with pytest.raises(ConfigError, match=r"none \(its LLM is fixed\)"):
        REGISTRY.create_provider("local", SessionConfig(extra={"llm_model": "gemini-2.5-pro"}))


def test_the_default_local_model_is_accepted() -> None:
    provider = REGISTRY.create_provider("local", SessionConfig())
    assert provider.config.model_id == "whisper-tiny.en"
