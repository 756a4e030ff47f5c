"""``GET /v1/events``: the live calls' events as one server-sent-events stream.

The stream opens with a ``snapshot`` event (the live calls' summaries; with ``?call_id=`` also
that call's recent events), then sends each :class:`~switchboard.live.LiveEvent` as it happens:
``call.started``, ``call.updated`` (status, ``last_latency_ms``, ``turns``, ``cost_usd``),
``call.ended``, ``transcript``, ``transcript.partial`` (``role`` and the ``text`` said so far,
``""`` once the line settles; passing, not kept for a new subscriber), ``timeline``
(lifecycle, tool calls with arguments and results, barge-ins, failovers, transfers,
operators' actions) and ``turn.latency``. Each event's ``data`` is
``{"seq", "type", "call_id", "data"}``. A comment line every 15 s keeps
proxies from closing an idle stream. A client that reads too slowly loses its oldest events,
never slows a call, and is told so with a ``dropped`` event (``{"dropped": n}`` in all).

It takes the API token like every ``/v1`` route (``Authorization: Bearer``); browsers read it
with ``fetch`` and a stream reader, which can send that header (``EventSource`` cannot).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from switchboard.app.auth import require_token
from switchboard.app.state import get_state
from switchboard.live import LiveHub

__all__ = ["events_router"]

#: How often an idle stream sends a comment line.
KEEPALIVE_S = 15.0

events_router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], tags=["events"])


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


async def _stream(hub: LiveHub, call_id: str | None) -> AsyncIterator[str]:
    # The snapshot and the subscription are taken in one step of the event loop, so no event
    # falls between them.
    with hub.subscribe(call_id) as subscription:
        snapshot: dict[str, Any] = {"calls": hub.snapshot()}
        if call_id is not None:
            snapshot["events"] = [e.as_dict() for e in hub.recent(call_id)]
        yield _sse("snapshot", snapshot)
        dropped = 0
        while True:
            event = await subscription.get(KEEPALIVE_S)
            if subscription.dropped != dropped:
                dropped = subscription.dropped
                yield _sse("dropped", {"dropped": dropped})
            yield ": keepalive\n\n" if event is None else event.sse()


@events_router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "a text/event-stream of live call events (see the module's doc)",
            # The schema of one event (OpenAPI 3.2 / schemathesis read it per event): its name
            # and its JSON data.
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "event": {"type": "string"},
                            "data": {"type": "string", "contentMediaType": "application/json"},
                            "id": {"type": "string"},
                        },
                        "required": ["event", "data"],
                    }
                }
            },
        }
    },
)
async def events(
    request: Request,
    call_id: Annotated[str | None, Query(max_length=64, description="only this call")] = None,
) -> StreamingResponse:
    """Live calls and their events as server-sent events (snapshot first, then each event)."""
    hub = get_state(request).gateway.live
    return StreamingResponse(
        _stream(hub, call_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
