"""The command line, through ``switchboard.cli.main`` and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard import __version__
from switchboard.cli import main


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
