"""Runs N simulated calls against a server, samples the server's /proc, builds the report.

Calls start evenly over ``ramp_s`` (call i at ``i·ramp_s/N``) and each streams for
``duration_s``; the steady window, in which every call is up and none has ended, is
``[ramp_s + 0.5, duration_s − 0.5]`` seconds after the first start (when that window is at
least one second long). The server process is sampled every half second while the calls run,
and this process's own event loop every 5 ms (:class:`~.blame.LoopPauses`), so that each
playout stall can be put down to the load tool or to the server (:mod:`.blame`).

Twilio calls post their webhooks themselves (:class:`~.client.LoadCall`); Telnyx calls are placed
by an in-process Telnyx emulator that acts as the network (:mod:`.telnyx`): the app must trust
its key (``telnyx_key_b64``'s public key as ``TELNYX_PUBLIC_KEY``) and send its commands to it
(``TELNYX_BASE_URL=http://127.0.0.1:<telnyx_port>``, ``TELNYX_API_KEY=<telnyx_api_key>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.loadtest.blame import LoopPauses, blame
from switchboard.loadtest.client import CallStats, LoadCall, SimulatedCall
from switchboard.loadtest.report import LoadReport, ServerUsage
from switchboard.loadtest.stats import ProcSample, drift_ms, read_proc, summarize, windows
from switchboard.loadtest.telnyx import TelnyxLoadCall

__all__ = ["LoadOptions", "LoadProgress", "run_load"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What to run (see ``switchboard loadtest --help``).

    ``auth_token``/``account_sid`` are Twilio's; ``telnyx_*`` configure the in-process Telnyx
    emulator (Ed25519 seed, REST port, the API key the app sends).
    """

    server: str
    auth_token: str = ""
    calls: int = 10
    duration_s: float = 10.0
    ramp_s: float = 2.0
    carrier: str = "twilio"
    pid: int | None = None
    drain_s: float = 1.0
    #: Round trips are also reported by window of call time this long (drift over a call).
    rt_window_s: float = 60.0
    account_sid: str = "AC" + "0" * 32
    to: str = "+15005550001"
    telnyx_key_b64: str | None = None
    telnyx_port: int = 0
    telnyx_api_key: str = "KEY_EMULATOR"
    webhook_path: str = "/telnyx/webhook"
    #: Telnyx stream codec the server's agent asks for: ``PCMU`` or ``OPUS`` (by position).
    telnyx_codec: str = "PCMU"


@dataclass(frozen=True, slots=True)
class LoadProgress:
    """A live snapshot for a progress display."""

    elapsed_s: float
    started: int
    active: int
    finished: int
    frames_sent: int
    frames_returned: int
    server_cpu_percent: float | None


async def run_load(
    options: LoadOptions, *, on_progress: Callable[[LoadProgress], None] | None = None
) -> LoadReport:
    """Run the load test and return its report.

    Raises:
        ValueError: an unsupported carrier or a non-positive number of calls.
    """
    if options.carrier not in ("twilio", "telnyx"):
        raise ValueError(f"carrier {options.carrier!r} is not supported by the load test")
    if options.calls < 1:
        raise ValueError("calls must be at least 1")
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=options.calls, max_keepalive_connections=options.calls)
    samples: list[tuple[float, ProcSample]] = []
    pauses = LoopPauses()
    pauses.start()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30.0, limits=limits))
        calls: list[SimulatedCall]
        if options.carrier == "telnyx":
            emulator = await stack.enter_async_context(_telnyx_emulator(options))
            webhook_url = options.server.rstrip("/") + options.webhook_path
            calls = [
                TelnyxLoadCall(
                    i,
                    emulator=emulator,
                    webhook_url=webhook_url,
                    duration_s=options.duration_s,
                    drain_s=options.drain_s,
                    to=options.to,
                    codec=options.telnyx_codec,
                )
                for i in range(options.calls)
            ]
        else:
            calls = [
                LoadCall(
                    i,
                    server=options.server,
                    auth_token=options.auth_token,
                    duration_s=options.duration_s,
                    drain_s=options.drain_s,
                    account_sid=options.account_sid,
                    to=options.to,
                    http=http,
                )
                for i in range(options.calls)
            ]
        t0 = loop.time()
        tasks = [
            loop.create_task(_delayed(call, t0 + i * options.ramp_s / options.calls))
            for i, call in enumerate(calls)
        ]
        watcher = loop.create_task(_watch(options, calls, tasks, t0, samples, on_progress))
        try:
            results = await asyncio.gather(*tasks)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await pauses.stop()
    if options.pid is not None and (last := read_proc(options.pid)) is not None:
        samples.append((loop.time() - t0, last))
    return _report(options, results, samples, pauses)


def _telnyx_emulator(options: LoadOptions) -> TelnyxEmulator:
    """The network for Telnyx calls; no call may be cut by its time limit."""
    longest_s = options.ramp_s + options.duration_s + options.drain_s + 60.0
    return TelnyxEmulator(
        port=options.telnyx_port,
        api_key=options.telnyx_api_key,
        private_key_b64=options.telnyx_key_b64,
        max_call_ms=round(max(60.0, longest_s) * 1000),
    )


async def _delayed(call: SimulatedCall, at: float) -> CallStats:
    delay = at - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)
    return await call.run()


async def _watch(
    options: LoadOptions,
    calls: list[SimulatedCall],
    tasks: list[asyncio.Task[CallStats]],
    t0: float,
    samples: list[tuple[float, ProcSample]],
    on_progress: Callable[[LoadProgress], None] | None,
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        elapsed = loop.time() - t0
        cpu: float | None = None
        if options.pid is not None and (sample := read_proc(options.pid)) is not None:
            if samples:
                t_prev, prev = samples[-1]
                if elapsed > t_prev:
                    cpu = (sample.cpu_s - prev.cpu_s) / (elapsed - t_prev) * 100.0
            samples.append((elapsed, sample))
        if on_progress is not None:
            started = sum(1 for c in calls if c.started)
            finished = sum(1 for t in tasks if t.done())
            on_progress(
                LoadProgress(
                    elapsed_s=elapsed,
                    started=started,
                    active=started - finished,
                    finished=finished,
                    frames_sent=sum(c.stats.frames_sent for c in calls),
                    frames_returned=sum(c.stats.frames_returned for c in calls),
                    server_cpu_percent=cpu,
                )
            )
        await asyncio.sleep(0.5)


def _usage(options: LoadOptions, samples: list[tuple[float, ProcSample]]) -> ServerUsage | None:
    if options.pid is None or len(samples) < 2:
        return None
    lo, hi = options.ramp_s + 0.5, options.duration_s - 0.5
    window = [s for s in samples if lo <= s[0] <= hi]
    if len(window) < 2 or window[-1][0] - window[0][0] < 1.0:
        window = samples
    (ta, a), (tb, b) = window[0], window[-1]
    cpu = (b.cpu_s - a.cpu_s) / (tb - ta) * 100.0 if tb > ta else 0.0
    wait = (b.run_delay_s - a.run_delay_s) / (tb - ta) * 100.0 if tb > ta else 0.0
    start_kb = samples[0][1].rss_kb
    steady_kb = max(s.rss_kb for _t, s in window)
    return ServerUsage(
        pid=options.pid,
        cpu_percent=cpu,
        cpu_window_s=tb - ta,
        rss_start_mb=start_kb / 1024.0,
        rss_peak_mb=max(s.rss_kb for _t, s in samples) / 1024.0,
        rss_per_call_kb=max(0, steady_kb - start_kb) / options.calls,
        cpu_wait_percent=wait,
    )


def _report(
    options: LoadOptions,
    results: list[CallStats],
    samples: list[tuple[float, ProcSample]],
    pauses: LoopPauses,
) -> LoadReport:
    report = LoadReport(
        carrier=options.carrier,
        server=options.server,
        calls=options.calls,
        duration_s=options.duration_s,
        ramp_s=options.ramp_s,
    )
    rtts: list[float] = []
    drifts: list[float] = []
    per_window: list[array[float]] = []
    window_frames = max(1, round(options.rt_window_s / 0.020))
    for s in results:
        report.calls_ok += s.ok
        report.calls_failed += not s.ok
        if s.error:
            report.errors.append(f"call {s.index}: {s.error}")
        if s.mode == "position":
            report.mode = "position"
        report.frames_sent += s.frames_sent
        report.frames_returned += s.frames_returned
        report.frames_lost += s.frames_lost
        report.frames_queued += s.frames_queued
        report.out_of_order += s.out_of_order
        report.marks_received += s.marks_received
        report.marks_acked += s.marks_acked
        report.clears += s.clears
        report.stalls += s.stalls
        report.stall_ms += s.stall_ms
        for stall in s.stall_log:
            if blame(stall, pauses) == "caller":
                report.stalls_caller += 1
            else:
                report.stalls_server += 1
        report.underruns += s.underruns
        report.underrun_ms += s.underrun_ms
        if (drift := drift_ms(s.rtt_ms)) is not None:
            drifts.append(drift)
        for i, chunk in enumerate(windows(s.rtt_ms, window_frames)):
            if i == len(per_window):
                per_window.append(array("d"))
            per_window[i].extend(chunk)
        report.send_lag_max_ms = max(report.send_lag_max_ms, s.send_lag_max_ms)
        rtts.extend(s.rtt_ms)
    report.round_trip = summarize(rtts)
    report.load_pause_max_ms = pauses.max_ms
    report.load_pauses = len(pauses.starts)
    report.drift = summarize(drifts)
    report.drift_min_ms = min(drifts, default=0.0)
    report.rt_window_s = options.rt_window_s
    report.round_trip_windows = [summarize(w) for w in per_window]
    report.server_usage = _usage(options, samples)
    return report
