"""The recording's timeline (pure): placement, clear, the carrier's zero, redaction, memory."""

from __future__ import annotations

import numpy as np

from switchboard.recordings import Tape

RATE = 8000
FRAME = 160  # 20 ms


def tone(value: int, samples: int = FRAME) -> bytes:
    return np.full(samples, value, "<i2").tobytes()


def drain(tape: Tape, now: float) -> tuple[np.ndarray, np.ndarray]:
    return tape.take(now, final=True)


def test_agent_audio_plays_after_what_is_queued_and_at_once_when_the_carrier_ran_dry() -> None:
    tape = Tape(RATE, 0.0)
    for _ in range(5):  # 100 ms sent in a burst at t=100: plays 100..200
        tape.agent(tone(1000), 100.0)
    tape.agent(tone(2000), 500.0)  # the carrier ran dry: plays at 500
    left, right = drain(tape, 600.0)
    assert len(left) == len(right) == 600 * 8
    assert not right[: 100 * 8].any()
    assert (right[100 * 8 : 200 * 8] == 1000).all()
    assert not right[200 * 8 : 500 * 8].any()
    assert (right[500 * 8 : 520 * 8] == 2000).all()
    assert not left.any()


def test_clear_drops_what_had_not_played() -> None:
    tape = Tape(RATE, 0.0)
    for _ in range(10):  # 200 ms sent at t=0: plays 0..200
        tape.agent(tone(1000), 0.0)
    removed = tape.clear(60.0)  # barge-in at 60 ms: 140 ms never played
    assert removed == 140 * 8
    tape.agent(tone(3000), 100.0)  # the next reply plays at once
    _, right = drain(tape, 200.0)
    assert (right[: 60 * 8] == 1000).all()
    assert not right[60 * 8 : 100 * 8].any()
    assert (right[100 * 8 : 120 * 8] == 3000).all()
    assert not right[120 * 8 :].any()


def test_the_end_of_the_call_drops_what_was_still_queued() -> None:
    tape = Tape(RATE, 0.0)
    for _ in range(10):
        tape.agent(tone(1000), 0.0)
    _, right = drain(tape, 50.0)  # the caller hung up at 50 ms
    assert len(right) == 50 * 8 and (right == 1000).all()


def test_caller_frames_follow_the_carriers_clock_not_our_reads() -> None:
    tape = Tape(RATE, 0.0)
    # our loop stalled: ten frames read at once at t=400 still start at 0, back to back
    for i in range(10):
        tape.caller(tone(i + 1), 400.0)
    for i in range(10, 20):  # then one per 20 ms, on time
        tape.caller(tone(i + 1), 400.0 + (i - 9) * 20)
    left, _ = drain(tape, 600.0)
    for i in range(20):
        assert (left[i * FRAME : (i + 1) * FRAME] == i + 1).all()


def test_a_pause_of_the_carriers_leaves_silence() -> None:
    tape = Tape(RATE, 0.0)
    tape.caller(tone(5), 20.0)
    tape.caller(tone(6), 4020.0)  # nothing for four seconds
    left, _ = drain(tape, 4020.0)
    assert (left[:FRAME] == 5).all()
    assert not left[FRAME : 4000 * 8].any()
    assert (left[4000 * 8 : 4020 * 8] == 6).all()


def test_zero_moves_back_to_the_carriers_start() -> None:
    # the carrier's stream began 100 ms before our session: by t=20 it has sent 120 ms
    tape = Tape(RATE, 0.0)
    tape.agent(tone(1000), 0.0)  # the greeting's first frame, sent at our start
    for _ in range(6):
        tape.caller(tone(7), 20.0)
    left, right = drain(tape, 200.0)
    assert (left[: 120 * 8] == 7).all()
    # the greeting sent at our t=0 played at the carrier's t=100
    assert not right[: 100 * 8].any()
    assert (right[100 * 8 : 120 * 8] == 1000).all()


def test_redact_silences_a_span_on_the_channels_asked() -> None:
    tape = Tape(RATE, 0.0)
    for i in range(50):  # one second each side, on time
        tape.caller(tone(100), (i + 1) * 20.0)
        tape.agent(tone(200), i * 20.0)
    assert tape.redact(200.0, 400.0)
    assert tape.redact(600.0, 700.0, channel="caller")
    left, right = drain(tape, 1000.0)
    assert (left[: 200 * 8] == 100).all() and (right[: 200 * 8] == 200).all()
    assert not left[200 * 8 : 400 * 8].any() and not right[200 * 8 : 400 * 8].any()
    assert not left[600 * 8 : 700 * 8].any() and (right[600 * 8 : 700 * 8] == 200).all()
    assert (left[700 * 8 :] == 100).all()


def test_an_open_redaction_lasts_until_it_is_ended_across_takes() -> None:
    tape = Tape(RATE, 0.0, holdback_ms=500.0)
    assert tape.redact(1000.0, None, channel="caller")
    blocks = []
    for i in range(200):  # four seconds; the redaction ends at 2500 ms
        now = (i + 1) * 20.0
        tape.caller(tone(9), now)
        if now == 2500.0:
            tape.end_redaction(now)
        blocks.append(tape.take(now)[0])
    blocks.append(drain(tape, 4000.0)[0])
    left = np.concatenate(blocks)
    assert len(left) == 4000 * 8
    assert (left[: 1000 * 8] == 9).all()
    assert not left[1000 * 8 : 2500 * 8].any()
    assert (left[2500 * 8 :] == 9).all()


def test_a_redaction_older_than_the_holdback_is_refused() -> None:
    tape = Tape(RATE, 0.0, holdback_ms=500.0)
    for i in range(100):
        tape.caller(tone(9), (i + 1) * 20.0)
        tape.take((i + 1) * 20.0)
    assert not tape.redact(100.0, 300.0)  # already handed out at t=2000
    assert tape.redact(1600.0, 1700.0)  # within the hold-back


def test_memory_stays_bounded_by_the_holdback() -> None:
    tape = Tape(RATE, 0.0, holdback_ms=2000.0)
    written = 0
    for i in range(30 * 50):  # 30 s of both sides
        now = (i + 1) * 20.0
        tape.caller(tone(1), now)
        tape.agent(tone(2), now)
        left, _ = tape.take(now)
        written += len(left)
        assert tape.left_end - tape.base <= 2100 * 8
    assert written >= 27_000 * 8
