"""The live event hub: what is happening on this node's calls, for the console and programs.

The call manager and each call's :class:`~switchboard.live.sink.LiveSink` publish
:class:`LiveEvent` s (a call started, changed or ended; a transcript line; a timeline entry; a
turn's latency); ``GET /v1/events`` subscribes and streams them as server-sent events.

Theory of operation. Publishing never waits: each subscriber has its own bounded queue, and
when a subscriber (a slow browser) falls behind, its *oldest* events are dropped and counted on
that subscriber, so a call is never slowed by whoever watches it and the watcher learns that it
missed something (and can re-read the call). The hub also keeps the state a new subscriber
starts from: the summary of every live call, and the recent events of each live call (bounded)
for a subscriber that watches one call.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from switchboard.queues import DroppingQueue

__all__ = ["LiveEvent", "LiveEventType", "LiveHub", "Subscription"]

LiveEventType = Literal[
    "call.started",
    "call.updated",
    "call.ended",
    "transcript",
    "transcript.partial",
    "timeline",
    "turn.latency",
]


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One thing that happened on a live call.

    Attributes:
        seq: the hub's sequence number (increasing; the SSE ``id``).
        type: what happened.
        call_id: the call it happened on.
        data: the event's fields (JSON-serialisable).
    """

    seq: int
    type: LiveEventType
    call_id: str
    data: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The event as the stream sends it."""
        return {"seq": self.seq, "type": self.type, "call_id": self.call_id, "data": self.data}

    def sse(self) -> str:
        """The event as one server-sent event (``id``, ``event`` and one ``data`` line)."""
        body = json.dumps(self.as_dict(), separators=(",", ":"), default=str)
        return f"id: {self.seq}\nevent: {self.type}\ndata: {body}\n\n"


class Subscription(DroppingQueue[LiveEvent]):
    """One subscriber's bounded queue: the oldest events go first when it is full.

    Args:
        call_id: only this call's events (None: every call's).
        maxlen: how many events wait at most before the oldest is dropped.
    """

    def __init__(self, call_id: str | None, maxlen: int) -> None:
        super().__init__(maxlen)
        self.call_id = call_id

    def offer(self, event: LiveEvent) -> None:
        """Queue ``event`` (if it is for this subscriber), never waiting."""
        if self.call_id is None or event.call_id == self.call_id:
            self.put(event)

    def pending(self) -> int:
        """How many events wait to be read."""
        return len(self)


class LiveHub:
    """Live calls and their events, in this process (see the module docstring).

    Args:
        queue_size: each subscriber's queue bound.
        history: how many recent events of each live call are kept for new subscribers.
    """

    def __init__(self, *, queue_size: int = 1000, history: int = 500) -> None:
        self.queue_size = queue_size
        self.history = history
        self.calls: dict[str, dict[str, Any]] = {}  # call id -> its summary, while live
        self._recent: dict[str, deque[LiveEvent]] = {}
        self._subscribers: set[Subscription] = set()
        self._seq = itertools.count(1)
        #: called with every event after the subscribers (never waits): with several nodes,
        #: what shares this node's calls' events with the others (``app/cluster_live_out.py``)
        self.forward: Callable[[LiveEvent], None] | None = None

    # -- publishing ------------------------------------------------------------------------------
    def publish(self, type_: LiveEventType, call_id: str, data: Mapping[str, Any]) -> LiveEvent:
        """Record and fan out one event (never waits). ``call.*`` events keep the summary of
        live calls: ``call.started`` adds one, ``call.updated`` merges into it,
        ``call.ended`` removes it (and the call's recent events)."""
        event = LiveEvent(next(self._seq), type_, call_id, dict(data))
        if type_ == "call.started":
            self.calls[call_id] = dict(data)
            self._recent[call_id] = deque(maxlen=self.history)
        elif type_ == "call.updated" and call_id in self.calls:
            self.calls[call_id].update(data)
        if type_ == "call.ended":
            self.calls.pop(call_id, None)
            self._recent.pop(call_id, None)
        elif call_id in self._recent and type_ != "transcript.partial":  # (passing, not kept)
            self._recent[call_id].append(event)
        for subscriber in self._subscribers:
            subscriber.offer(event)
        if self.forward is not None:
            self.forward(event)
        return event

    def started(self, call_id: str, summary: Mapping[str, Any]) -> None:
        """A call is live (``summary``: caller, number, agent, provider, carrier...)."""
        self.publish("call.started", call_id, summary)

    def updated(self, call_id: str, **changes: Any) -> None:
        """A live call's summary changed (status, latency, cost so far...)."""
        if call_id in self.calls:
            self.publish("call.updated", call_id, changes)

    def ended(self, call_id: str, reason: str) -> None:
        """A call ended (``reason`` is its end reason)."""
        if call_id in self.calls:
            self.publish("call.ended", call_id, {"reason": reason})

    # -- subscribing -----------------------------------------------------------------------------
    @contextmanager
    def subscribe(self, call_id: str | None = None) -> Iterator[Subscription]:
        """A subscription for the ``with`` block: every call's events, or ``call_id``'s."""
        subscription = Subscription(call_id, self.queue_size)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def snapshot(self) -> list[dict[str, Any]]:
        """The live calls' summaries, each with its ``call_id``."""
        return [{**summary, "call_id": call_id} for call_id, summary in self.calls.items()]

    def recent(self, call_id: str) -> list[LiveEvent]:
        """The recent events of a live call (transcript, timeline, latency), oldest first."""
        return list(self._recent.get(call_id, ()))

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)
