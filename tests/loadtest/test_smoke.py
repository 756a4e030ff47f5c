"""CI smoke runs of the load test: 5 calls against the app on loopback with the echo emulator."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from switchboard.emulators.loopback import bind_loopback
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.loadtest import LoadOptions, LoadProgress, run_load
from switchboard.loadtest.telnyx import new_telnyx_seed, telnyx_public_key
from tests.e2e.harness import agent_book, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH_TOKEN = "loadtest-auth-token"
ACCOUNT_SID = "AC" + "1" * 32


def _env(oai: OpenAIRealtimeEmulator) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": oai.base_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SWITCHBOARD_PROVIDER": "openai",
    }


def _agents() -> object:
    return agent_book(greeting=None, reprompt=None, limits={"max_call_seconds": 120})


async def test_five_calls_lose_nothing_and_end_cleanly(tmp_path: Path) -> None:
    seen: list[LoadProgress] = []
    async with (
        OpenAIRealtimeEmulator(echo=True, record=False) as oai,
        running_app(tmp_path, _env(oai), agents=_agents()) as (base, _s, _app),
    ):
        options = LoadOptions(
            server=base,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            calls=5,
            duration_s=3.0,
            ramp_s=0.5,
            pid=os.getpid(),
        )
        report = await run_load(options, on_progress=seen.append)
    assert report.errors == []
    assert report.calls_ok == 5 and report.calls_failed == 0
    assert report.mode == "tag"
    assert report.frames_sent == 5 * 150
    assert report.frames_returned == report.frames_sent
    assert report.frames_lost == 0 and report.frames_queued == 0
    assert report.clean
    rt = report.round_trip
    assert rt.count == report.frames_sent
    assert 0 < rt.p50 <= rt.p95 <= rt.p99 <= rt.max
    assert report.marks_received > 0 and report.marks_acked == report.marks_received
    assert oai.violations == []
    assert report.server_usage is not None and report.server_usage.cpu_percent > 0
    assert seen and seen[-1].frames_sent > 0
    assert json.loads(json.dumps(report.to_dict()))["clean"] is True


async def test_wrong_auth_token_fails_every_call(tmp_path: Path) -> None:
    async with (
        OpenAIRealtimeEmulator(echo=True, record=False) as oai,
        running_app(tmp_path, _env(oai), agents=_agents()) as (base, _s, _app),
    ):
        options = LoadOptions(
            server=base, auth_token="wrong", account_sid=ACCOUNT_SID, calls=2, duration_s=0.2
        )
        report = await run_load(options)
    assert report.calls_failed == 2 and not report.clean
    assert all("HTTP 403" in e for e in report.errors)


async def test_cli_writes_the_json_report(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    async with (
        OpenAIRealtimeEmulator(echo=True, record=False) as oai,
        running_app(tmp_path, _env(oai), agents=_agents()) as (base, _s, _app),
    ):
        argv = ["loadtest", "--server", base, "--calls", "2", "--duration", "1", "--ramp", "0"]
        argv += ["--auth-token", AUTH_TOKEN, "--account-sid", ACCOUNT_SID, "--json", str(out)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "OPENAI_"))}
        done = await anyio.run_process(
            [sys.executable, "-m", "switchboard.cli", *argv], check=False, env=env
        )
    assert done.returncode == 0, done.stderr.decode()
    data = json.loads(out.read_text("utf-8"))
    assert data["clean"] is True and data["calls_ok"] == 2
    assert data["frames_sent"] == data["frames_returned"] == 100
    assert data["round_trip"]["count"] == 100
    assert "frames lost" in done.stdout.decode()


async def test_forced_pcm_provider_audio_is_measured_by_position(tmp_path: Path) -> None:
    agents = agent_book(greeting=None, reprompt=None, provider_audio="pcm16")
    async with (
        OpenAIRealtimeEmulator(echo=True) as oai,
        running_app(tmp_path, _env(oai), agents=agents) as (base, _s, _app),
    ):
        options = LoadOptions(
            server=base, auth_token=AUTH_TOKEN, account_sid=ACCOUNT_SID, calls=2, duration_s=2.0
        )
        report = await run_load(options)
    updates = [e for e in oai.received if e.get("type") == "session.update"]
    assert updates and all(
        u["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        for u in updates
    )
    assert report.calls_ok == 2 and report.errors == []
    assert report.mode == "position"  # resampled both ways: no tag survives
    assert report.frames_lost == 0
    assert report.frames_returned + report.frames_queued == report.frames_sent == 200
    # the resamplers' ~4 ms delay leaves at most the last partial frame of each call in the
    # bridge's framer (soxr HQ held ~7 frames per call)
    assert report.frames_queued <= 2
    assert report.round_trip.count > 150


def _free_port() -> int:
    with bind_loopback() as sock:
        return int(sock.getsockname()[1])


def _telnyx_env(oai: OpenAIRealtimeEmulator, seed: str, port: int) -> dict[str, str]:
    """The app trusts ``seed``'s public key and commands the emulator on ``port``."""
    return {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": oai.base_url,
        "TELNYX_API_KEY": "KEY_LOADTEST",
        "TELNYX_PUBLIC_KEY": telnyx_public_key(seed),
        "TELNYX_BASE_URL": f"http://127.0.0.1:{port}",
        "TELNYX_CONNECTION_ID": "1684641123236054244",
        "SWITCHBOARD_PROVIDER": "openai",
    }


def _telnyx_options(base: str, seed: str, port: int, **options: Any) -> LoadOptions:
    """A Telnyx load run against the app at ``base`` (see :func:`_telnyx_env`)."""
    return LoadOptions(
        server=base,
        carrier="telnyx",
        telnyx_key_b64=seed,
        telnyx_port=port,
        telnyx_api_key="KEY_LOADTEST",
        pid=os.getpid(),
        **options,
    )


async def test_five_telnyx_calls_lose_nothing_and_end_cleanly(tmp_path: Path) -> None:
    seed, port = new_telnyx_seed(), _free_port()
    async with (
        OpenAIRealtimeEmulator(echo=True, record=False) as oai,
        running_app(tmp_path, _telnyx_env(oai, seed, port), agents=_agents()) as (base, _s, _a),
    ):
        report = await run_load(
            _telnyx_options(base, seed, port, calls=5, duration_s=3.0, ramp_s=0.5)
        )
    assert report.errors == []
    assert report.carrier == "telnyx"
    assert report.calls_ok == 5 and report.calls_failed == 0
    assert report.mode == "tag"  # PCMU passes through untouched
    assert report.frames_sent == 5 * 150
    assert report.frames_returned == report.frames_sent
    assert report.frames_lost == 0 and report.frames_queued == 0
    assert report.clean
    rt = report.round_trip
    assert rt.count == report.frames_sent
    assert 0 < rt.p50 <= rt.p95 <= rt.p99 <= rt.max
    assert report.marks_received > 0 and report.marks_acked == report.marks_received
    assert oai.violations == []
    assert report.server_usage is not None and report.server_usage.cpu_percent > 0


async def test_telnyx_calls_with_an_untrusted_key_fail(tmp_path: Path) -> None:
    port = _free_port()
    async with OpenAIRealtimeEmulator(echo=True, record=False) as oai:
        env = _telnyx_env(oai, new_telnyx_seed(), port)
        async with running_app(tmp_path, env, agents=_agents()) as (base, _s, _a):
            options = LoadOptions(
                server=base,
                carrier="telnyx",
                telnyx_key_b64=new_telnyx_seed(),  # not the key the app trusts
                telnyx_port=port,
                telnyx_api_key="KEY_LOADTEST",
                calls=2,
                duration_s=0.2,
            )
            report = await run_load(options)
    assert report.calls_failed == 2 and not report.clean
    assert all("call.initiated answered HTTP 4" in e for e in report.errors), report.errors


def _cli_env() -> dict[str, str]:
    prefixes = ("TWILIO_", "OPENAI_", "TELNYX_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


async def test_cli_telnyx_without_key_prints_what_the_server_needs() -> None:
    argv = ["loadtest", "--carrier", "telnyx", "--server", "http://127.0.0.1:9"]
    done = await anyio.run_process(
        [sys.executable, "-m", "switchboard.cli", *argv], check=False, env=_cli_env()
    )
    assert done.returncode == 2
    err = done.stderr.decode()
    seed = err.rsplit("--telnyx-key ", 1)[1].split()[0]
    assert f"TELNYX_PUBLIC_KEY={telnyx_public_key(seed)} " in err
    assert "TELNYX_BASE_URL=http://127.0.0.1:" in err and "--telnyx-port " in err


async def test_cli_telnyx_run_writes_a_clean_report(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    seed, port = new_telnyx_seed(), _free_port()
    async with OpenAIRealtimeEmulator(echo=True, record=False) as oai:
        env = _telnyx_env(oai, seed, port)
        async with running_app(tmp_path, env, agents=_agents()) as (base, _s, _a):
            argv = ["loadtest", "--carrier", "telnyx", "--server", base, "--calls", "2"]
            argv += ["--duration", "1", "--ramp", "0", "--json", str(out)]
            argv += ["--telnyx-key", seed, "--telnyx-port", str(port)]
            done = await anyio.run_process(
                [sys.executable, "-m", "switchboard.cli", *argv],
                check=False,
                env={**_cli_env(), "TELNYX_API_KEY": "KEY_LOADTEST"},
            )
    assert done.returncode == 0, done.stderr.decode()
    data = json.loads(out.read_text("utf-8"))
    assert data["clean"] is True and data["calls_ok"] == 2 and data["carrier"] == "telnyx"
    assert data["frames_sent"] == data["frames_returned"] == 100
