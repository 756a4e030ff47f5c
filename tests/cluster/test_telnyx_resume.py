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
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.telnyx.audio import wav_bytes
from tests.cluster.nodes import require_redis
from tests.cluster.processes import redis_database
from tests.cluster.test_resume import RESUME_LIMIT_S, SCRIPT, _free_port, _serve
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


TOKEN = "tresume-test-api-token-0123456789abcdef"


@asynccontextmanager
async def haproxy(tmp_path: Path, ports: list[int]) -> AsyncIterator[str]:
    """``test_resume.py``'s haproxy, with a node marked down after two failed checks (not one:
    on a loaded machine one slow ``/readyz`` left no server up, and a new leg got a 503)."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    front = _free_port()
    servers = "\n".join(
        f"  server n{i} 127.0.0.1:{port} check inter 100ms fall 2 rise 1"
        for i, port in enumerate(ports)
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"""global
  maxconn 200
defaults
  mode http
  timeout connect 500ms
  timeout check 1s
  timeout client 120s
  timeout server 120s
  timeout tunnel 120s
  option redispatch
  retries 3
frontend front
  bind 127.0.0.1:{front}
  default_backend nodes
backend nodes
  balance first
  option httpchk GET /readyz
{servers}
""",
        "utf-8",
    )
    proc = await asyncio.create_subprocess_exec("haproxy", "-q", "-f", str(config), "-db")
    try:
        yield f"http://127.0.0.1:{front}"
    finally:
        proc.terminate()
        await proc.wait()


@dataclass
class Rig:
    """Two nodes behind haproxy, the emulators, and which node holds the one call."""

    oai: OpenAIRealtimeEmulator
    telnyx: TelnyxEmulator
    procs: dict[str, asyncio.subprocess.Process]
    ports: dict[str, int]

    async def holder(self) -> str:
        """The node ("a"/"b") running the call's media, as the cluster lists it."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(headers=headers, timeout=10.0) as http:
            for port in self.ports.values():
                got = await http.get(f"http://127.0.0.1:{port}/v1/sessions")
                if got.status_code == 200 and got.json():
                    return str(got.json()[0]["node"])
        raise AssertionError("no node lists the call")


@asynccontextmanager
async def rig(tmp_path: Path, **env_extra: str) -> AsyncIterator[Rig]:
    """The rig of ``test_resume.py`` with an emulated Telnyx caller; the nodes end after."""
    require_redis()
    ports = {"a": _free_port(), "b": _free_port()}
    async with AsyncExitStack() as stack:
        oai = await stack.enter_async_context(
            OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0)
        )
        front = await stack.enter_async_context(haproxy(tmp_path, list(ports.values())))
        pcm = caller_pcm(*(t["caller"] for t in SCRIPT), gap_ms=[9000, 4000])
        telnyx = await stack.enter_async_context(
            TelnyxEmulator(webhook_url=f"{front}/telnyx/webhook", audio=wav_bytes(pcm, 8000))
        )
        extra = openai_env(oai) | telnyx_env(telnyx, "openai") | env_extra
        extra |= {
            # a database of its own (leased): a fixed one collided with other tests' leases
            "SWITCHBOARD_REDIS_URL": stack.enter_context(redis_database()),
            "SWITCHBOARD_SIGNING_SECRET": "tresume-test-signing-secret-0123456789abcdef",
            "SWITCHBOARD_API_TOKEN": TOKEN,
        }
        env = _env(tmp_path, front, extra) | {"SWITCHBOARD_PUBLIC_URL": front}
        procs: dict[str, asyncio.subprocess.Process] = {}
        try:
            for node, port in ports.items():
                procs[node] = await _serve(tmp_path, env, node, port)
            yield Rig(oai, telnyx, procs, ports)
        finally:
            for proc in procs.values():
                if proc.returncode is None:
                    proc.terminate()
                    await proc.wait()


async def test_a_node_killed_mid_call_resumes_the_telnyx_call_on_the_other_node(
    tmp_path: Path,
) -> None:
    loop = asyncio.get_running_loop()
    async with rig(tmp_path) as r:
        call = await r.telnyx.place_inbound_call(to="+15550001111", from_="+15550002222")
        await until_said(tmp_path, lambda lines: ("agent", SCRIPT[0]["say"]) in lines)
        holder = await r.holder()
        r.procs[holder].send_signal(signal.SIGKILL)
        killed = loop.time()
        report = await call.wait(60 * UNIT)
        (other,) = [p for name, p in r.procs.items() if name != holder]
        assert other.returncode is None
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
    history = r.oai.histories[-1]  # the resumed provider session was given the conversation
    assert ("user", SCRIPT[0]["caller"]) in history, history
    assert ("assistant", SCRIPT[0]["say"]) in history, history
    detail = await read_only_call(tmp_path)  # one record: the same call id
    kinds = [event.kind for event in detail.timeline]
    assert "call.resumed" in kinds, kinds
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", SCRIPT[1]["say"]) in said, said


async def test_sigterm_moves_a_telnyx_call_to_the_other_node(tmp_path: Path) -> None:
    """Drain on deploy: at the deadline the node holding the call hands it through the
    cluster to the other, which restarts the stream to itself (``streaming_start``); the
    drained node exits 0 and the call goes on."""
    async with rig(tmp_path, SWITCHBOARD_DRAIN_SECONDS="1") as r:
        call = await r.telnyx.place_inbound_call(to="+15550001111", from_="+15550002222")
        await until_said(tmp_path, lambda lines: ("agent", SCRIPT[0]["say"]) in lines)
        drained = r.procs[await r.holder()]
        drained.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(drained.wait(), 20 * UNIT) == 0  # drained: exit 0
        report = await call.wait(60 * UNIT)
    assert not report.violations, report.violations
    assert len(call.legs) == 2, (report.webhooks, [leg.ended_by for leg in call.legs])
    assert call.legs[0].ended_by in ("app_closed_socket", "replaced"), call.legs[0].ended_by
    assert report.commands.count("streaming_start") == 2, report.commands
    first_sound = call.legs[1].first_sound_at
    assert first_sound is not None, "the caller heard nothing after the move"
    gap_s = first_sound - call.legs[0].ended_at
    print(f"telnyx drain move gap: agent heard again {gap_s * 1000:.0f} ms after the first leg")
    assert gap_s < RESUME_LIMIT_S * UNIT
    history = r.oai.histories[-1]
    assert ("assistant", SCRIPT[0]["say"]) in history, history
    detail = await read_only_call(tmp_path)
    kinds = [event.kind for event in detail.timeline]
    assert "call.moving" in kinds and "call.resumed" in kinds, kinds
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", SCRIPT[1]["say"]) in said, said
