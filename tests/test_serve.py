"""``switchboard serve`` as a real process: weak secrets stop it; its sockets are size-bounded."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from switchboard.emulators.loopback import bind_loopback
from tests.conftest import UNIT

API_TOKEN = "serve-test-api-token-0123456789abcdef"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any switchboard or carrier setting, plus ``extra``."""
    prefixes = ("SWITCHBOARD_", "TWILIO_", "TELNYX_", "OPENAI_", "GEMINI_", "DEEPGRAM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        SWITCHBOARD_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def _serve(port: int) -> list[str]:
    return [sys.executable, "-m", "switchboard.cli", "serve", "--port", str(port)]


def test_weak_secrets_stop_serve_with_a_clear_message(tmp_path: Path) -> None:
    weak = {"SWITCHBOARD_SIGNING_SECRET": "tiny-signing-key", "SWITCHBOARD_API_TOKEN": API_TOKEN}
    with bind_loopback() as sock:
        port = sock.getsockname()[1]
    result = subprocess.run(  # a server that started anyway would run until the timeout
        _serve(port),
        env=_env(tmp_path, **weak),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        check=False,
    )
    assert result.returncode == 1
    assert "SWITCHBOARD_SIGNING_SECRET is shorter than 32 characters" in result.stderr
    assert "SWITCHBOARD_API_TOKEN" not in result.stderr  # long enough
    assert "tiny-signing-key" not in result.stderr + result.stdout  # never the value


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``switchboard serve`` on a free loopback port; yields its base URL and process id."""
    with _serving(tmp_path) as found:
        yield found


@contextlib.contextmanager
def _serving(tmp_path: Path, **env: str) -> Iterator[tuple[str, int]]:
    with bind_loopback() as sock:  # a free port, for the server to bind again
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        _serve(port),
        env=_env(tmp_path, SWITCHBOARD_API_TOKEN=API_TOKEN, SWITCHBOARD_PUBLIC_URL=base, **env),
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30 * UNIT
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "switchboard serve exited"
            assert time.monotonic() < deadline, "switchboard serve did not start"
            time.sleep(0.1)  # polling a process that is starting: there is nothing to wait on
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10 * UNIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server(served: tuple[str, int]) -> str:
    return served[0]


def test_websocket_messages_are_bounded(server: str) -> None:
    url = f"ws{server[4:]}/v1/stream"
    with connect(url, additional_headers={"Authorization": f"Bearer {API_TOKEN}"}) as ws:
        ws.send(b"\x00" * (100 * 1024))  # 100 KiB: over the 64 KiB default, under uvicorn's 16 MiB
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10 * UNIT)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009  # message too big


def test_webhook_bodies_are_bounded(server: str) -> None:
    response = httpx.post(
        f"{server}/twilio/status",
        content=b"CallSid=CA1&Padding=" + b"x" * (70 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10 * UNIT,
    )
    assert response.status_code == 413


@pytest.mark.skipif(
    importlib.util.find_spec("piper") is None, reason="needs the [local] extra (Piper)"
)
def test_the_offline_voice_is_loaded_before_the_first_call(served: tuple[str, int]) -> None:
    """Loading Piper stalls the event loop for seconds: at a worker's first call it stalled
    every call there, so the server loads it at start-up (bridge/apology.py)."""
    _, pid = served
    maps = Path(f"/proc/{pid}/maps").read_text("utf-8")
    assert "onnxruntime" in maps  # healthy, no call yet, and the voice's runtime is in


def test_the_offline_voice_can_be_left_out(tmp_path: Path) -> None:
    with _serving(tmp_path, SWITCHBOARD_OFFLINE_VOICE="false") as (_, pid):
        assert "onnxruntime" not in Path(f"/proc/{pid}/maps").read_text("utf-8")
