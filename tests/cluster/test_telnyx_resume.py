"""A Telnyx call whose node dies mid-call resumes on the other node (#17 §2, Telnyx half).

The rig of ``test_resume.py``: two ``switchboard serve`` processes share Redis and one call
database behind haproxy. An emulated Telnyx caller talks to node a; a is SIGKILLed once the
agent's first answer was heard. Its media socket dies without ``streaming_stop``, so Telnyx (the
emulator) keeps the call up and sends ``streaming.stopped``; the balancer delivers it to b,
which restores the call and sends ``streaming_start`` to itself: the caller hears the agent
again within 3 s, the call keeps its id and record, and the next answer comes from a provider
session given what was said before the crash.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.telnyx.audio import wav_bytes
from tests.cluster.nodes import require_redis
from tests.cluster.test_resume import REDIS_URL, RESUME_LIMIT_S, SCRIPT, _free_port, _serve, haproxy
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, read_only_call, telnyx_env, until_said
from tests.e2e.test_webhooks_restart import _env

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.cluster,
]


async def test_a_node_killed_mid_call_resumes_the_telnyx_call_on_the_other_node(
    tmp_path: Path,
) -> None:
    require_redis()
    ports = [_free_port(), _free_port()]
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        oai = await stack.enter_async_context(
            OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0)
        )
        front = await stack.enter_async_context(haproxy(tmp_path, ports))
        pcm = caller_pcm(*(t["caller"] for t in SCRIPT), gap_ms=[9000, 4000])
        telnyx = await stack.enter_async_context(
            TelnyxEmulator(webhook_url=f"{front}/telnyx/webhook", audio=wav_bytes(pcm, 8000))
        )
        extra = openai_env(oai) | telnyx_env(telnyx, "openai")
        extra |= {
            "SWITCHBOARD_REDIS_URL": REDIS_URL.rsplit("/", 1)[0] + "/13",
            "SWITCHBOARD_SIGNING_SECRET": "tresume-test-signing-secret-0123456789abcdef",
        }
        env = _env(tmp_path, front, extra) | {"SWITCHBOARD_PUBLIC_URL": front}
        procs = []
        try:
            for node, port in zip(("a", "b"), ports, strict=True):
                procs.append(await _serve(tmp_path, env, node, port))
            a, b = procs
            call = await telnyx.place_inbound_call(to="+15550001111", from_="+15550002222")
            await until_said(tmp_path, lambda lines: ("agent", SCRIPT[0]["say"]) in lines)
            a.send_signal(signal.SIGKILL)
            killed = loop.time()
            report = await call.wait(60 * UNIT)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.terminate()
                    await proc.wait()
    assert not report.violations, report.violations
    events = [name for name, _status in report.webhooks]
    assert "streaming.stopped" in events, events
    assert len(call.legs) == 2, (report.webhooks, [leg.ended_by for leg in call.legs])
    assert report.commands.count("streaming_start") == 2, report.commands
    first_sound = call.legs[1].first_sound_at
    assert first_sound is not None, "the caller heard nothing on the resumed leg"
    gap_s = first_sound - killed
    print(f"telnyx resume gap: agent heard again {gap_s * 1000:.0f} ms after the SIGKILL")
    assert gap_s < RESUME_LIMIT_S * UNIT
    history = oai.histories[-1]  # the resumed provider session was given the conversation
    assert ("user", SCRIPT[0]["caller"]) in history, history
    assert ("assistant", SCRIPT[0]["say"]) in history, history
    detail = await read_only_call(tmp_path)  # one record: the same call id
    kinds = [event.kind for event in detail.timeline]
    assert "call.resumed" in kinds, kinds
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", SCRIPT[1]["say"]) in said, said
    assert b.returncode is not None
