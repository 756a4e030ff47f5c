"""The REST read side of call records: ``GET /v1/calls``, ``/v1/calls/{id}``, ``/v1/usage``.

The :class:`~switchboard.store.CallStore` is the gateway's ``store``; without one these routes
answer 503. Errors use the app's JSON error body (``{"error": {...}}``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from switchboard.app.auth import require_token
from switchboard.app.state import get_state
from switchboard.cost import CostBreakdown
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.providers.registry import ProviderType
from switchboard.store import CallDetail, CallRecord, CallStatus, CallStore
from switchboard.store.records import timeline_offsets
from switchboard.telephony.base import TelephonyType

__all__ = ["calls_router"]

MAX_API_PAGE = 200

calls_router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_token)],
    tags=["calls"],
    responses={503: {"description": "the call store is not configured"}},
)


# -- response models ---------------------------------------------------------------------------
class CostLineOut(BaseModel):
    category: Literal["provider", "telephony"]
    source: str
    item: str
    quantity: float
    unit_price: float = Field(description="USD per `per` units")
    per: float
    unit: str
    amount: float = Field(description="USD")
    text: str = Field(description='e.g. "openai input audio tokens: 3,200 × $10/M = $0.032"')


class CostOut(BaseModel):
    lines: list[CostLineOut]
    total: float
    currency: str
    prices_as_of: date | None
    notes: list[str]

    @classmethod
    def of(cls, cost: CostBreakdown) -> CostOut:
        return cls.model_validate(cost.as_dict())


class UsageOut(BaseModel):
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    cached_input_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0
    input_audio_seconds: float = 0.0
    output_audio_seconds: float = 0.0
    tts_characters: int = 0

    @classmethod
    def of(cls, usage: Usage) -> UsageOut:
        return cls.model_validate(usage.as_dict())


class CallOut(BaseModel):
    """A call as listed."""

    id: str
    status: str
    direction: str
    carrier: str | None
    carrier_call_id: str | None
    provider: str | None = Field(description="the provider serving the call; once ended, the last")
    providers: list[str] = Field(
        description="every provider that served the call, in order (a failover adds one)"
    )
    model: str | None
    agent: str | None
    from_number: str | None
    to_number: str | None
    end_reason: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    cost_total: float | None = Field(description="USD")
    error: str | None

    @classmethod
    def fields_of(cls, record: CallRecord) -> dict[str, Any]:
        return {name: getattr(record, name) for name in CallOut.model_fields}

    @classmethod
    def of(cls, record: CallRecord) -> CallOut:
        return cls(**cls.fields_of(record))


class CallListOut(BaseModel):
    items: list[CallOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class TranscriptOut(BaseModel):
    seq: int
    role: str
    text: str
    started_ms: int | None
    ended_ms: int | None
    interrupted: bool


class ToolCallOut(BaseModel):
    seq: int
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]
    ok: bool
    duration_ms: float
    at: datetime
    provider_call_id: str | None


class TimelineOut(BaseModel):
    seq: int
    at: datetime
    #: ms since the call was accepted (the call's monotonic clock), for reading the timeline.
    t_ms: int
    kind: str
    data: dict[str, Any]


class LatencyOut(BaseModel):
    turn: int
    latency_ms: float


class CallDetailOut(CallOut):
    """A call with everything recorded about it."""

    usage: UsageOut | None
    cost: CostOut | None
    extra: dict[str, Any]
    transcript: list[TranscriptOut]
    tool_calls: list[ToolCallOut]
    timeline: list[TimelineOut]
    latencies: list[LatencyOut]
    analysis: dict[str, Any] | None = Field(
        description="post-call analysis: {status: pending|done|not_analysed|failed, summary, "
        "success, extracted, reason, error...}; null when the agent asks for none"
    )
    recording_url: str | None = Field(
        default=None,
        description="GET it (same bearer token) for the call's stereo recording; null when "
        "the call was not recorded or its recording has expired",
    )

    @classmethod
    def of_detail(cls, detail: CallDetail) -> CallDetailOut:
        record = detail.record
        return cls(
            **CallOut.fields_of(record),
            usage=UsageOut.of(record.usage) if record.usage else None,
            cost=CostOut.of(record.cost) if record.cost else None,
            extra=record.extra,
            transcript=[
                TranscriptOut.model_validate(t, from_attributes=True) for t in detail.transcript
            ],
            tool_calls=[
                ToolCallOut.model_validate(t, from_attributes=True) for t in detail.tool_calls
            ],
            timeline=[
                TimelineOut(seq=t.seq, at=t.at, t_ms=offset, kind=t.kind, data=t.data)
                for t, offset in zip(
                    detail.timeline, timeline_offsets(detail.timeline), strict=True
                )
            ],
            latencies=[
                LatencyOut.model_validate(t, from_attributes=True) for t in detail.latencies
            ],
            analysis=record.analysis,
            recording_url=_recording_url(record.extra),
        )


class UsageRowOut(BaseModel):
    day: date | None = None
    provider: str | None = None
    carrier: str | None = None
    agent: str | None = None
    calls: int
    minutes: float
    cost: float = Field(description="USD")


class UsageSummaryOut(BaseModel):
    group_by: list[str]
    rows: list[UsageRowOut]
    total_calls: int
    total_minutes: float
    total_cost: float
    currency: str = "USD"


# -- helpers -----------------------------------------------------------------------------------
def _recording_url(extra: dict[str, Any]) -> str | None:
    url = extra.get("recording_url")  # set by the call's recording (bridge/audio_recording.py)
    return url if isinstance(url, str) else None


def _store(request: Request) -> CallStore:
    store = get_state(request).gateway.store
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "call store is not configured")
    return store


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 has no UTC time
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{value} is out of range") from None


def _window(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "'since' must be before 'until'")
    return since, until


StoreDep = Annotated[CallStore, Depends(_store)]
Since = Annotated[
    datetime | None, Query(description="ISO 8601; inclusive; UTC when no offset is given")
]
Until = Annotated[
    datetime | None, Query(description="ISO 8601; exclusive; UTC when no offset is given")
]


# -- routes ------------------------------------------------------------------------------------
@calls_router.get(
    "/calls",
    response_model=CallListOut,
    responses={400: {"description": "an invalid cursor, or 'since' not before 'until'"}},
)
async def list_calls(
    store: StoreDep,
    call_status: Annotated[CallStatus | None, Query(alias="status")] = None,
    carrier: TelephonyType | None = None,
    provider: ProviderType | None = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=MAX_API_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    outcome: Annotated[
        str | None, Query(max_length=64, description="the end reason, e.g. caller_hangup")
    ] = None,
    number: Annotated[
        str | None, Query(max_length=32, description="part of the caller's or dialled number")
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="transcript search")
    ] = None,
) -> CallListOut:
    """Calls, newest first, filtered; follow ``next_cursor`` for older ones."""
    since, until = _window(since, until)
    try:
        page = await store.list_calls(
            status=call_status,
            carrier=carrier,
            provider=provider,
            agent=agent,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            outcome=outcome,
            number=number,
            text=q,
        )
    except StoreError as exc:
        if "cursor" in str(exc):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from exc
        raise
    return CallListOut(items=[CallOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@calls_router.get(
    "/calls/{call_id}",
    response_model=CallDetailOut,
    responses={404: {"description": "no such call"}},
)
async def get_call(call_id: str, store: StoreDep) -> CallDetailOut:
    """One call: record, transcript, tool calls, timeline, per-turn latency and cost."""
    detail = await store.get_call(call_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no call {call_id!r}")
    return CallDetailOut.of_detail(detail)


@calls_router.get(
    "/usage",
    response_model=UsageSummaryOut,
    responses={400: {"description": "'since' not before 'until'"}},
)
async def usage(
    store: StoreDep,
    since: Since = None,
    until: Until = None,
    group_by: Annotated[
        list[Literal["day", "provider", "carrier", "agent"]] | None,
        Query(description="repeat to group by several keys; default day and provider"),
    ] = None,
) -> UsageSummaryOut:
    """Calls, minutes and cost summed by UTC day and provider (or the ``group_by`` keys)."""
    since, until = _window(since, until)
    keys = list(dict.fromkeys(group_by or ["day", "provider"]))
    rows = await store.usage_summary(group_by=keys, since=since, until=until)
    return UsageSummaryOut(
        group_by=keys,
        rows=[UsageRowOut.model_validate(r, from_attributes=True) for r in rows],
        total_calls=sum(r.calls for r in rows),
        total_minutes=round(sum(r.minutes for r in rows), 4),
        total_cost=round(sum(r.cost for r in rows), 6),
    )
