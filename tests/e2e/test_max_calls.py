"""SWITCHBOARD_MAX_CALLS: a call beyond the node's limit is refused at the carrier as busy.

With a limit of one, while a Twilio call is bridged a second Twilio call gets
``<Reject reason="busy"/>`` and a Telnyx call a ``reject`` with ``USER_BUSY`` (no answer, no
provider session, nothing recorded), both counted in ``switchboard_calls_refused``; once the
first call has ended the next one is taken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.audio import pcm16_to_ulaw
from switchboard.bridge.manager import CallManager
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.telnyx import TelnyxEmulator
from switchboard.emulators.twilio import TwilioEmulator
from switchboard.store import CallStore
from tests.conftest import UNIT
from tests.e2e.harness import (
    caller_pcm,
    caller_wav,
    openai_env,
    running_app,
    telnyx_env,
    twilio_env,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_calls_over_the_node_limit_are_busy_at_the_carrier(tmp_path: Path) -> None:
    script: list[dict[str, Any]] = [{"caller": "hi", "say": "Hello there."}] * 3
    async with (
        OpenAIRealtimeEmulator(script=script, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
        TelnyxEmulator(realtime=True) as telnyx,
    ):
        env = (
            openai_env(oai)
            | twilio_env(twilio, "openai")
            | telnyx_env(telnyx)
            | {"SWITCHBOARD_MAX_CALLS": "1"}
        )
        async with running_app(tmp_path, env) as (base, _settings, app):
            manager = app.state.switchboard.calls
            assert isinstance(manager, CallManager)
            first = twilio.dial_in(
                f"{base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hi", gap_ms=60_000))
            )
            await eventually(
                lambda: any(c.session is not None for c in manager.calls.values()),
                limit_s=15,
                what="the first call bridged",
            )
            second = twilio.dial_in(f"{base}/twilio/voice")
            await eventually(
                lambda: second.report.outcome != "unknown", limit_s=10, what="the second call"
            )
            assert second.report.outcome == "rejected: busy"
            third = await telnyx.place_inbound_call(
                to="+15550100000",
                from_="+15550111111",
                audio=caller_wav("hi"),
                webhook_url=f"{base}/telnyx/webhook",
            )
            report = await third.wait(15 * UNIT)
            assert report.commands == ["reject"]
            assert (third.hangup_cause, third.hangup_source) == ("user_busy", "callee")
            async with httpx.AsyncClient(base_url=base, timeout=5 * UNIT) as http:
                metrics = (await http.get("/metrics")).text
            assert 'switchboard_calls_refused_total{carrier="twilio",reason="busy"} 1.0' in metrics
            assert 'switchboard_calls_refused_total{carrier="telnyx",reason="busy"} 1.0' in metrics

            first.hang_up()  # the caller hangs up: the slot is free again
            await eventually(lambda: not manager.calls, limit_s=15, what="the first call ended")
            fourth = twilio.dial_in(
                f"{base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hi", gap_ms=60_000))
            )
            await eventually(
                lambda: any(c.session is not None for c in manager.calls.values()),
                limit_s=15,
                what="the fourth call bridged",
            )
            fourth.hang_up()
            await twilio.wait_calls(timeout_s=20 * UNIT)
    assert telnyx.violations == [] and oai.violations == []
    assert second.report.violations == []
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await store.migrate()
    page = await store.list_calls()
    await store.aclose()
    assert len(page.items) == 2  # the two calls taken; the refused ones left no record
