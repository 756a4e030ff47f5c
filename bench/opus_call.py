"""The Opus work of one Telnyx ``OPUS`` call, per 20 ms frame (run by hand; issue #24).

    .venv/bin/python bench/opus_call.py

Two measurements, in CPU time of this process (a shared machine's waiting is left out), best of
a few runs, for each Opus backend that loads here:

* **media codec**: :class:`TelnyxMediaCodec` with ``pcm_rate=24000`` (OpenAI's rate, as the app
  sets it) after an ``OPUS`` ``start``: ``receive()`` of one ``media`` frame (JSON, base64,
  Opus decode) and ``send_media()`` of one 20 ms PCM frame (Opus encode, base64, JSON);
* **N streams**: the same decode + encode for 60 calls' codecs taken round-robin, as a busy
  worker does, so each codec's state has left the CPU cache by its next frame.

The caller's audio is the load test's (``bench/capacity.py --codec opus``): one second of a
quiet voice, pre-encoded. From those, "% of a core per call" is 50 frame pairs a second.

The script also runs against an older tree whose Opus codec has no ``backend`` argument (PyAV
only), e.g. ``PYTHONPATH=<old checkout>/src:. python bench/opus_call.py``, for a before/after.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import date
from typing import Any, cast

from switchboard.audio import OpusDecoder, OpusEncoder
from switchboard.emulators.common import speech_like_pcm16
from switchboard.loadtest.telnyx import OpusFrames
from switchboard.telephony.telnyx import wideband
from switchboard.telephony.telnyx.media import TelnyxMediaCodec

RATE = 24000
FRAMES = 500
STREAMS = 60


def backends() -> list[str | None]:
    """The backends to measure; [None] on a tree without a choice of backend."""
    try:
        from switchboard.audio.opus import opus_backends
    except ImportError:
        return [None]
    return list(opus_backends())


def best_cpu(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def inbound_texts(count: int) -> list[str]:
    """``media`` frames as Telnyx sends them, chunks numbered from 1, the load test's voice."""
    opus = OpusFrames()
    texts = []
    for k in range(count):
        media = {
            "track": "inbound",
            "chunk": str(k + 1),
            "timestamp": str(20 * k),
            "payload": base64.b64encode(opus.frame(k)).decode(),
        }
        msg = {"event": "media", "sequence_number": str(k + 2), "media": media, "stream_id": "S"}
        texts.append(json.dumps(msg))
    return texts


def outbound_frames() -> list[bytes]:
    pcm = speech_like_pcm16("the load test talks to you now and then", RATE, amplitude=0.01)
    n = RATE // 50 * 2
    return [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)][:50]


def media_codec(backend: str | None) -> TelnyxMediaCodec:
    """A media codec after an OPUS ``start``, its Opus codecs on ``backend``."""
    kw: dict[str, Any] = {} if backend is None else {"backend": backend}
    module = cast(Any, wideband)  # the codecs the media codec creates, on ``backend``
    enc, dec = module.OpusEncoder, module.OpusDecoder
    module.OpusEncoder = lambda rate, **k: enc(rate, **k, **kw)
    module.OpusDecoder = lambda rate, **k: dec(rate, **k, **kw)
    try:
        codec = TelnyxMediaCodec(pcm_rate=RATE)
        fmt = {"encoding": "OPUS", "sample_rate": 16000, "channels": 1}
        start = {"call_control_id": "c", "media_format": fmt}
        codec.receive(json.dumps({"event": "start", "stream_id": "S", "start": start}))
    finally:
        module.OpusEncoder, module.OpusDecoder = enc, dec
    return codec


def media_codec_us(backend: str | None) -> tuple[float, float]:
    """µs per frame: (receive, send_media)."""
    runs = 5
    texts, frames = inbound_texts(FRAMES * runs), outbound_frames()
    codec = media_codec(backend)
    at = [0]

    def rx() -> None:
        k = at[0]
        for text in texts[k : k + FRAMES]:
            codec.receive(text)
        at[0] = k + FRAMES

    def tx() -> None:
        for i in range(FRAMES):
            codec.send_media(frames[i % len(frames)])

    return best_cpu(rx, runs) / FRAMES * 1e6, best_cpu(tx) / FRAMES * 1e6


def streams_us(backend: str | None) -> float:
    """µs per frame pair (decode + encode) with STREAMS calls' codecs round-robin."""
    choice: dict[str, Any] = {} if backend is None else {"backend": backend}
    kw = dict(choice)
    if backend is not None:  # as telephony/telnyx/wideband.py sets up the Telnyx leg
        kw |= {"bitrate": 24000, "max_bandwidth_hz": 8000}
    opus = OpusFrames()
    packets, frames = [opus.frame(k) for k in range(50)], outbound_frames()
    steps = 100

    def run() -> None:
        encoders = [OpusEncoder(RATE, **kw) for _ in range(STREAMS)]
        decoders = [OpusDecoder(RATE, **choice) for _ in range(STREAMS)]
        for k in range(steps):
            packet, frame = packets[k % 50], frames[k % 50]
            for encoder, decoder in zip(encoders, decoders, strict=True):
                decoder.decode(packet)
                encoder.encode(frame)

    return best_cpu(run, 3) / (steps * STREAMS) * 1e6


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    print(f"{date.today()}, {platform.processor() or platform.machine()}, CPU time\n")
    print(
        "| backend | receive µs | send_media µs | media codec per call | "
        f"{STREAMS} streams µs/frame pair | % of a core per call | calls per core (Opus only) |"
    )
    print("|---|---|---|---|---|---|---|")
    for backend in backends():
        rx, tx = media_codec_us(backend)
        pair = streams_us(backend)
        print(
            f"| {backend or 'PyAV (no backend choice)'} | {rx:.1f} | {tx:.1f} | "
            f"{(rx + tx) * 50 / 1e4:.2f} % | {pair:.1f} | {pair * 50 / 1e4:.2f} % | "
            f"{1e6 / (pair * 50):,.0f} |"
        )


if __name__ == "__main__":
    main()
