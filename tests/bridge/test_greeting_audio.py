"""Recorded greetings: checked when the agent loads, converted once per carrier format."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.pyav import needs_av

from switchboard.agents import Agent
from switchboard.audio import encode_audio, ulaw_to_pcm16
from switchboard.bridge.greeting import greeting_audio
from switchboard.emulators.common import speech_like_pcm16
from switchboard.media import AudioFormat, AudioSpec


def _agent(**fields: object) -> Agent:
    return Agent.model_validate({"name": "desk", "system_prompt": "x", **fields})


def test_a_missing_or_unreadable_file_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read audio file"):
        _agent(greeting_audio=str(tmp_path / "nope.wav"))
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(ValidationError, match="bad WAV file"):
        _agent(greeting_audio=str(tmp_path / "bad.wav"))


def test_the_provider_is_not_asked_to_speak_a_recorded_greeting(tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    wav.write_bytes(encode_audio(speech_like_pcm16("hello", 8000), 8000, "wav"))
    spec = AudioSpec(AudioFormat.ULAW, 8000)
    assert _agent(greeting="Hi!").session_config(spec).greeting == "Hi!"
    assert _agent(greeting="Hi!", greeting_audio=str(wav)).session_config(spec).greeting is None


@needs_av
def test_greeting_audio_is_the_file_in_the_carrier_format(tmp_path: Path) -> None:
    pcm = speech_like_pcm16("good morning", 16000)
    mp3 = tmp_path / "hello.mp3"
    mp3.write_bytes(encode_audio(pcm, 16000, "mp3"))
    ulaw = greeting_audio(mp3, AudioSpec(AudioFormat.ULAW, 8000))
    assert abs(len(ulaw) - len(pcm) // 4) <= 8  # 8 kHz, one byte a sample, gapless
    assert greeting_audio(mp3, AudioSpec(AudioFormat.ULAW, 8000)) is ulaw  # decoded once
    wide = greeting_audio(mp3, AudioSpec(AudioFormat.PCM16, 16000))
    assert len(wide) == len(pcm) and len(ulaw_to_pcm16(ulaw)) * 2 == len(wide)
