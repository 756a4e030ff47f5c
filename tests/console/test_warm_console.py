"""A warm transfer from the console in a real browser: the operator picks "warm", the Twilio
emulator's destination (a person) is dialled, briefed and joined with the caller, and the
call view shows each step as the timeline reports it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.twilio.conference import Callee
from tests.conftest import UNIT
from tests.console.browser import SHOTS, chromium, need_chromium
from tests.console.test_console import sign_in
from tests.e2e.harness import caller_pcm, read_only_call
from tests.e2e.test_warm_transfer import DESK, assert_joined, warm_app

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.browser]

SCRIPT = [{"caller": "please connect me to the desk", "say": "One moment."}]
#: Records every text the "Warm transfer" fact shows (each step replaces the last).
WATCH_WARM = """
window.__warm = [];
new MutationObserver(() => {
  const node = document.querySelector('dd[aria-label="Warm transfer"]');
  const text = node?.textContent;
  if (text && window.__warm.at(-1) !== text) window.__warm.push(text);
}).observe(document, { childList: true, subtree: true, characterData: true });
"""


async def test_warm_transfer_from_the_console_shows_its_steps(tmp_path: Path) -> None:
    need_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with (
        warm_app(tmp_path, SCRIPT, Callee("person", 0.5)) as (twilio, base, _app),
        chromium() as browser,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.add_init_script(WATCH_WARM)
        await sign_in(page, base)
        pcm = caller_pcm("please connect me to the desk", gap_ms=15000)
        twilio.dial_in(f"{base}/twilio/voice", audio=pcm16_to_ulaw(pcm))
        row = page.get_by_role("table", name="Live calls").locator("tbody tr[data-call-id]")
        await expect(row).to_have_count(1, timeout=1000 * UNIT)
        call_id = await row.get_attribute("data-call-id")
        assert call_id
        await row.get_by_role("link").click()

        await page.get_by_label("Transfer to").fill("desk")
        await page.get_by_label("Transfer mode").select_option("warm")
        await page.get_by_role("button", name="Transfer").click()
        warm = page.get_by_label("Warm transfer")
        await expect(warm).to_contain_text("briefing", timeout=20000 * UNIT)
        await page.screenshot(path=str(SHOTS / "warm-transfer.png"), full_page=True)
        await expect(warm).to_have_text(f"joined with {DESK}", timeout=30000 * UNIT)
        # the call ended with the join: the view now shows the record, which says so too
        await expect(page.get_by_role("list", name="Timeline")).to_contain_text(
            "transfer.warm.briefing"
        )
        steps: list[str] = await page.evaluate("window.__warm")
        (report,) = await twilio.wait_calls(timeout_s=60 * UNIT)
    assert steps[0] == f"dialling {DESK} (caller on hold)", steps
    assert steps.index("briefing the person who answered") < steps.index(f"joined with {DESK}")
    assert_joined(twilio, report, call_id)
    detail = await read_only_call(tmp_path)
    (asked,) = [e.data for e in detail.timeline if e.kind == "operator.transfer"]
    assert asked["mode"] == "warm" and asked["via"] == "console"
