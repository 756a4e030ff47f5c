"""The short soak (issues #22 and #27): ``bench/soak.py`` with 40 calls for 60 s passes every check.

The bench starts its own echo-mode OpenAI emulator and ``switchboard serve`` (subprocesses on
loopback, pinned like bench/capacity.py), runs the Twilio load caller against them and samples
the server each second; this test runs it as a user would and reads its JSON. It fails on growth:
RSS after the warm-up, file descriptors or asyncio tasks left after the calls, any lost or
queued frame, a call whose round trip drifted more than 5 ms, or a later window of call time
slower than the first (by its mean round trip). About 75 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.soak
@pytest.mark.serial
@pytest.mark.timeout(150)
def test_forty_calls_for_a_minute_leak_nothing_and_do_not_drift(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, str(ROOT / "bench" / "soak.py"), "--calls", "40", "--duration", "60"]
    proc = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, timeout=140, cwd=ROOT
    )
    assert out.is_file(), proc.stderr[-3000:]
    data = json.loads(out.read_text("utf-8"))
    checks = {c["name"]: c for c in data["checks"]}
    assert set(checks) == {"calls", "rss", "fds", "tasks", "drift", "growth"}
    failed = [f"{c['name']}: {c['detail']}" for c in checks.values() if not c["ok"]]
    assert failed == [], proc.stdout
    assert proc.returncode == 0
    report = data["report"]
    assert report["frames_sent"] >= 40 * 2900 and report["frames_lost"] == 0
    assert len(data["samples"]) >= 60  # one a second, and the idle baseline before
