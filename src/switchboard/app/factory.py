"""``create_app(settings)``: the FastAPI application serving carriers and the REST API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI

from switchboard import __version__
from switchboard.app.api import health_router, providers_router
from switchboard.app.calls_api import calls_router
from switchboard.app.control_api import control_router, stream_router
from switchboard.app.edge import EdgeGuard
from switchboard.app.errors import install_error_handlers
from switchboard.app.metrics_api import METRICS_KEY, metrics_router
from switchboard.app.openapi import describe_edge
from switchboard.app.state import AppState
from switchboard.app.telnyx import telnyx_router
from switchboard.app.twilio import twilio_router
from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.metrics import Metrics
from switchboard.telephony.base import CallHandler

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _tracing() -> Any:
    """OpenTelemetry call traces for ``SWITCHBOARD_OTEL=1`` (the optional ``otel`` extra)."""
    try:
        from switchboard.tracing import Tracing
    except ImportError as exc:
        raise ConfigError(
            "SWITCHBOARD_OTEL=1 needs OpenTelemetry: pip install 'switchboard[otel]'"
        ) from exc
    return Tracing()


def create_app(
    settings: Settings,
    *,
    calls: CallHandler | None = None,
    store: Any | None = None,
    **manager_options: Any,
) -> FastAPI:
    """Build the app for ``settings``.

    Args:
        settings: the configuration (read once by the caller, e.g. the CLI).
        calls: the call handler carrier routes hand calls to; the bridge's ``CallManager`` when
            omitted. Tests of carrier routes may pass a small recording handler.
        store: the :class:`~switchboard.store.CallStore` for call records; one at
            ``SWITCHBOARD_DATABASE_URL`` when omitted (migrated at start-up).
        manager_options: passed to ``CallManager`` (agents, provider_options, ...).
    """
    from switchboard.store import CallStore

    if store is None:
        store = CallStore.from_settings(settings)
    monitoring = settings.catalog.monitoring
    metrics = Metrics.from_catalog(settings.catalog) if monitoring.metrics_enabled else None
    if calls is None:
        from switchboard.bridge.manager import CallManager

        manager_options.setdefault("metrics", metrics)
        if settings.otel and "tracing" not in manager_options:
            manager_options["tracing"] = _tracing()
        calls = CallManager(settings, store=store, **manager_options)
    state = AppState.build(settings, calls)
    state.extras["store"] = store
    if metrics is not None:
        state.extras[METRICS_KEY] = metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.migrate()
        lag_watch = (
            asyncio.get_running_loop().create_task(
                metrics.watch_event_loop(monitoring.event_loop_lag_interval_s)
            )
            if metrics is not None
            else None
        )
        try:
            yield
        finally:
            if lag_watch is not None:
                lag_watch.cancel()
                with suppress(asyncio.CancelledError):
                    await lag_watch
            closer = getattr(calls, "aclose", None)
            if closer is not None:
                await closer()
            await store.aclose()

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
    app.include_router(providers_router)
    app.include_router(calls_router)
    app.include_router(control_router)
    app.include_router(stream_router)
    app.include_router(metrics_router)
    # Carrier routes (each module adds its webhooks and media websocket).
    app.include_router(twilio_router)
    app.include_router(telnyx_router)
    if docs:
        describe_edge(app)  # the schema, with what the edge answers before the routes
    return app
