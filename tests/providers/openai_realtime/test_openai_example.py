"""``examples/seed_session.py`` runs offline against the emulator it starts itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import UNIT

EXAMPLE = Path(__file__).parents[3] / "examples" / "seed_session.py"


def test_seed_session_example_runs_against_the_emulator() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60 * UNIT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("(no OPENAI_BASE_URL: using the emulator at http://127.0.0.1:")
    assert "caller: What's the weather in Paris?" in lines
    assert "function call: get_weather({'location': 'Paris'})" in lines
    assert "agent: It is 21 degrees and sunny in Paris." in lines
    assert lines[-1] == "2.2 s of agent audio"  # the answer after the tool result
