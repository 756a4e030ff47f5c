"""How long ``switchboard serve`` takes from its start to taking calls (run by hand).

Issue #23 asks for a server ready to accept calls in under 1.5 s. Each run starts a fresh
``switchboard serve`` (one process, a new SQLite database, the capacity bench's agent) and polls
``GET /readyz`` every 10 ms until it answers 200: the moment a load balancer sends it calls.
Start-up includes the imports, the database migration and, with the ``local`` extra, loading
the offline voice (Piper) and its first synthesis, which the lifespan does before the server
takes calls (``bridge/apology.preload_offline_voice``). ``--no-offline-voice`` hides Piper
from the server (``SWITCHBOARD_OFFLINE_VOICE=0``), which shows that share.

    .venv/bin/python bench/startup.py --runs 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from capacity import AGENTS_YAML, _free_port, stop

SERVE = [sys.executable, "-m", "switchboard.cli", "serve", "--host", "127.0.0.1"]


def time_to_ready(offline_voice: bool) -> tuple[float, float]:
    """Seconds from spawn to the port answering (``/healthz``) and to ``/readyz`` = 200."""
    with tempfile.TemporaryDirectory(prefix="sb-startup-") as tmp:
        work = Path(tmp)
        (work / "agents.yaml").write_text(
            AGENTS_YAML.format(audio="auto", codec="pcmu", provider="openai"), "utf-8"
        )
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env.update(
            OPENAI_API_KEY="sk-bench",
            OPENAI_BASE_URL="ws://127.0.0.1:9",  # never dialled: no call is made
            SWITCHBOARD_API_TOKEN="bench-api-token-0123456789abcdef",  # noqa: S106 (throwaway)
            SWITCHBOARD_AGENTS=str(work / "agents.yaml"),
            SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{work / 'calls.db'}",
            SWITCHBOARD_LOG_LEVEL="WARNING",
            SWITCHBOARD_OFFLINE_VOICE="1" if offline_voice else "0",
        )
        base = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [*SERVE, "--port", str(port)],
            env=env,
            cwd=work,
        )
        listening = 0.0
        try:
            with httpx.Client(timeout=1.0) as client:
                while time.monotonic() - t0 < 60:
                    with contextlib.suppress(httpx.HTTPError):
                        if not listening and client.get(f"{base}/healthz").status_code < 500:
                            listening = time.monotonic() - t0
                        if client.get(f"{base}/readyz").status_code == 200:
                            return listening, time.monotonic() - t0
                    if proc.poll() is not None:
                        raise RuntimeError("server exited during start-up")
                    time.sleep(0.01)
            raise RuntimeError("server not ready within 60 s")
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-offline-voice", action="store_true")
    args = parser.parse_args()
    rows = [time_to_ready(not args.no_offline_voice) for _ in range(args.runs)]
    for listening, ready in rows:
        print(f"port answering {listening:.2f} s, ready {ready:.2f} s")
    ready_times = [r for _, r in rows]
    print(
        f"ready: median {statistics.median(ready_times):.2f} s, "
        f"min {min(ready_times):.2f} s, max {max(ready_times):.2f} s ({args.runs} runs)"
    )


if __name__ == "__main__":
    main()
