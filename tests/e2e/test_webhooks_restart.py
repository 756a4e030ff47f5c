"""Durable delivery across a crash: ``switchboard serve`` (a real process, SQLite file database)
takes a call while the receiver is failing, is SIGKILLed with the call's events pending, and a
new ``switchboard serve`` on the same database delivers them — each once, in order, with the
``webhook-id`` the receiver saw before the crash, verified with the reference library."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from switchboard.emulators.loopback import bind_loopback
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.store import CallStore
from switchboard.store.outbox import Delivery
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, place_twilio_call, twilio_env
from tests.integrations.receiver import Receiver
from tests.waiting import eventually, eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

TWILIO_TOKEN = "restart-test-twilio-token-0123456789"
SECRET = "whsec_" + base64.b64encode(b"restart-webhook-signing-key-32by").decode()
AGENTS = """version: 1
agents:
  frontdesk:
    numbers: ["*"]
    system_prompt: You are a test agent.
    greeting: Hello, thanks for calling.
    tools: [end_call]
"""


def _env(tmp_path: Path, base: str, extra: dict[str, str]) -> dict[str, str]:
    prefixes = ("SWITCHBOARD_", "TWILIO_", "TELNYX_", "OPENAI_", "GEMINI_", "DEEPGRAM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS, "utf-8")
    env.update(
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        SWITCHBOARD_AGENTS=str(agents),
        SWITCHBOARD_PUBLIC_URL=base,
        SWITCHBOARD_LOG_LEVEL="WARNING",
        SWITCHBOARD_WEBHOOK_SECRET=SECRET,
        SWITCHBOARD_WEBHOOK_RETRY_INITIAL_S="0.1",
        SWITCHBOARD_WEBHOOK_RETRY_MAX_S="0.3",
        # an attempt cut off by the kill holds its row for 2 × timeout + 5 s (the lease)
        SWITCHBOARD_WEBHOOK_TIMEOUT_S="1",
        **extra,
    )
    return env


@asynccontextmanager
async def serving(
    tmp_path: Path, env: dict[str, str], *args: str
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``switchboard serve`` (with ``args``) on a free port until the block ends (or the test
    kills it)."""
    with bind_loopback() as sock:
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**env, "SWITCHBOARD_PUBLIC_URL": base}
    command = [sys.executable, "-m", "switchboard.cli", "serve", "--port", str(port), *args]
    proc = await asyncio.create_subprocess_exec(*command, env=env, cwd=tmp_path)
    try:
        async with httpx.AsyncClient() as client:

            async def healthy() -> bool:
                assert proc.returncode is None, "switchboard serve exited"
                try:
                    return (await client.get(f"{base}/healthz", timeout=1.0)).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually_async(healthy, limit_s=30.0, what="serve answering", every_s=0.1)
        yield base, proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10 * UNIT)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _pending(store: CallStore) -> list[str] | None:
    """The event types waiting in the outbox, once the first has failed twice (the others wait
    behind it: a receiver gets a call's events in order)."""
    rows = list(reversed(await store.outbox.deliveries(status="pending")))
    if len(rows) == 3 and rows[0].attempts >= 2:
        return [row.event_type for row in rows]
    return None


async def test_pending_deliveries_survive_a_killed_server(tmp_path: Path) -> None:
    script = [{"caller": "hi there", "tool": {"name": "end_call", "arguments": {}}, "say": "Bye!"}]
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    async with (
        Receiver(SECRET, fail_first=10_000, fail_status=503) as receiver,
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator(auth_token=TWILIO_TOKEN) as twilio,
    ):
        extra = openai_env(oai) | twilio_env(twilio, "openai")
        extra["SWITCHBOARD_WEBHOOK_URL"] = receiver.url
        env = _env(tmp_path, "http://127.0.0.1", extra)
        try:
            async with serving(tmp_path, env) as (base, first):
                await place_twilio_call(twilio, base, caller_pcm("hi there", gap_ms=3000))
                pending = await eventually_async(
                    lambda: _pending(store),
                    limit_s=20.0,
                    what="the events pending, the first retried",
                )
                first.send_signal(signal.SIGKILL)
                await first.wait()
            assert pending == ["call.started", "call.answered", "call.ended"]
            assert receiver.accepted == []
            tried_before = {r.id for r in receiver.received}
            receiver.fail_first = 0  # the receiver is back
            async with serving(tmp_path, env):
                await eventually(
                    lambda: len(receiver.accepted) == 3, limit_s=20.0, what="all three delivered"
                )
                delivered = await eventually_async(
                    lambda: _delivered(store), what="the outbox marked delivered"
                )
        finally:
            await store.aclose()
    assert receiver.unverified == []
    assert [r.type for r in receiver.accepted] == ["call.started", "call.answered", "call.ended"]
    ids = [r.id for r in receiver.accepted]
    assert len(set(ids)) == 3  # each once
    assert tried_before == {ids[0]}  # call.started kept its webhook-id across the crash
    assert sorted(d.attempts for d in delivered)[-1] >= 3


async def _delivered(store: CallStore) -> list[Delivery] | None:
    rows = await store.outbox.deliveries(status="delivered")
    return list(rows) if len(rows) == 3 else None
