"""``switchboard demo``: one whole phone call on this machine, with no keys and no network.

The gateway starts on a free loopback port with the offline *local* provider (Whisper tiny.en,
a rule-based receptionist, Piper). A simulated Twilio caller, whose voice is synthesised with
Piper and put through a telephone band, dials in: it asks for the opening hours, then to be put
through to billing. The demo prints both sides of the conversation as they happen, with each
turn's latency at the carrier socket, saves what the caller heard to a WAV, and says where the
call record is. The Twilio REST API is the emulator's, so the transfer really happens on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from switchboard.agents import Agent, AgentBook
from switchboard.app import create_app
from switchboard.config import load_settings
from switchboard.errors import SwitchboardError
from switchboard.store import CallStore

if TYPE_CHECKING:
    from switchboard.emulators.twilio import TwilioCallReport

__all__ = ["DEMO_LINES", "run_demo"]

#: What the simulated caller says, each followed by a pause long enough for the answer.
DEMO_LINES: tuple[tuple[str, float], ...] = (
    ("Hi, what are your opening hours?", 11.0),
    ("Great, thanks. Can you transfer me to billing, please?", 7.0),
)

DEMO_AGENT = Agent.model_validate(
    {
        "name": "receptionist",
        "numbers": ["*"],
        "system_prompt": "You are the receptionist of a small business.",
        "greeting": "Hello, thanks for calling Acme. How can I help you today?",
        "provider": "local",
        "tools": ["end_call", "transfer_call"],
        "directory": {
            "billing": "+15550100201",
            "sales": "+15550100202",
            "support": "+15550100203",
        },
        "limits": {"max_call_seconds": 120, "silence_timeout_s": 15, "silence_hangup_s": 40},
    }
)


def _caller_ulaw(console: Console) -> bytes:
    from switchboard.providers.local import synth

    audio = synth.conversation(DEMO_LINES, lead_s=5.0)  # five seconds for the greeting
    console.print(f"[dim]caller script: {len(DEMO_LINES)} lines, {len(audio) / 8000:.1f} s[/]")
    return audio


def _load_models(console: Console) -> None:
    from switchboard.providers.local import models

    with console.status("Loading the offline speech models (Whisper tiny.en, Piper voice)…"):
        started = time.perf_counter()
        models.whisper_model()
        models.piper_voice()
    console.print(f"[dim]models loaded in {time.perf_counter() - started:.1f} s[/]")


async def _follow(store: CallStore, carrier_sid: str, done: asyncio.Event, console: Console) -> str:
    """Print the call's transcript and turn latencies as the record fills; returns the call id."""
    call_id = ""
    shown_lines = shown_latencies = 0
    while True:
        finished = done.is_set()
        record = await store.find_by_carrier_id("twilio", carrier_sid)
        if record is not None:
            call_id = record.id
            detail = await store.get_call(call_id)
            if detail is not None:
                for entry in detail.transcript[shown_lines:]:
                    who = "[cyan]agent [/]" if entry.role == "agent" else "[yellow]caller[/]"
                    cut = " [red](interrupted)[/]" if entry.interrupted else ""
                    console.print(f"{who} {entry.text}{cut}")
                shown_lines = len(detail.transcript)
                for lat in detail.latencies[shown_latencies:]:
                    console.print(f"[dim]       turn {lat.turn}: {lat.latency_ms:.0f} ms[/]")
                shown_latencies = len(detail.latencies)
        if finished:
            return call_id
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.25)


async def run_demo(
    *,
    out: Path = Path("demo-heard.wav"),
    database_url: str | None = None,
    keep: bool = False,
    kept: asyncio.Event | None = None,
) -> int:
    """Run the demo call; returns 0 when the call went through both ways.

    ``keep``: leave the gateway running afterwards (until interrupted, or ``kept`` is set) and
    print the console's URL with the demo's token, to explore the call there.
    """
    from switchboard.emulators.loopback import LoopbackServer, bind_loopback
    from switchboard.emulators.twilio import TwilioEmulator

    console = Console()
    out = await asyncio.to_thread(out.resolve)
    console.rule("switchboard demo: an offline phone call")
    try:
        await asyncio.to_thread(_load_models, console)
        with console.status("Synthesising the caller's voice…"):
            audio = await asyncio.to_thread(_caller_ulaw, console)
    except SwitchboardError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with TwilioEmulator(audio=audio, linger_s=1.5, max_call_s=90.0) as twilio:
        overrides = {
            "SWITCHBOARD_PROVIDER": "local",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_BASE_URL": twilio.base_url,
            "SWITCHBOARD_PUBLIC_URL": base,
            "SWITCHBOARD_API_TOKEN": (token := secrets.token_urlsafe(16)),
        }
        if database_url:
            overrides["SWITCHBOARD_DATABASE_URL"] = database_url
        settings = load_settings(**overrides)
        app = create_app(settings, agents=AgentBook([DEMO_AGENT]))
        async with LoopbackServer(app, sock=sock):
            console.print(f"[dim]gateway on {base}; Twilio emulator on {twilio.base_url}[/]")
            store: CallStore = app.state.switchboard.gateway.store  # one at the database URL
            caller = twilio.dial_in(f"{base}/twilio/voice", out=out)
            done = asyncio.Event()
            follower = asyncio.create_task(_follow(store, caller.report.call_sid, done, console))
            reports = await twilio.wait_calls(timeout_s=150)
            await asyncio.sleep(0.8)  # let the record's last batch land
            done.set()
            call_id = await follower
            if keep and reports:
                _summary(console, reports[0], out, settings.database_url, call_id)
                # The token rides in the fragment, which the browser never sends to a server.
                url = f"{base}/console/#token={token}&call={call_id}"
                console.rule("the gateway stays up (Ctrl-C to stop)")
                console.print(f"explore the call in the console: [bold]{url}[/]", soft_wrap=True)
                console.print(f"API token: {token}", soft_wrap=True)
                await (kept or asyncio.Event()).wait()  # Ctrl-C cancels this: all closes
                return 0 if _ok(reports[0]) else 1
    if not reports:
        console.print("[red]the call did not finish[/]")
        return 1
    _summary(console, reports[0], out, settings.database_url, call_id)
    console.print(
        "explore it in the operator console: [bold]switchboard demo --keep[/] leaves the "
        "gateway running and prints the console's URL with its token"
    )
    return 0 if _ok(reports[0]) else 1


def _ok(report: TwilioCallReport) -> bool:
    return report.heard_ms > 1000 and report.frames_sent > 0 and not report.violations


def _summary(
    console: Console, report: TwilioCallReport, out: Path, database_url: str, call_id: str
) -> None:
    console.rule("call summary")
    console.print(report.summary())
    console.print(f"recording of what the caller heard: [bold]{out}[/]")
    console.print(f"call record: {database_url}  (id {call_id})")
    console.print(f"show it with: [bold]switchboard calls show {call_id}[/]")
