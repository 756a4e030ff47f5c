"""The providers.yaml catalogue: models, capabilities, limits, prices and strategies.

A packaged ``providers.yaml`` ships with switchboard; ``SWITCHBOARD_CONFIG`` names a file that
replaces it. The file is validated by pydantic at start; a bad file raises :class:`ConfigError`
naming the file and the dotted path of each offending key (``providers.openai.models.x.tier``).
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from switchboard.errors import ConfigError

__all__ = [
    "Catalog",
    "CostTier",
    "ModelEntry",
    "Prices",
    "ProviderEntry",
    "Strategy",
    "TelephonyEntry",
    "load_catalog",
]

CostTier = Literal["budget", "standard", "premium"]
TIER_RANK: dict[str, int] = {"budget": 0, "standard": 1, "premium": 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prices(_Strict):
    """Dated list prices in USD. Any field may be omitted (0)."""

    per_million_tokens: dict[
        Literal["input_text", "input_audio", "cached_input", "output_text", "output_audio"], float
    ] = Field(default_factory=dict)
    per_minute: dict[Literal["input_audio", "output_audio", "call"], float] = Field(
        default_factory=dict
    )
    per_thousand_characters: float = 0.0


class ModelEntry(_Strict):
    tier: CostTier = "standard"
    description: str = ""
    prices: Prices = Prices()
    #: Typical cost of one minute of conversation, for selection by cost (derived if unset).
    estimated_per_minute: float | None = None


class ProviderCapabilityEntry(_Strict):
    realtime: bool = True
    multimodal: bool = False
    function_calling: bool = True
    interruption: bool = True
    transcription: bool = True
    typical_latency_ms: int = 500
    languages: list[str] = Field(default_factory=lambda: ["en"])


class AudioEntry(_Strict):
    input: list[str] = Field(default_factory=list)  # "pcm16@24000", "ulaw@8000", ...
    output: list[str] = Field(default_factory=list)


class ProviderEntry(_Strict):
    display_name: str
    kind: Literal["realtime", "segmented"]
    required_env: list[str] = Field(default_factory=list)
    default_model: str
    models: dict[str, ModelEntry]
    voices: list[str] = Field(default_factory=list)
    default_voice: str | None = None
    capabilities: ProviderCapabilityEntry = ProviderCapabilityEntry()
    audio: AudioEntry = AudioEntry()
    #: None = unlimited.
    max_session_seconds: int | None = None
    components: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_model_listed(self) -> ProviderEntry:
        if self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not among models")
        return self


class TelephonyEntry(_Strict):
    display_name: str
    required_env: list[str] = Field(default_factory=list)
    max_call_seconds: int | None = None
    prices: Prices = Prices()


class Strategy(_Strict):
    description: str = ""
    order: list[str]


class Features(_Strict):
    barge_in: bool = True
    greeting: bool = True
    record_transcripts: bool = True
    g711_passthrough: bool = True


class Monitoring(_Strict):
    metrics_enabled: bool = True
    event_loop_lag_interval_s: float = 0.5
    turn_latency_buckets_ms: list[float] = Field(
        default_factory=lambda: [100.0, 200.0, 300.0, 500.0, 800.0, 1200.0, 2000.0, 3000.0, 5000.0]
    )


class Catalog(_Strict):
    """The whole providers.yaml."""

    version: Literal[1] = 1
    prices_as_of: date
    default_strategy: str = "balanced"
    providers: dict[str, ProviderEntry]
    telephony: dict[str, TelephonyEntry] = Field(default_factory=dict)
    strategies: dict[str, Strategy] = Field(default_factory=dict)
    features: Features = Features()
    monitoring: Monitoring = Monitoring()

    @model_validator(mode="after")
    def _strategies_name_providers(self) -> Catalog:
        for name, strategy in self.strategies.items():
            unknown = [p for p in strategy.order if p not in self.providers]
            if unknown:
                raise ValueError(f"strategy {name!r} names unknown providers {unknown}")
        if self.strategies and self.default_strategy not in self.strategies:
            raise ValueError(f"default_strategy {self.default_strategy!r} is not a strategy")
        return self


def _packaged_text() -> str:
    return resources.files("switchboard").joinpath("providers.yaml").read_text("utf-8")


def load_catalog(path: Path | None = None) -> Catalog:
    """Load and validate providers.yaml (the packaged one when ``path`` is None).

    Raises:
        ConfigError: the file is missing, not YAML, or fails validation; the message names the
            file and the dotted path of each offending key.
    """
    where = str(path) if path else "packaged providers.yaml"
    try:
        text = path.read_text("utf-8") if path else _packaged_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {where}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from exc
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc
