"""Measure the local provider's speech stack on this machine (run by hand, fresh process).

    .venv/bin/python bench/local_speech.py

Prints model load times, VAD cost, Whisper latency per utterance (phone-line μ-law input through
LocalSTT's own path), Piper latency per sentence (first audio and whole sentence, μ-law 8 kHz),
and two concurrent STT streams.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from switchboard.audio import ulaw_to_pcm16
from switchboard.media import AudioFormat, AudioSpec
from switchboard.providers.local import models
from switchboard.providers.local.stt import LocalSTT, transcribe_pcm16
from switchboard.providers.local.synth import caller_audio
from switchboard.providers.local.tts import PiperTTS
from switchboard.providers.local.vad import SileroScorer, UtteranceSegmenter

SENTENCES = [
    "Please transfer me to the billing department.",
    "I would like to check the status of my order.",
    "My account number is four five seven two nine.",
    "Can I speak to a representative about my last payment?",
    "Yes, that is correct. Thank you very much, goodbye.",
]
ULAW8K = AudioSpec(AudioFormat.ULAW, 8000)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def _stream(stt: LocalSTT, audio: bytes) -> float:
    await stt.start()
    started = time.perf_counter()
    for offset in range(0, len(audio), 160):
        await stt.send_audio(audio[offset : offset + 160])
    async for event in stt.events():
        if type(event).__name__ == "SttTranscript":
            break
    await stt.close()
    return time.perf_counter() - started


async def main() -> None:
    started = time.perf_counter()
    models.whisper_model()
    models.piper_voice()
    print(f"imports + loads: {_ms(time.perf_counter() - started)}", models.LOAD_SECONDS)

    calls = [caller_audio(s) for s in SENTENCES]
    pcm = [ulaw_to_pcm16(c) for c in calls]
    seconds = sum(len(p) for p in pcm) / 2 / 8000

    seg = UtteranceSegmenter(SileroScorer(8000))
    t = time.perf_counter()
    for p in pcm:
        seg.process(p)
    print(f"VAD (silero 8 kHz): {_ms(time.perf_counter() - t)} for {seconds:.1f} s of audio")

    print("STT (Whisper tiny.en, beam 1) per utterance:")
    for p in pcm:
        runs = []
        for _ in range(2):
            t = time.perf_counter()
            text, _conf = transcribe_pcm16(p, 8000)
            runs.append(time.perf_counter() - t)
        print(f"  {len(p) / 16000:.1f} s audio: {_ms(min(runs))}-{_ms(max(runs))}  {text!r}")

    tts = PiperTTS(ULAW8K)
    print("TTS (Piper joe-medium → μ-law 8 kHz):")
    for sentence in SENTENCES[:3]:
        t = time.perf_counter()
        first = None
        total = 0
        async for chunk in tts.synthesize(sentence):
            first = first if first is not None else time.perf_counter() - t
            total += len(chunk)
        whole = time.perf_counter() - t
        print(f"  first audio {_ms(first or 0)}, all {_ms(whole)} for {total / 8000:.1f} s audio")

    t = time.perf_counter()
    durations = await asyncio.gather(
        _stream(LocalSTT(ULAW8K), calls[0]), _stream(LocalSTT(ULAW8K), calls[3])
    )
    print(
        f"two concurrent STT streams: {_ms(time.perf_counter() - t)} wall, "
        f"each {', '.join(_ms(d) for d in durations)} (mean {_ms(statistics.mean(durations))})"
    )


if __name__ == "__main__":
    asyncio.run(main())
