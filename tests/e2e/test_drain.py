"""Drain on deploy, through a real ``switchboard serve`` process (no Redis): SIGTERM makes
``/readyz`` 503 at once while the live call runs on to its normal end and the process exits 0;
a call still live at ``SWITCHBOARD_DRAIN_SECONDS`` is hung up cleanly and counted as cut."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.cluster.processes import redis_database
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, read_only_call, twilio_env
from tests.e2e.test_pairs import GAPS, SCRIPT, UTTERANCES
from tests.e2e.test_webhooks_restart import _env, serving
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.slow]

TOKEN = "drain-test-twilio-token-0123456789abc"


API = "drain-test-api-token-0123456789abcdef"


async def _live_calls(base: str) -> int:
    """How many calls the node has bridged (``/v1/sessions``, status in-progress)."""
    async with httpx.AsyncClient() as client:
        got = await client.get(
            f"{base}/v1/sessions", headers={"Authorization": f"Bearer {API}"}, timeout=2.0
        )
    return sum(1 for s in got.json() if s.get("status") == "in-progress")


async def _end_reason(tmp_path: Path) -> str | None:
    return (await read_only_call(tmp_path)).record.end_reason


@pytest.mark.parametrize(
    "workers",
    [1, pytest.param(2, marks=[pytest.mark.redis, pytest.mark.cluster], id="workers2")],
)
async def test_sigterm_lets_the_live_call_finish_then_exits_0(tmp_path: Path, workers: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        oai = await stack.enter_async_context(
            OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0)
        )
        twilio = await stack.enter_async_context(TwilioEmulator(auth_token=TOKEN))
        drain = {"SWITCHBOARD_DRAIN_SECONDS": "60", "SWITCHBOARD_API_TOKEN": API}
        if workers > 1:  # each worker drains its own calls (the supervisor passes SIGTERM on)
            drain["SWITCHBOARD_REDIS_URL"] = stack.enter_context(redis_database())
        extra = openai_env(oai) | twilio_env(twilio, "openai") | drain
        args = ("--workers", str(workers)) if workers > 1 else ()
        async with serving(tmp_path, _env(tmp_path, "http://x", extra), *args) as (base, proc):
            pcm = caller_pcm(*UTTERANCES, gap_ms=GAPS)
            caller = twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await eventually_async(
                lambda: _live_calls(base), limit_s=20.0, what="the call live on the node"
            )
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            async def draining() -> bool:
                async with httpx.AsyncClient() as client:
                    ready = await client.get(f"{base}/readyz", timeout=2.0)
                return ready.status_code == 503 and "draining" in ready.text

            # One process marks itself draining at the signal; under --workers the supervisor
            # passes SIGTERM on at its next look at its signal queue (every 0.5 s).
            limit_s = 1.0 * workers
            await eventually_async(draining, limit_s=limit_s, what="/readyz 503", every_s=0.05)
            assert time.monotonic() - signalled < limit_s * UNIT
            (report,) = await twilio.wait_calls(timeout_s=40 * UNIT)
            assert await asyncio.wait_for(proc.wait(), 20 * UNIT) == 0
    assert report.call_sid == caller.report.call_sid
    assert report.outcome != "unknown" and not report.outcome.startswith("stream failed")
    assert await _end_reason(tmp_path) == "agent_hangup"  # the goodbye, after the SIGTERM


async def test_calls_left_at_the_deadline_are_cut_cleanly(tmp_path: Path) -> None:
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(auth_token=TOKEN) as twilio,
    ):
        drain = {"SWITCHBOARD_DRAIN_SECONDS": "1", "SWITCHBOARD_API_TOKEN": API}
        extra = openai_env(oai) | twilio_env(twilio, "openai") | drain
        async with serving(tmp_path, _env(tmp_path, "http://x", extra)) as (base, proc):
            pcm = caller_pcm("what are your opening hours", gap_ms=30000)  # a long call
            twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await eventually_async(
                lambda: _live_calls(base), limit_s=20.0, what="the call live on the node"
            )
            proc.send_signal(signal.SIGTERM)
            (report,) = await twilio.wait_calls(timeout_s=20 * UNIT)
            assert await asyncio.wait_for(proc.wait(), 20 * UNIT) == 0
    assert report.outcome == "hangup by REST"  # hung up through the carrier, not dropped
    assert await _end_reason(tmp_path) == "drained"
