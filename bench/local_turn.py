"""Local provider turn latency at the carrier socket, and how it degrades with concurrency.

    .venv/bin/python bench/local_turn.py                 # 1 call × 20 turns, then 2, 4, 8 calls
    .venv/bin/python bench/local_turn.py --calls 1 --turns 20

Turn latency is what the bridge records for every turn: from the caller's end of speech as seen
at the carrier socket (the last voiced μ-law frame) to the first frame of the agent's reply sent
to the carrier. Callers are simulated Twilio callers whose voices are synthesised with Piper and
put through a telephone band; the gateway runs in this process with the local provider
(Whisper tiny.en on a shared worker pool, rule-based dialog, Piper). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

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


def caller_audio(turns: int) -> bytes:
    lines = [(QUESTIONS[i % len(QUESTIONS)], PAUSE_S) for i in range(turns)]
    return synth.conversation(lines, lead_s=2.0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(calls: int, turns: int, workdir: Path) -> list[float]:
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
        app = create_app(settings, agents=AgentBook([AGENT]))
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
    args = parser.parse_args()
    started = time.perf_counter()
    models.whisper_model()
    models.piper_voice()
    print(f"models loaded in {time.perf_counter() - started:.2f} s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.calls:
            turns = args.turns or (20 if n == 1 else 5)
            lat = await run(n, turns, Path(tmp))
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


if __name__ == "__main__":
    asyncio.run(main())
