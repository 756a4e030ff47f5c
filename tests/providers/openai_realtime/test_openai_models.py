"""An OpenAI Realtime session for a model the realtime endpoint does not serve fails at creation."""

from __future__ import annotations

import pytest

from switchboard.config import load_settings
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.errors import ConfigError
from switchboard.providers.base import SessionConfig
from switchboard.providers.registry import ProviderRegistry, ProviderType


def test_registry_refuses_a_non_realtime_model_at_creation() -> None:
    registry = ProviderRegistry(load_settings(OPENAI_API_KEY="sk-test"))
    with pytest.raises(ConfigError, match="'gpt-4o' is not in the catalogue"):
        registry.create_provider(ProviderType.OPENAI, SessionConfig(model_id="gpt-4o"))
    with pytest.raises(ConfigError, match="needs a segmented pipeline"):
        registry.create_provider(
            ProviderType.OPENAI, SessionConfig(extra={"llm_model": "gemini-2.5-pro"})
        )
    provider = registry.create_provider(ProviderType.OPENAI, SessionConfig())
    assert provider.config.model_id == "gpt-4o-mini-realtime-preview-2024-12-17"


@pytest.mark.anyio
async def test_connect_with_a_non_realtime_model_fails_before_dialling() -> None:
    async with OpenAIRealtimeEmulator() as emu:
        settings = load_settings(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emu.base_url)
        provider = ProviderRegistry(settings).create_provider(ProviderType.OPENAI)
        with pytest.raises(ConfigError) as info:
            await provider.connect(SessionConfig(model_id="gpt-4o-mini"))
        assert emu.refused_models == [] and emu.connection_count == 0
    message = str(info.value)
    assert "'gpt-4o-mini' is not in the catalogue" in message
    assert "gpt-4o-realtime-preview-2024-12-17" in message
