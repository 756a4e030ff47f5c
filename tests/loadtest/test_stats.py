"""Percentile arithmetic and /proc parsing, purely."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from switchboard.loadtest.stats import (
    LatencySummary,
    drift_ms,
    parse_stat_cpu,
    parse_status_kb,
    percentile,
    read_proc,
    summarize,
    windows,
)


def test_percentile_by_hand() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0  # rank 1.5
    assert percentile(values, 99) == pytest.approx(39.7)  # rank 2.97
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("n", [2, 3, 10, 101, 1000])
@pytest.mark.parametrize("p", [1.0, 50.0, 95.0, 99.0, 99.9])
def test_percentile_matches_numpy_linear(n: int, p: float) -> None:
    rng = random.Random(n * 1000 + int(p * 10))
    values = sorted(rng.uniform(0, 500) for _ in range(n))
    assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_summarize() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted input
    s = summarize(values)
    assert s.count == 100 and s.max == 100.0 and s.mean == 50.5
    assert s.p50 == pytest.approx(50.5)
    assert s.p95 == pytest.approx(95.05)
    assert s.p99 == pytest.approx(99.01)
    assert summarize([]) == LatencySummary()


def test_drift_is_the_last_frames_median_minus_the_first() -> None:
    # 10 s of round trips: 1 ms, then 100 ms standing from frame 300 on (a backlog kept).
    grown = [1.0] * 300 + [100.0] * 200
    assert drift_ms(grown) == 99.0
    # A spike in the middle that went away is no drift; a short call has none.
    assert drift_ms([1.0] * 200 + [500.0] * 50 + [1.0] * 250) == 0.0
    assert drift_ms([1.0] * 199) is None
    assert drift_ms([5.0, 1.0, 9.0, 2.0], frames=2) == pytest.approx(2.5)  # (9+2)/2 − (5+1)/2


def test_windows_cut_a_call_into_consecutive_spans() -> None:
    values = [float(v) for v in range(7)]
    assert windows(values, 3) == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]
    assert windows([], 3) == []
    with pytest.raises(ValueError, match="at least one frame"):
        windows(values, 0)


def test_parse_proc_text() -> None:
    stat = "4242 (uvicorn worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0"
    assert parse_stat_cpu(stat, 100.0) == 3.0  # (250 + 50) ticks
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert parse_status_kb(status, "VmRSS") == 102400
    assert parse_status_kb(status, "VmHWM") == 204800
    assert parse_status_kb(status, "VmSwap") == 0


def test_read_proc_of_this_process(tmp_path: Path) -> None:
    sample = read_proc(os.getpid())
    assert sample is not None
    assert sample.cpu_s > 0 and sample.rss_kb > 1000 and sample.hwm_kb >= sample.rss_kb
    assert read_proc(os.getpid(), root=tmp_path) is None


def test_read_proc_reads_the_time_spent_waiting_for_a_cpu(tmp_path: Path) -> None:
    me = Path("/proc") / str(os.getpid())
    fake = tmp_path / "42"
    fake.mkdir()
    (fake / "stat").write_text((me / "stat").read_text())
    (fake / "status").write_text((me / "status").read_text())
    assert read_proc(42, root=tmp_path).run_delay_s == 0.0  # type: ignore[union-attr]
    (fake / "schedstat").write_text("123456789 2500000000 17\n")
    assert read_proc(42, root=tmp_path).run_delay_s == 2.5  # type: ignore[union-attr]
