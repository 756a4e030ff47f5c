"""``switchboard calls`` and ``switchboard calls show ID``: call records on the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from rich.console import Console

from switchboard.config import Settings
from switchboard.store.render import render_call_detail, render_call_list
from switchboard.store.store import CallStore

__all__ = ["calls_command"]


async def calls_command(settings: Settings, args: argparse.Namespace) -> int:
    """List call records, or show one (transcript, tool calls, timeline, latency, cost)."""
    store = CallStore.from_settings(settings)
    console = Console()
    try:
        await store.migrate()
        if args.action == "show":
            if not args.call_id:
                print("switchboard calls show: give a call id", file=sys.stderr)
                return 2
            detail = await store.get_call(args.call_id)
            if detail is None:
                print(f"switchboard: no call {args.call_id}", file=sys.stderr)
                return 1
            if args.json:
                print(json.dumps(asdict(detail), default=str, indent=2))
            else:
                console.print(render_call_detail(detail))
            return 0
        filters: dict[str, Any] = {
            "status": args.status,
            "carrier": args.carrier,
            "provider": args.provider,
            "limit": args.limit,
        }
        page = await store.list_calls(**filters)
        if args.json:
            print(json.dumps(asdict(page), default=str, indent=2))
        else:
            console.print(render_call_list(page))
        return 0
    finally:
        await store.aclose()
