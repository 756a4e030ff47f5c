"""The integrations of one app: who receives each call's events, and the two workers.

Built once from :class:`~switchboard.config.Settings` beside the store (``Integrations.build``),
started in the app's lifespan and closed at shutdown::

    integrations = Integrations.build(settings, store)
    integrations.start()                                   # delivery + analysis workers
    per_call = integrations.for_call(agent.webhooks, agent.analysis)   # → CallRecordSink
    ...
    await integrations.aclose()

Without a store there is no outbox, so no events are sent (they could not be durable) and no
analysis runs; ``for_call`` then routes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.integrations.analysis import AnalysisSpec
from switchboard.integrations.analysis_worker import AnalysisWorker
from switchboard.integrations.delivery import DeliveryWorker
from switchboard.integrations.events import EventRoutes, WebhookTarget
from switchboard.integrations.retry import RetryPolicy
from switchboard.integrations.signing import WebhookSecret
from switchboard.store import CallStore

__all__ = ["CallIntegrations", "Integrations"]


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class CallIntegrations:
    """What one call's record sink needs: where its events go, and its analysis request.

    Attributes:
        routes: the receivers of the call's events.
        analysis: the agent's analysis spec (None: no analysis).
        ended: call after the call's end is recorded (wakes the workers).
    """

    routes: EventRoutes = field(default_factory=EventRoutes)
    analysis: AnalysisSpec | None = None
    ended: Callable[[], None] = _nothing


@dataclass(frozen=True, slots=True)
class Integrations:
    """Event webhooks and post-call analysis for one app (see the module docstring).

    Attributes:
        server_target: ``SWITCHBOARD_WEBHOOK_URL`` and the events it takes, if set.
        delivery: sends the outbox (None without a store).
        analysis: runs pending analyses (None without a store).
    """

    server_target: WebhookTarget | None = None
    delivery: DeliveryWorker | None = None
    analysis: AnalysisWorker | None = None

    @classmethod
    def build(cls, settings: Settings, store: CallStore | None) -> Integrations:
        """The integrations ``settings`` configure (nothing runs until :meth:`start`).

        Raises:
            ConfigError: ``SWITCHBOARD_WEBHOOK_URL`` without ``SWITCHBOARD_WEBHOOK_SECRET``, a
                malformed secret, or an unknown event in ``SWITCHBOARD_WEBHOOK_EVENTS``.
        """
        raw = settings.secret("webhook_secret")
        secret = WebhookSecret.parse(raw) if raw else None
        target = WebhookTarget.server_wide(settings.webhook_url, settings.webhook_events)
        if target is not None and secret is None:
            raise ConfigError(
                "SWITCHBOARD_WEBHOOK_URL is set but SWITCHBOARD_WEBHOOK_SECRET is not: events "
                "are always signed (whsec_ + base64 of 32 random bytes)",
                missing=("SWITCHBOARD_WEBHOOK_SECRET",),
            )
        if store is None:
            return cls(target)
        policy = RetryPolicy(
            initial_s=settings.webhook_retry_initial_s,
            max_delay_s=max(settings.webhook_retry_max_s, settings.webhook_retry_initial_s),
            give_up_after_s=settings.webhook_give_up_after_s,
        )
        delivery = DeliveryWorker(
            store.outbox, secret=secret, policy=policy, timeout_s=settings.webhook_timeout_s
        )
        analysis = AnalysisWorker(store, settings, on_written=delivery.wake)
        return cls(target, delivery, analysis)

    def for_call(
        self, webhooks: WebhookTarget | None = None, analysis: AnalysisSpec | None = None
    ) -> CallIntegrations:
        """What a call of an agent with these ``webhooks`` and ``analysis`` sends and asks."""
        if self.delivery is None:
            return CallIntegrations()
        wanted = analysis if analysis is not None and analysis.asks_for_anything() else None
        return CallIntegrations(EventRoutes.of(self.server_target, webhooks), wanted, self._ended)

    def _ended(self) -> None:
        if self.delivery is not None:
            self.delivery.wake()
        if self.analysis is not None:
            self.analysis.wake()

    def start(self) -> None:
        """Start the workers (in the running loop)."""
        if self.delivery is not None:
            self.delivery.start()
        if self.analysis is not None:
            self.analysis.start()

    async def aclose(self) -> None:
        """Stop the workers; what is left pending stays in the database for the next start."""
        if self.analysis is not None:
            await self.analysis.aclose()
        if self.delivery is not None:
            await self.delivery.aclose()
