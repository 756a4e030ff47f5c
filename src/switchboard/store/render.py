"""Rich renderings of call records for ``switchboard calls`` and ``switchboard calls show ID``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from switchboard.cost import format_money
from switchboard.store.records import CallDetail, CallPage, CallRecord, timeline_offsets

__all__ = ["render_call_detail", "render_call_list"]

_STATUS_STYLE = {
    "completed": "green",
    "in_progress": "cyan",
    "ringing": "cyan",
    "queued": "cyan",
    "failed": "red",
    "busy": "yellow",
    "no_answer": "yellow",
    "canceled": "yellow",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _ms(value: int | None) -> str:
    return "" if value is None else f"{value / 1000:.1f}s"


def _status(record: CallRecord) -> Text:
    return Text(record.status, style=_STATUS_STYLE.get(record.status, ""))


def render_call_list(page: CallPage) -> Table:
    """A table of calls (newest first), with the next-page cursor in the caption."""
    table = Table(title="Calls", header_style="bold", expand=False)
    for column in ("id", "created (UTC)", "status", "carrier", "from", "to", "agent"):
        table.add_column(column, no_wrap=column in ("id", "created (UTC)"))
    table.add_column("provider / model")
    table.add_column("duration", justify="right")
    table.add_column("cost", justify="right")
    for r in page.items:
        model = f"{r.provider or '—'}" + (f" / {r.model}" if r.model else "")
        table.add_row(
            r.id,
            _when(r.created_at),
            _status(r),
            r.carrier or "—",
            r.from_number or "—",
            r.to_number or "—",
            r.agent or "—",
            model,
            _duration(r.duration_s),
            format_money(r.cost_total) if r.cost_total is not None else "—",
        )
    if not page.items:
        table.caption = "no calls"
    elif page.next_cursor:
        table.caption = f"more: --cursor {page.next_cursor}"
    return table


def _summary(r: CallRecord) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("status", _status(r)),
        ("end reason", r.end_reason or "—"),
        ("direction", r.direction),
        ("carrier", f"{r.carrier or '—'} {r.carrier_call_id or ''}".strip()),
        ("from → to", f"{r.from_number or '—'} → {r.to_number or '—'}"),
        ("agent", r.agent or "—"),
        ("provider", f"{r.provider or '—'}" + (f" ({r.model})" if r.model else "")),
        ("created", _when(r.created_at)),
        ("answered", _when(r.answered_at)),
        ("ended", _when(r.ended_at)),
        ("duration", _duration(r.duration_s)),
    ]
    if r.error:
        rows.append(("error", Text(r.error, style="red")))
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _transcript(detail: CallDetail) -> Table:
    table = Table(title="Transcript", header_style="bold", expand=True)
    table.add_column("at", justify="right", no_wrap=True)
    table.add_column("who", no_wrap=True)
    table.add_column("text", ratio=1)
    for entry in detail.transcript:
        text = Text(entry.text)
        if entry.interrupted:
            text.stylize("dim")
            text.append(" [interrupted]", style="bold yellow")
        who = Text(entry.role, style="cyan" if entry.role == "caller" else "magenta")
        table.add_row(_ms(entry.started_ms), who, text)
    return table


def _tools(detail: CallDetail) -> Table:
    table = Table(title="Tool calls", header_style="bold", expand=True)
    for column in ("#", "tool", "arguments", "result", "ok", "ms"):
        table.add_column(column, justify="right" if column in ("#", "ms") else "left")
    for call in detail.tool_calls:
        table.add_row(
            str(call.seq),
            call.name,
            ", ".join(f"{k}={v!r}" for k, v in call.arguments.items()),
            str(call.result.get("result", call.result.get("error", ""))),
            Text("yes", style="green") if call.ok else Text("no", style="red"),
            f"{call.duration_ms:.0f}",
        )
    return table


def _timeline(detail: CallDetail) -> Table:
    table = Table(title="Timeline", header_style="bold", expand=True)
    table.add_column("+ms", justify="right", no_wrap=True)
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("data")
    offsets = timeline_offsets(detail.timeline)
    for event, offset in zip(detail.timeline, offsets, strict=True):
        data = ", ".join(f"{k}={v}" for k, v in event.data.items() if k != "t_ms")
        table.add_row(f"{offset:,}", event.at.strftime("%H:%M:%S.%f")[:-3], event.kind, data)
    return table


def _latencies(detail: CallDetail) -> Table:
    table = Table(title="Turn latency", header_style="bold", min_width=36)
    table.add_column("turn", justify="right")
    table.add_column("ms", justify="right")
    values = [lat.latency_ms for lat in detail.latencies]
    for lat in detail.latencies:
        table.add_row(str(lat.turn), f"{lat.latency_ms:.0f}")
    if values:
        ordered = sorted(values)
        median = ordered[len(ordered) // 2]
        table.caption = f"median {median:.0f} ms, max {ordered[-1]:.0f} ms"
    return table


def _cost(record: CallRecord) -> RenderableType:
    cost = record.cost
    if cost is None:
        return Text("cost: not recorded", style="dim")
    table = Table(title="Cost", header_style="bold")
    table.add_column("item")
    table.add_column(cost.currency, justify="right")
    for line in cost.lines:
        table.add_row(line.text.rsplit(" = ", 1)[0], format_money(line.amount))
    table.add_row(Text("total", style="bold"), Text(format_money(cost.total), style="bold"))
    if cost.prices_as_of:
        table.caption = f"estimate from list prices as of {cost.prices_as_of.isoformat()}"
    return table


def _analysis(analysis: dict[str, Any]) -> RenderableType:
    """The post-call analysis: its result, or plainly why there is none."""
    state = str(analysis.get("status"))
    if state == "pending":
        return Text("analysis: pending", style="dim")
    if state == "not_analysed":
        return Text(f"analysis: not analysed — {analysis.get('reason', '')}", style="yellow")
    if state == "failed":
        return Text(f"analysis: failed — {analysis.get('error', '')}", style="red")
    table = Table(title="Analysis", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    if "summary" in analysis:
        table.add_row("summary", str(analysis["summary"]))
    success = analysis.get("success")
    if isinstance(success, dict):
        verdict = "met" if success.get("met") else "not met"
        table.add_row("success", f"{verdict}: {success.get('criterion')} — {success.get('reason')}")
    if "extracted" in analysis:
        table.add_row("extracted", json.dumps(analysis["extracted"], ensure_ascii=False, indent=1))
    table.caption = f"{analysis.get('provider')} {analysis.get('model')}"
    return table


def render_call_detail(detail: CallDetail) -> RenderableType:
    """Everything about one call: summary, transcript (interruptions marked), tool calls,
    timeline, per-turn latency, itemised cost and the post-call analysis."""
    record = detail.record
    parts: list[RenderableType] = [Panel(_summary(record), title=f"Call {record.id}")]
    parts.append(_transcript(detail) if detail.transcript else Text("no transcript", style="dim"))
    if detail.tool_calls:
        parts.append(_tools(detail))
    if detail.timeline:
        parts.append(_timeline(detail))
    if detail.latencies:
        parts.append(_latencies(detail))
    parts.append(_cost(record))
    if record.analysis is not None:
        parts.append(_analysis(record.analysis))
    return Group(*parts)
