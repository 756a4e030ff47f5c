"""Pure tests of the operator desk: the Listen mix, taking over and handing back, partials."""

from __future__ import annotations

import numpy as np
from tests.operator_audio import frame_kinds, rms, tone_pcm16

from switchboard.audio import pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.bridge.operator import MAX_AHEAD_MS, ListenMix, OperatorDesk, hand_back_note
from switchboard.media import AudioChunk, AudioFormat, AudioSpec
from switchboard.providers.events import (
    AudioOutput,
    CallerTranscript,
    ProviderEvent,
    ResponseDone,
    SpeechStarted,
    TextOutput,
)

ULAW = AudioSpec(AudioFormat.ULAW, 8000)
SILENT = pcm16_to_ulaw(bytes(320))


def tone_frames(hz: float, frames: int) -> list[bytes]:
    audio = pcm16_to_ulaw(tone_pcm16(frames * 0.02, 8000, hz=hz))
    return [audio[i : i + 160] for i in range(0, len(audio), 160)]


def listen(mix: ListenMix, caller: list[bytes]) -> bytes:
    return b"".join(mix.caller(frame) for frame in caller)


def test_the_mix_holds_both_sides_at_16_khz_paced_by_the_caller() -> None:
    mix = ListenMix(ULAW)
    for frame in tone_frames(1250.0, 50):  # the agent's second, sent ahead in a burst
        mix.agent(frame)
    out = listen(mix, tone_frames(400.0, 50))  # one second of the caller
    assert abs(len(out) - 32000) <= 640  # one second at 16 kHz, PCM16
    spectrum = np.abs(np.fft.rfft(np.frombuffer(out, "<i2")))
    freqs = np.fft.rfftfreq(len(out) // 2, 1 / 16000)
    peaks = {round(float(f), -1) for f in freqs[np.argsort(spectrum)[-6:]]}
    assert 400.0 in peaks and 1250.0 in peaks  # both sides


def test_agent_audio_ahead_of_the_caller_is_bounded_and_cleared_by_a_barge_in() -> None:
    mix = ListenMix(ULAW)
    for frame in tone_frames(1250.0, 200):  # four seconds sent at once
        mix.agent(frame)
    heard = listen(mix, [SILENT] * 100)  # two seconds of a silent caller
    kinds = frame_kinds(heard, 16000)
    assert kinds.count("t") <= MAX_AHEAD_MS // 20 + 1  # no more than was allowed ahead
    for frame in tone_frames(1250.0, 20):
        mix.agent(frame)
    mix.clear()
    assert rms(listen(mix, [SILENT] * 10)) < 50


def test_take_over_mutes_the_agent_routes_the_microphone_and_hand_back_says_how_long() -> None:
    desk = OperatorDesk(ULAW)
    audio = ProviderEvent(AudioOutput(AudioChunk(b"\x00" * 480, AudioFormat.PCM16, 24000)))
    assert not desk.screen(audio)
    assert desk.operator_audio(tone_pcm16(0.1)) == []  # no one has the call: nothing goes
    assert desk.take_over("operator", 1000.0)
    assert not desk.take_over("someone else", 1500.0)
    assert desk.screen(audio)  # the agent's audio is kept from the caller
    assert not desk.screen(ProviderEvent(SpeechStarted()))
    frames = desk.operator_audio(tone_pcm16(0.1))
    assert frames and all(len(f) == 160 for f in frames)  # 20 ms μ-law frames
    assert "t" in frame_kinds(ulaw_to_pcm16(b"".join(frames)), 8000)
    assert desk.hand_back(13_400.0) == 12.4
    assert desk.hand_back(14_000.0) is None
    assert not desk.screen(audio)
    note = hand_back_note(12.4, "operator")
    assert "spoke with the caller for 12 s" in note


def test_taps_get_the_caller_alone_or_the_mix_and_drop_their_oldest_when_full() -> None:
    desk = OperatorDesk(ULAW)
    with desk.listen() as mixed, desk.operator_ear() as ear:
        assert desk.listeners == 1
        for frame in tone_frames(400.0, 80):
            desk.caller_audio(frame)
        assert ear.dropped == 30 and mixed.dropped > 0  # 50 kept each
    assert desk.listeners == 0


def test_partials_accumulate_deltas_or_replace_with_the_text_so_far() -> None:
    desk = OperatorDesk(ULAW)
    seen: list[tuple[str, str]] = []
    desk.on_partial = lambda role, text: seen.append((role, text))
    for delta in ("Hel", "lo ", "there"):
        desk.screen(ProviderEvent(TextOutput(delta, final=False)))
    desk.screen(ProviderEvent(CallerTranscript("what", final=False)))
    desk.screen(ProviderEvent(CallerTranscript("what are", final=False)))
    desk.screen(ProviderEvent(CallerTranscript("what are your hours", final=True)))
    desk.screen(ProviderEvent(ResponseDone(None)))
    assert seen == [
        ("agent", "Hel"),
        ("agent", "Hello "),
        ("agent", "Hello there"),
        ("caller", "what"),
        ("caller", "what are"),
        ("caller", ""),
        ("agent", ""),
    ]
