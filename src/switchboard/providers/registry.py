"""The provider registry and provider selection (carriers: :mod:`switchboard.telephony.registry`).

Providers are registered by name with an import path to a factory, loaded only when a provider
is created (so the local provider's heavy models are never imported by an OpenAI-only gateway)::

    registry = get_provider_registry()
    registry.is_configured(ProviderType.OPENAI)          # (False, ("OPENAI_API_KEY",))
    provider = registry.create_provider(ProviderType.OPENAI, SessionConfig(...))
    await provider.connect()
    # or, as the seed does: create without a configuration and give it to connect
    provider = registry.create_provider(ProviderType.OPENAI)
    await provider.connect(SessionConfig(...))

A provider factory has the signature ``(config: SessionConfig | None, *, settings: Settings)
-> BaseProvider``. The seed also creates carrier adapters here
(``registry.create_telephony_adapter(TelephonyType.TWILIO)``); that delegates to the
:class:`~switchboard.telephony.registry.CarrierRegistry` in :attr:`ProviderRegistry.carriers`.

Selection scoring (:meth:`ProviderRegistry.select_best_provider`), documented and tested:

1. Hard filters: the provider must be configured (unless ``configured_only=False``) and have
   every capability asked for (``realtime``, ``multimodal``, ``function_calling``,
   ``interruption``, ``language``) and meet ``max_latency_ms``. Nothing left → ``ConfigError``
   that says, per provider, why it was excluded.
   Requirements come as a :class:`Requirements`, a mapping (the seed's
   ``select_best_provider({"realtime": True, ...})``) or keyword arguments; an unknown key is a
   ``ConfigError`` naming it.
2. Score each survivor (higher wins):
   * cost: ``cost_preference`` is ``"budget" | "standard" | "premium"`` — +30 when one of the
     provider's models has that tier, +10 for a neighbouring tier; ``"lowest"`` ranks by the
     estimated cost per minute from providers.yaml prices (cheapest +30, falling by 10 per place);
   * capability bonus: +5 per optional capability the provider has beyond those asked for
     (breadth helps the call adapt);
   * latency: ``-typical_latency_ms / 100``;
   * strategy: the named strategy's order (default ``catalog.default_strategy``) breaks ties:
     +3 for first, +2, +1.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, cast, get_args

from switchboard.catalog import TIER_RANK, Catalog, ProviderEntry
from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.media import AudioFormat
from switchboard.providers.base import BaseProvider
from switchboard.providers.types import ConfigDefaults, ProviderCapabilities, SessionConfig
from switchboard.telephony.base import TelephonyAdapter, TelephonyType
from switchboard.telephony.registry import AdapterFactory, CarrierRegistry

__all__ = [
    "ProviderInfo",
    "ProviderRegistry",
    "ProviderType",
    "Requirements",
    "TelephonyType",
    "get_provider_registry",
]

ProviderFactory = Callable[..., BaseProvider]


class ProviderType(StrEnum):
    """The voice providers switchboard ships."""

    OPENAI = "openai"
    GEMINI = "gemini"
    DEEPGRAM = "deepgram"
    LOCAL = "local"


_DEFAULT_PROVIDER_FACTORIES: dict[str, str] = {
    ProviderType.OPENAI: "switchboard.providers.openai_realtime:create_provider",
    ProviderType.GEMINI: "switchboard.providers.gemini_live:create_provider",
    ProviderType.DEEPGRAM: "switchboard.providers.deepgram:create_provider",
    ProviderType.LOCAL: "switchboard.providers.local:create_provider",
}


CostPreference = Literal["budget", "standard", "premium", "lowest"]


@dataclass(frozen=True, slots=True)
class Requirements:
    """What a call needs from a provider (the seed's ``select_best_provider`` arguments)."""

    realtime: bool = False
    multimodal: bool = False
    function_calling: bool = False
    interruption: bool = False
    language: str | None = None
    max_latency_ms: int | None = None
    cost_preference: CostPreference | None = None
    strategy: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Requirements:
        """Requirements from a plain mapping such as the seed's ``{"realtime": True, ...}``.

        Raises:
            ConfigError: a key is not a requirement, or ``cost_preference`` is not one of
                budget, standard, premium, lowest (the message names it).
        """
        return cls().updated(data)

    def updated(self, data: Mapping[str, Any]) -> Requirements:
        """A copy with the requirements in ``data`` changed (validated as in from_mapping)."""
        unknown = sorted(str(k) for k in data if k not in self.__dataclass_fields__)
        if unknown:
            known = ", ".join(self.__dataclass_fields__)
            raise ConfigError(
                f"unknown provider requirements: {', '.join(unknown)} (known: {known})"
            )
        cost = data.get("cost_preference")
        if cost is not None and cost not in get_args(CostPreference):
            choices = ", ".join(get_args(CostPreference))
            raise ConfigError(f"unknown cost_preference {cost!r}; choose one of {choices}")
        return dataclasses.replace(self, **data)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What ``GET /v1/providers`` and ``switchboard providers`` show (never a secret)."""

    name: str
    display_name: str
    kind: str
    configured: bool
    missing: tuple[str, ...]
    default_model: str
    models: tuple[str, ...]
    capabilities: ProviderCapabilities
    estimated_cost_per_minute: float
    extra: dict[str, Any] = field(default_factory=dict)


def _parse_audio(items: list[str]) -> tuple[tuple[AudioFormat, ...], tuple[int, ...]]:
    formats: list[AudioFormat] = []
    rates: list[int] = []
    for item in items:
        fmt, _, rate = item.partition("@")
        if AudioFormat(fmt) not in formats:
            formats.append(AudioFormat(fmt))
        if int(rate) not in rates:
            rates.append(int(rate))
    return tuple(formats), tuple(rates)


def capabilities_of(entry: ProviderEntry) -> ProviderCapabilities:
    """The :class:`ProviderCapabilities` a catalogue entry describes."""
    formats, in_rates = _parse_audio(entry.audio.input)
    _, out_rates = _parse_audio(entry.audio.output)
    caps = entry.capabilities
    return ProviderCapabilities(
        realtime=caps.realtime,
        multimodal=caps.multimodal,
        function_calling=caps.function_calling,
        interruption=caps.interruption,
        transcription=caps.transcription,
        audio_formats=formats or (AudioFormat.PCM16,),
        input_sample_rates=in_rates,
        output_sample_rates=out_rates,
        max_session_seconds=entry.max_session_seconds,
        languages=tuple(caps.languages),
        cost_tier=entry.models[entry.default_model].tier,
        typical_latency_ms=caps.typical_latency_ms,
    )


def estimated_cost_per_minute(catalog: Catalog, provider: str, model: str | None = None) -> float:
    """USD for a typical minute of conversation with ``provider``'s model.

    A typical minute: the caller speaks 30 s and the agent 30 s. OpenAI counts audio at 10
    tokens/s in and 20 tokens/s out; Gemini at 25 tokens/s both ways; the pipeline is billed
    per STT minute of caller audio, ~150 LLM tokens in and 50 out per turn at 6 turns a minute,
    and ~450 TTS characters per agent half-minute. This is an estimate for ranking, not a bill.
    """
    entry = catalog.providers[provider]
    m = entry.models[model or entry.default_model]
    if m.estimated_per_minute is not None:
        return m.estimated_per_minute
    prices = catalog.prices_for(provider, model or entry.default_model)  # pipeline LLM included
    tok = prices.per_million_tokens
    if provider == ProviderType.GEMINI:
        audio_in, audio_out = 30 * 25, 30 * 25
    else:
        audio_in, audio_out = 30 * 10, 30 * 20
    cost = (tok.get("input_audio", 0.0) * audio_in + tok.get("output_audio", 0.0) * audio_out) / 1e6
    cost += (tok.get("input_text", 0.0) * 6 * 150 + tok.get("output_text", 0.0) * 6 * 50) / 1e6
    cost += prices.per_minute.get("input_audio", 0.0) * 0.5
    cost += prices.per_minute.get("output_audio", 0.0) * 0.5
    cost += prices.per_thousand_characters * 0.45
    return round(cost, 6)


class ProviderRegistry:
    """Registered providers, bound to one :class:`Settings`; :attr:`carriers` has the carriers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._providers: dict[str, str | ProviderFactory] = dict(_DEFAULT_PROVIDER_FACTORIES)
        self.carriers = CarrierRegistry(settings)

    @property
    def catalog(self) -> Catalog:
        return self.settings.catalog

    # -- registration ------------------------------------------------------------------------------
    def register_provider(self, name: str, factory: str | ProviderFactory) -> None:
        """Register (or replace) a provider factory; ``name`` must be in providers.yaml."""
        if name not in self.catalog.providers:
            raise ConfigError(f"provider {name!r} is not described in providers.yaml")
        self._providers[name] = factory

    def register_telephony(self, name: str, factory: str | AdapterFactory) -> None:
        """Register (or replace) a carrier adapter factory (see :attr:`carriers`)."""
        self.carriers.register(name, factory)

    # -- inspection --------------------------------------------------------------------------------
    def is_configured(self, provider: str) -> tuple[bool, tuple[str, ...]]:
        """Whether ``provider`` has its keys, and which variables are missing."""
        entry = self._entry(provider)
        missing = self.settings.missing(entry.required_env)
        return (not missing, missing)

    def list_providers(self) -> list[ProviderInfo]:
        out = []
        for name, entry in self.catalog.providers.items():
            if name not in self._providers:
                continue
            configured, missing = self.is_configured(name)
            out.append(
                ProviderInfo(
                    name=name,
                    display_name=entry.display_name,
                    kind=entry.kind,
                    configured=configured,
                    missing=missing,
                    default_model=entry.default_model,
                    models=tuple(entry.session_models()),
                    capabilities=capabilities_of(entry),
                    estimated_cost_per_minute=estimated_cost_per_minute(self.catalog, name),
                    extra={
                        "voices": entry.voices,
                        "default_voice": entry.default_voice,
                        "llm_models": list(entry.llm_models),
                    },
                )
            )
        return out

    def capabilities(self, provider: str) -> ProviderCapabilities:
        return capabilities_of(self._entry(provider))

    def _entry(self, provider: str) -> ProviderEntry:
        try:
            return self.catalog.providers[str(provider)]
        except KeyError:
            known = ", ".join(self.catalog.providers)
            raise ConfigError(f"unknown provider {provider!r}; known: {known}") from None

    # -- creation ----------------------------------------------------------------------------
    def create_provider(
        self, provider: str, config: SessionConfig | None = None, **options: Any
    ) -> BaseProvider:
        """Create an unconnected provider session.

        Both of the seed's forms work: ``create_provider(type, config)`` then ``connect()``, and
        ``create_provider(type)`` then ``connect(config)``. Either way ``config.model_id`` and
        ``config.voice`` are filled from the catalogue defaults when unset.

        Args:
            provider: a :class:`ProviderType` or a registered name.
            config: the session configuration, or ``None`` to give it to ``connect`` instead.
            **options: the provider's own keyword arguments (reconnect bounds, clients...).

        Raises:
            ConfigError: unknown provider, or its keys are missing (named in the message).
        """
        entry = self._entry(provider)
        configured, missing = self.is_configured(provider)
        if not configured:
            raise ConfigError(
                f"provider {provider!r} is not configured: set {', '.join(missing)}",
                missing=missing,
            )
        defaults = ConfigDefaults(model_id=entry.default_model, voice=entry.default_voice)
        if config is not None:
            defaults.fill(config)
        factory = self._resolve(self._providers.get(str(provider)), provider)
        created = cast(BaseProvider, factory(config, settings=self.settings, **options))
        if isinstance(created, BaseProvider):  # a custom factory may return its own type
            created.config_defaults = defaults
        return created

    def create_telephony_adapter(self, carrier: str) -> TelephonyAdapter:
        """Create the call-control adapter for ``carrier`` (the seed's entry point).

        Delegates to :meth:`switchboard.telephony.registry.CarrierRegistry.create`.

        Raises:
            ConfigError: unknown carrier or missing variables (named in the message).
        """
        return self.carriers.create(carrier)

    @staticmethod
    def _resolve(factory: Any, name: str) -> Callable[..., Any]:
        if factory is None:
            raise ConfigError(f"no implementation registered for {name!r}")
        if callable(factory):
            return cast(Callable[..., Any], factory)
        module_name, _, attr = str(factory).partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            hint = " (pip install 'switchboard-voice[local]')" if name == "local" else ""
            raise ConfigError(f"{name!r} is unavailable: {exc}{hint}") from exc
        return cast(Callable[..., Any], getattr(module, attr))

    # -- selection ----------------------------------------------------------------------------
    def select_best_provider(
        self,
        requirements: Requirements | Mapping[str, Any] | None = None,
        *,
        configured_only: bool = True,
        **kw: Any,
    ) -> ProviderType:
        """Pick the provider that best meets ``requirements`` (scoring in the module docstring).

        Args:
            requirements: a :class:`Requirements`, or a mapping of its fields as in the seed::

                    registry.select_best_provider({"realtime": True, "multimodal": True,
                                                   "function_calling": True,
                                                   "cost_preference": "standard"})

            configured_only: consider only providers whose keys are set.
            **kw: requirements as keyword arguments (added to ``requirements``, overriding).

        Raises:
            ConfigError: an unknown requirement or value (named), or no provider meets the
                requirements (the message says why each failed).
        """
        match requirements:
            case Requirements():
                req = requirements.updated(kw)
            case None:
                req = Requirements.from_mapping(kw)
            case Mapping():
                req = Requirements.from_mapping({**requirements, **kw})
            case _:
                raise ConfigError(
                    "select_best_provider takes Requirements or a mapping of them, "
                    f"not {type(requirements).__name__}"
                )
        scores, reasons = self.score_providers(req, configured_only=configured_only)
        if not scores:
            detail = "; ".join(f"{name}: {why}" for name, why in reasons.items())
            raise ConfigError(f"no provider meets the requirements ({detail})")
        best = max(scores.items(), key=lambda kv: kv[1])[0]
        return ProviderType(best)

    def score_providers(
        self, req: Requirements, *, configured_only: bool = True
    ) -> tuple[dict[str, float], dict[str, str]]:
        """Scores of eligible providers and the reasons others were excluded."""
        strategy_name = req.strategy or self.catalog.default_strategy
        strategy = self.catalog.strategies.get(strategy_name)
        if req.strategy and strategy is None:
            raise ConfigError(f"unknown strategy {req.strategy!r}")
        order = strategy.order if strategy else []
        eligible: dict[str, ProviderCapabilities] = {}
        reasons: dict[str, str] = {}
        for name, entry in self.catalog.providers.items():
            if name not in self._providers:
                continue
            caps = capabilities_of(entry)
            why = self._exclusion(name, caps, req, configured_only)
            if why:
                reasons[name] = why
            else:
                eligible[name] = caps
        costs = sorted(eligible, key=lambda n: estimated_cost_per_minute(self.catalog, n))
        scores: dict[str, float] = {}
        for name, caps in eligible.items():
            score = 0.0
            if req.cost_preference == "lowest":
                score += 30 - 10 * costs.index(name)
            elif req.cost_preference is not None:
                wanted = TIER_RANK[req.cost_preference]
                provider_entry = self.catalog.providers[name]
                distance = min(  # only models its sessions can run (not gemini-2.5-pro on Live)
                    abs(TIER_RANK[provider_entry.models[m].tier] - wanted)
                    for m in provider_entry.session_models()
                )
                score += {0: 30, 1: 10}.get(distance, 0)
            for flag in ("realtime", "multimodal", "function_calling", "interruption"):
                if getattr(caps, flag) and not getattr(req, flag):
                    score += 5
            score -= caps.typical_latency_ms / 100
            if name in order:
                score += max(0, 3 - order.index(name))
            scores[name] = score
        return scores, reasons

    def _exclusion(
        self, name: str, caps: ProviderCapabilities, req: Requirements, configured_only: bool
    ) -> str | None:
        if configured_only:
            configured, missing = self.is_configured(name)
            if not configured:
                return f"not configured (missing {', '.join(missing)})"
        lacking = [
            flag
            for flag in ("realtime", "multimodal", "function_calling", "interruption")
            if getattr(req, flag) and not getattr(caps, flag)
        ]
        if lacking:
            return f"lacks {', '.join(lacking)}"
        if req.language and req.language.split("-")[0].lower() not in caps.languages:
            return f"does not speak {req.language}"
        if req.max_latency_ms is not None and caps.typical_latency_ms > req.max_latency_ms:
            return f"typical latency {caps.typical_latency_ms} ms > {req.max_latency_ms} ms"
        return None


_default_registry: ProviderRegistry | None = None


def get_provider_registry(settings: Settings | None = None) -> ProviderRegistry:
    """A registry bound to ``settings``; without it, a process-wide one from the environment.

    The no-argument form is the seed's documented entry point (``get_provider_registry()`` then
    ``create_provider``), so it is the one place in the library that reads the environment
    (:func:`~switchboard.config.load_settings`), once per process; the CLI is the other. Everything
    else — the app, emulators, the load tool — is handed its values.
    """
    global _default_registry
    if settings is not None:
        return ProviderRegistry(settings)
    if _default_registry is None:
        from switchboard.config import load_settings

        _default_registry = ProviderRegistry(load_settings())
    return _default_registry
