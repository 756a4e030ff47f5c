"""Time to first audio of the Deepgram pipeline, per caller turn, through the loopback emulators.

Runs one call against the Deepgram and Gemini emulators: for each of ``--turns`` turns the
simulated caller speaks (μ-law 8 kHz, sent faster than real time), and the engine's measured time
from the end of the caller's turn (the final transcript) to the first TTS audio chunk is recorded
(``PipelineProvider.ttfa_ms``). Prints every figure and the p50/p95. Emulator latencies are zero
unless ``--tts-latency``/``--llm-chunk-delay`` add some, so the figure is switchboard's own
overhead plus loopback I/O.

    .venv/bin/python bench/pipeline_ttfa.py --turns 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from switchboard.audio import pcm16_to_ulaw
from switchboard.config import load_settings
from switchboard.emulators.common import speech_like_pcm16
from switchboard.emulators.deepgram import DeepgramEmulator
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.media import AudioChunk, AudioFormat
from switchboard.providers.base import ProviderEventType, SessionConfig
from switchboard.providers.deepgram import create_provider


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run(turns: int, tts_latency: float, llm_delay: float) -> list[float]:
    script = [
        {
            "caller": f"question number {i}",
            "say": f"Here is answer number {i}. It has a second sentence too.",
        }
        for i in range(turns)
    ]
    async with (
        DeepgramEmulator(
            api_key="dg", script=script, realtime=False, tts_latency_s=tts_latency
        ) as dg,
        GeminiEmulator(api_key="gm", script=script, rest_chunk_delay_s=llm_delay) as gm,
    ):
        settings = load_settings(
            DEEPGRAM_API_KEY="dg",
            DEEPGRAM_BASE_URL=dg.base_url,
            GEMINI_API_KEY="gm",
            GEMINI_BASE_URL=gm.base_url,
        )
        config = SessionConfig(audio_format=AudioFormat.ULAW, sample_rate=8000)
        provider = create_provider(config, settings=settings)
        await provider.connect()
        done = asyncio.Event()

        async def pump() -> None:
            async for event in provider.receive_events():
                if event.type is ProviderEventType.RESPONSE_DONE:
                    done.set()

        pump_task = asyncio.create_task(pump())
        for i in range(turns):
            done.clear()
            text = f"question number {i}"
            audio = pcm16_to_ulaw(speech_like_pcm16(text, 8000) + b"\x00\x00" * 8 * 1400)
            for j in range(0, len(audio), 160):
                await provider.send_audio(
                    AudioChunk(audio[j : j + 160], AudioFormat.ULAW, 8000, time.monotonic())
                )
                if j % 1600 == 0:
                    await asyncio.sleep(0)
            await asyncio.wait_for(done.wait(), timeout=10)
        await provider.disconnect()
        await pump_task
        return list(provider.ttfa_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--tts-latency", type=float, default=0.0, help="emulated TTS delay, s")
    parser.add_argument("--llm-chunk-delay", type=float, default=0.0, help="between SSE chunks, s")
    args = parser.parse_args()
    ttfa = asyncio.run(run(args.turns, args.tts_latency, args.llm_chunk_delay))
    print("ttfa per turn (ms):", " ".join(f"{v:.1f}" for v in ttfa))
    print(
        f"turns={len(ttfa)} p50={percentile(ttfa, 50):.1f} ms p95={percentile(ttfa, 95):.1f} ms "
        f"mean={statistics.fmean(ttfa):.1f} ms"
    )


if __name__ == "__main__":
    main()
