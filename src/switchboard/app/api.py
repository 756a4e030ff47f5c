"""The REST API's provider and health routes (``/healthz``, ``/v1/providers``)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from switchboard.app.auth import require_token
from switchboard.app.state import get_state
from switchboard.providers.registry import ProviderInfo

__all__ = ["health_router", "providers_router"]

health_router = APIRouter()
providers_router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


class Health(BaseModel):
    status: str


class ProviderOut(BaseModel):
    """A provider as the API shows it: capabilities and configuration state, never a secret."""

    name: str
    display_name: str
    kind: str
    configured: bool
    missing: list[str]
    default_model: str
    #: The models this provider's sessions run (those served by its own endpoint).
    models: list[str]
    #: A segmented pipeline's LLM choices (an agent's ``llm_model``); empty for the others.
    llm_models: list[str] = []
    voices: list[str]
    capabilities: dict[str, Any]
    estimated_cost_per_minute_usd: float
    #: Its circuit breaker for new calls: ``state`` (``closed``, ``open`` = new calls skip it,
    #: ``half_open`` = one probe call may use it), ``recent_failures``, ``retry_in_s``,
    #: ``last_failure`` (docs/failover.md).
    health: dict[str, Any] = {}

    @classmethod
    def of(cls, info: ProviderInfo, health: dict[str, Any] | None = None) -> ProviderOut:
        caps = info.capabilities
        return cls(
            name=info.name,
            display_name=info.display_name,
            kind=info.kind,
            configured=info.configured,
            missing=list(info.missing),
            default_model=info.default_model,
            models=list(info.models),
            llm_models=list(info.extra.get("llm_models", [])),
            voices=list(info.extra.get("voices", [])),
            capabilities={
                "realtime": caps.realtime,
                "multimodal": caps.multimodal,
                "function_calling": caps.function_calling,
                "interruption": caps.interruption,
                "transcription": caps.transcription,
                "audio_formats": [f.value for f in caps.audio_formats],
                "input_sample_rates": list(caps.input_sample_rates),
                "output_sample_rates": list(caps.output_sample_rates),
                "max_session_seconds": caps.max_session_seconds,
                "languages": list(caps.languages),
                "cost_tier": caps.cost_tier,
                "typical_latency_ms": caps.typical_latency_ms,
            },
            estimated_cost_per_minute_usd=info.estimated_cost_per_minute,
            health=health or {},
        )


@health_router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> Health:
    """Liveness: the process serves requests.

    Public, so it says nothing more: not even the version, which would tell a prober which
    advisories apply.
    """
    return Health(status="ok")


@providers_router.get("/providers", response_model=list[ProviderOut], tags=["providers"])
async def list_providers(request: Request) -> list[ProviderOut]:
    """Every provider in the catalogue with its capabilities and whether it is configured."""
    gateway = get_state(request).gateway
    health, now = gateway.provider_health, time.monotonic()
    return [
        ProviderOut.of(info, health.snapshot(info.name, now))
        for info in gateway.providers.list_providers()
    ]
