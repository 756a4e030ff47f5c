"""The serving process's garbage-collector policy (switchboard.runtime)."""

from __future__ import annotations

import subprocess
import sys

from switchboard.runtime import GC_THRESHOLDS


def test_startup_objects_are_frozen_out_of_the_collectors_walks() -> None:
    # In a child process: freezing is for a serving process, not for the test runner.
    code = (
        "import gc, json, time\n"
        "import switchboard.app  # a gateway's imports: what a full collection would walk\n"
        "from switchboard.runtime import freeze_startup_objects\n"
        "def full_ms():\n"
        "    t = time.perf_counter(); gc.collect(); return (time.perf_counter() - t) * 1e3\n"
        "before = min(full_ms() for _ in range(3))\n"
        "frozen = freeze_startup_objects()\n"
        "after = min(full_ms() for _ in range(3))\n"
        "print(json.dumps([frozen, gc.get_threshold(), before, after]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    frozen, thresholds, before_ms, after_ms = __import__("json").loads(out.stdout)
    assert frozen > 50_000  # the imports alone
    assert tuple(thresholds) == GC_THRESHOLDS
    assert after_ms < before_ms / 3  # a full collection no longer walks them
