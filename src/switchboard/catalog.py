"""The providers.yaml catalogue: models, capabilities, limits, prices and strategies.

A packaged ``providers.yaml`` ships with switchboard; ``SWITCHBOARD_CONFIG`` names a file that
replaces it. The file is validated by pydantic at start; a bad file raises :class:`ConfigError`
naming the file and the dotted path of each offending key (``providers.openai.models.x.tier``).

Every model is tied to the endpoint that serves it (``endpoint``, one of :data:`ENDPOINTS`), and
every provider to the endpoint its sessions use. A provider session asked for a model its endpoint
does not serve fails at creation with :class:`ConfigError` (:meth:`Catalog.session_model`) — not
mid-ring with a vendor error. Text LLMs (``gemini.generate_content``) are listed under the service
that serves them and chosen as a segmented pipeline's LLM through its ``llm_models``
(:meth:`Catalog.pipeline_llm`).
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
    "ENDPOINTS",
    "TEXT_LLM_ENDPOINTS",
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

#: The endpoints a catalogue model can be served by, and what each one is.
ENDPOINTS: dict[str, str] = {
    "openai.realtime": "the OpenAI Realtime websocket (/v1/realtime), speech to speech",
    "gemini.live": "the Gemini Live API (BidiGenerateContent websocket), speech to speech",
    "gemini.generate_content": (
        "Gemini generateContent (REST), text in and text out: an LLM for a segmented pipeline"
    ),
    "deepgram.listen": "Deepgram live transcription (/v1/listen websocket), streaming STT",
    "deepgram.prerecorded": (
        "Deepgram pre-recorded transcription (POST /v1/listen), recorded files only: Deepgram "
        "does not stream Whisper (developers.deepgram.com/docs/deepgram-whisper-cloud)"
    ),
    "local": "this machine (no network)",
}
#: Endpoints whose models a segmented pipeline can use as its LLM.
TEXT_LLM_ENDPOINTS = frozenset({"gemini.generate_content"})


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
    #: Where the model is served (a key of :data:`ENDPOINTS`).
    endpoint: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)?$")
    tier: CostTier = "standard"
    description: str = ""
    prices: Prices = Prices()
    #: Typical cost of one minute of conversation, for selection by cost (derived if unset).
    estimated_per_minute: float | None = None
    #: Typical wait for the first audio (sessions) or first text token (LLMs), in ms.
    typical_latency_ms: int | None = Field(default=None, gt=0)
    #: ``thinkingConfig.thinkingBudget`` a pipeline asks a thinking LLM for (None: the default).
    thinking_budget: int | None = Field(default=None, ge=-1)


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
    #: The endpoint this provider's sessions use; its models with another endpoint are listed
    #: for what they are (a pipeline LLM, a files-only STT) but cannot run its sessions.
    endpoint: str
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
    #: Catalogue text LLMs this segmented pipeline may use (``components.llm`` is the default;
    #: an agent's ``llm_model`` picks another).
    llm_models: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _default_model_listed(self) -> ProviderEntry:
        if self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not among models")
        served = self.models[self.default_model].endpoint
        if served != self.endpoint:
            raise ValueError(
                f"default_model {self.default_model!r} is served by {served}, "
                f"not by this provider's endpoint {self.endpoint}"
            )
        if self.llm_models and self.components.get("llm") not in self.llm_models:
            raise ValueError(f"components.llm must be one of llm_models {self.llm_models}")
        return self

    def session_models(self) -> list[str]:
        """The models this provider's sessions can run (those served by its ``endpoint``)."""
        return [name for name, m in self.models.items() if m.endpoint == self.endpoint]


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
        for name, provider in self.providers.items():
            for llm in provider.llm_models:
                found = self.find_model(llm)
                if found is None or found[1].endpoint not in TEXT_LLM_ENDPOINTS:
                    raise ValueError(
                        f"providers.{name}.llm_models: {llm!r} is not a catalogue model served "
                        f"by {' or '.join(sorted(TEXT_LLM_ENDPOINTS))}"
                    )
        return self

    # -- look-ups ------------------------------------------------------------------------------
    def find_model(self, model: str) -> tuple[str, ModelEntry] | None:
        """``(provider, entry)`` of the first provider listing ``model``, or None."""
        for name, provider in self.providers.items():
            if model in provider.models:
                return name, provider.models[model]
        return None

    def session_model(
        self, provider: str, model: str, *, serves: str, llm_model: str | None = None
    ) -> ModelEntry | None:
        """Check that a ``provider`` session whose code speaks to ``serves`` can run ``model``.

        Args:
            provider: the catalogue name of the provider (``gemini``).
            model: the session's ``model_id``.
            serves: the endpoint the provider's code speaks to (``gemini.live``).
            llm_model: an agent's ``llm_model``; only a segmented provider can honour one.

        Returns:
            The model's entry, or None when the catalogue does not describe ``provider``
            (nothing to check against).

        Raises:
            ConfigError: ``model`` is served by another endpoint, or is not in the catalogue; the
                message names the endpoint's models and, for a text LLM, the pipelines that can
                use it. Also when ``llm_model`` is given to a speech-to-speech provider.
        """
        entry = self.providers.get(provider)
        if entry is None:
            return None
        if llm_model is not None and entry.kind != "segmented":
            pipelines = [p for p, e in self.providers.items() if llm_model in e.llm_models]
            raise ConfigError(
                f"llm_model {llm_model!r} needs a segmented pipeline, but {provider} sessions "
                f"are speech to speech with no separate LLM; choose provider "
                f"{' or '.join(repr(p) for p in pipelines) or 'deepgram'} for it"
            )
        name = model.removeprefix("models/")
        found = entry.models.get(name)
        if found is not None and found.endpoint == serves:
            return found
        usable = [m for m, e in entry.models.items() if e.endpoint == serves]
        where = self.find_model(name)
        if where is None:
            why = f"{name!r} is not in the catalogue (providers.yaml or SWITCHBOARD_CONFIG)"
        else:
            endpoint = where[1].endpoint
            why = (
                f"{name!r} is served by {endpoint} ({ENDPOINTS.get(endpoint, 'not described')}), "
                f"not by {serves} ({ENDPOINTS.get(serves, 'not described')}), so the service "
                f"would refuse a {entry.display_name} session for it"
            )
        parts = [f"{why}; {provider} models for {serves}: {', '.join(usable) or 'none'}"]
        pipelines = [p for p, e in self.providers.items() if name in e.llm_models]
        if pipelines:
            parts.append(
                f"to use {name} as a pipeline LLM, choose provider {pipelines[0]!r} with "
                f"llm_model: {name} (agents.yaml) or components.llm: {name} (providers.yaml)"
            )
        elif where is None:
            parts.append(
                f"if the service offers it, add it under providers.{provider}.models with "
                f"endpoint: {serves}"
            )
        raise ConfigError("; ".join(parts))

    def pipeline_llm(self, provider: str, llm: str | None) -> tuple[str, ModelEntry] | None:
        """``(model name, entry)`` of the LLM a segmented ``provider`` would use.

        ``llm`` None means the provider's ``components.llm``. Returns None when that is not a
        catalogue model (the local provider's ``rules``) or the provider is not described.

        Raises:
            ConfigError: ``llm`` is not one of the provider's ``llm_models``.
        """
        entry = self.providers.get(provider)
        if entry is None:
            return None
        name = (llm or entry.components.get("llm") or "").removeprefix("models/")
        if llm is not None and name not in entry.llm_models:
            choices = ", ".join(entry.llm_models) or "none (its LLM is fixed)"
            raise ConfigError(
                f"llm_model {name!r} is not an LLM the {provider} pipeline can use; "
                f"choose one of: {choices}"
            )
        found = self.find_model(name)
        return (name, found[1]) if found is not None else None

    def prices_for(self, provider: str, model: str, llm: str | None = None) -> Prices:
        """What a minute or token of ``provider``'s ``model`` costs, its pipeline LLM included.

        A segmented provider whose LLM (``llm`` or ``components.llm``) is a catalogue model bills
        text tokens at that model's prices; otherwise the model's own token prices apply.

        Raises:
            KeyError: unknown provider or model.
        """
        entry = self.providers[provider]
        prices = entry.models[model].prices
        found = self.pipeline_llm(provider, llm) if entry.kind == "segmented" else None
        if found is None:
            return prices
        tokens = {k: v for k, v in prices.per_million_tokens.items() if "text" not in k}
        tokens |= found[1].prices.per_million_tokens
        return prices.model_copy(update={"per_million_tokens": tokens})


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
