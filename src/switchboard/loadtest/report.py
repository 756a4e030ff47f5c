"""The load test's result: totals over every call, as a dict (JSON) and as a rich table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from switchboard.loadtest.stats import LatencySummary

__all__ = ["LoadReport", "ServerUsage"]


@dataclass(slots=True)
class ServerUsage:
    """The server process while the calls ran (from ``/proc``), when its PID was given.

    ``cpu_percent`` is over the steady window (every call up, none ending yet) when there was
    one, else over the whole run; 100 = one core busy.
    """

    pid: int
    cpu_percent: float
    cpu_window_s: float
    rss_start_mb: float
    rss_peak_mb: float
    rss_per_call_kb: float
    #: Share of the window the server was ready to run but another process had its CPU (%):
    #: a busy machine, not the server's own cost.
    cpu_wait_percent: float = 0.0


@dataclass(slots=True)
class LoadReport:
    """Totals of one load test run (times in milliseconds)."""

    carrier: str
    server: str
    calls: int
    duration_s: float
    ramp_s: float
    calls_ok: int = 0
    calls_failed: int = 0
    mode: str = "tag"
    frames_sent: int = 0
    frames_returned: int = 0
    frames_lost: int = 0
    frames_queued: int = 0
    out_of_order: int = 0
    marks_received: int = 0
    marks_acked: int = 0
    clears: int = 0
    stalls: int = 0
    stall_ms: float = 0.0
    underruns: int = 0
    underrun_ms: float = 0.0
    #: Stalls put down to the server's path (gateway, provider) or to the load tool's own
    #: lateness (``loadtest/blame.py``); stalls whose frame never came back are in neither.
    stalls_server: int = 0
    stalls_caller: int = 0
    send_lag_max_ms: float = 0.0
    #: The load tool's own event loop: its longest pause and how many ≥ 10 ms it had.
    load_pause_max_ms: float = 0.0
    load_pauses: int = 0
    round_trip: LatencySummary = field(default_factory=LatencySummary)
    #: Each call's round-trip growth (median of its last 2 s − of its first 2 s), over the calls.
    drift: LatencySummary = field(default_factory=LatencySummary)
    drift_min_ms: float = 0.0
    #: Every call's round trips pooled by window of call time (``rt_window_s`` each: window 1
    #: holds every call's first ``rt_window_s`` seconds of frames, and so on).
    rt_window_s: float = 60.0
    round_trip_windows: list[LatencySummary] = field(default_factory=list)
    server_usage: ServerUsage | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Every call ended cleanly, nothing lost or left queued."""
        return (
            self.calls_failed == 0
            and self.calls_ok == self.calls
            and self.frames_lost == 0
            and self.frames_queued == 0
            and self.frames_returned == self.frames_sent
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (``round_trip`` and ``server_usage`` as nested objects)."""
        data = asdict(self)
        data["clean"] = self.clean
        return data

    def table(self) -> Table:
        """A two-column rich table of the results."""
        rt = self.round_trip
        table = Table(title=f"switchboard loadtest: {self.calls} {self.carrier} calls")
        table.add_column("metric")
        table.add_column("value", justify="right")
        rows: list[tuple[str, str]] = [
            ("calls ok / failed", f"{self.calls_ok} / {self.calls_failed}"),
            ("duration / ramp", f"{self.duration_s:g} s / {self.ramp_s:g} s"),
            ("measured by", self.mode),
            ("frames sent", str(self.frames_sent)),
            ("frames returned", str(self.frames_returned)),
            ("frames lost", str(self.frames_lost)),
            ("frames still queued", str(self.frames_queued)),
            ("out of order", str(self.out_of_order)),
            ("round trip p50 / p95", f"{rt.p50:.1f} / {rt.p95:.1f} ms"),
            ("round trip p99 / max", f"{rt.p99:.1f} / {rt.max:.1f} ms"),
            ("marks acked / received", f"{self.marks_acked} / {self.marks_received}"),
            ("playout stalls", f"{self.stalls} ({self.stall_ms:.0f} ms)"),
            ("stalls: server / load tool", f"{self.stalls_server} / {self.stalls_caller}"),
            ("playout underruns (> 20 ms)", f"{self.underruns} ({self.underrun_ms:.0f} ms)"),
            ("load generator max lag", f"{self.send_lag_max_ms:.1f} ms"),
            (
                "load tool loop pauses ≥ 10 ms (max)",
                f"{self.load_pauses} ({self.load_pause_max_ms:.0f} ms)",
            ),
        ]
        if self.drift.count:
            d = self.drift
            rows.append(
                (
                    "RT drift per call (last − first 2 s)",
                    f"{self.drift_min_ms:+.1f} / {d.p50:+.1f} / {d.max:+.1f} ms (min/p50/max)",
                )
            )
        if len(self.round_trip_windows) > 1:
            first, last = self.round_trip_windows[0], self.round_trip_windows[-1]
            rows.append(
                (
                    f"RT p50 first → last {self.rt_window_s:g} s",
                    f"{first.p50:.1f} → {last.p50:.1f} ms",
                )
            )
        u = self.server_usage
        if u is not None:
            rows += [
                ("server CPU", f"{u.cpu_percent:.1f} % (over {u.cpu_window_s:.1f} s)"),
                ("server waiting for a CPU", f"{u.cpu_wait_percent:.1f} %"),
                ("server RSS start / peak", f"{u.rss_start_mb:.1f} / {u.rss_peak_mb:.1f} MB"),
                ("server RSS per call", f"{u.rss_per_call_kb:.0f} kB"),
            ]
        for name, value in rows:
            table.add_row(name, value)
        return table
