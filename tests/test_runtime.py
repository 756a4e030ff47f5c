"""The serving process's garbage-collector policy (switchboard.runtime)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref

from switchboard.runtime import GC_THRESHOLDS, IdleCollector


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
    frozen, thresholds, before_ms, after_ms = json.loads(out.stdout)
    assert frozen > 50_000  # the imports alone
    assert tuple(thresholds) == GC_THRESHOLDS
    assert after_ms < before_ms / 3  # a full collection no longer walks them


def test_idle_collector_collects_once_each_time_the_server_goes_idle() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    idle = IdleCollector()
    assert idle.tick(0) is False  # idle from the start: nothing to collect
    assert idle.tick(3) is False  # calls up: never collect under load
    gc.disable()
    try:
        probe = Cycle()
        ref = weakref.ref(probe)
        del probe  # garbage only a collection frees
        assert ref() is not None
        assert idle.tick(0) is True  # the last call's handler ended: one full collection
        assert ref() is None
        assert idle.tick(0) is False and idle.collections == 1
    finally:
        gc.enable()
