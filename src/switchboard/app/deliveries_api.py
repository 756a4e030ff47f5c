"""Webhook deliveries: ``GET /v1/webhooks/deliveries``, ``POST /v1/webhooks/deliveries/{id}/retry``.

Each row is one event for one receiver URL (the outbox, docs/integrations.md#delivery): its
status (``pending``, ``delivered``, ``failed`` = given up), attempts, and the last error. URLs are
shown without their query string (a receiver's token is often there). Retrying makes a delivery
pending and due now, with its ``webhook-id`` unchanged; a delivered one is sent again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field

from switchboard.app.auth import require_token
from switchboard.app.state import get_state
from switchboard.errors import StoreError
from switchboard.integrations.events import redact_url
from switchboard.store.models import utcnow
from switchboard.store.outbox import Delivery, Outbox

__all__ = ["deliveries_router"]

deliveries_router = APIRouter(
    prefix="/v1/webhooks", dependencies=[Depends(require_token)], tags=["webhooks"]
)


class DeliveryOut(BaseModel):
    """One event for one receiver."""

    id: int
    event_id: str = Field(description="the webhook-id header: the same on every attempt")
    event_type: str
    call_id: str
    seq: int = Field(description="the event's place among its call's events")
    url: str = Field(description="the receiver, without its query string")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime = Field(description="when a pending delivery is tried next")
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            call_id=delivery.call_id,
            seq=delivery.seq,
            url=redact_url(delivery.url),
            status=delivery.status,
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            next_attempt_at=delivery.next_attempt_at,
            last_attempt_at=delivery.last_attempt_at,
            delivered_at=delivery.delivered_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
        )


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


def _outbox(request: Request) -> Outbox:
    store = get_state(request).gateway.store
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "call store is not configured")
    return store.outbox


@deliveries_router.get("/deliveries", response_model=DeliveryPageOut)
async def list_deliveries(
    request: Request,
    status_: Annotated[
        Literal["pending", "delivered", "failed"] | None, Query(alias="status")
    ] = None,
    call_id: Annotated[str | None, Query(max_length=128)] = None,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="deliveries older than this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPageOut:
    """Deliveries newest first, filtered by status, call or event type."""
    try:
        rows = await _outbox(request).deliveries(
            status=status_, call_id=call_id, event_type=event_type, before_id=before, limit=limit
        )
    except StoreError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    items = [DeliveryOut.of(row) for row in rows]
    return DeliveryPageOut(items=items, next_before=items[-1].id if len(items) == limit else None)


@deliveries_router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
async def retry_delivery(
    request: Request, delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> DeliveryOut:
    """Send a delivery again now (after it was given up, or to resend it)."""
    try:
        delivery = await _outbox(request).retry(delivery_id, utcnow())
    except StoreError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    if delivery is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery {delivery_id}")
    worker = get_state(request).gateway.integrations.delivery
    if worker is not None:
        worker.wake()
    return DeliveryOut.of(delivery)
