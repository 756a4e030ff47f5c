"""Putting a playout stall down to the load tool or to the server (loadtest/blame.py)."""

from __future__ import annotations

import asyncio
import time

from switchboard.loadtest.blame import LoopPauses, Stall, blame


def _pauses(*spans: tuple[float, float]) -> LoopPauses:
    pauses = LoopPauses()
    for start, length_ms in spans:
        pauses.starts.append(start)
        pauses.lengths_ms.append(length_ms)
    return pauses


def test_a_frame_sent_late_is_the_callers_stall() -> None:
    stall = Stall(at=100.0, gap_ms=80.0, send_lag_ms=70.0, rtt_ms=1.0)
    assert blame(stall, _pauses()) == "caller"


def test_an_echo_late_while_the_caller_ran_is_the_servers_stall() -> None:
    stall = Stall(at=100.0, gap_ms=80.0, send_lag_ms=2.0, rtt_ms=82.0)
    assert blame(stall, _pauses()) == "server"
    # a pause of the caller's loop elsewhere, or too short, changes nothing
    assert blame(stall, _pauses((50.0, 300.0), (99.95, 15.0))) == "server"


def test_an_echo_read_late_because_the_callers_loop_paused_is_the_callers() -> None:
    stall = Stall(at=100.0, gap_ms=80.0, send_lag_ms=0.0, rtt_ms=82.0)
    assert blame(stall, _pauses((99.93, 60.0))) == "caller"  # inside the gap
    assert blame(stall, _pauses((99.85, 120.0))) == "caller"  # began before it, overlapping


def test_loop_pauses_records_a_blocked_loop() -> None:
    async def scenario() -> LoopPauses:
        pauses = LoopPauses()
        pauses.start()
        await asyncio.sleep(0.02)
        time.sleep(0.05)  # noqa: ASYNC251 (blocks the loop, as a busy load tool would be)
        await asyncio.sleep(0.02)
        await pauses.stop()
        return pauses

    pauses = asyncio.run(scenario())
    assert pauses.max_ms >= 40.0
    assert pauses.starts and max(pauses.lengths_ms) >= 40.0
    assert pauses.longest_within(pauses.starts[0], pauses.starts[0] + 0.01) >= 40.0
    assert pauses.longest_within(pauses.starts[0] + 10.0, pauses.starts[0] + 11.0) == 0.0
