"""The command line, through ``switchboard.cli.main`` and as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import wave
from pathlib import Path

import pytest
import websockets

from switchboard import __version__
from switchboard.cli import main
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from tests.conftest import UNIT
from tests.e2e.harness import caller_wav, openai_env, read_only_call, running_app


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"switchboard {__version__}"


def test_providers_json_shows_state_and_no_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-secret")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert main(["providers", "--json"]) == 0
    out = capsys.readouterr().out
    assert "sk-cli-secret" not in out
    providers = {p["name"]: p for p in json.loads(out)}
    assert providers["openai"]["configured"] is True
    assert providers["gemini"]["missing"] == ["GEMINI_API_KEY"]
    assert providers["local"]["configured"] is True


def test_providers_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    assert "switchboard providers" in out
    assert all(name in out for name in ("openai", "gemini", "deepgram", "local"))


def test_calls_on_an_empty_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    assert main(["calls", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == []
    assert main(["calls", "show", "call_missing"]) == 1
    assert "no call call_missing" in capsys.readouterr().err


def test_bad_configuration_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://nope")
    assert main(["providers"]) == 2
    assert "OPENAI_BASE_URL" in capsys.readouterr().err


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "switchboard"
    result = subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_loadtest_takes_twilio_credentials_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI, not the load tool, reads the environment: without a token it stops at once."""
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    assert main(["loadtest", "--server", "http://127.0.0.1:9"]) == 2
    assert "--auth-token or TWILIO_AUTH_TOKEN is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env_key", "shown"),
    [
        (None, "TELNYX_API_KEY=KEY_EMULATOR"),
        ("KEY_cli_secret_123", "TELNYX_API_KEY=<the key given with --telnyx-api-key"),
    ],
)
def test_loadtest_telnyx_setup_uses_the_configured_key_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env_key: str | None,
    shown: str,
) -> None:
    if env_key is None:
        monkeypatch.delenv("TELNYX_API_KEY", raising=False)
    else:
        monkeypatch.setenv("TELNYX_API_KEY", env_key)
    assert main(["loadtest", "--server", "http://127.0.0.1:9", "--carrier", "telnyx"]) == 2
    err = capsys.readouterr().err
    assert "needs --telnyx-key and --telnyx-port" in err
    assert shown in err
    assert "KEY_cli_secret_123" not in err


# -- emulate and call, as real processes -----------------------------------------------------------
def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without switchboard, carrier or provider settings."""
    prefixes = ("SWITCHBOARD_", "TWILIO_", "TELNYX_", "OPENAI_", "GEMINI_", "DEEPGRAM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | {"SWITCHBOARD_LOG_LEVEL": "WARNING", **extra}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "switchboard.cli", *args]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.anyio
async def test_emulate_serves_the_scripted_emulator_until_interrupted(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"say": "Hello from the command line."}]), "utf-8")
    process = await asyncio.create_subprocess_exec(
        *_cli("emulate", "openai", "--port", "0", "--script", str(script)),
        stdout=asyncio.subprocess.PIPE,
        env=_clean_env(),
        # a shell without job control starts background jobs with SIGINT ignored, and children
        # inherit that: a test run started with `&` would wait in vain for the interrupt
        preexec_fn=_default_sigint,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30 * UNIT)).decode()
        base = line.rsplit(" ", 1)[-1].strip()
        assert line.startswith("OpenAI Realtime emulator listening on http://127.0.0.1:")
        url = f"ws{base[4:]}/realtime?model=gpt-realtime"  # base: http://…/v1
        auth = {"Authorization": "Bearer sk-anything"}
        async with websockets.connect(url, additional_headers=auth) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(json.dumps({"type": "response.create"}))
            said = None
            while said is None:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10 * UNIT))
                if event["type"] == "response.output_audio_transcript.done":
                    said = event["transcript"]
        assert said == "Hello from the command line."
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 30 * UNIT)
    assert code == 130  # interrupted, as a long-running command is stopped


def test_call_needs_the_twilio_auth_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    wav = tmp_path / "in.wav"
    assert main(["call", "--server", "http://127.0.0.1:9", "--audio", str(wav)]) == 2
    assert "give --auth-token or set TWILIO_AUTH_TOKEN" in capsys.readouterr().err


@pytest.mark.anyio
async def test_call_places_a_simulated_twilio_call_against_a_server(tmp_path: Path) -> None:
    token, account = "cli-call-test-auth-token", "AC" + "2" * 32
    wav, heard = tmp_path / "in.wav", tmp_path / "heard.wav"
    wav.write_bytes(caller_wav("what are your hours", gap_ms=1500, lead_ms=500))
    script = [{"caller": "what are your hours", "say": "We are open nine to five."}]
    async with OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai:
        env = openai_env(oai) | {
            "TWILIO_ACCOUNT_SID": account,
            "TWILIO_AUTH_TOKEN": token,
            "SWITCHBOARD_PROVIDER": "openai",
        }
        async with running_app(tmp_path, env) as (base, _settings, _app):
            process = await asyncio.create_subprocess_exec(
                *_cli("call", "--server", base, "--audio", str(wav), "--out", str(heard)),
                *("--fast", "--auth-token", token, "--account-sid", account),
                stdout=asyncio.subprocess.PIPE,
                env=_clean_env(),
            )
            out, _ = await asyncio.wait_for(process.communicate(), 60 * UNIT)
    assert process.returncode == 0, out
    summary = out.decode()
    assert "VIOLATION" not in summary and " frames sent " in summary
    detail = await read_only_call(tmp_path)
    said = [(t.role, t.text) for t in detail.transcript]
    assert said[0][0] == "agent" and said[0][1].startswith("Hello")  # the greeting
    assert ("caller", "what are your hours") in said
    assert ("agent", "We are open nine to five.") in said
    with wave.open(str(heard), "rb") as recording:
        assert recording.getframerate() == 8000 and recording.getnframes() > 8000
