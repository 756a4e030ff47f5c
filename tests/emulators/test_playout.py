"""The emulators' shared playout model: the clock the load test runs on loop time, and the
frame-ticked Playout the Twilio and Telnyx callers record through."""

from __future__ import annotations

import pytest

from switchboard.emulators.playout import Playout, PlayoutClock


def test_clock_gaps_are_silence_before_new_audio() -> None:
    clock = PlayoutClock()
    assert clock.add(0.1, now=5.0) is None  # the first audio has no gap before it
    assert clock.end == pytest.approx(5.1)
    assert clock.add(0.1, now=5.05) == pytest.approx(-0.05)  # still playing: queued behind
    assert clock.end == pytest.approx(5.2)
    assert clock.add(0.02, now=5.3) == pytest.approx(0.1)  # 100 ms of silence before it
    assert clock.end == pytest.approx(5.32)


def test_clock_marks_fall_due_when_the_audio_before_them_has_played() -> None:
    clock = PlayoutClock()
    clock.mark("early", now=1.0)
    assert clock.due(1.0) == ["early"]  # nothing queued: due at once
    clock.add(0.5, now=1.0)
    clock.mark("a", now=1.1)
    clock.add(0.5, now=1.2)
    clock.mark("b", now=1.2)
    assert clock.due(1.49) == []
    assert clock.pending_marks == 2
    assert clock.next_due(1.5) == "a"
    assert clock.next_due(1.5) is None
    assert clock.due(2.0) == ["b"]
    assert clock.pending_marks == 0


def test_clock_clear_drops_the_queue_and_makes_every_mark_due() -> None:
    clock = PlayoutClock()
    clock.add(1.0, now=0.0)
    clock.mark("a", now=0.0)
    clock.add(1.0, now=0.0)
    clock.mark("b", now=0.0)
    assert clock.clear(now=0.5) == pytest.approx(1.5)
    assert clock.end == 0.5
    assert clock.due(0.5) == ["a", "b"]
    # a gap after a clear is measured from the clear, not from the audio it dropped
    assert clock.add(0.1, now=0.6) == pytest.approx(0.1)


def test_playout_records_pcm_with_zero_silence_and_reports_bytes_played() -> None:
    frame = 320  # 20 ms of PCM16 at 8 kHz
    p = Playout(frame_bytes=frame, silence=b"\x00", quiet=None)
    p.add_audio(b"\x01\x02" * 200)  # 400 bytes: one frame and a quarter
    assert p.add_mark("m") == []
    assert (p.play(), p.next_due()) == (frame, None)
    assert (p.play(), p.next_due()) == (80, "m")
    assert p.play() == 0
    assert p.last_played == 0
    assert p.timeline == b"\x01\x02" * 200 + bytes(2 * frame - 80)
    assert (p.heard_bytes, p.ticks, p.last_sound_tick) == (400, 3, -1)  # sound not tracked


def test_playout_audio_between_ticks_starts_at_the_next_tick() -> None:
    p = Playout()
    p.add_audio(b"\x00" * 10)
    p.tick()  # 10 bytes and 150 of silence
    p.add_audio(b"\x01" * 20)
    assert p.add_mark("m") == []
    assert p.tick() == ["m"]
    assert p.timeline[160:180] == b"\x01" * 20
    assert p.queued == 0 and p.pending_marks == 0
