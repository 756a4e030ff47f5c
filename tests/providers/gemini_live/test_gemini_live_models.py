"""A Gemini Live session for a model the Live API does not serve fails at creation, plainly."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.config import load_settings
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.errors import ConfigError, ProviderError
from switchboard.providers.base import SessionConfig, SessionState
from switchboard.providers.gemini_live import GeminiLiveProvider
from switchboard.providers.registry import ProviderRegistry, ProviderType

PACKAGED = Path(__file__).parents[3] / "src/switchboard/providers.yaml"


def test_the_issue_call_fails_at_creation_naming_live_models_and_the_pipeline() -> None:
    registry = ProviderRegistry(load_settings(GEMINI_API_KEY="k"))
    with pytest.raises(ConfigError) as info:
        registry.create_provider(ProviderType.GEMINI, SessionConfig(model_id="gemini-2.5-pro"))
    message = str(info.value)
    live = registry.catalog.providers["gemini"].session_models()
    assert live and all(model in message for model in live)
    assert "not by gemini.live" in message
    assert "provider 'deepgram' with llm_model: gemini-2.5-pro" in message


@pytest.mark.anyio
async def test_connect_with_a_text_model_fails_before_any_socket() -> None:
    async with GeminiEmulator(script=[]) as emu:
        registry = ProviderRegistry(load_settings(GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url))
        provider = registry.create_provider(ProviderType.GEMINI)
        with pytest.raises(ConfigError, match=r"'gemini-2\.5-pro' is served by"):
            await provider.connect(SessionConfig(model_id="gemini-2.5-pro"))
        assert provider.state is SessionState.DISCONNECTED
        assert emu.live.received == []  # nothing reached the service
        with pytest.raises(ConfigError, match="needs a segmented pipeline"):
            GeminiLiveProvider(
                SessionConfig(extra={"llm_model": "gemini-2.5-pro"}),
                settings=registry.settings,
            )


@pytest.mark.anyio
async def test_a_catalogue_calling_gemini_2_5_pro_live_meets_the_services_refusal(
    tmp_path: Path,
) -> None:
    """The emulator is the second line: it refuses a text model at setup as the service does."""
    wrong = tmp_path / "providers.yaml"
    text = PACKAGED.read_text()
    entry = "      gemini-2.5-pro:\n        endpoint: gemini.generate_content\n"
    assert entry in text
    wrong.write_text(
        text.replace(entry, "      gemini-2.5-pro:\n        endpoint: gemini.live\n").replace(
            "llm_models: [gemini-2.5-flash, gemini-2.5-pro]", "llm_models: [gemini-2.5-flash]"
        )
    )
    async with GeminiEmulator(script=[]) as emu:
        settings = load_settings(
            GEMINI_API_KEY="k", GEMINI_BASE_URL=emu.base_url, SWITCHBOARD_CONFIG=str(wrong)
        )
        provider = GeminiLiveProvider(SessionConfig(model_id="gemini-2.5-pro"), settings=settings)
        with pytest.raises(ProviderError) as info:
            await provider.connect()
    assert info.value.code == "1008" and info.value.fatal
    assert "not supported for bidiGenerateContent" in str(info.value)
    assert emu.live.close_codes == [1008]
