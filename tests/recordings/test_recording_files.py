"""Recording files: every format decodes back with its duration, the call's recording object,
byte ranges, and the sweeper's bounded passes."""

from __future__ import annotations

import io
import os
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from switchboard.app.recordings_api import RangeNotSatisfiable, parse_range
from switchboard.audio import pcm16_to_ulaw
from switchboard.audio.stereo import StereoFileWriter, recording_rate
from switchboard.errors import AudioError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.recordings import CallRecording, RecordingsDir, RecordingSweeper

ULAW = AudioSpec(AudioFormat.ULAW, 8000)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """(samples × 2 channels, rate) of any recording, through PyAV."""
    import av

    with av.open(str(path), "r") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=rate)
        blocks = [
            piece.to_ndarray().reshape(-1, 2)
            for frame in container.decode(stream)
            for piece in resampler.resample(frame)
        ]
        blocks += [p.to_ndarray().reshape(-1, 2) for p in resampler.resample(None)]
    return np.concatenate(blocks), rate


@pytest.mark.parametrize(
    ("fmt", "rate"), [("wav", 8000), ("flac", 16000), ("ogg", 8000), ("mp3", 8000)]
)
def test_each_format_decodes_back_with_its_duration_and_two_channels(
    tmp_path: Path, fmt: str, rate: int
) -> None:
    path = tmp_path / f"call.{fmt}"
    writer = StereoFileWriter(path, fmt, rate)  # type: ignore[arg-type]
    t = np.arange(rate * 3) / rate
    left = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2")
    right = np.zeros_like(left)
    right[rate:] = (np.sin(2 * np.pi * 500 * t[rate:]) * 8000).astype("<i2")
    for i in range(0, len(left), 333):  # odd pieces: the writer frames them itself
        writer.write(left[i : i + 333], right[i : i + 333])
    writer.close()
    samples, decoded_rate = decode(path)
    assert abs(len(samples) / decoded_rate - 3.0) < 0.03  # gapless: the duration written
    first_second = samples[: decoded_rate // 2]
    assert np.abs(first_second[:, 0]).max() > 4000  # the left channel is the left
    assert np.abs(first_second[:, 1]).max() < 400  # the right was silent then


def test_rates_follow_the_format() -> None:
    assert recording_rate("ogg", 8000) == 8000
    assert recording_rate("ogg", 44100) == 48000
    assert recording_rate("mp3", 16000) == 16000
    assert recording_rate("flac", 11025) == 11025
    with pytest.raises(AudioError):
        StereoFileWriter("/nonexistent/x.ogg", "ogg", 44100)


def test_call_recording_writes_as_it_goes_and_renames_when_finished(tmp_path: Path) -> None:
    now = [0.0]
    path = RecordingsDir(tmp_path).path_for("call_1", "wav", 3)
    recording = CallRecording(path, "wav", ULAW, lambda: now[0], retention_days=3)
    frame = pcm16_to_ulaw(np.full(160, 1000, "<i2").tobytes())
    for i in range(250):  # five seconds
        now[0] = (i + 1) * 20.0
        recording.caller_audio(frame, now[0])
        recording.agent_audio(frame, now[0])
    part = path.with_name(path.name + ".part")
    assert part.stat().st_size > 2 * 2 * 8000 * 2  # written as it went, not held
    assert not path.exists()
    assert not recording.redact(1000.0, 2000.0)  # already in the file (past the hold-back)
    assert recording.redact(3500.0, 4000.0, "agent")  # still held back: silenced
    info = recording.finish()
    assert info is not None and recording.finish() is info  # idempotent
    assert not part.exists() and path.parent.name == "3d"
    with wave.open(str(path)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert abs(info.duration_s - 5.0) < 0.03 and len(samples) == round(info.duration_s * 8000)
    assert abs(int(samples[100, 0]) - 1000) < 40  # μ-law round trip of 1000
    assert samples[8000 * 1 : 8000 * 2, 1].all()  # the late redaction changed nothing
    assert not samples[28000:32000, 1].any() and samples[28000:32000, 0].all()
    assert RecordingsDir(tmp_path).find("call_1") is not None
    assert RecordingsDir(tmp_path).find("../etc/passwd") is None


def test_a_recording_that_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be")
    with pytest.raises(ValueError, match="not a recordable call id"):
        RecordingsDir(tmp_path).path_for("../escape", "wav", None)
    with pytest.raises((AudioError, OSError)):
        CallRecording(blocked / "x.wav", "wav", ULAW, lambda: 0.0)


def test_byte_ranges() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=90-500", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-500", 100) == (0, 99)
    assert parse_range("bytes=5-2", 100) is None  # invalid: ignored, the whole file
    assert parse_range("bytes=0-1,5-9", 100) is None  # several ranges: the whole file
    assert parse_range("items=0-1", 100) is None
    for unsatisfiable in ("bytes=100-", "bytes=200-300", "bytes=-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(unsatisfiable, 100)


@pytest.mark.anyio
async def test_the_sweeper_deletes_expired_files_a_bounded_batch_per_pass(tmp_path: Path) -> None:
    directory = RecordingsDir(tmp_path)
    old = time.time() - 3 * 86400
    expired = []
    for i in range(7):
        path = directory.path_for(f"call_{i}", "wav", 2)
        path.write_bytes(b"RIFF")
        if i % 2 == 0:
            os.utime(path, (old, old))
            expired.append(f"call_{i}")
    kept = directory.path_for("call_keep", "wav", None)
    kept.write_bytes(b"RIFF")
    os.utime(kept, (old, old))
    fresh = directory.path_for("call_new", "mp3", 1)  # one day old and a bit
    fresh.write_bytes(b"ID3")
    os.utime(fresh, (time.time() - 86500, time.time() - 86500))
    live = directory.path_for("call_live", "wav", 1).with_suffix(".wav.part")
    live.write_bytes(b"RIFF")  # a live call's recording in progress: never swept
    dead = directory.path_for("call_dead", "wav", 2).with_suffix(".wav.part")
    dead.write_bytes(b"RIFF")  # a killed process's leftover, three days old
    os.utime(dead, (old, old))
    sweeper = RecordingSweeper(directory, None, batch=3)
    removed: list[str] = []
    for _ in range(5):
        removed += await sweeper.sweep()
    assert sorted(removed) == sorted([*expired, "call_new", "call_dead"])
    assert kept.exists() and live.exists()
    assert len(list((tmp_path / "2d").iterdir())) == 3


def test_wav_header_is_patched_on_close(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    writer = StereoFileWriter(path, "wav", 8000)
    writer.write(np.ones(800, "<i2"), np.ones(800, "<i2"))
    writer.close()
    with wave.open(io.BytesIO(path.read_bytes())) as wav:
        assert wav.getnframes() == 800 and wav.getnchannels() == 2


def test_the_agent_recording_policy_is_strict() -> None:
    from pydantic import ValidationError

    from switchboard.agents import Agent

    base = {"name": "a", "system_prompt": "p"}
    agent = Agent.model_validate(base | {"recording": {"enabled": True}})
    assert agent.recording is not None and agent.recording.format == "wav"
    assert agent.recording.retention_days is None
    for bad in ({"format": "aac"}, {"retention_days": 0}, {"keep": True}):
        with pytest.raises(ValidationError):
            Agent.model_validate(base | {"recording": bad})
