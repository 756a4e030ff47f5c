"""Which events exist, who receives them, and what each one says (pure).

Event types (``data`` always has ``call_id``)::

    call.started      the call record exists: carrier, direction, from, to, agent, provider
    call.answered     media started: the caller is connected to the agent
    call.ended        outcome, status, duration, usage, cost, transcript, tool calls
                      (and ``recording_url`` when the call was recorded)
    call.analyzed     the post-call analysis, or why there is none (``status``)
    call.transferred  the call was handed to ``to``
    call.failover     the call moved to another provider (``from``, ``to``, ``reason``)
    tool.failed       a tool call failed: ``name``, ``arguments``, ``error``

Receivers are :class:`WebhookTarget` (a URL and the events it wants): the server-wide one
(``SWITCHBOARD_WEBHOOK_URL``, ``SWITCHBOARD_WEBHOOK_EVENTS``) and an agent's own
(``webhooks:`` in agents.yaml). :class:`EventRoutes` are the targets of one call; it turns a fact
into an :class:`~switchboard.store.ops.EnqueueEvent` for every URL that wants it, which the
caller writes in the transaction of the change it reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard.errors import ConfigError
from switchboard.store import ops

__all__ = [
    "EVENT_TYPES",
    "EventRoutes",
    "EventType",
    "WebhookTarget",
    "redact_url",
]

EventType = Literal[
    "call.started",
    "call.answered",
    "call.ended",
    "call.analyzed",
    "call.transferred",
    "call.failover",
    "tool.failed",
]
#: Every event type, in the order of a call's life.
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)


def redact_url(url: str) -> str:
    """``url`` without its query string or user info, for logs and the API (a receiver's token
    is often in its URL)."""
    scheme, _, rest = url.partition("://")
    host_path = rest.split("?", 1)[0].split("#", 1)[0]
    netloc, slash, path = host_path.partition("/")
    netloc = netloc.rsplit("@", 1)[-1]
    query = "?…" if "?" in rest else ""
    return f"{scheme}://{netloc}{slash}{path}{query}"


class WebhookTarget(BaseModel):
    """A receiver: ``{url, events}`` (agents.yaml ``webhooks:``; ``events`` empty means all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=8, max_length=2048)
    events: tuple[EventType, ...] = ()

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    def wants(self, event_type: str) -> bool:
        """Whether this receiver takes ``event_type``."""
        return not self.events or event_type in self.events

    @classmethod
    def server_wide(cls, url: str | None, events: Iterable[str]) -> WebhookTarget | None:
        """The ``SWITCHBOARD_WEBHOOK_URL`` receiver (None when unset).

        Raises:
            ConfigError: an unknown event name in ``SWITCHBOARD_WEBHOOK_EVENTS``.
        """
        if url is None:
            return None
        names = list(events)
        unknown = [name for name in names if name not in EVENT_TYPES]
        if unknown:
            raise ConfigError(
                f"SWITCHBOARD_WEBHOOK_EVENTS: unknown event {', '.join(unknown)} "
                f"(known: {', '.join(EVENT_TYPES)})"
            )
        return cls(url=url, events=tuple(names))


@dataclass(frozen=True, slots=True)
class EventRoutes:
    """The receivers of one call's events (server-wide first, then the agent's)."""

    targets: tuple[WebhookTarget, ...] = ()

    @classmethod
    def of(cls, *targets: WebhookTarget | None) -> EventRoutes:
        """Routes to the given targets (None ones skipped)."""
        return cls(tuple(t for t in targets if t is not None))

    def urls(self, event_type: EventType) -> tuple[str, ...]:
        """Every URL that takes ``event_type`` (each once)."""
        return tuple(dict.fromkeys(t.url for t in self.targets if t.wants(event_type)))

    def event(
        self,
        call_id: str,
        event_type: EventType,
        data: Mapping[str, Any] | None = None,
        *,
        with_record: bool = False,
    ) -> ops.EnqueueEvent | None:
        """The op queuing ``event_type`` for its receivers; None when nobody takes it.

        ``data`` gets ``call_id``; ``with_record`` adds the call's record as the op's
        transaction leaves it (see :class:`~switchboard.store.ops.EnqueueEvent`).
        """
        urls = self.urls(event_type)
        if not urls:
            return None
        return ops.EnqueueEvent(
            call_id,
            event_type,
            {"call_id": call_id, **(data or {})},
            urls,
            with_record=with_record,
        )
