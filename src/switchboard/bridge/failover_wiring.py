"""A call's failover wired to the gateway: its fallback list, how a fallback provider is made
for the call, and what the metrics and the provider health hear of it.

``bridge/wiring.py`` calls :func:`call_failover` when it opens a session; the decisions are
``bridge/failover.py``'s, the I/O ``bridge/failover_runner.py``'s.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Mapping
from typing import Any

from switchboard.agents import Agent
from switchboard.bridge.active import ActiveCall
from switchboard.bridge.agent_voices import nearest_voice
from switchboard.bridge.apology import apology_audio
from switchboard.bridge.failover import FailoverPolicy, fallback_order
from switchboard.bridge.failover_runner import HeardTranscript, ProviderFailover
from switchboard.bridge.sink import CallSink
from switchboard.cost import ServedUsage, estimate_call_cost
from switchboard.gateway import Gateway
from switchboard.media import AudioSpec, Usage
from switchboard.providers.base import BaseProvider
from switchboard.providers.registry import ProviderType
from switchboard.providers.types import HistoryTurn

__all__ = [
    "call_failover",
    "choose_healthy",
    "connect_wait_s",
    "cost_by_provider",
    "failover_policy",
    "fallback_agent",
    "local_available",
    "pinned_provider",
    "served_usage",
]


def local_available() -> bool:
    """The ``[local]`` extra is installed (the offline provider can take a call)."""
    return all(importlib.util.find_spec(m) is not None for m in ("piper", "faster_whisper"))


def failover_policy(gateway: Gateway, agent: Agent, provider: str) -> FailoverPolicy:
    """The failover of a call of ``agent`` on ``provider`` (its fallback list and timings)."""
    registry = gateway.providers
    catalog = registry.catalog
    strategy = catalog.strategies.get(agent.strategy or catalog.default_strategy)
    configured = [name for name in catalog.providers if registry.is_configured(name)[0]]
    explicit = [p.value for p in agent.fallback] if agent.fallback is not None else None
    order = fallback_order(
        provider,
        explicit=explicit,
        strategy_order=strategy.order if strategy else list(catalog.providers),
        configured=configured,
        local_available=local_available(),
    )
    return FailoverPolicy(
        fallback=order,
        failover_after_ms=agent.limits.failover_after_s * 1000.0,
        stall_timeout_ms=agent.limits.stall_timeout_s * 1000.0,
    )


def cost_by_provider(gateway: Gateway, failover: ProviderFailover) -> dict[str, float]:
    """The estimated usage cost (USD) of each provider that served a call that failed over
    (each at its default model's prices; the carrier's cost is the call's, not theirs)."""
    out: dict[str, float] = {}
    for name, usage in failover.heard.usage_by_provider.items():
        cost = estimate_call_cost(
            gateway.settings.catalog,
            provider=name,
            model=None,
            usage=usage,
            carrier=None,
            carrier_seconds=0.0,
        )
        out[name] = round(cost.provider_total, 6)
    return out


def served_usage(
    failover: ProviderFailover, model: str | None, llm_model: str | None
) -> list[ServedUsage]:
    """What each provider that served the call used, in the order they served it; the first
    at the agent's ``model``/``llm_model``, each fallback at its default model (``make``)."""
    names = [failover.failovers[0][0]] if failover.failovers else [failover.provider_name]
    names += [new for _, new, _, _ in failover.failovers]
    by_name = failover.heard.usage_by_provider
    return [
        ServedUsage(
            name,
            by_name.get(name, Usage()),
            model=model if i == 0 else None,
            llm_model=llm_model if i == 0 else None,
        )
        for i, name in enumerate(dict.fromkeys(names))
    ]


def connect_wait_s(gateway: Gateway, active: ActiveCall) -> float:
    """How long the media socket waits for the call's provider to connect: 15 s, or with
    fallbacks the policy's connect timeout (then the next provider is tried)."""
    policy = failover_policy(gateway, active.agent, active.provider_name)
    return policy.connect_timeout_ms / 1000.0 if policy.fallback else 15.0


def fallback_agent(gateway: Gateway, agent: Agent, name: str, *, greet: bool) -> Agent:
    """``agent`` as it runs on provider ``name`` when that is not its own (a failover, or a
    resume pinned to the provider the call had moved to): the provider's default model, the
    voice nearest the agent's, the greeting only when ``greet``."""
    entry = gateway.settings.catalog.providers[name]
    update: dict[str, Any] = {
        "provider": ProviderType(name),
        "model": None,  # the agent's model is its first provider's
        "llm_model": None,
        "voice": nearest_voice(agent.voice, entry.voices, entry.default_voice),
        "greeting": agent.greeting if greet else None,  # a recorded one plays anyway
    }
    return agent.model_copy(update=update)


def pinned_provider(gateway: Gateway, agent: Agent, pinned: str | None, chosen: str) -> str:
    """The provider of a resumed call: ``pinned`` (the one serving it when its leg died) when
    this node has it configured, else ``chosen`` as for a new call (``choose_healthy``)."""
    registry = gateway.providers
    if (
        pinned is not None
        and pinned in registry.catalog.providers
        and registry.is_configured(pinned)[0]
    ):
        return pinned
    return choose_healthy(gateway, agent, chosen)


def choose_healthy(gateway: Gateway, agent: Agent, chosen: str) -> str:
    """``chosen``, unless its circuit breaker keeps new calls off it: then the first of its
    fallbacks whose breaker lets the call through (``chosen`` when none does)."""
    health, now = gateway.provider_health, time.monotonic()
    if health.allow(chosen, now):
        return chosen
    for name in failover_policy(gateway, agent, chosen).fallback:
        if health.allow(name, now):
            return name
    return chosen


def call_failover(
    gateway: Gateway,
    active: ActiveCall,
    spec: AudioSpec,
    sink: CallSink,
    provider_options: Mapping[str, Mapping[str, Any]],
) -> tuple[ProviderFailover | None, CallSink]:
    """The call's failover (None when it has no fallback) and the sink the session reports to
    (the transcript as heard is kept in front of ``sink``)."""
    agent, current = active.agent, active.provider_name
    policy = failover_policy(gateway, agent, current)
    if not policy.fallback:
        return None, sink
    heard = HeardTranscript(sink, current)
    catalog = gateway.settings.catalog
    schemas = active.tools.schemas()

    def make(name: str, history: list[HistoryTurn], greet: bool) -> BaseProvider:
        config = fallback_agent(gateway, agent, name, greet=greet).session_config(spec, schemas)
        config.history = list(history)
        return gateway.providers.create_provider(name, config, **provider_options.get(name, {}))

    def on_failover(old: str, new: str, reason: str, gap_ms: float) -> None:
        gateway.live.updated(active.call_id, provider=new)  # the console's live call
        if active.sink is not None:  # the record names the provider serving the call
            active.sink.served_by(old, new, catalog.providers[new].default_model)
        if gateway.metrics is not None:
            gateway.metrics.provider_failover(old, new, reason)

    def on_connect(name: str, ok: bool, reason: str) -> None:
        health, now = gateway.provider_health, time.monotonic()
        if ok:
            health.success(name, now)
        else:
            health.failure(name, now, reason)

    def usable(name: str) -> bool:
        return gateway.provider_health.state(name, time.monotonic()) != "open"

    failover = ProviderFailover(
        policy=policy,
        provider=current,
        make=make,
        heard=heard,
        filler_audio=apology_audio if gateway.settings.offline_voice else None,
        on_failover=on_failover,
        on_connect=on_connect,
        usable=usable,
    )
    return failover, heard
