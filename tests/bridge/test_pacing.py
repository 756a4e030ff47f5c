"""Pure tests of outbound pacing when the runner falls behind (issue #27).

A small discrete-event runner drives the core as ``bridge/session.py`` does — agent audio as it
arrives, ``tick`` at each ``ScheduleWakeup`` — except that it can be frozen for a while (a
stalled event loop: everything due meanwhile is handled when it resumes, in order), and the
frames it sends play on the emulators' loudspeaker model (:class:`PlayoutClock`), which
counts when the carrier ran dry. Each frame is numbered so its release time can be compared
with its arrival (what a caller measuring round trips at receipt sees) and with its slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.bridge.actions import Action, ScheduleWakeup, SendToCaller
from switchboard.bridge.core import BridgeCore, BridgeOptions
from switchboard.emulators.playout import PlayoutClock


@dataclass
class Run:
    """What a simulated call did: release time per frame and the carrier's dry spells."""

    released: dict[int, float] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (when, ms of silence)


def simulate(
    arrivals: list[tuple[float, list[int]]],
    *,
    stalls: tuple[tuple[float, float], ...] = (),
    options: BridgeOptions | None = None,
    until: float = 60_000,
) -> Run:
    """Feed frames (``(time, frame numbers)``) to a core; freeze the runner during ``stalls``.

    The response ends after the last arrival (so the reply's end is marked like a real one).
    """
    core = BridgeCore(options or BridgeOptions(mark_interval_ms=200))
    carrier = PlayoutClock()
    run = Run()
    pending = sorted(arrivals, key=lambda a: a[0])
    wake: float | None = None
    queued: list[int] = []  # frame numbers in the core's queue, in order

    def resume_at(t: float) -> float:
        for start, end in stalls:
            if start <= t < end:
                return end
        return t

    def apply(actions: list[Action], now: float) -> None:
        nonlocal wake
        for action in actions:
            if isinstance(action, SendToCaller):
                gap = carrier.add(core.options.frame_ms, now)
                if gap is not None and gap > 0:
                    run.gaps.append((now, gap))
                run.released[queued.pop(0)] = now
            elif isinstance(action, ScheduleWakeup) and (wake is None or action.at_ms < wake):
                wake = action.at_ms

    apply(core.start(0), 0)
    while pending or wake is not None:
        next_arrival = pending[0][0] if pending else float("inf")
        if wake is not None and wake < next_arrival:
            now, wake = resume_at(wake), None
            if now > until:
                break
            apply(core.tick(now), now)
            continue
        at, numbers = pending.pop(0)
        now = resume_at(at)
        queued.extend(numbers)
        apply(core.agent_audio([b"\xff" * 160] * len(numbers), now), now)
        if not pending:
            apply(core.response_done("completed", now), now)
    return run


def real_time(seconds: float) -> list[tuple[float, list[int]]]:
    """One 20 ms frame every 20 ms, as an echo of the caller (or speech streamed at pace)."""
    return [(20.0 * k, [k]) for k in range(round(seconds * 50))]


def wait(run: Run, arrivals: list[tuple[float, list[int]]]) -> dict[int, float]:
    """How long each frame waited in the bridge (release − arrival)."""
    return {k: run.released[k] - at for at, ks in arrivals for k in ks}


def test_a_real_time_stream_recovers_after_the_carrier_ran_dry() -> None:
    # 30 s of echo; the event loop stalls 300 ms at 5 s and again at 15 s. The first stall
    # drains the carrier (it held one frame) and the echo arriving meanwhile comes at once.
    arrivals = real_time(30)
    stalls = ((5000.0, 5300.0), (15_000.0, 15_300.0))
    run = simulate(arrivals, stalls=stalls)
    assert len(run.released) == len(arrivals)
    # The carrier ran dry once, for the first stall; the second found a 300 ms cushion.
    assert run.gaps == [(5300.0, 300.0)]
    # What arrived during a stall goes out as the runner resumes; every other frame leaves as
    # it arrives, for the rest of the call: no delay stays in the bridge.
    expected = {k: next((e - t for s, e in stalls if s <= t < e), 0.0) for t, [k] in arrivals}
    assert wait(run, arrivals) == expected


def test_a_late_wakeup_is_caught_up_on_the_reply_timeline() -> None:
    # A 10 s reply delivered at once (a provider faster than real time). The wakeup due at
    # 2 s comes 300 ms late: the carrier (200 ms ahead) runs dry for ~100 ms. The frames due
    # meanwhile go at once, and every later frame leaves at the same moment as in a call
    # without the stall: the schedule recovered.
    arrivals = [(0.0, list(range(500)))]
    one = BridgeOptions(mark_interval_ms=200, release_ms=20)  # a frame per wakeup
    clean = simulate(arrivals, options=one)
    late = simulate(arrivals, stalls=((2000, 2300),), options=one)
    assert len(late.released) == len(clean.released) == 500
    assert late.gaps == [(2300.0, 100.0)] and not clean.gaps
    # Frame k ≥ 10 is released 200 ms before its slot (k·20 ms + 1 ms of wakeup rounding);
    # the wakeups for frames 110.. fell in the stall: 110..124 went together at 2300 ms.
    assert [k for k in range(500) if late.released[k] == 2300] == list(range(110, 125))
    assert all(late.released[k] == clean.released[k] for k in range(500) if not 110 <= k < 125)


def test_frames_are_released_two_at_a_time_and_the_lead_never_falls_below_max_lead() -> None:
    # release_ms 40 (the default): a 10 s reply delivered at once goes out in pairs, one
    # wakeup per 40 ms; the carrier's lead is back at 239 ms after each release and never
    # below 199 ms (as with a frame per wakeup, whose lead stayed 199–219 ms), with no gap.
    arrivals = [(0.0, list(range(500)))]
    run = simulate(arrivals)
    assert len(run.released) == 500 and not run.gaps
    times = sorted(set(run.released.values()))
    per_release = [sum(1 for t in run.released.values() if t == at) for at in times]
    assert per_release[0] == 11 and set(per_release[1:-1]) == {2}
    for k in range(11, 500):  # frame k plays from k·20 ms: released 199–239 ms ahead of it
        assert 199 <= k * 20 - run.released[k] + 20 <= 240, k


def test_late_audio_is_sent_as_it_comes_and_the_timeline_kept() -> None:
    # Speech streamed at playback speed whose frames 100..149 come 1 s late, in one burst: they
    # go out at once, and frame 150 on leave as they arrive, as before the hiccup.
    arrivals = [(20.0 * k + (1000.0 if 100 <= k < 150 else 0.0), [k]) for k in range(400)]
    run = simulate(arrivals)
    waits = wait(run, arrivals)
    assert all(w == 0 for w in waits.values())


def test_each_reply_starts_a_new_timeline() -> None:
    # A 1 s reply, then 3 s of quiet, then a 2 s reply delivered at once: only the lead of the
    # second reply goes out at once, not the 3 s it "missed".
    core = BridgeCore(BridgeOptions(max_lead_ms=200, release_ms=20))
    core.start(0)
    core.agent_audio([b"\xff" * 160] * 50, now=0)
    for t in range(20, 1001, 20):
        core.tick(t)
    core.response_done("completed", now=1000)
    out = core.agent_audio([b"\xff" * 160] * 100, now=4000)
    assert sum(isinstance(a, SendToCaller) for a in out) == 10


def test_catch_up_is_bounded() -> None:
    # A source that stopped for 10 s in the middle of a reply and then delivered 12 s at once:
    # the core catches up at most max_catch_up_ms, plus the lead.
    core = BridgeCore(BridgeOptions(max_lead_ms=200, max_catch_up_ms=5000, release_ms=20))
    core.start(0)
    core.agent_audio([b"\xff" * 160], now=0)
    out = core.agent_audio([b"\xff" * 160] * 600, now=10_020)
    assert sum(isinstance(a, SendToCaller) for a in out) == (5000 + 200) // 20
