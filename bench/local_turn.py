"""Local provider turn latency at the carrier socket, and how it degrades with concurrency.

    .venv/bin/python bench/local_turn.py                 # 1 call × 20 turns, then 2, 4, 8 calls
    .venv/bin/python bench/local_turn.py --calls 1 --turns 20

Turn latency is what the bridge records for every turn: from the caller's end of speech as seen
at the carrier socket (the last voiced μ-law frame) to the first frame of the agent's reply sent
to the carrier. Callers are simulated Twilio callers whose voices are synthesised with Piper and
put through a telephone band; the gateway runs in this process with the local provider
(Whisper tiny.en on a shared worker pool, rule-based dialog, Piper). Prints a Markdown table.

``--breakdown`` adds where the time of a 1-call run goes: the median time of each step after the
caller's end of speech at the socket, from the debug logs of the bridge and the local provider
(see :class:`Stamps`). ``--old`` runs the local provider as before the changes under test
(``docs/benchmarks.md``), for an A/B under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from switchboard.agents import Agent, AgentBook
from switchboard.app import create_app
from switchboard.config import load_settings
from switchboard.emulators.loopback import LoopbackServer, bind_loopback
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.providers.local import models, synth
from switchboard.store import CallStore

QUESTIONS = (
    "What are your opening hours?",
    "Where are you located?",
    "Are you open on Saturday?",
    "What is your address?",
)
PAUSE_S = 7.0
#: ``--old``: the local provider's options that undo the changes under test (A/B runs).
OLD: dict[str, Any] = {
    "vad_options": {"silence_dbfs": None},
    "end_on_complete": False,
    "window": False,
}

AGENT = Agent.model_validate(
    {
        "name": "bench",
        "numbers": ["*"],
        "system_prompt": "Receptionist.",
        "greeting": "Hello.",
        "provider": "local",
        "tools": ["end_call"],
        "limits": {"max_call_seconds": 600, "silence_timeout_s": 60, "silence_hangup_s": 120},
    }
)


#: (logger, message prefix) → step name, in the order a turn goes through them.
STEPS = (
    ("switchboard.providers.local.stt", "early decode", "early decode started"),
    ("switchboard.providers.local.stt", "utterance", "VAD end of utterance"),
    ("switchboard.providers.local.stt", "transcribed", "transcript ready"),
    ("switchboard.providers.pipeline.engine", "pipeline: LLM started", "turn ended, LLM started"),
    ("switchboard.providers.pipeline.engine", "pipeline: sentence 0", "first sentence to TTS"),
    ("switchboard.providers.pipeline.engine", "pipeline: time to first", "first TTS chunk"),
    ("switchboard.bridge.session", "turn ", "first frame sent"),
)


class Stamps(logging.Handler):
    """Keeps the monotonic time (ms) of the debug records that mark a turn's steps."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[tuple[float, str]] = []  # (ms, step)
        self.turn_starts: list[float] = []  # the bridge's caller.speech_stopped (at_ms)

    def install(self) -> None:
        for name in {logger for logger, _prefix, _step in STEPS}:
            log = logging.getLogger(name)
            log.setLevel(logging.DEBUG)
            log.addHandler(self)
            log.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        now = time.monotonic() * 1000.0
        message = record.getMessage()
        if message.startswith("timeline caller.speech_stopped at "):
            self.turn_starts.append(float(message.split()[-2]))
        for logger, prefix, step in STEPS:
            if record.name == logger and message.startswith(prefix):
                self.events.append((now, step))

    def breakdown(self) -> dict[str, list[float]]:
        """For each step, its first time after each turn's start (before the next turn's)."""
        out: dict[str, list[float]] = {step: [] for _l, _p, step in STEPS}
        starts = sorted(self.turn_starts)
        for index, start in enumerate(starts):
            # the early decode and the VAD's end may come before the bridge learns the end
            # of speech (the pipeline reports it with the transcript); they come after the
            # caller's last voice, so look from there
            end = starts[index + 1] if index + 1 < len(starts) else float("inf")
            for step in out:
                times = [t for t, s in self.events if s == step and start - 1000 <= t < end - 1000]
                if times:
                    out[step].append(min(times) - start)
        return out


def caller_audio(turns: int) -> bytes:
    lines = [(QUESTIONS[i % len(QUESTIONS)], PAUSE_S) for i in range(turns)]
    return synth.conversation(lines, lead_s=2.0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(
    calls: int, turns: int, workdir: Path, options: dict[str, Any] | None = None
) -> list[float]:
    audio = caller_audio(turns)
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    db = f"sqlite+aiosqlite:///{workdir / f'bench-{calls}.db'}"
    async with TwilioEmulator(audio=audio, linger_s=1.0, max_call_s=600) as twilio:
        settings = load_settings(
            SWITCHBOARD_PROVIDER="local",
            TWILIO_ACCOUNT_SID=twilio.account_sid,
            TWILIO_AUTH_TOKEN=twilio.auth_token,
            TWILIO_BASE_URL=twilio.base_url,
            SWITCHBOARD_PUBLIC_URL=base,
            SWITCHBOARD_API_TOKEN="bench-token",  # noqa: S106  # a throwaway local run
            SWITCHBOARD_DATABASE_URL=db,
        )
        app = create_app(
            settings, agents=AgentBook([AGENT]), provider_options={"local": options or {}}
        )
        async with LoopbackServer(app, sock=sock):
            for _ in range(calls):
                twilio.dial_in(f"{base}/twilio/voice")
                await asyncio.sleep(0.37)  # stagger so turns do not all land at once
            await twilio.wait_calls(timeout_s=900)
    store = CallStore(db)
    await store.migrate()
    latencies: list[float] = []
    for record in (await store.list_calls(limit=100)).items:
        detail = await store.get_call(record.id)
        assert detail is not None
        latencies += [lat.latency_ms for lat in detail.latencies]
    await store.aclose()
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--turns", type=int, default=None, help="turns per call")
    parser.add_argument("--old", action="store_true", help="the provider before the changes")
    parser.add_argument("--breakdown", action="store_true", help="where a turn's time goes")
    args = parser.parse_args()
    stamps = Stamps()
    if args.breakdown:
        stamps.install()
    options = OLD if args.old else {}
    started = time.perf_counter()
    models.whisper_model()
    models.piper_voice()
    print(f"models loaded in {time.perf_counter() - started:.2f} s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.calls:
            turns = args.turns or (20 if n == 1 else 5)
            lat = await run(n, turns, Path(tmp), options)
            rows.append((n, turns, len(lat), lat))
            print(f"{n} call(s): {len(lat)} turns measured", flush=True)
    print(f"\n### Local provider turn latency ({date.today()}, {platform.machine()}, 2 cores)\n")
    print("| concurrent calls | turns measured | p50 ms | p95 ms | max ms | mean ms |")
    print("|---|---|---|---|---|---|")
    for n, _turns, count, lat in rows:
        if lat:
            print(
                f"| {n} | {count} | {pct(lat, 50):.0f} | {pct(lat, 95):.0f} | {max(lat):.0f} "
                f"| {statistics.fmean(lat):.0f} |"
            )
        else:
            print(f"| {n} | 0 | – | – | – | – |")
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.breakdown:
        print("\n| step (ms after the caller's last voiced frame) | turns | p50 | p95 |")
        print("|---|---|---|---|")
        for step, values in stamps.breakdown().items():
            if values:
                print(f"| {step} | {len(values)} | {pct(values, 50):.0f} | {pct(values, 95):.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
