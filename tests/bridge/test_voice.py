"""The caller's voice at our socket: the per-frame detector and what its runs mean (pure)."""

from __future__ import annotations

from switchboard.audio import pcm16_to_alaw, pcm16_to_ulaw
from switchboard.bridge.voice import CallerVoice, voice_detector
from switchboard.emulators.common import speech_like_pcm16
from switchboard.media import AudioFormat

SPEECH = speech_like_pcm16("hello there, I would like to talk to someone", 8000, ms_per_char=45.0)


def test_the_detector_hears_speech_and_not_silence_in_ulaw_and_pcm16() -> None:
    ulaw = voice_detector(AudioFormat.ULAW)
    pcm16 = voice_detector(AudioFormat.PCM16)
    speech_ulaw = pcm16_to_ulaw(SPEECH)
    voiced = [ulaw(speech_ulaw[i : i + 160]) for i in range(0, len(speech_ulaw) - 159, 160)]
    assert sum(voiced) > len(voiced) // 2
    assert not ulaw(pcm16_to_ulaw(bytes(320)))  # digital silence
    assert pcm16(SPEECH[3200:3520]) == ulaw(speech_ulaw[1600:1760])
    assert not pcm16(bytes(640))
    assert not pcm16(b"")


def test_the_detector_counts_no_voice_in_formats_it_cannot_read_cheaply() -> None:
    alaw = voice_detector(AudioFormat.ALAW)
    assert not alaw(pcm16_to_alaw(SPEECH[:320]))


def test_a_run_of_the_configured_length_asks_for_a_barge_in_once() -> None:
    voice = CallerVoice(barge_in_frames=3)
    assert [voice.frame(True, t) for t in (0, 20, 40, 60)] == [False, False, True, False]
    assert voice.last_voice_ms == 60
    voice.frame(False, 80)
    assert [voice.frame(True, t) for t in (100, 120, 140)] == [False, False, True]
    voice.provider_reports_speech = True
    voice.frame(False, 160)
    assert [voice.frame(True, t) for t in (180, 200, 220)] == [False, False, False]


def test_the_end_of_speech_is_the_end_of_the_last_voiced_frame_if_recent() -> None:
    voice = CallerVoice()
    assert voice.speech_end(500) == 500  # no voice heard at all
    voice.frame(True, 1000)
    assert voice.speech_end(1700) == 1020
    assert voice.speech_end(6100) == 6100  # more than 5 s after the last voice


def test_unanswered_voice_is_answered_once() -> None:
    voice = CallerVoice()
    assert voice.unanswered_end(100) is None
    voice.frame(True, 1000)
    assert voice.unanswered_end(1500) == 1020
    assert voice.unanswered_end(1600) is None
    voice.frame(True, 2000)
    voice.speech_end(2400)  # the provider's end of speech answered it
    assert voice.unanswered_end(2500) is None
