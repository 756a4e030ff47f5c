"""The ``switchboard`` command line: argument parsing only; the work is done by the library.

Commands::

    switchboard serve [--host H] [--port P]          run the gateway
          [--workers N|auto]                         N processes on one port (needs Redis)
    switchboard providers [--json]                   list providers and whether they are configured
    switchboard emulate NAME [--port P] [--script F] run a service emulator (openai, gemini,
                                                     deepgram, twilio, telnyx, openai-chat)
    switchboard call --carrier C --server URL --audio in.wav [--out heard.wav]
                                                     place a simulated carrier call
    switchboard calls [--status S] [--limit N]       list call records
    switchboard calls show ID                        one call: transcript, tools, timeline, cost
    switchboard demo                                 a whole simulated call, offline, no keys
    switchboard loadtest --server URL --calls N ...  concurrent simulated calls, round trips
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from switchboard import __version__
from switchboard.errors import SwitchboardError

__all__ = ["main"]

EMULATORS = ("openai", "gemini", "deepgram", "twilio", "telnyx", "openai-chat")
_EMULATOR_MODULES = {
    "openai": "switchboard.emulators.openai_realtime",
    "gemini": "switchboard.emulators.gemini",
    "deepgram": "switchboard.emulators.deepgram",
    "twilio": "switchboard.emulators.twilio",
    "telnyx": "switchboard.emulators.telnyx",
    "openai-chat": "switchboard.emulators.openai_chat",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="AI voice agents on phone numbers."
    )
    parser.add_argument("--version", action="version", version=f"switchboard {__version__}")
    parser.add_argument(
        "--log-level", default=None, help="e.g. INFO or INFO,switchboard.bridge=DEBUG"
    )
    parser.add_argument("--log-format", choices=("auto", "json", "text"), default=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="processes serving the port (auto: one per core); above 1 needs "
        "SWITCHBOARD_REDIS_URL (docs/deploy.md)",
    )

    providers = sub.add_parser("providers", help="list providers and their configuration state")
    providers.add_argument("--json", action="store_true", help="machine-readable output")

    emulate = sub.add_parser("emulate", help="run a service emulator on loopback")
    emulate.add_argument("name", choices=EMULATORS)
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--port", type=int, default=0)
    emulate.add_argument("--script", type=Path, help="JSON file: a list of scripted turns")
    emulate.add_argument(
        "--echo", action="store_true", help="openai, gemini: echo audio back (load tests)"
    )
    emulate.add_argument(
        "--webhook-url", help="telnyx: the app's webhook URL for signed call events"
    )

    call = sub.add_parser("call", help="place a simulated carrier call against a server")
    call.add_argument("--carrier", choices=("twilio", "telnyx"), default="twilio")
    call.add_argument("--server", required=True, help="the switchboard server's base URL")
    call.add_argument("--audio", type=Path, required=True, help="WAV the caller says")
    call.add_argument("--out", type=Path, help="WAV of what the caller heard")
    call.add_argument("--fast", action="store_true", help="stream faster than real time")
    call.add_argument(
        "--linger",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="wall-clock seconds of silence the caller waits, once it has said everything, "
        "before hanging up (the agent's answer may still be on its way; default 2)",
    )
    call.add_argument("--to", default="+15550100000")
    call.add_argument("--from", dest="from_", default="+15550111111")
    call.add_argument(
        "--auth-token", help="twilio: the token the server validates with (TWILIO_AUTH_TOKEN)"
    )
    call.add_argument(
        "--account-sid", help="twilio: the account the server expects (TWILIO_ACCOUNT_SID)"
    )

    calls = sub.add_parser("calls", help="list call records, or show one")
    calls.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    calls.add_argument("call_id", nargs="?")
    calls.add_argument("--status")
    calls.add_argument("--carrier")
    calls.add_argument("--provider")
    calls.add_argument("--limit", type=int, default=20)
    calls.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="a complete simulated call, offline, no keys")
    demo.add_argument("--out", type=Path, default=Path("demo-heard.wav"))
    demo.add_argument("--database", default=None, help="database URL for the demo's call record")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="leave the gateway running after the call and print the console URL with its token",
    )

    load = sub.add_parser("loadtest", help="N concurrent simulated calls; round-trip report")
    load.add_argument("--carrier", choices=("twilio", "telnyx"), default="twilio")
    load.add_argument("--server", required=True)
    load.add_argument("--calls", type=int, default=10)
    load.add_argument("--duration", type=float, default=10.0)
    load.add_argument("--ramp", type=float, default=2.0)
    load.add_argument("--pid", type=int, help="server PID, to report its CPU and RSS")
    load.add_argument("--json", type=Path, help="write the report as JSON here")
    load.add_argument(
        "--auth-token", help="Twilio auth token to sign with (default: TWILIO_AUTH_TOKEN)"
    )
    load.add_argument(
        "--account-sid", help="AccountSid to send (default: TWILIO_ACCOUNT_SID, else AC0…0)"
    )
    load.add_argument(
        "--drain", type=float, default=1.0, help="seconds to wait for echoes after the last frame"
    )
    load.add_argument(
        "--telnyx-key",
        metavar="SEED_B64",
        help="telnyx: Ed25519 seed the load tool signs webhooks with (the server's "
        "TELNYX_PUBLIC_KEY is its public key; printed when missing)",
    )
    load.add_argument(
        "--telnyx-api-key",
        help="telnyx: the API key the server sends, which the load tool's emulator accepts "
        "(default: TELNYX_API_KEY, else KEY_EMULATOR)",
    )
    load.add_argument(
        "--telnyx-port",
        type=int,
        help="telnyx: port of the load tool's Call Control emulator (the server's TELNYX_BASE_URL)",
    )
    return parser


def _workers(text: str) -> int:
    from switchboard.workers import parse_workers

    try:
        return parse_workers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a count of at least 1 or auto ({exc})") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``switchboard`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    from switchboard.config import load_settings
    from switchboard.logs import configure_logging, secret_values

    try:
        settings = load_settings()
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    secrets = secret_values(settings)  # every SecretStr setting, metrics token included
    # Only the long-running commands log at the configured level by default; the others
    # print their own story, which INFO logs would only drown (--log-level still applies).
    default_level = settings.log_level if args.command in ("serve", "emulate") else "WARNING"
    configure_logging(
        level=args.log_level or default_level,
        fmt=args.log_format or settings.log_format,
        secrets=secrets,
    )
    try:
        return int(_dispatch(args, settings) or 0)
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Any) -> int:
    match args.command:
        case "serve":
            from switchboard.server import serve
            from switchboard.workers import workers_refusal

            if (refusal := workers_refusal(settings, args.workers)) is not None:
                print(f"switchboard: {refusal}", file=sys.stderr)
                return 2  # a usage error, as argparse's
            return serve(
                settings,
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_level=args.log_level,
                log_format=args.log_format,
            )
        case "providers":
            return _providers(settings, as_json=args.json)
        case "emulate":
            return _emulate(args)
        case "call":
            return _call(args, settings)
        case "calls":
            from switchboard.store.cli import calls_command

            return asyncio.run(calls_command(settings, args))
        case "demo":
            from switchboard.demo import run_demo

            try:
                return asyncio.run(
                    run_demo(out=args.out, database_url=args.database, keep=args.keep)
                )
            except KeyboardInterrupt:  # how a kept demo's gateway is stopped
                return 0 if args.keep else 130
        case "loadtest":
            from switchboard.loadtest import loadtest_command

            _loadtest_defaults(args, settings)
            return asyncio.run(loadtest_command(args))
    return 2


def _loadtest_defaults(args: argparse.Namespace, settings: Any) -> None:
    """Fill the load tool's carrier credentials the command line left out from the settings."""
    args.auth_token = args.auth_token or settings.secret("twilio_auth_token")
    args.account_sid = args.account_sid or settings.twilio_account_sid or "AC" + "0" * 32
    args.telnyx_api_key = args.telnyx_api_key or settings.secret("telnyx_api_key") or "KEY_EMULATOR"


def _providers(settings: Any, *, as_json: bool) -> int:
    from rich.console import Console
    from rich.table import Table

    from switchboard.providers.registry import ProviderRegistry

    infos = ProviderRegistry(settings).list_providers()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "configured": i.configured,
                        "missing": list(i.missing),
                        "default_model": i.default_model,
                        "kind": i.kind,
                        "estimated_cost_per_minute_usd": i.estimated_cost_per_minute,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return 0
    table = Table(title="switchboard providers")
    for column in ("provider", "kind", "configured", "default model", "$/min (est.)", "missing"):
        table.add_column(column)
    for i in infos:
        table.add_row(
            i.name,
            i.kind,
            "[green]yes[/]" if i.configured else "[red]no[/]",
            i.default_model,
            f"{i.estimated_cost_per_minute:.4f}",
            ", ".join(i.missing),
        )
    Console().print(table)
    return 0


def _emulate(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(_EMULATOR_MODULES[args.name])
    options: dict[str, Any] = {}
    if args.script:
        options["script"] = json.loads(args.script.read_text("utf-8"))
    if args.echo:
        options["echo"] = True
    if args.webhook_url:
        options["webhook_url"] = args.webhook_url
    asyncio.run(module.run(host=args.host, port=args.port, **options))
    return 0


def _call(args: argparse.Namespace, settings: Any) -> int:
    import importlib

    module = importlib.import_module(_EMULATOR_MODULES[args.carrier])
    options: dict[str, Any] = {}
    if args.carrier == "twilio":
        token = args.auth_token or settings.secret("twilio_auth_token")
        if not token:
            print("switchboard call: give --auth-token or set TWILIO_AUTH_TOKEN", file=sys.stderr)
            return 2
        options["auth_token"] = token
        options["min_linger_s"] = args.linger
        account = args.account_sid or settings.twilio_account_sid
        if account:
            options["account_sid"] = account
    else:
        # The emulator is the carrier: it learns from us, not from the environment, where the
        # app's Telnyx emulator may run (TELNYX_BASE_URL) and which key the app sends.
        options["discover_at"] = settings.telnyx_base_url
        key = settings.secret("telnyx_api_key")
        if key:
            options["api_key"] = key
        options["min_tail_s"] = args.linger
    report = asyncio.run(
        module.run_call(
            server=args.server,
            audio=args.audio,
            out=args.out,
            realtime=not args.fast,
            to=args.to,
            from_=args.from_,
            **options,
        )
    )
    print(report.summary())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
