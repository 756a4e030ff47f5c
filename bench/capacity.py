"""Capacity benchmark: how many concurrent calls one server core carries (run by hand).

    .venv/bin/python bench/capacity.py                      # μ-law passthrough sweep
    .venv/bin/python bench/capacity.py --audio pcm16        # provider forced to PCM 24 kHz
    .venv/bin/python bench/capacity.py --calls 1 150 --duration 30 --json out.json
    .venv/bin/python bench/capacity.py --carrier telnyx --codec opus --calls 1 30 60
    .venv/bin/python bench/capacity.py --carrier telnyx --codec l16 --calls 1 100 150
    .venv/bin/python bench/capacity.py --provider gemini    # Gemini Live: 16 kHz in, 24 kHz out
    .venv/bin/python bench/capacity.py --workers 1 2 --calls 1 50 100   # serve --workers N

For each N in the sweep (default 1, 25, 50, 100, 150, 200) a fresh ``switchboard serve`` is
started pinned to CPU 0 (``os.sched_setaffinity``), with env pointing at an echo-mode OpenAI
Realtime emulator (its own process) and a Twilio configuration; the emulator and this process
(the load generator, :func:`switchboard.loadtest.run_load`) are pinned to CPU 1. Every call
streams tagged 20 ms μ-law frames and measures each frame's round trip. The server's CPU (over
the steady window) and RSS come from ``/proc``. It prints a Markdown table (what the
"Capacity" section of ``docs/benchmarks.md`` holds).

With ``--provider gemini`` the agent uses Gemini Live through the Gemini emulator's echo mode
(caller audio back as model audio): every call takes the PCM path, 8k→16k in and 24k→8k out.

With ``--carrier telnyx`` the load generator runs the Telnyx emulator in-process (the server's
``TELNYX_BASE_URL`` and key point at it); ``--codec opus`` makes the agent ask for ``OPUS`` both
ways, so the server decodes and encodes Opus for every call (measured by position: no tag
survives a lossy codec); ``--codec l16`` makes it ``L16`` (16 kHz linear PCM, resampled to and
from the provider's 8 kHz μ-law, so measured by position as well).

With ``--workers N [N...]`` each sweep is run once per worker count: ``switchboard serve
--workers N`` (N > 1 needs Redis: ``--redis URL``, by default ``redis://127.0.0.1:6379/0``), the
server pinned to the first N CPUs; its CPU and RSS are then the supervisor's and all its
workers' together (``server CPU`` 200 % = two cores busy), sampled over the steady window.

A row passes when every call ended cleanly with no frame lost or left queued and round-trip
p99 is within 200 ms of the N = 1 median (targets: N = 150 passthrough, N = 70 with PCM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from switchboard.loadtest import LoadOptions, LoadReport, run_load
from switchboard.loadtest.report import ServerUsage
from switchboard.loadtest.stats import read_proc
from switchboard.loadtest.telnyx import new_telnyx_seed, telnyx_public_key
from switchboard.runtime import freeze_startup_objects

ROOT = Path(__file__).resolve().parent.parent
SWEEP = (1, 25, 50, 100, 150, 200)
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105 (a throwaway local test key)
ACCOUNT_SID = "AC" + "b" * 32
SERVER_CPU, LOAD_CPU = 0, 1

AGENTS_YAML = """\
version: 1
agents:
  bench:
    numbers: ["*"]
    system_prompt: Echo bench agent.
    provider: {provider}
    reprompt: null
    provider_audio: {audio}
    carrier_codec: {codec}
    limits: {{max_call_seconds: 3600, silence_timeout_s: 600, silence_hangup_s: 1200}}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(pid, {cpu})


def start_emulator(provider: str = "openai") -> tuple[subprocess.Popen[str], str]:
    module = {"openai": "openai_realtime.server", "gemini": "gemini"}[provider]
    code = (
        "import asyncio\n"
        f"from switchboard.emulators.{module} import run\n"
        "from switchboard.runtime import freeze_startup_objects\n"
        "freeze_startup_objects()  # no full-collection pauses in the echo either\n"
        "asyncio.run(run(port=0, echo=True, record=False))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    _pin(proc.pid, LOAD_CPU)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(https?://\S+)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, match.group(1)


#: ``switchboard serve`` without runtime.freeze_startup_objects (``--no-gc-freeze``).
_NO_FREEZE = (
    "import sys, switchboard.runtime as r; r.freeze_startup_objects = lambda: 0; "
    "from switchboard.cli import main; sys.exit(main(sys.argv[1:]))"
)


def start_server(
    emulator_url: str,
    workdir: Path,
    audio: str,
    extra_env: dict[str, str],
    codec: str = "pcmu",
    provider: str = "openai",
    workers: int | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    agents = workdir / "agents.yaml"
    yaml = AGENTS_YAML.format(audio=audio, codec=codec, provider=provider)
    agents.write_text(yaml, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "TWILIO_"))}
    env.update(
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=emulator_url,
        GEMINI_API_KEY="bench-gemini-key",
        GEMINI_BASE_URL=emulator_url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        SWITCHBOARD_PUBLIC_URL=base,
        SWITCHBOARD_API_TOKEN="bench-api-token-0123456789abcdef",  # noqa: S106 (throwaway)
        SWITCHBOARD_AGENTS=str(agents),
        SWITCHBOARD_PROVIDER=provider,
        SWITCHBOARD_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'calls.db'}",
        SWITCHBOARD_LOG_LEVEL="WARNING",
        **extra_env,
    )
    cmd = [sys.executable, "-m", "switchboard.cli", "serve", "--host", "127.0.0.1"]
    if os.environ.get("BENCH_NO_GC_FREEZE"):  # the "before" of #22.7: CPython's default GC
        cmd[1:3] = ["-c", _NO_FREEZE]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, cwd=workdir)
    if workers is None:
        _pin(proc.pid, SERVER_CPU)
    elif hasattr(os, "sched_setaffinity"):  # the workers inherit the supervisor's CPUs
        os.sched_setaffinity(proc.pid, set(range(min(workers, os.cpu_count() or 1))))
    deadline = time.monotonic() + (30 if workers is None else 90)  # N workers start slower
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code < 500:
                return proc, base
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_one(
    n: int,
    emulator_url: str,
    audio: str,
    duration: float,
    extra_env: dict[str, str],
    carrier: str = "twilio",
    codec: str = "pcmu",
    provider: str = "openai",
    workers: int | None = None,
) -> LoadReport:
    telnyx: dict[str, Any] = {}
    if carrier == "telnyx":  # the load tool's in-process Telnyx emulator is the network
        seed, telnyx_port = new_telnyx_seed(), _free_port()
        telnyx = {"telnyx_key_b64": seed, "telnyx_port": telnyx_port}
        telnyx["telnyx_codec"] = codec.upper()
        extra_env = extra_env | {
            "TELNYX_API_KEY": "KEY_EMULATOR",
            "TELNYX_PUBLIC_KEY": telnyx_public_key(seed),
            "TELNYX_BASE_URL": f"http://127.0.0.1:{telnyx_port}",
        }
    with tempfile.TemporaryDirectory(prefix="sb-capacity-") as tmp:
        server, base = start_server(
            emulator_url, Path(tmp), audio, extra_env, codec, provider, workers
        )
        try:
            time.sleep(1.0)  # let the server settle before its baseline RSS is read
            options = LoadOptions(
                server=base,
                auth_token=AUTH_TOKEN,
                account_sid=ACCOUNT_SID,
                calls=n,
                duration_s=duration,
                ramp_s=min(5.0, n / 30.0),
                # with workers the supervisor alone does no work: measured with them, below
                pid=server.pid if workers is None else None,
                carrier=carrier,
                **telnyx,
            )
            if workers is None:
                return asyncio.run(run_load(options))
            with TreeUsage(server.pid, options) as usage:
                report = asyncio.run(run_load(options))
            report.server_usage = usage.result(n)
            return report
        finally:
            stop(server)


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (a supervisor and its workers), from /proc."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


class TreeUsage:
    """CPU and RSS of a supervisor and its workers over the run's steady window (a thread
    samples at its start and end, as ``run_load`` does for one process)."""

    def __init__(self, pid: int, options: LoadOptions) -> None:
        self.pid = pid
        self.window = (options.ramp_s + 0.5, max(options.ramp_s + 1.5, options.duration_s - 0.5))
        self.samples: list[tuple[float, float, int]] = []  # (t, cpu s, rss kB)
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[float, int]:
        cpu, rss = 0.0, 0
        for pid in _tree(self.pid):
            if (proc := read_proc(pid)) is not None:
                cpu, rss = cpu + proc.cpu_s, rss + proc.rss_kb
        return cpu, rss

    def _run(self) -> None:
        t0 = time.monotonic()
        cpu, rss = self._sample()
        self.samples.append((0.0, cpu, rss))
        while not self._stop.wait(0.5):
            t = time.monotonic() - t0
            cpu, rss = self._sample()
            self.peak_kb = max(self.peak_kb, rss)
            if self.window[0] <= t <= self.window[1]:
                self.samples.append((t, cpu, rss))

    def __enter__(self) -> TreeUsage:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def result(self, calls: int) -> ServerUsage | None:
        steady = self.samples[1:]
        if len(steady) < 2:
            return None
        (ta, ca, _), (tb, cb, _) = steady[0], steady[-1]
        start_kb = self.samples[0][2]
        return ServerUsage(
            pid=self.pid,
            cpu_percent=(cb - ca) / (tb - ta) * 100.0 if tb > ta else 0.0,
            cpu_window_s=tb - ta,
            rss_start_mb=start_kb / 1024.0,
            rss_peak_mb=self.peak_kb / 1024.0,
            rss_per_call_kb=max(0, max(s[2] for s in steady) - start_kb) / calls,
        )


def passes(report: LoadReport, baseline_p50: float, held: int = 1) -> bool:
    """Clean, nothing lost or queued, p99 within 200 ms of the N = 1 median.

    Measured by position (PCM: no tag survives), the resampler's few-ms delay leaves the last,
    partial frame of each call in the bridge's framer: ``held`` "queued" frames per call are
    allowed (1; 5 for Opus, whose 16k↔24k soxr streams hold up to ~60 ms each way).
    """
    slack = report.calls * held if report.mode == "position" else 0
    ok = report.calls_ok == report.calls and report.calls_failed == 0
    ok = ok and report.frames_lost == 0 and report.frames_queued <= slack
    return ok and report.round_trip.p99 <= baseline_p50 + 200.0


def row(report: LoadReport, baseline_p50: float, held: int = 1) -> str:
    rt, u = report.round_trip, report.server_usage
    cpu = f"{u.cpu_percent:.0f} % (+{u.cpu_wait_percent:.0f} % wait)" if u else "-"
    rss = f"{u.rss_peak_mb:.0f} MB" if u else "-"
    per_call = f"{u.rss_per_call_kb:.0f} kB" if u and report.calls > 1 else "-"
    return (
        f"| {report.calls} | {report.calls_ok}/{report.calls_failed} | {report.frames_sent} | "
        f"{report.frames_lost} | {report.frames_queued} | {rt.p50:.1f} | {rt.p95:.1f} | "
        f"{rt.p99:.1f} | {rt.max:.1f} | {report.stalls} | "
        f"{report.stalls_server}/{report.stalls_caller} | {cpu} | {rss} | {per_call} | "
        f"{report.send_lag_max_ms:.0f} | {'yes' if passes(report, baseline_p50, held) else 'no'} |"
    )


HEADER = (
    "| calls | ok/failed | frames sent | lost | queued | RT p50 ms | p95 | p99 | max | stalls | "
    "server/load | server CPU | server RSS peak | RSS/call | gen. lag ms | pass |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="*", default=list(SWEEP))
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--audio", choices=("auto", "pcm16"), default="auto")
    parser.add_argument("--carrier", choices=("twilio", "telnyx"), default="twilio")
    parser.add_argument("--provider", choices=("openai", "gemini"), default="openai")
    parser.add_argument(
        "--codec", choices=("pcmu", "opus", "l16"), default="pcmu", help="telnyx only"
    )
    parser.add_argument("--json", type=Path, help="write every report here")
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="serve with CPython's default collector (the 'before' of the playout-stall fix)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        help="run the sweep once per worker count (serve --workers N; N > 1 needs Redis)",
    )
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/0", help="SWITCHBOARD_REDIS_URL for --workers"
    )
    args = parser.parse_args()
    if args.no_gc_freeze:
        os.environ["BENCH_NO_GC_FREEZE"] = "1"
    if args.workers:
        return sweep_workers(args)
    held = 5 if args.codec == "opus" else 1
    _pin(0, LOAD_CPU)
    freeze_startup_objects()  # the load tool's own full collections would be its stalls
    emulator, url = start_emulator(args.provider)
    reports: list[LoadReport] = []
    try:
        for n in args.calls:
            report = run_one(
                n, url, args.audio, args.duration, {}, args.carrier, args.codec, args.provider
            )
            reports.append(report)
            base = reports[0].round_trip.p50
            print(row(report, base, held), flush=True)
    finally:
        stop(emulator)
    baseline = reports[0].round_trip.p50
    label = "μ-law passthrough" if args.audio == "auto" else "provider forced to PCM 24 kHz"
    if args.provider == "gemini":
        label = "Gemini Live echo (PCM 16 kHz in, 24 kHz out)"
    if args.carrier == "telnyx":
        label = f"Telnyx, {args.codec.upper()} both ways" + (
            "" if args.codec == "opus" else f" ({label})"
        )
    table = "\n".join([HEADER, *(row(r, baseline, held) for r in reports)])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n### {label} ({stamp}; {machine()})\n\n{table}")
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=2), "utf-8")
    return 0


def sweep_workers(args: argparse.Namespace) -> int:
    """The same sweep through ``serve --workers N`` for each N; one table, a row per (N, calls)."""
    _pin(0, LOAD_CPU)
    emulator, url = start_emulator()
    extra = {"SWITCHBOARD_REDIS_URL": args.redis}
    lines: list[str] = []
    reports: list[LoadReport] = []
    try:
        for workers in args.workers:
            base: float | None = None
            for n in args.calls:
                report = run_one(
                    n,
                    url,
                    args.audio,
                    args.duration,
                    extra,
                    args.carrier,
                    args.codec,
                    workers=workers,
                )
                reports.append(report)
                base = report.round_trip.p50 if base is None else base
                lines.append(f"| {workers} {row(report, base)}")
                print(lines[-1], flush=True)
    finally:
        stop(emulator)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = HEADER.replace("| calls |", "| workers | calls |", 1).replace("|---|", "|---|---|", 1)
    print(f"\n### serve --workers ({stamp}; {machine()})\n\n" + "\n".join([header, *lines]))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
