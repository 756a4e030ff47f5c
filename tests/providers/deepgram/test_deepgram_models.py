"""The Deepgram pipeline's models: streaming STT only, and an LLM among its ``llm_models``."""

from __future__ import annotations

import pytest

from switchboard.config import load_settings
from switchboard.errors import ConfigError
from switchboard.providers.base import SessionConfig
from switchboard.providers.gemini_text import GeminiTextLLM
from switchboard.providers.pipeline import PipelineProvider
from switchboard.providers.registry import ProviderRegistry, ProviderType

REGISTRY = ProviderRegistry(load_settings(DEEPGRAM_API_KEY="dg", GEMINI_API_KEY="gm"))


def pipeline(config: SessionConfig) -> PipelineProvider:
    provider = REGISTRY.create_provider(ProviderType.DEEPGRAM, config)
    assert isinstance(provider, PipelineProvider)
    return provider


def test_whisper_is_refused_at_creation_because_deepgram_does_not_stream_it() -> None:
    with pytest.raises(ConfigError) as info:
        pipeline(SessionConfig(model_id="whisper"))
    message = str(info.value)
    assert "recorded files only" in message
    assert "deepgram models for deepgram.listen: nova-2, nova-3" in message


@pytest.mark.parametrize(
    ("llm_model", "model", "budget"),
    [(None, "gemini-2.5-flash", None), ("gemini-2.5-pro", "gemini-2.5-pro", 128)],
)
def test_the_llm_is_the_agents_llm_model_or_components_llm(
    llm_model: str | None, model: str, budget: int | None
) -> None:
    extra = {"llm_model": llm_model} if llm_model else {}
    llm = pipeline(SessionConfig(extra=extra)).llm
    assert isinstance(llm, GeminiTextLLM)
    assert (llm.model, llm.thinking_budget) == (model, budget)


def test_an_llm_outside_llm_models_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"choose one of: gemini-2\.5-flash, gemini-2\.5-pro"):
        pipeline(
            SessionConfig(extra={"llm_model": "gemini-2.5-flash-native-audio-preview-12-2025"})
        )
