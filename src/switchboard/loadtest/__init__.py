"""``switchboard loadtest``: N concurrent simulated carrier calls against a running server.

Each Twilio call signs and posts the voice webhook and follows it to the media socket; each
Telnyx call is placed by an in-process Telnyx emulator (signed webhooks, Call Control API) and
the load tool's caller answers on the media socket the emulator opens. Each call sends a tagged
20 ms μ-law frame every 20 ms, acknowledges marks at playout and measures every frame's round
trip (sent → its echo back, with the provider in echo mode). See :mod:`.client` for one call,
:mod:`.runner` for the run and :mod:`.report` for what is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from switchboard.loadtest.client import CallStats, LoadCall
from switchboard.loadtest.report import LoadReport, ServerUsage
from switchboard.loadtest.runner import LoadOptions, LoadProgress, run_load
from switchboard.loadtest.stats import LatencySummary, percentile, summarize
from switchboard.loadtest.tags import TagScanner, decode_tag, tagged_frame
from switchboard.loadtest.telnyx import TelnyxLoadCall, new_telnyx_seed, telnyx_public_key

__all__ = [
    "CallStats",
    "LatencySummary",
    "LoadCall",
    "LoadOptions",
    "LoadProgress",
    "LoadReport",
    "ServerUsage",
    "TagScanner",
    "TelnyxLoadCall",
    "decode_tag",
    "loadtest_command",
    "new_telnyx_seed",
    "percentile",
    "run_load",
    "summarize",
    "tagged_frame",
    "telnyx_public_key",
]


async def loadtest_command(args: argparse.Namespace) -> int:
    """The ``switchboard loadtest`` command: run, show progress, print the table, write JSON.

    Returns 0 when every call ended cleanly with nothing lost or left queued, else 1. Every value
    comes from ``args`` (the CLI fills ``auth_token``, ``account_sid`` and ``telnyx_api_key`` from
    the settings when they are not given): the load tool never reads the environment itself.
    """
    from rich.console import Console
    from rich.live import Live

    token = args.auth_token
    account_sid = args.account_sid or "AC" + "0" * 32
    telnyx: dict[str, Any] = {}
    if args.carrier == "telnyx":
        if not args.telnyx_key or not args.telnyx_port:
            print(_telnyx_setup(args), file=sys.stderr)
            return 2
        try:
            telnyx_public_key(args.telnyx_key)
        except ValueError as exc:
            print(f"switchboard loadtest: --telnyx-key: {exc}", file=sys.stderr)
            return 2
        telnyx = {
            "telnyx_key_b64": args.telnyx_key,
            "telnyx_port": args.telnyx_port,
            "telnyx_api_key": args.telnyx_api_key or "KEY_EMULATOR",
        }
    elif not token:
        print(
            "switchboard loadtest: --auth-token or TWILIO_AUTH_TOKEN is required", file=sys.stderr
        )
        return 2
    options = LoadOptions(
        server=args.server,
        auth_token=token or "",
        account_sid=account_sid,
        **telnyx,
        calls=args.calls,
        duration_s=args.duration,
        ramp_s=args.ramp,
        carrier=args.carrier,
        pid=args.pid,
        drain_s=args.drain,
    )
    console = Console(stderr=True)
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def show(p: LoadProgress) -> None:
            cpu = (
                "" if p.server_cpu_percent is None else f", server CPU {p.server_cpu_percent:.0f} %"
            )
            live.update(
                f"[bold]{p.elapsed_s:5.1f} s[/] calls {p.active} active / {p.finished} done "
                f"of {options.calls}; frames {p.frames_returned}/{p.frames_sent} back{cpu}"
            )

        try:
            report = await run_load(options, on_progress=show)
        except ValueError as exc:
            print(f"switchboard loadtest: {exc}", file=sys.stderr)
            return 2
    Console().print(report.table())
    for error in report.errors[:10]:
        console.print(f"[red]{error}[/]")
    data: dict[str, Any] = report.to_dict()
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    return 0 if report.clean else 1


def _shown_key(key: str | None) -> str:
    """The emulator's stock key as is; a real key is never echoed, only referred to."""
    if not key or key == "KEY_EMULATOR":
        return "KEY_EMULATOR"
    return "<the key given with --telnyx-api-key or TELNYX_API_KEY>"


def _telnyx_setup(args: argparse.Namespace) -> str:
    """How to start the server so that it trusts and commands the load tool's emulator."""
    from switchboard.emulators.loopback import bind_loopback

    seed = args.telnyx_key or new_telnyx_seed()
    port = args.telnyx_port
    if not port:
        with bind_loopback() as sock:
            port = int(sock.getsockname()[1])
    try:
        public = telnyx_public_key(seed)
    except ValueError as exc:
        return f"switchboard loadtest: --telnyx-key: {exc}"
    return (
        "switchboard loadtest: --carrier telnyx needs --telnyx-key and --telnyx-port: the load\n"
        "tool acts as the Telnyx network, so start the server with\n"
        f"  TELNYX_PUBLIC_KEY={public} TELNYX_BASE_URL=http://127.0.0.1:{port} "
        f"TELNYX_API_KEY={_shown_key(args.telnyx_api_key)}\n"
        "and run\n"
        f"  switchboard loadtest --carrier telnyx --server {args.server} "
        f"--telnyx-key {seed} --telnyx-port {port} ..."
    )
