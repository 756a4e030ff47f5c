"""Provider failover: the gap the caller hears when a provider fails mid-call (run by hand).

    PYTHONPATH=src:. .venv/bin/python bench/failover.py --runs 3     # prints a Markdown table

Runs the end-to-end failover call of ``tests/e2e/test_failover.py`` (Twilio emulator caller,
the app on loopback, provider emulators; real sockets) for each provider and each failure —
dropped with reconnects refused, or silent — and reads the ``provider.failover`` timeline
entry of each call:

* **gap**: from the moment the caller was left without service (socket lost, or reply due) to
  the fallback provider connected and bridged;
* **switch**: the part switchboard adds to the trigger's own wait (``failover_after_s`` = 3 s
  for a lost socket, ``stall_timeout_s`` = 5 s for a stall): creating and connecting the next
  provider with the conversation, and handing it the call.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from tests.e2e.harness import agent_book, caller_pcm, read_only_call, running_app, twilio_env
from tests.e2e.test_failover import FIRST, SECOND, Emulators

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.twilio import TwilioEmulator

THRESHOLD_MS = {"lost": 3000.0, "fatal_error": 0.0, "provider_failed": 0.0, "stall": 5000.0}


async def one_call(primary: str, mode: str) -> tuple[str, float]:
    """One call whose provider fails mid-call; returns (reason, gap ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        async with AsyncExitStack() as stack:
            emulators = Emulators(primary)
            await emulators.start(stack)
            twilio = await stack.enter_async_context(TwilioEmulator())
            env = emulators.env | twilio_env(twilio, primary)
            book = agent_book(
                fallback=[emulators.fallback],
                tools=[],
                limits={"max_call_seconds": 60, "silence_timeout_s": 30, "silence_hangup_s": 50},
            )
            async with running_app(path, env, agents=book) as (base, *_):  # default backoffs
                pcm = caller_pcm(FIRST["caller"], SECOND["caller"], gap_ms=[9000, 9000])
                twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
                await asyncio.sleep(6.0)  # the first answer has played
                await emulators.fail(mode)
                await twilio.wait_calls(timeout_s=60)
        detail = await read_only_call(path)
    (entry,) = [e for e in detail.timeline if e.kind == "provider.failover"]
    return str(entry.data["reason"]), float(entry.data["gap_ms"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.runs} calls each\n")
    print("| provider → fallback | failure | reason | gap p50 | gap max | switch p50 |")
    print("|---|---|---|---|---|---|")
    for primary in ("openai", "gemini", "deepgram"):
        for mode in ("drop", "silent"):
            results = [await one_call(primary, mode) for _ in range(args.runs)]
            gaps = [gap for _, gap in results]
            reason = results[0][0]
            switch = [gap - THRESHOLD_MS.get(r, 0.0) for r, gap in results]
            fallback = Emulators(primary).fallback
            print(
                f"| {primary} → {fallback} | {mode} | {reason} | {statistics.median(gaps):.0f} ms"
                f" | {max(gaps):.0f} ms | {statistics.median(switch):.0f} ms |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
