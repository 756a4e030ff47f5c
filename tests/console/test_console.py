"""The operator console in a real browser: a call from the Twilio emulator (answered by the
OpenAI Realtime emulator) seen live, acted on, and read back in History."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.console.browser import SHOTS, chromium, need_chromium
from tests.e2e.harness import (
    API_TOKEN,
    caller_pcm,
    openai_env,
    read_only_call,
    running_app,
    twilio_env,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.browser]

SCRIPT = [{"caller": "hello there", "say": "Hi! How can I help you today?"}]


async def sign_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/console")
    await page.get_by_label("API token").fill(API_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("table", name="Live calls")).to_be_visible()


async def test_sign_in_refuses_a_wrong_token(tmp_path: Path) -> None:
    need_chromium()
    async with (
        OpenAIRealtimeEmulator(script=[]) as oai,
        TwilioEmulator() as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai")) as (base, _s, _a),
        chromium() as browser,
    ):
        page = await browser.new_page()
        await page.goto(f"{base}/console")
        await page.get_by_label("API token").fill("not-the-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("That token was refused.")
        assert await page.evaluate("sessionStorage.length") == 0


async def test_live_call_say_hang_up_and_history(tmp_path: Path) -> None:
    need_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=60.0, max_call_s=90.0) as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai")) as (base, _s, _a),
        chromium() as browser,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await sign_in(page, base)
        live = page.get_by_role("table", name="Live calls")
        await expect(live.get_by_text("No live calls.")).to_be_visible()

        # The call appears in "Live calls" within a second of the carrier's webhook.
        dialled = time.monotonic()
        twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hello there")))
        row = live.locator("tbody tr[data-call-id]")
        await expect(row).to_have_count(1, timeout=1000 * UNIT)
        assert time.monotonic() - dialled < 1.0 * UNIT
        call_id = await row.get_attribute("data-call-id")
        assert call_id
        await expect(row).to_contain_text("+15005550006")  # the caller
        await expect(row).to_contain_text("frontdesk")
        await expect(row).to_contain_text("openai")
        await expect(row).to_contain_text("twilio")
        await page.screenshot(path=str(SHOTS / "live-calls.png"))

        # The call view: both sides' transcript lines arrive as they are said.
        await row.get_by_role("link").click()
        transcript = page.get_by_role("list", name="Transcript")
        await expect(transcript).to_contain_text("Hello, thanks for calling.", timeout=15000 * UNIT)
        await expect(transcript).to_contain_text("hello there", timeout=15000 * UNIT)
        await expect(transcript).to_contain_text("How can I help you", timeout=15000 * UNIT)
        bars = page.get_by_role("img", name="Turn latency").locator("rect")
        await expect(bars).not_to_have_count(0)

        # "Say": the agent speaks the operator's words; the timeline says who asked.
        await page.get_by_label("Text to say").fill("Please hold the line.")
        await page.get_by_role("button", name="Say").click()
        await expect(transcript).to_contain_text("Please hold the line.", timeout=15000 * UNIT)
        timeline = page.get_by_role("list", name="Timeline")
        await expect(timeline).to_contain_text("operator.say")
        await expect(timeline).to_contain_text('"via":"console"')
        await page.screenshot(path=str(SHOTS / "call-view.png"), full_page=True)

        # "Hang up": the call ends at the carrier, and the view turns to the record.
        await page.get_by_role("button", name="Hang up").click()
        (report,) = await twilio.wait_calls(timeout_s=20 * UNIT)
        assert report.heard_ms > 1000
        await expect(page.get_by_role("button", name="Hang up")).to_be_hidden(timeout=10000 * UNIT)
        facts = page.get_by_label("Call facts")
        await expect(facts).to_contain_text("(api_hangup)", timeout=10000 * UNIT)
        await expect(page.locator("#status")).to_have_text("hangup: done")

        # History: the call, found by a phrase of its transcript, and not by another.
        await page.get_by_role("link", name="History").click()
        calls = page.get_by_role("table", name="Calls")
        await expect(calls.locator("tbody tr[data-call-id]")).to_have_count(1)
        await page.get_by_label("Transcript contains").fill("HOLD THE LINE")
        await page.get_by_role("button", name="Search").click()
        await expect(calls.locator(f'tr[data-call-id="{call_id}"]')).to_be_visible()
        await page.screenshot(path=str(SHOTS / "history.png"))
        await page.get_by_label("Transcript contains").fill("no such words")
        await page.get_by_role("button", name="Search").click()
        await expect(calls.get_by_text("No calls match.")).to_be_visible()
    detail = await read_only_call(tmp_path)
    kinds = [(t.kind, t.data.get("by"), t.data.get("via")) for t in detail.timeline]
    assert ("operator.say", "operator", "console") in kinds
    assert ("operator.hang_up", "operator", "console") in kinds
    assert detail.record.end_reason == "api_hangup"
