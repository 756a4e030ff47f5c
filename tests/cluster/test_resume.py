"""A node SIGKILLed mid-call: the Twilio call resumes on the other node (#17 §2).

Two ``switchboard serve`` processes share Redis and one call database behind haproxy (the
balancer: ``balance first``, health-checked on ``/readyz``). An emulated Twilio caller talks to
node a; a is SIGKILLed once the agent's first answer was heard. The stream dies, Twilio
requests the ``<Connect action>`` URL, the balancer sends it to b, and b answers a new
``<Connect><Stream>`` to itself: the caller hears the agent again within 3 s, the call keeps
its id and record (``call.resumed`` on its timeline), and the next answer comes from a provider
session that was given what was said before the crash (the OpenAI emulator's history).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.common import ScriptedTurn
from switchboard.emulators.gemini import GeminiEmulator
from switchboard.emulators.loopback import bind_loopback
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.cluster.nodes import require_redis
from tests.cluster.processes import redis_database
from tests.conftest import UNIT
from tests.e2e.harness import caller_pcm, openai_env, read_only_call, twilio_env, until_said
from tests.e2e.test_webhooks_restart import _env
from tests.waiting import eventually_async

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.cluster,
]

TOKEN = "resume-test-twilio-token-0123456789ab"
SCRIPT = [
    {"caller": "my name is alice", "say": "Nice to meet you, Alice."},
    {"caller": "what is my name", "say": "Your name is Alice."},
]
#: what b measured in the last run (docs/benchmarks.md reads it from the test's output)
RESUME_LIMIT_S = 3.0


def _free_port() -> int:
    with bind_loopback() as sock:
        return int(sock.getsockname()[1])


@asynccontextmanager
async def haproxy(tmp_path: Path, ports: list[int]) -> AsyncIterator[str]:
    """haproxy on a free port in front of ``ports`` (first healthy one wins); yields its URL."""
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    front = _free_port()
    servers = "\n".join(
        f"  server n{i} 127.0.0.1:{port} check inter 100ms fall 1 rise 2"
        for i, port in enumerate(ports)
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"""global
  maxconn 200
defaults
  mode http
  timeout connect 500ms
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


async def _serve(
    tmp_path: Path, env: dict[str, str], node: str, port: int
) -> asyncio.subprocess.Process:
    command = [sys.executable, "-m", "switchboard.cli", "serve", "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(
        *command, env={**env, "SWITCHBOARD_NODE_ID": node}, cwd=tmp_path
    )
    async with httpx.AsyncClient() as client:

        async def ready() -> bool:
            assert proc.returncode is None, f"switchboard serve {node} exited"
            try:
                got = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0)
            except httpx.HTTPError:
                return False
            return got.status_code == 200

        await eventually_async(ready, limit_s=30.0, what=f"node {node} ready", every_s=0.1)
    return proc


async def test_a_node_killed_mid_call_resumes_the_call_on_the_other_node(tmp_path: Path) -> None:
    require_redis()
    ports = [_free_port(), _free_port()]
    async with AsyncExitStack() as stack:
        oai = await stack.enter_async_context(
            OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0)
        )
        twilio = await stack.enter_async_context(TwilioEmulator(auth_token=TOKEN))
        front = await stack.enter_async_context(haproxy(tmp_path, ports))
        extra = openai_env(oai) | twilio_env(twilio, "openai")
        extra |= {
            "SWITCHBOARD_REDIS_URL": stack.enter_context(redis_database()),
            "SWITCHBOARD_SIGNING_SECRET": "resume-test-signing-secret-0123456789abcdef",
        }
        env = _env(tmp_path, front, extra) | {"SWITCHBOARD_PUBLIC_URL": front}
        procs = []
        try:
            for node, port in zip(("a", "b"), ports, strict=True):
                procs.append(await _serve(tmp_path, env, node, port))
            a, b = procs
            pcm = caller_pcm(*(t["caller"] for t in SCRIPT), gap_ms=[9000, 4000])
            caller = twilio.dial_in(f"{front}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await until_said(tmp_path, lambda lines: ("agent", SCRIPT[0]["say"]) in lines)
            a.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            (report,) = await twilio.wait_calls(timeout_s=60 * UNIT)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.terminate()
                    await proc.wait()
    assert report.call_sid == caller.report.call_sid
    assert [status for _url, status in report.actions] == [200], (report.outcome, report.summary())
    assert len(report.stream_starts) == 2 and len(report.first_sounds) == 2, report
    gap_s = report.first_sounds[1] - killed
    print(f"resume gap: agent heard again {gap_s * 1000:.0f} ms after the SIGKILL")
    assert gap_s < RESUME_LIMIT_S * UNIT
    # the second provider session was given the conversation before the crash
    history = oai.histories[-1]
    assert ("user", SCRIPT[0]["caller"]) in history, history
    assert ("assistant", SCRIPT[0]["say"]) in history, history
    detail = await read_only_call(tmp_path)  # one record: the same call id
    kinds = [event.kind for event in detail.timeline]
    assert "call.resumed" in kinds, kinds
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", SCRIPT[1]["say"]) in said, said
    assert b.returncode is not None


async def test_sigterm_moves_the_calls_left_at_the_deadline_to_the_other_node(
    tmp_path: Path,
) -> None:
    require_redis()
    ports = [_free_port(), _free_port()]
    async with AsyncExitStack() as stack:
        oai = await stack.enter_async_context(
            OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0)
        )
        twilio = await stack.enter_async_context(TwilioEmulator(auth_token=TOKEN))
        front = await stack.enter_async_context(haproxy(tmp_path, ports))
        extra = openai_env(oai) | twilio_env(twilio, "openai")
        extra |= {
            "SWITCHBOARD_REDIS_URL": stack.enter_context(redis_database()),
            "SWITCHBOARD_SIGNING_SECRET": "resume-test-signing-secret-0123456789abcdef",
            "SWITCHBOARD_DRAIN_SECONDS": "1",
        }
        env = _env(tmp_path, front, extra) | {"SWITCHBOARD_PUBLIC_URL": front}
        procs = []
        try:
            for node, port in zip(("a", "b"), ports, strict=True):
                procs.append(await _serve(tmp_path, env, node, port))
            a, _b = procs
            pcm = caller_pcm(*(t["caller"] for t in SCRIPT), gap_ms=[9000, 4000])
            caller = twilio.dial_in(f"{front}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await until_said(tmp_path, lambda lines: ("agent", SCRIPT[0]["say"]) in lines)
            a.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(a.wait(), 20 * UNIT) == 0  # drained: exit 0
            (report,) = await twilio.wait_calls(timeout_s=60 * UNIT)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.terminate()
                    await proc.wait()
    assert report.call_sid == caller.report.call_sid
    assert len(report.stream_starts) == 2 and len(report.first_sounds) == 2, report.summary()
    gap_s = report.first_sounds[1] - report.stream_ends[0]
    print(f"drain move gap: agent heard again {gap_s * 1000:.0f} ms after the first leg ended")
    assert gap_s < RESUME_LIMIT_S * UNIT
    history = oai.histories[-1]
    assert ("assistant", SCRIPT[0]["say"]) in history, history
    detail = await read_only_call(tmp_path)
    kinds = [event.kind for event in detail.timeline]
    assert "call.moving" in kinds and "call.resumed" in kinds, kinds
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", SCRIPT[1]["say"]) in said, said


FAILOVER_AGENTS = """version: 1
agents:
  frontdesk:
    numbers: ["*"]
    system_prompt: You are a test agent.
    greeting: Hello, thanks for calling.
    tools: [end_call]
    fallback: [gemini]
    limits: {max_call_seconds: 90, silence_timeout_s: 30, silence_hangup_s: 60}
"""
#: turn 1 on OpenAI; it drops, the call fails over to Gemini, which answers turn 2; the node is
#: killed; the call resumes on the other node, still on Gemini, which answers turn 3
TURNS = [
    {"caller": "my name is alice", "say": "Nice to meet you, Alice."},
    {"caller": "what is my name", "say": "Your name is Alice."},
    {"caller": "thank you", "say": "You are welcome, Alice."},
]


async def test_a_call_resumed_after_a_failover_stays_on_its_provider_and_counts_on(
    tmp_path: Path,
) -> None:
    """Resume carries what the record does not hold (bridge/resume_state.py): the provider the
    call had failed over to (pinned, though its first provider is healthy again) and the turn
    counter (turn latencies go on numbering)."""
    require_redis()
    ports = [_free_port(), _free_port()]
    async with AsyncExitStack() as stack:
        oai = await stack.enter_async_context(
            OpenAIRealtimeEmulator(script=TURNS[:1], ms_per_char=30.0)
        )
        gemini = await stack.enter_async_context(GeminiEmulator(script=TURNS[1:2], realtime=False))
        twilio = await stack.enter_async_context(TwilioEmulator(auth_token=TOKEN))
        front = await stack.enter_async_context(haproxy(tmp_path, ports))
        extra = openai_env(oai) | twilio_env(twilio, "openai")
        extra |= {
            "GEMINI_API_KEY": "g-test",
            "GEMINI_BASE_URL": gemini.base_url,
            "SWITCHBOARD_REDIS_URL": stack.enter_context(redis_database()),
            "SWITCHBOARD_SIGNING_SECRET": "resume-test-signing-secret-0123456789abcdef",
        }
        env = _env(tmp_path, front, extra) | {"SWITCHBOARD_PUBLIC_URL": front}
        (tmp_path / "agents.yaml").write_text(FAILOVER_AGENTS, "utf-8")
        procs = []
        try:
            for node, port in zip(("a", "b"), ports, strict=True):
                procs.append(await _serve(tmp_path, env, node, port))
            a, _b = procs
            # 15 s after the last words: a failover slowed by a busy machine must not outlast the
            # caller, who hangs up when its audio ends (and then there is nothing to resume)
            pcm = caller_pcm(*(t["caller"] for t in TURNS), gap_ms=[9000, 9000, 15000])
            twilio.dial_in(f"{front}/twilio/voice", audio=pcm16_to_ulaw(pcm))
            await until_said(tmp_path, lambda lines: ("agent", TURNS[0]["say"]) in lines)
            await oai.fail("drop")
            await until_said(tmp_path, lambda lines: ("agent", TURNS[1]["say"]) in lines)
            oai.refuse_connections = False  # OpenAI is healthy again: a new call could use it
            connections_before = oai.connection_count
            gemini.live.turns = [ScriptedTurn.from_obj(TURNS[2])]  # the resumed conversation's
            a.send_signal(signal.SIGKILL)
            (report,) = await twilio.wait_calls(timeout_s=60 * UNIT)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.terminate()
                    await proc.wait()
    assert [status for _url, status in report.actions] == [200], (report.outcome, report.summary())
    assert len(report.stream_starts) == 2, report.summary()
    assert oai.connection_count == connections_before  # not resumed on the agent's first choice
    assert oai.violations == [] and gemini.live.violations == []
    resumed_history = gemini.live.histories[-1]  # the resumed leg's Gemini session was given...
    assert ("user", TURNS[1]["caller"]) in resumed_history, resumed_history
    assert any(t == TURNS[1]["say"] for _, t in resumed_history), resumed_history
    detail = await read_only_call(tmp_path)
    said = [(t.role, t.text) for t in detail.transcript]
    assert ("agent", TURNS[2]["say"]) in said, said
    (resumed,) = [e.data for e in detail.timeline if e.kind == "call.resumed"]
    assert resumed["provider"] == "gemini" and resumed["turn"] == 2, resumed
    failovers = [e.data for e in detail.timeline if e.kind == "provider.failover"]
    assert [(f["from"], f["to"]) for f in failovers] == [("openai", "gemini")], failovers
    assert detail.record.providers == ("openai", "gemini")
    assert detail.record.provider == "gemini"
    turns = [lat.turn for lat in detail.latencies]
    assert turns == sorted(set(turns)) and turns[-1] == 3, turns  # 1, 2 on a; 3 on b
