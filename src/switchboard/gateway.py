"""The composition root: every service of one running app, built once from :class:`Settings`.

``create_app`` builds one :class:`Gateway` (``Gateway.build(settings)``) and hands it to the
routes (``get_state(request).gateway``) and to the call manager. Nothing else constructs a
provider registry, a carrier adapter, a call store, the metrics or the token signer of an app,
so an app holds exactly one of each, and :meth:`Gateway.aclose` closes what it opened::

    gateway = Gateway.build(settings)             # nothing is connected yet
    await gateway.start()                         # the store's schema is brought up to date
    adapter = gateway.carriers.get("twilio")      # created on first use, then shared
    ...
    await gateway.aclose()                        # adapters, then the store

The gateway is frozen: its services are fixed for the app's lifetime (they keep their own state
inside). Per-request and per-call state stays with the routes and the call manager.

What several workers must share is reached through this object, so a shared implementation
replaces an in-process one here and nowhere else (docs/architecture.md#the-composition-root).
The :class:`~switchboard.cluster.Cluster` (call directory, claims, limits, control bus) is built
here from the settings and joined at :meth:`Gateway.start`: in this process's memory by default,
in Redis when ``SWITCHBOARD_REDIS_URL`` is set (docs/cluster.md says what each feature uses).
Joining gives the media-token key every node shares, unless ``SWITCHBOARD_SIGNING_SECRET`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from switchboard.cluster import Cluster, default_node_id
from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.integrations.service import Integrations
from switchboard.live import LiveHub
from switchboard.metrics import Metrics
from switchboard.providers.health import ProviderHealth
from switchboard.providers.registry import ProviderRegistry
from switchboard.recordings import Recordings
from switchboard.security import TokenSigner
from switchboard.store import CallStore
from switchboard.telephony.base import TelephonyAdapter, TelephonyType
from switchboard.telephony.telnyx.warm import WarmLegEvents
from switchboard.telephony.telnyx.webhooks import SeenEvents
from switchboard.telephony.twilio.webhooks import ReplayGuard
from switchboard.telephony.warm import Briefings

if TYPE_CHECKING:  # the otel extra is optional: imported only when SWITCHBOARD_OTEL is set
    from switchboard.tracing import Tracing

__all__ = [
    "TWILIO_CALL_MEMORY_S",
    "CarrierAdapters",
    "Gateway",
    "NodeStatus",
    "ReplayGuards",
    "TwilioGuards",
    "node_name",
]

logger = logging.getLogger(__name__)

#: How long an answered Twilio CallSid is remembered (Twilio's longest call is 24 h).
TWILIO_CALL_MEMORY_S = 24 * 3600.0


class CarrierAdapters:
    """The app's call-control adapters: one per carrier, created on first use, closed once.

    Args:
        providers: the registry whose carrier factories create the adapters.
    """

    def __init__(self, providers: ProviderRegistry) -> None:
        self._providers = providers
        self._adapters: dict[str, TelephonyAdapter | None] = {}

    def get(self, carrier: TelephonyType | str) -> TelephonyAdapter | None:
        """The carrier's adapter, or None when its keys are not configured (logged once)."""
        key = str(carrier)
        if key not in self._adapters:
            try:
                self._adapters[key] = self._providers.create_telephony_adapter(key)
            except ConfigError as exc:
                logger.warning("no call control for %s: %s", key, exc)
                self._adapters[key] = None
        return self._adapters[key]

    async def aclose(self) -> None:
        """Close every adapter created so far (one failing to close does not stop the others)."""
        for adapter in self._adapters.values():
            if adapter is not None:
                with contextlib.suppress(Exception):
                    await adapter.aclose()


@dataclass(frozen=True, slots=True)
class TwilioGuards:
    """Replay state of the Twilio webhooks (docs/security.md#twilio-webhook-replays).

    Attributes:
        requests: signed payloads already accepted (10 minutes).
        calls: CallSids the voice webhook answered (:data:`TWILIO_CALL_MEMORY_S`).
        answers: answers being prepared, by signed payload, for copies that arrive meanwhile.

    The routes keep ``requests`` and ``calls`` in the cluster's claims now (one answer across
    every node); these two stay for programs that used them.
    """

    requests: ReplayGuard = field(default_factory=ReplayGuard)
    calls: ReplayGuard = field(default_factory=lambda: ReplayGuard(ttl_s=TWILIO_CALL_MEMORY_S))
    answers: dict[str, asyncio.Future[Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplayGuards:
    """What the carrier webhooks have already accepted (kept in this process).

    The routes now claim requests, CallSids and Telnyx event ids in the cluster
    (docs/cluster.md); only ``twilio.answers`` (a copy waiting for the answer being prepared on
    this node) is still used by them.

    Attributes:
        twilio: signed requests, answered CallSids and answers in preparation.
        telnyx: webhook event ids already processed (Telnyx retries deliveries).
    """

    twilio: TwilioGuards = field(default_factory=TwilioGuards)
    telnyx: SeenEvents = field(default_factory=SeenEvents)


@dataclass(slots=True)
class NodeStatus:
    """What this node says of itself beyond its services (``GET /readyz``).

    Attributes:
        worker: the worker inside the node (``SWITCHBOARD_WORKER``, else the pid).
        draining: set by :meth:`Gateway.drain` (on SIGTERM): the node takes no new call and
            reports not ready, while its live calls go on.
    """

    worker: str = ""
    draining: bool = False


@dataclass(frozen=True, slots=True)
class Gateway:
    """Every service of one app (see the module docstring); build it with :meth:`build`.

    Attributes:
        settings: the configuration, read once by the caller.
        providers: the provider registry (and, through it, the carrier factories).
        carriers: the carriers' call-control adapters, shared by the routes and the calls.
        store: call records; None keeps them in memory only (``/v1/calls`` answers 503).
        metrics: Prometheus metrics; None when ``monitoring.metrics_enabled`` is false.
        tracing: OpenTelemetry call traces (``SWITCHBOARD_OTEL=1``); None traces nothing.
        signer: mints and checks the media tokens that tie a media socket to its webhook.
        replay: what the carrier webhooks have already accepted.
        cluster: this node's handle on the state shared between nodes (in memory unless
            ``SWITCHBOARD_REDIS_URL`` is set); joined at :meth:`start`.
        integrations: event webhooks and post-call analysis: who receives each call's events,
            and the workers that deliver them and run the analyses (docs/integrations.md).
        live: this node's live calls and their events, for ``GET /v1/events`` and the console.
        status: this node's worker name and draining flag.
        recordings: where call recordings are written, and their retention sweeper.
        briefings: warm-transfer briefings waiting for the carrier's fetch.
        warm_legs: what Telnyx's webhooks said about warm-transfer legs.
        provider_health: each provider's circuit breaker (new calls skip a failing provider).
    """

    settings: Settings
    providers: ProviderRegistry
    carriers: CarrierAdapters
    store: CallStore | None
    metrics: Metrics | None
    tracing: Tracing | None
    signer: TokenSigner
    replay: ReplayGuards
    cluster: Cluster
    integrations: Integrations = field(default_factory=Integrations)
    live: LiveHub = field(default_factory=LiveHub)
    status: NodeStatus = field(default_factory=NodeStatus)
    recordings: Recordings | None = None
    briefings: Briefings = field(default_factory=Briefings)
    warm_legs: WarmLegEvents = field(default_factory=WarmLegEvents)

    @property
    def node_id(self) -> str:
        """This node's id in the cluster (``SWITCHBOARD_NODE_ID``, else ``host-pid-random``)."""
        return self.cluster.node_id

    @property
    def draining(self) -> bool:
        """Whether :meth:`drain` was called."""
        return self.status.draining

    def drain(self) -> None:
        """Take no new call from now on and report not ready (``/readyz`` 503); live calls
        go on until they end. Called on SIGTERM, before the server stops."""
        if not self.status.draining:
            logger.info("node %s draining: no new calls", self.node_id)
        self.status.draining = True

    #: Per-provider circuit breakers for new calls (providers/health.py; docs/failover.md).
    provider_health: ProviderHealth = field(default_factory=ProviderHealth)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        store: CallStore | None = None,
        tracing: Tracing | None = None,
        cluster: Cluster | None = None,
    ) -> Gateway:
        """The services ``settings`` asks for; nothing is connected until :meth:`start`.

        Args:
            settings: the configuration.
            store: the call store; one at ``SWITCHBOARD_DATABASE_URL`` when omitted.
            tracing: call traces; built when ``SWITCHBOARD_OTEL`` is set and this is omitted.
            cluster: the shared state; ``Cluster.from_settings(settings)`` when omitted.

        Raises:
            ConfigError: ``SWITCHBOARD_OTEL=1`` without the ``otel`` extra installed, or
                ``SWITCHBOARD_REDIS_URL`` set without the ``cluster`` extra.
        """
        providers = ProviderRegistry(settings)
        metrics_enabled = settings.catalog.monitoring.metrics_enabled
        store = CallStore.from_settings(settings) if store is None else store
        return cls(
            settings=settings,
            providers=providers,
            carriers=CarrierAdapters(providers),
            store=store,
            metrics=Metrics.from_catalog(settings.catalog) if metrics_enabled else None,
            tracing=_tracing() if tracing is None and settings.otel else tracing,
            signer=TokenSigner(settings.secret("signing_secret")),
            replay=ReplayGuards(),
            cluster=Cluster.from_settings(settings, node_id=node_name(settings))
            if cluster is None
            else cluster,
            integrations=Integrations.build(settings, store),
            status=NodeStatus(worker=settings.worker or str(os.getpid())),
            recordings=Recordings.build(settings, store),
        )

    async def start(self) -> None:
        """Join the cluster (heartbeats, inbox; the shared media-token key), then bring the
        store's schema up to date (safe at every start).

        When ``SWITCHBOARD_REDIS_URL`` is set and Redis does not answer yet, the node starts
        anyway and keeps trying to join in the background: until it has, ``/readyz`` is 503
        naming Redis and every call is refused (``ClusterAdmission``), so a deployment whose
        Redis comes up a moment after the gateways does not crash-loop.
        """
        await self.cluster.start(retry=True)
        if not self.settings.secret("signing_secret"):
            cluster, signer = self.cluster, self.signer  # every node uses the cluster's key
            cluster.when_joined(lambda: signer.follow(lambda: cluster.media_key))
        if self.store is not None:
            await self.store.migrate()
        self.integrations.start()  # after the migration: the workers read the outbox
        if self.recordings is not None:
            self.recordings.start()

    async def aclose(self) -> None:
        """Close the carrier adapters, then the store (its pending records are written first),
        then the cluster handle's client. The integrations' workers stop first; what they had
        not sent stays in the store for the next start."""
        await self.integrations.aclose()
        if self.recordings is not None:
            await self.recordings.aclose()
        await self.carriers.aclose()
        try:
            if self.store is not None:
                await self.store.aclose()
        finally:
            await self.cluster.aclose()


def node_name(settings: Settings) -> str:
    """This process's node id: ``SWITCHBOARD_NODE_ID`` (with ``-<SWITCHBOARD_WORKER>`` when
    that is set too, so the workers of one node never share an id), else ``host-pid-random``."""
    if not settings.node_id:
        return default_node_id()
    worker = re.sub(r"[^A-Za-z0-9._-]", "-", settings.worker or "")
    return f"{settings.node_id}-{worker}"[:128] if worker else settings.node_id


def _tracing() -> Tracing:
    """OpenTelemetry call traces for ``SWITCHBOARD_OTEL=1`` (the optional ``otel`` extra)."""
    try:
        from switchboard.tracing import Tracing
    except ImportError as exc:
        raise ConfigError(
            "SWITCHBOARD_OTEL=1 needs OpenTelemetry: pip install 'switchboard[otel]'"
        ) from exc
    return Tracing()
