"""``create_app(settings)``: the FastAPI application serving carriers and the REST API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from switchboard import __version__
from switchboard.app.api import health_router, providers_router
from switchboard.app.calls_api import calls_router
from switchboard.app.cluster_control import install_cluster_handlers
from switchboard.app.cluster_live import RemoteCallFeed
from switchboard.app.cluster_live_out import LiveForwarder
from switchboard.app.console_routes import install_console
from switchboard.app.control_api import control_router, stream_router
from switchboard.app.deliveries_api import deliveries_router
from switchboard.app.edge import EdgeGuard
from switchboard.app.errors import install_error_handlers
from switchboard.app.events_api import events_router
from switchboard.app.metrics_api import metrics_router
from switchboard.app.openapi import describe_edge
from switchboard.app.operator_api import operator_router
from switchboard.app.operator_audio import operator_audio_router
from switchboard.app.readiness import readiness_router
from switchboard.app.recordings_api import recordings_router
from switchboard.app.state import AppState
from switchboard.app.telnyx import telnyx_router
from switchboard.app.twilio import twilio_router
from switchboard.app.warm_routes import warm_router
from switchboard.bridge.apology import preload_offline_voice
from switchboard.config import Settings
from switchboard.gateway import Gateway
from switchboard.telephony.base import CallHandler

if TYPE_CHECKING:
    from switchboard.agents import AgentBook
    from switchboard.bridge.active import BridgeOverrides
    from switchboard.cluster import Cluster
    from switchboard.store import CallStore
    from switchboard.tracing import Tracing

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    calls: CallHandler | None = None,
    store: CallStore | None = None,
    tracing: Tracing | None = None,
    agents: AgentBook | None = None,
    provider_options: Mapping[str, Mapping[str, Any]] | None = None,
    media_timeout_s: float = 30.0,
    bridge_overrides: BridgeOverrides | None = None,
    cluster: Cluster | None = None,
) -> FastAPI:
    """Build the app for ``settings``: one :class:`~switchboard.gateway.Gateway` of services,
    the call handler, and the routes.

    Args:
        settings: the configuration (read once by the caller, e.g. the CLI).
        calls: the call handler carrier routes hand calls to; the bridge's ``CallManager`` when
            omitted. Tests of carrier routes may pass a small recording handler.
        store: the :class:`~switchboard.store.CallStore` for call records; one at
            ``SWITCHBOARD_DATABASE_URL`` when omitted (migrated at start-up).
        tracing: call traces; built when ``SWITCHBOARD_OTEL=1`` and this is omitted.
        agents: the ``CallManager``'s agent profiles (``SWITCHBOARD_AGENTS`` when omitted).
        provider_options: extra factory keyword arguments per provider name, for the manager.
        media_timeout_s: how long a prepared call waits for its media socket (the manager's).
        bridge_overrides: adjusts the ``BridgeOptions`` of every call (the manager's).
        cluster: this node's shared-state handle; ``Cluster.from_settings`` when omitted
            (tests pass nodes of one test cluster).

    Raises:
        ConfigError: ``SWITCHBOARD_OTEL=1`` without the ``otel`` extra installed.
    """
    gateway = Gateway.build(settings, store=store, tracing=tracing, cluster=cluster)
    if calls is None:
        from switchboard.bridge.manager import CallManager

        calls = CallManager(
            gateway,
            agents=agents,
            provider_options=provider_options,
            media_timeout_s=media_timeout_s,
            bridge_overrides=bridge_overrides,
        )
    state = AppState.build(gateway, calls)
    install_cluster_handlers(state)  # commands for this node's calls, handed-off events
    metrics = gateway.metrics
    lag_interval_s = settings.catalog.monitoring.event_loop_lag_interval_s

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The failover filler's offline voice, before any call (loading it stalls the loop).
        # Its model loads on a worker thread while the gateway starts (the store's migration,
        # the cluster): much of the load is ONNX Runtime's native code, which a second core
        # runs beside them.
        voice = (
            asyncio.get_running_loop().create_task(preload_offline_voice())
            if settings.offline_voice
            else None
        )
        try:
            await gateway.start()
        except BaseException:
            if voice is not None:
                voice.cancel()
                with suppress(asyncio.CancelledError):
                    await voice
            raise
        if voice is not None:
            await voice
        # other nodes' live calls on this node's /v1/events (none on a single node)
        feed = RemoteCallFeed.for_app(state)
        remote_calls = asyncio.get_running_loop().create_task(feed.run())
        # this node's calls' transcript, latency and cost for the other nodes' streams
        sharing = asyncio.get_running_loop().create_task(
            LiveForwarder(gateway.cluster, gateway.live, feed.is_local).run()
        )
        lag_watch = (
            asyncio.get_running_loop().create_task(metrics.watch_event_loop(lag_interval_s))
            if metrics is not None
            else None
        )
        try:
            yield
        finally:
            for task in (remote_calls, sharing):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            if lag_watch is not None:
                lag_watch.cancel()
                with suppress(asyncio.CancelledError):
                    await lag_watch
            await state.aclose()

    docs = settings.api_docs  # the interactive docs and schema only when asked for
    app = FastAPI(
        title="switchboard",
        version=__version__,
        description="AI voice agents on phone numbers: carriers bridged to voice providers.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.switchboard = state
    app.add_middleware(EdgeGuard)  # inside the request-id middleware install_error_handlers adds
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(readiness_router)  # GET /readyz (app/readiness.py)
    app.include_router(providers_router)
    app.include_router(calls_router)
    app.include_router(recordings_router)  # GET /v1/calls/{id}/recording
    app.include_router(control_router)
    app.include_router(stream_router)
    app.include_router(metrics_router)
    app.include_router(deliveries_router)  # webhook deliveries (docs/integrations.md)
    app.include_router(events_router)  # live call events (GET /v1/events)
    app.include_router(operator_router)  # an operator's actions on a live call
    app.include_router(operator_audio_router)  # listen in, speak when taken over
    install_console(app)  # the operator console's static files (docs/console.md)
    # Carrier routes (each module adds its webhooks and media websocket).
    app.include_router(twilio_router)
    app.include_router(warm_router)  # a warm transfer's briefing (bridge/warm_transfer.py)
    app.include_router(telnyx_router)
    if docs:
        describe_edge(app)  # the schema, with what the edge answers before the routes
    return app
