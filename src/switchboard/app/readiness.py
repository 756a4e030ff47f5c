"""``GET /readyz``: may a load balancer send this node new calls?

``/healthz`` says the process serves requests (liveness: restart it when it does not).
``/readyz`` says whether it should get *new* calls: 200 ``{"status": "ready"}``, else 503
``{"status": "not-ready", "reasons": [...]}`` when

* the node is **draining** (``Gateway.drain()``, on SIGTERM): its live calls go on, new ones
  belong elsewhere;
* the node is **full**: ``SWITCHBOARD_MAX_CALLS`` calls are prepared or bridged here;
* the cluster's shared state (**Redis**) does not answer — with the embedded in-memory state it
  always does;
* the **database** does not answer (each check has a short timeout, so a hung engine is a
  "no", not a hung probe).

Public, like ``/healthz``: the reasons name no host, URL or secret.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from switchboard.app.state import AppState, get_state
from switchboard.bridge.manager import CallManager
from switchboard.errors import StoreError

__all__ = ["Readiness", "readiness", "readiness_router"]

logger = logging.getLogger(__name__)

readiness_router = APIRouter(tags=["health"])
#: Longest a readiness check waits for Redis or the database.
CHECK_TIMEOUT_S = 2.0


class Readiness(BaseModel):
    """Whether this node takes new calls, and why not."""

    status: Literal["ready", "not-ready"]
    reasons: list[str] = []


async def readiness(state: AppState) -> Readiness:
    """This node's readiness (see the module docstring)."""
    gateway = state.gateway
    reasons: list[str] = []
    if gateway.draining:
        reasons.append("draining")
    calls, limit = state.calls, gateway.settings.max_calls
    if limit and isinstance(calls, CallManager) and len(calls.calls) >= limit:
        reasons.append(f"full: {limit} calls")
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            healthy = await gateway.cluster.healthy()
    except TimeoutError:
        healthy = False
    if not healthy:
        reasons.append("cluster state (Redis) unreachable")
    if gateway.store is not None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await gateway.store.ping()
        except (StoreError, TimeoutError):
            reasons.append("database unreachable")
    return Readiness(status="not-ready" if reasons else "ready", reasons=reasons)


@readiness_router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "not ready: draining, full, or "
            "Redis or the database unreachable (the reasons say which)",
        }
    },
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    """Readiness: 200 when this node takes new calls, 503 with the reasons when not."""
    ready = await readiness(get_state(request))
    if ready.reasons:
        logger.info("not ready: %s", "; ".join(ready.reasons))
        return JSONResponse(ready.model_dump(), status_code=503)
    return ready
