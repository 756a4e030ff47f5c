"""Percentiles of round trips, and a server process's CPU and memory from ``/proc`` (pure-ish).

Percentiles use linear interpolation between closest ranks (NumPy's default ``linear`` method):
for sorted values ``v[0..n-1]`` the p-th percentile is at rank ``(n - 1) * p / 100``.
CPU comes from ``/proc/PID/stat`` (utime + stime, fields 14 and 15, in clock ticks) and memory
from ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), as proc(5) documents them; no psutil. How long
the process was ready to run but waiting for a CPU (other processes had it) is the second field
of ``/proc/PID/schedstat`` (nanoseconds; the kernel's scheduler statistics, 0 when absent).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LatencySummary",
    "ProcSample",
    "drift_ms",
    "percentile",
    "read_proc",
    "summarize",
    "windows",
]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of already sorted values, linearly interpolated.

    Raises:
        ValueError: no values, or ``p`` outside 0..100.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {p} outside 0..100")
    rank = (len(sorted_values) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    frac = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * frac


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Round-trip statistics in milliseconds (all zero when there were no samples)."""

    count: int = 0
    mean: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0


def summarize(values: Sequence[float]) -> LatencySummary:
    """Count, mean, p50/p95/p99 and max of ``values`` (in any order)."""
    if not values:
        return LatencySummary()
    ordered = sorted(values)
    return LatencySummary(
        count=len(ordered),
        mean=sum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p95=percentile(ordered, 95),
        p99=percentile(ordered, 99),
        max=ordered[-1],
    )


def drift_ms(round_trips: Sequence[float], frames: int = 100) -> float | None:
    """How much one call's round trip grew: the median of its last ``frames`` round trips minus
    that of its first ``frames`` (100 frames: 2 s), or None when the call has fewer than twice
    that many. Round trips are in frame order (a call's echoes come back in order).
    """
    if frames < 1 or len(round_trips) < 2 * frames:
        return None
    first = sorted(round_trips[:frames])
    last = sorted(round_trips[-frames:])
    return percentile(last, 50) - percentile(first, 50)


def windows(round_trips: Sequence[float], frames: int) -> list[Sequence[float]]:
    """One call's round trips (in frame order) cut into consecutive windows of ``frames`` each
    (3000: a minute of 20 ms frames); the last window may be shorter.
    """
    if frames < 1:
        raise ValueError("a window holds at least one frame")
    return [round_trips[i : i + frames] for i in range(0, len(round_trips), frames)]


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process: CPU seconds used so far, resident and peak memory."""

    cpu_s: float
    rss_kb: int
    hwm_kb: int
    run_delay_s: float = 0.0  # time runnable but waiting for a CPU


def parse_stat_cpu(stat: str, ticks_per_s: float) -> float:
    """utime + stime in seconds from the text of ``/proc/PID/stat``.

    The command name (field 2) is in parentheses and may hold spaces, so fields are counted
    after the last ``)``: state is field 3, utime field 14 and stime field 15.
    """
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_s


def parse_status_kb(status: str, key: str) -> int:
    """A ``kB`` value (``VmRSS``, ``VmHWM``) from the text of ``/proc/PID/status``; 0 if absent."""
    for line in status.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def read_proc(pid: int, *, root: Path = Path("/proc")) -> ProcSample | None:
    """Read ``pid``'s CPU time and memory; None if the process is gone or unreadable."""
    try:
        stat = (root / str(pid) / "stat").read_text()
        status = (root / str(pid) / "status").read_text()
    except OSError:
        return None
    try:
        run_delay_s = int((root / str(pid) / "schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        run_delay_s = 0.0
    ticks = float(os.sysconf("SC_CLK_TCK"))
    return ProcSample(
        cpu_s=parse_stat_cpu(stat, ticks),
        rss_kb=parse_status_kb(status, "VmRSS"),
        hwm_kb=parse_status_kb(status, "VmHWM"),
        run_delay_s=run_delay_s,
    )
