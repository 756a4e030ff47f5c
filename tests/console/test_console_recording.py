"""The console's call view plays a recorded call: a plain <audio> player, fed with the API
token (the recording is fetched as a blob), holding the whole call."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.console.browser import chromium, need_chromium
from tests.console.test_console import SCRIPT, sign_in
from tests.e2e.harness import (
    agent_book,
    caller_pcm,
    openai_env,
    place_twilio_call,
    running_app,
    twilio_env,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.browser]


async def test_a_recorded_call_has_a_player(tmp_path: Path) -> None:
    need_chromium()
    book = agent_book(recording={"enabled": True, "format": "wav"})
    env_dir = {"SWITCHBOARD_RECORDINGS_DIR": str(tmp_path / "rec")}
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator() as twilio,
        running_app(
            tmp_path, openai_env(oai) | twilio_env(twilio, "openai") | env_dir, agents=book
        ) as (base, _s, app),
        chromium() as browser,
    ):
        report = await place_twilio_call(twilio, base, caller_pcm("hello there"))
        assert await app.state.switchboard.calls.wait_idle(10.0 * UNIT)
        (path,) = (tmp_path / "rec" / "keep").glob("*.wav")
        page = await browser.new_page()
        await sign_in(page, base)
        await page.goto(f"{base}/console#/calls/{path.stem}")
        player = page.get_by_label("Call recording")
        await expect(player).to_be_visible(timeout=10000 * UNIT)
        assert (await player.get_attribute("src") or "").startswith("blob:")
        duration = await player.evaluate(
            """audio => new Promise(ok => audio.readyState >= 1 ? ok(audio.duration)
                : audio.addEventListener("loadedmetadata", () => ok(audio.duration)))"""
        )
    assert abs(duration * 1000 - report.stream_ms) < 1000
