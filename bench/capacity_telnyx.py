"""Capacity benchmark over Telnyx: ``bench/capacity.py``'s method with ``--carrier telnyx``.

    .venv/bin/python bench/capacity_telnyx.py --calls 1 50

Each N starts a fresh ``switchboard serve`` pinned to CPU 0 that trusts the load tool's Telnyx
emulator (``TELNYX_PUBLIC_KEY`` of a fixed seed, ``TELNYX_BASE_URL`` on a fixed port). This
process (load generator *and* Telnyx network: webhooks, Call Control API) and the echo-mode
OpenAI Realtime emulator run on CPU 1. Prints the same Markdown table as ``capacity.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity import (  # bench/ is not a package: imported by path
    HEADER,
    LOAD_CPU,
    _free_port,
    _pin,
    machine,
    row,
    start_emulator,
    start_server,
    stop,
)

from switchboard.loadtest import LoadOptions, LoadReport, run_load
from switchboard.loadtest.telnyx import new_telnyx_seed, telnyx_public_key

API_KEY = "KEY_BENCH"


def run_one(n: int, emulator_url: str, duration: float) -> LoadReport:
    seed, port = new_telnyx_seed(), _free_port()
    env = {
        "TELNYX_API_KEY": API_KEY,
        "TELNYX_PUBLIC_KEY": telnyx_public_key(seed),
        "TELNYX_BASE_URL": f"http://127.0.0.1:{port}",
        "TELNYX_CONNECTION_ID": "1684641123236054244",
    }
    with tempfile.TemporaryDirectory(prefix="sb-capacity-telnyx-") as tmp:
        server, base = start_server(emulator_url, Path(tmp), "auto", env)
        try:
            time.sleep(1.0)  # let the server settle before its baseline RSS is read
            options = LoadOptions(
                server=base,
                carrier="telnyx",
                telnyx_key_b64=seed,
                telnyx_port=port,
                telnyx_api_key=API_KEY,
                calls=n,
                duration_s=duration,
                ramp_s=min(5.0, n / 30.0),
                pid=server.pid,
            )
            return asyncio.run(run_load(options))
        finally:
            stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="*", default=[1, 50])
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    _pin(0, LOAD_CPU)
    emulator, url = start_emulator()
    reports: list[LoadReport] = []
    try:
        for n in args.calls:
            reports.append(run_one(n, url, args.duration))
            print(row(reports[-1], reports[0].round_trip.p50), flush=True)
            for error in reports[-1].errors[:5]:
                print("  ", error, flush=True)
    finally:
        stop(emulator)
    baseline = reports[0].round_trip.p50
    table = "\n".join([HEADER, *(row(r, baseline) for r in reports)])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n### Telnyx, μ-law passthrough ({stamp}; {machine()})\n\n{table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
