"""Audio benchmark: G.711 codecs and the streaming resampler (run by hand).

    .venv/bin/python bench/audio.py            # prints Markdown tables
    .venv/bin/python bench/audio.py --compressed   # only Opus, G.722 and MP3

Measures, on one core (the process is pinned to CPU 0 when the OS allows):
* codec throughput as ×real-time for 8 kHz telephony audio, processed in 20 ms frames (the
  bridge's unit of work) and in 1 s blocks, and as a ratio to ``audioop`` measured in the same run
  (Python ≤ 3.12 only);
* streaming resampler throughput 8k→24k, 24k→8k and 8k→16k in 20 ms chunks, ×real-time;
* quality: SNR of a 1 kHz-ish tone set through 8k→24k→8k.
Targets (issue #2): codecs at least as fast as audioop; 8k→24k ≥ 500× real time; SNR ≥ 60 dB.
* the compressed codecs (issue #24): Opus encode/decode per stream at 8/16/24/48 kHz in 20 ms
  packets on each backend that loads here (libopus direct, PyAV), G.722, MP3 streaming decode
  and encode (PyAV, the ``codecs`` extra), as ×real-time on one core, with the SNR of a voiced
  test signal; and the Opus calls one core's codec work carries (a Telnyx OPUS call decodes
  and encodes 50 packets a second each way: at 16 kHz, and as the Telnyx leg does for OpenAI,
  24 kHz PCM coded wideband).
"""

from __future__ import annotations

import functools
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

import numpy as np

from switchboard.audio import (
    FirResampler,
    Resampler,
    alaw_to_pcm16,
    pcm16_to_alaw,
    pcm16_to_ulaw,
    ulaw_to_pcm16,
)
from switchboard.errors import AudioError

SECONDS = 60  # of audio per measurement


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})


def tone_pcm(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * math.pi * f * t) * 0.2 for f in (311.0, 997.0, 3001.0))
    return (np.asarray(x) * 32767).astype("<i2").tobytes()


def best_of(
    fn: Callable[[], object], repeat: int = 5, clock: Callable[[], float] = time.perf_counter
) -> float:
    best = math.inf
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def voiced_pcm(rate: int, seconds: float) -> bytes:
    """Harmonics of a wobbling 140 Hz pitch, amplitude modulated: a codec sees speech-like audio."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * math.pi * np.cumsum(140 * (1 + 0.1 * np.sin(2 * math.pi * 3 * t))) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12) if k * 154 < rate * 0.4)
    x = np.asarray(x) * (0.6 + 0.4 * np.sin(2 * math.pi * 2 * t))
    return bytes((x / np.max(np.abs(x)) * 0.5 * 32767).astype("<i2").tobytes())


def aligned_snr(ref_pcm: bytes, out_pcm: bytes, max_lag: int) -> float:
    """SNR of ``out_pcm`` against ``ref_pcm`` once the codec's delay is taken out."""
    ref = np.frombuffer(ref_pcm, "<i2").astype(np.float64)
    out = np.frombuffer(out_pcm, "<i2").astype(np.float64)
    half = ref[: len(ref) // 2]
    lag = int(np.argmax(np.correlate(out[: len(half) + max_lag], half, "valid")))
    n = min(len(ref), len(out) - lag)
    core = slice(n // 10, n - n // 10)
    err = ref[:n][core] - out[lag : lag + n][core]
    return 10 * math.log10(float(np.sum(ref[:n][core] ** 2)) / float(np.sum(err**2)))


def stream_time(make: Callable[[], Any], method: str, pieces: list[bytes]) -> float:
    """Best CPU time of one fresh codec object taking ``pieces`` in order (one stream).

    CPU time, not wall time: on a shared machine the time spent waiting for the core is left
    out (the codec's own cache misses after a preemption are not).
    """

    def run() -> None:
        codec = make()
        step = getattr(codec, method)
        for piece in pieces:
            step(piece)

    return best_of(run, 5, time.process_time)


def opus_rows(seconds: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Opus per backend: (rows of name, ×real-time, SNR), [(what, Opus calls per core)]."""
    from switchboard.audio import OpusDecoder, OpusEncoder
    from switchboard.audio.opus import opus_backends

    rows: list[tuple[str, str, str]] = []
    calls: list[tuple[str, str]] = []
    backends = opus_backends()
    for rate in (8000, 16000, 24000, 48000):
        pcm = voiced_pcm(rate, seconds)
        for backend in backends:  # back to back, so a shared machine's load hits both alike
            encoder = partial(OpusEncoder, rate, backend=backend)
            decoder = partial(OpusDecoder, rate, backend=backend)
            packets = encoder().encode(pcm)
            t_enc = stream_time(encoder, "encode", chunks(pcm, rate // 50 * 2))
            t_dec = stream_time(decoder, "decode", packets)
            opus = decoder()
            snr = aligned_snr(pcm, b"".join(opus.decode(p) for p in packets), rate // 50)
            name = f"{rate // 1000} kHz ({backend})"
            rows.append((f"Opus encode {name}", f"{seconds / t_enc:,.0f}×", f"{snr:.1f}"))
            rows.append((f"Opus decode {name}", f"{seconds / t_dec:,.0f}×", ""))
            if rate == 16000:  # codec seconds per second of call → calls per core
                what = f"16 kHz decode + encode, {backend}"
                calls.append((what, f"{seconds / (t_enc + t_dec):,.0f}"))
    # The Telnyx OPUS leg with OpenAI: 24 kHz PCM, coded for the 16 kHz wire (wideband,
    # 24 kb/s) as telephony/telnyx/wideband.py does.
    pcm = voiced_pcm(24000, seconds)
    for backend in backends:
        leg = partial(OpusEncoder, 24000, bitrate=24000, max_bandwidth_hz=8000, backend=backend)
        packets = leg().encode(pcm)
        t_enc = stream_time(leg, "encode", chunks(pcm, 960))
        t_dec = stream_time(partial(OpusDecoder, 24000, backend=backend), "decode", packets)
        what = f"the Telnyx leg for OpenAI: 24 kHz PCM coded wideband at 24 kb/s, {backend}"
        calls.append((what, f"{seconds / (t_enc + t_dec):,.0f}"))
    return rows, calls


def compressed_rows() -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Opus, G.722 and MP3 on one stream: (rows of name, ×real-time, SNR), Opus calls per core."""
    from switchboard.audio import Mp3Decoder, Mp3Encoder, encode_audio
    from switchboard.audio.g722 import G722Decoder, G722Encoder

    seconds = 20
    rows, calls = opus_rows(seconds)
    pcm = voiced_pcm(16000, seconds)
    frames = chunks(pcm, 640)
    g722 = G722Encoder().encode(pcm)
    t_enc = stream_time(G722Encoder, "encode", frames)
    t_dec = stream_time(G722Decoder, "decode", chunks(g722, 160))
    snr = aligned_snr(pcm, G722Decoder().decode(g722), 64)
    rows.append(("G.722 encode 16 kHz", f"{seconds / t_enc:,.0f}×", f"{snr:.1f}"))
    rows.append(("G.722 decode 16 kHz", f"{seconds / t_dec:,.0f}×", ""))
    mp3 = encode_audio(pcm, 16000, "mp3")
    t_enc = stream_time(partial(Mp3Encoder, 16000), "encode", frames)
    t_dec = stream_time(partial(Mp3Decoder, 16000), "decode", chunks(mp3, 80))  # 20 ms pieces
    mp3_decoder = Mp3Decoder(16000)
    snr = aligned_snr(pcm, mp3_decoder.decode(mp3) + mp3_decoder.flush(), 4000)
    rows.append(("MP3 encode 16 kHz, 32 kb/s", f"{seconds / t_enc:,.0f}×", f"{snr:.1f}"))
    rows.append(("MP3 decode 16 kHz, 20 ms pieces", f"{seconds / t_dec:,.0f}×", ""))
    return rows, calls


def main() -> None:
    pin_one_core()
    if "--compressed" in sys.argv[1:]:
        print_compressed()
        return
    pcm8 = tone_pcm(8000, SECONDS)
    ulaw8 = pcm16_to_ulaw(pcm8)
    alaw8 = pcm16_to_alaw(pcm8)
    frames_pcm = chunks(pcm8, 320)  # 20 ms
    frames_ulaw = chunks(ulaw8, 160)
    frames_alaw = chunks(alaw8, 160)
    audioop: Any = None
    if sys.version_info < (3, 13):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop as _audioop
        audioop = _audioop

    rows: list[tuple[str, str, str, str]] = []

    def codec(
        name: str,
        ours: Callable[[bytes], bytes],
        ref: Callable[[bytes], bytes] | None,
        frames: list[bytes],
        block: bytes,
    ) -> None:
        t20 = best_of(lambda: [ours(f) for f in frames])
        t1s = best_of(
            lambda: [
                ours(block[i : i + len(block) // SECONDS])
                for i in range(0, len(block), len(block) // SECONDS)
            ]
        )
        ratio = "n/a"
        if ref is not None:
            r20 = best_of(lambda: [ref(f) for f in frames])
            step = len(block) // SECONDS
            r1s = best_of(lambda: [ref(block[i : i + step]) for i in range(0, len(block), step)])
            ratio = f"{r20 / t20:.2f}× / {r1s / t1s:.2f}×"
        rows.append((name, f"{SECONDS / t20:,.0f}×", f"{SECONDS / t1s:,.0f}×", ratio))

    codec(
        "PCM16 → μ-law",
        pcm16_to_ulaw,
        audioop and (lambda b: audioop.lin2ulaw(b, 2)),
        frames_pcm,
        pcm8,
    )
    codec(
        "μ-law → PCM16",
        ulaw_to_pcm16,
        audioop and (lambda b: audioop.ulaw2lin(b, 2)),
        frames_ulaw,
        ulaw8,
    )
    codec(
        "PCM16 → A-law",
        pcm16_to_alaw,
        audioop and (lambda b: audioop.lin2alaw(b, 2)),
        frames_pcm,
        pcm8,
    )
    codec(
        "A-law → PCM16",
        alaw_to_pcm16,
        audioop and (lambda b: audioop.alaw2lin(b, 2)),
        frames_alaw,
        alaw8,
    )

    resample_rows: list[tuple[str, ...]] = []
    kinds: list[Any] = [
        Resampler,
        functools.partial(FirResampler, compiled=False),  # numpy
        functools.partial(FirResampler, compiled=True),  # _fir.c
    ]
    if not FirResampler(8000, 24000).compiled:
        kinds.pop()  # no C accelerator built here
    for src, dst in ((8000, 24000), (24000, 8000), (8000, 16000), (16000, 8000)):
        signal = tone_pcm(src, SECONDS)
        pieces = chunks(signal, src * 20 // 1000 * 2)
        speeds: list[str] = []
        for kind in kinds:

            def run(
                src: int = src, dst: int = dst, pieces: list[bytes] = pieces, kind: Any = kind
            ) -> None:
                rs = kind(src, dst)
                for piece in pieces:
                    rs.process(piece)

            speeds.append(f"{SECONDS / best_of(run, 3):,.0f}×")
        resample_rows.append((f"{src // 1000}k → {dst // 1000}k", *speeds))

    pcm = tone_pcm(8000, 2.0)
    up = Resampler(8000, 24000)
    mid = up.process(pcm) + up.flush()
    down = Resampler(24000, 8000)
    back = down.process(mid) + down.flush()
    ref = np.frombuffer(pcm, "<i2").astype(np.float64)
    out = np.frombuffer(back, "<i2").astype(np.float64)[: len(ref)]
    core = slice(800, len(ref) - 800)
    noise = float(np.sum((ref[core] - out[core]) ** 2))
    snr = math.inf if noise == 0 else 10 * math.log10(float(np.sum(ref[core] ** 2)) / noise)

    machine = f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}"
    print(f"### Audio ({date.today().isoformat()}, {machine}, one core)\n")
    print("| codec | ×real-time, 20 ms | ×real-time, 1 s blocks | vs audioop (20 ms / 1 s) |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        "\n| streaming resampler, 20 ms chunks | soxr HQ ×real-time "
        "| polyphase FIR, numpy | polyphase FIR, C |"
    )
    print("|---|---|---|---|")
    for row2 in resample_rows:
        print("| " + " | ".join(row2) + " |")
    print(f"\nSNR of three tones (311, 997, 3001 Hz) through 8k→24k→8k: {snr:.1f} dB\n")
    print_compressed()


def print_compressed() -> None:
    try:
        compressed, opus_calls = compressed_rows()
    except AudioError as exc:  # the codecs extra is not installed
        print(f"(Opus/G.722/MP3 skipped: {exc})")
        return
    print("| compressed codec, one stream | ×real-time | SNR dB (voiced signal) |")
    print("|---|---|---|")
    for row3 in compressed:
        print("| " + " | ".join(row3) + " |")
    print()
    for what, n in opus_calls:
        print(f"Opus calls per core, codec work only ({what}): {n}")
    print()


if __name__ == "__main__":
    main()
