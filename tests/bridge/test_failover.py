"""The failover decisions without sockets: triggers, fallback order, the nearest voice."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.bridge.agent_voices import nearest_voice
from switchboard.bridge.failover import FailoverMonitor, FailoverPolicy, fallback_order
from switchboard.bridge.failover_runner import HeardTranscript, ProviderFailover
from switchboard.bridge.sink import MemorySink
from switchboard.providers.base import BaseProvider
from switchboard.providers.types import HistoryTurn

POLICY = FailoverPolicy(fallback=("gemini",), failover_after_ms=3000, stall_timeout_ms=5000)


def voice(monitor: FailoverMonitor, start: float, ms: float) -> float:
    """Caller voice from ``start`` for ``ms`` then 200 ms of quiet; returns the end of voice."""
    t = start
    while t < start + ms:
        monitor.caller_frame(True, t)
        t += 20
    end = t - 20
    for _ in range(10):
        monitor.caller_frame(False, t)
        t += 20
    return end


def test_a_lost_socket_fails_over_after_failover_after() -> None:
    monitor = FailoverMonitor(POLICY)
    monitor.connection_lost(1000)
    assert monitor.due(3999) is None
    assert monitor.next_check_at() == 4000
    assert monitor.due(4000) == "lost"


def test_a_socket_back_in_time_does_not_fail_over() -> None:
    monitor = FailoverMonitor(POLICY)
    monitor.connection_lost(1000)
    monitor.connection_restored(2500)
    assert monitor.due(10_000) is None
    assert monitor.next_check_at() is None


def test_a_turn_without_a_reply_is_a_stall() -> None:
    monitor = FailoverMonitor(POLICY)
    end = voice(monitor, 1000, 1200)
    assert monitor.reply_due_since == end
    assert monitor.due(end + 4999) is None
    assert monitor.due(end + 5000) == "stall"


def test_a_reply_that_starts_in_time_clears_the_stall() -> None:
    monitor = FailoverMonitor(POLICY)
    end = voice(monitor, 1000, 1200)
    monitor.agent_audio(end + 900)
    assert monitor.due(end + 60_000) is None


def test_a_cough_is_not_a_turn() -> None:
    monitor = FailoverMonitor(POLICY)
    voice(monitor, 1000, 300)  # shorter than min_voice_ms
    assert monitor.reply_due_since is None


def test_a_caller_still_talking_is_not_a_stall() -> None:
    monitor = FailoverMonitor(POLICY)
    end = voice(monitor, 0, 1000)
    t = end + 4000
    for _ in range(100):  # talks again before the stall is due, for 2 s
        monitor.caller_frame(True, t)
        t += 20
    assert monitor.due(t) is None


def test_a_tool_result_makes_a_reply_due_and_a_tool_call_waits() -> None:
    monitor = FailoverMonitor(POLICY)
    monitor.caller_turn_ended(0)
    monitor.tool_called(100)  # the model waits for the tool: nothing due however long it takes
    assert monitor.due(60_000) is None
    monitor.tool_result_sent(60_000)
    assert monitor.due(65_000) == "stall"


def test_fatal_errors_and_ended_events_fail_over_at_once() -> None:
    monitor = FailoverMonitor(POLICY)
    monitor.fatal_error(10)
    assert monitor.due(10) == "fatal_error"
    monitor.reset(20)
    monitor.events_ended(failed=True, now=30)
    assert monitor.due(30) == "provider_failed"
    monitor.reset(40)
    assert monitor.due(50) is None


@pytest.mark.parametrize(
    ("chosen", "explicit", "configured", "local", "expected"),
    [
        ("gemini", None, {"gemini", "openai", "deepgram"}, True, ("openai", "deepgram", "local")),
        ("openai", None, {"gemini", "openai", "deepgram"}, False, ("deepgram", "gemini")),
        ("openai", None, {"openai"}, False, ()),
        ("openai", None, {"openai"}, True, ("local",)),
        ("openai", ["gemini", "openai", "gemini"], {"openai"}, True, ("gemini",)),
        ("openai", [], {"gemini", "openai"}, True, ()),
    ],
)
def test_fallback_order(
    chosen: str,
    explicit: list[str] | None,
    configured: set[str],
    local: bool,
    expected: tuple[str, ...],
) -> None:
    order = ["gemini", "openai", "deepgram", "local"]
    got = fallback_order(
        chosen,
        explicit=explicit,
        strategy_order=order,
        configured=configured,
        local_available=local,
    )
    assert got == expected


def test_the_nearest_voice_keeps_its_class() -> None:
    gemini = ["Puck", "Charon", "Kore", "Fenrir", "Aoede"]
    assert nearest_voice("coral", gemini, "Puck") == "Kore"  # female → the first female
    assert nearest_voice("ash", gemini, "Puck") == "Puck"  # male → the (male) default
    assert nearest_voice("Kore", gemini, "Puck") == "Kore"  # the provider has it
    assert nearest_voice(None, gemini, "Puck") == "Puck"
    assert nearest_voice("someone", gemini, "Puck") == "Puck"  # unknown: the default


@pytest.mark.anyio
async def test_the_failover_watch_ends_when_cancelled_as_a_caller_frame_pokes_it() -> None:
    """The watch is one of a call's loops: cancelled when the call ends, it must end, even when
    the cancellation comes just as a caller frame (every 20 ms) woke it. With ``wait_for`` on
    Python 3.11 that cancellation was swallowed and the call never ended (the balancer tier's
    hang-ups that never reached the carrier)."""
    heard = HeardTranscript(MemorySink(), "openai")

    def make(name: str, history: list[HistoryTurn], greet: bool) -> BaseProvider:
        raise AssertionError("no failover in this test")

    failover = ProviderFailover(policy=POLICY, provider="openai", make=make, heard=heard)

    class Session:  # what the watch reads of the call's session
        def now(self) -> float:
            return asyncio.get_running_loop().time() * 1000.0

    failover.monitor.connection_lost(Session().now())  # a check due in 3 s: a timed wait
    watch = asyncio.create_task(failover.watch(Session()))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)  # waiting for a poke, or the check
    failover.caller_frame(b"\xff" * 160, False, Session().now())
    await asyncio.sleep(0)  # the poke's waiter is done; the watch has not run yet
    watch.cancel()
    done, _ = await asyncio.wait([watch], timeout=1.0)
    assert done == {watch} and watch.cancelled()
