"""Every catalogue model is tied to the endpoint that serves it; sessions refuse the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.agents import Agent
from switchboard.catalog import ENDPOINTS, TEXT_LLM_ENDPOINTS, load_catalog
from switchboard.config import load_settings
from switchboard.cost import estimate_call_cost
from switchboard.errors import ConfigError
from switchboard.media import AudioFormat, AudioSpec, Usage
from switchboard.providers.registry import ProviderRegistry, Requirements

PACKAGED = Path(__file__).parents[1] / "src/switchboard/providers.yaml"
LIVE_MODELS = (
    "gemini-2.5-flash-preview-native-audio-dialog",
    "gemini-2.5-flash-native-audio-preview-12-2025",
    "gemini-live-2.5-flash-preview",
)


def test_every_packaged_model_names_a_known_endpoint() -> None:
    catalog = load_catalog()
    for name, provider in catalog.providers.items():
        assert provider.endpoint in ENDPOINTS, name
        assert provider.default_model in provider.session_models(), name
        for model, entry in provider.models.items():
            assert entry.endpoint in ENDPOINTS, f"{name}.{model}"


def test_the_seed_models_are_there_for_what_they_are() -> None:
    catalog = load_catalog()
    openai = catalog.providers["openai"]
    for model, tier in (
        ("gpt-4o-mini-realtime-preview-2024-12-17", "standard"),
        ("gpt-4o-realtime-preview-2024-12-17", "premium"),
    ):
        assert openai.models[model].endpoint == "openai.realtime"
        assert openai.models[model].tier == tier
    gemini = catalog.providers["gemini"]
    assert gemini.models["gemini-2.5-flash-preview-native-audio-dialog"].endpoint == "gemini.live"
    pro = gemini.models["gemini-2.5-pro"]
    assert pro.endpoint == "gemini.generate_content"
    assert "gemini-2.5-pro" not in gemini.session_models()
    # ai.google.dev/gemini-api/docs/pricing, prompts <= 200k tokens (thinking billed as output)
    assert pro.prices.per_million_tokens == {"input_text": 1.25, "output_text": 10.0}
    assert pro.typical_latency_ms is not None and pro.typical_latency_ms > (
        gemini.models["gemini-2.5-flash"].typical_latency_ms or 0
    )
    assert pro.thinking_budget == 128  # the least gemini-2.5-pro accepts: it cannot stop thinking
    deepgram = catalog.providers["deepgram"]
    assert deepgram.components["llm"] == "gemini-2.5-flash"
    assert deepgram.llm_models == ["gemini-2.5-flash", "gemini-2.5-pro"]
    assert deepgram.session_models() == ["nova-2", "nova-3"]
    assert deepgram.models["whisper"].endpoint == "deepgram.prerecorded"
    assert {"aura-asteria-en", "aura-luna-en", "aura-2-thalia-en"} <= set(deepgram.voices)


def _write(tmp_path: Path, old: str, new: str) -> Path:
    text = PACKAGED.read_text()
    assert old in text
    path = tmp_path / "providers.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "default_model: gemini-2.5-flash-preview-native-audio-dialog",
            "default_model: gemini-2.5-pro",
            "providers.gemini: Value error, default_model 'gemini-2.5-pro' is served by "
            "gemini.generate_content, not by this provider's endpoint gemini.live",
        ),
        (
            "llm_models: [gemini-2.5-flash, gemini-2.5-pro]",
            "llm_models: [gemini-2.5-flash, gemini-live-2.5-flash-preview]",
            "providers.deepgram.llm_models: 'gemini-live-2.5-flash-preview' is not a catalogue "
            "model served by gemini.generate_content",
        ),
        (
            "components: {llm: gemini-2.5-flash, tts: aura-asteria-en}",
            "components: {llm: gemini-2.0-flash, tts: aura-asteria-en}",
            "components.llm must be one of llm_models",
        ),
        (
            "      gpt-realtime:\n        endpoint: openai.realtime\n",
            "      gpt-realtime:\n",
            "providers.openai.models.gpt-realtime.endpoint: Field required",
        ),
    ],
)
def test_a_catalogue_that_ties_models_wrongly_is_refused(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_catalog(_write(tmp_path, old, new))
    assert message in str(info.value)


def test_a_session_for_a_model_its_endpoint_does_not_serve_says_why() -> None:
    catalog = load_catalog()
    with pytest.raises(ConfigError) as info:
        catalog.session_model("gemini", "gemini-2.5-pro", serves="gemini.live")
    message = str(info.value)
    assert "'gemini-2.5-pro' is served by gemini.generate_content" in message
    for live in LIVE_MODELS:
        assert live in message
    assert "choose provider 'deepgram' with llm_model: gemini-2.5-pro" in message

    with pytest.raises(ConfigError, match="recorded files only") as info:
        catalog.session_model("deepgram", "whisper", serves="deepgram.listen")
    assert "nova-2, nova-3" in str(info.value)

    with pytest.raises(ConfigError, match="'gpt-4o' is not in the catalogue") as info:
        catalog.session_model("openai", "gpt-4o", serves="openai.realtime")
    assert "gpt-4o-mini-realtime-preview-2024-12-17" in str(info.value)
    assert "endpoint: openai.realtime" in str(info.value)

    with pytest.raises(ConfigError, match=r"'gemini-2\.5-pro' needs a segmented pipeline"):
        catalog.session_model(
            "gemini", LIVE_MODELS[0], serves="gemini.live", llm_model="gemini-2.5-pro"
        )
    entry = catalog.session_model("gemini", f"models/{LIVE_MODELS[1]}", serves="gemini.live")
    assert entry is not None and entry.endpoint == "gemini.live"
    assert catalog.session_model("nobody", "x", serves="gemini.live") is None


def test_pipeline_llm_choice_is_checked_against_llm_models() -> None:
    catalog = load_catalog()
    default = catalog.pipeline_llm("deepgram", None)
    assert default is not None and default[0] == "gemini-2.5-flash"
    chosen = catalog.pipeline_llm("deepgram", "gemini-2.5-pro")
    assert chosen is not None and chosen[0] == "gemini-2.5-pro"
    assert chosen[1].endpoint in TEXT_LLM_ENDPOINTS
    with pytest.raises(ConfigError, match=r"choose one of: gemini-2\.5-flash, gemini-2\.5-pro"):
        catalog.pipeline_llm("deepgram", "gpt-4o")
    assert catalog.pipeline_llm("local", None) is None  # its "rules" engine is no catalogue model


def test_a_pipeline_call_is_billed_at_its_llms_prices() -> None:
    catalog = load_catalog()
    usage = Usage(input_text_tokens=1_000_000, output_text_tokens=1_000_000, tts_characters=1000)
    flash = estimate_call_cost(
        catalog, provider="deepgram", model="nova-2", usage=usage, carrier=None, carrier_seconds=0
    )
    pro = estimate_call_cost(
        catalog,
        provider="deepgram",
        model="nova-2",
        llm_model="gemini-2.5-pro",
        usage=usage,
        carrier=None,
        carrier_seconds=0,
    )
    assert {(x.item, x.unit_price) for x in flash.lines} == {
        ("input text tokens", 0.30),
        ("output text tokens", 2.50),
        ("TTS characters", 0.015),
    }
    assert {(x.item, x.unit_price) for x in pro.lines} == {
        ("input text tokens", 1.25),
        ("output text tokens", 10.0),
        ("TTS characters", 0.015),
    }
    assert pro.total == pytest.approx(1.25 + 10.0 + 0.015)
    assert "deepgram llm gemini-2.5-pro priced at its own token prices" in pro.notes


def test_registry_lists_and_ranks_only_the_models_sessions_can_run() -> None:
    registry = ProviderRegistry(load_settings())
    infos = {i.name: i for i in registry.list_providers()}
    assert "gemini-2.5-pro" not in infos["gemini"].models
    assert set(LIVE_MODELS) <= set(infos["gemini"].models)
    assert infos["deepgram"].extra["llm_models"] == ["gemini-2.5-flash", "gemini-2.5-pro"]
    assert "whisper" not in infos["deepgram"].models
    # The pipeline's estimate includes its LLM's tokens, now priced on the LLM's entry.
    assert infos["deepgram"].estimated_cost_per_minute == pytest.approx(
        0.0058 * 0.5 + (0.30 * 900 + 2.50 * 300) / 1e6 + 0.015 * 0.45
    )
    # gemini-2.5-pro is premium, but no Gemini Live session can run it: no premium bonus.
    scores, _ = registry.score_providers(
        Requirements(cost_preference="premium"), configured_only=False
    )
    budget, _ = registry.score_providers(
        Requirements(cost_preference="standard"), configured_only=False
    )
    assert budget["gemini"] - scores["gemini"] == 20


def test_agent_llm_model_reaches_the_session_config() -> None:
    agent = Agent.model_validate(
        {"name": "a", "system_prompt": "p", "provider": "deepgram", "llm_model": "gemini-2.5-pro"}
    )
    config = agent.session_config(AudioSpec(AudioFormat.ULAW, 8000))
    assert config.extra["llm_model"] == "gemini-2.5-pro"
    plain = Agent.model_validate({"name": "b", "system_prompt": "p"})
    assert "llm_model" not in plain.session_config(AudioSpec(AudioFormat.ULAW, 8000)).extra
