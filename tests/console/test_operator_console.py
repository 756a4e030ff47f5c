"""The console's operator controls in a real browser: Listen (the call's audio reaches the
page's AudioWorklet), partial transcripts, Whisper, Take over with the (fake) microphone and
Hand back — with the Twilio emulator as the caller and the OpenAI Realtime emulator as the
agent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from switchboard.audio import pcm16_to_ulaw
from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator
from switchboard.emulators.twilio import TwilioEmulator
from tests.conftest import UNIT
from tests.console.browser import SHOTS, chromium, need_chromium
from tests.console.test_console import sign_in
from tests.e2e.harness import caller_pcm, openai_env, read_only_call, running_app, twilio_env
from tests.operator_audio import frame_kinds, read_wav_pcm, tone_wav
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.browser]

SCRIPT = [
    {"caller": "hello there", "say": "Hi! How can I help you today?"},
    {"say": "I am back with you now."},
]
#: Records every partial line the call view shows (they come and go as lines settle).
WATCH_PARTIALS = """
window.__partials = [];
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {  // kept even when a later render replaced it
      if (node.matches?.("li.partial")) window.__partials.push(node.textContent);
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


async def levels(page: Page, name: str) -> list[float]:
    """The RMS levels the page's player ``name`` posted from its AudioWorklet."""
    return list(await page.evaluate(f"window.switchboardAudio.levels[{json.dumps(name)}] ?? []"))


async def until(page: Page, name: str, check: Callable[[list[float]], bool]) -> None:
    """Wait until the levels of player ``name`` pass ``check`` (polled: the page's CSP
    forbids the string evaluation ``wait_for_function`` uses)."""

    async def levels_ok() -> bool:
        return check(await levels(page, name))

    await eventually_async(levels_ok, limit_s=10, what=f"{name} levels", every_s=0.1)


async def test_listen_whisper_take_over_and_hand_back(tmp_path: Path) -> None:
    need_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    heard = tmp_path / "heard.wav"
    async with (
        OpenAIRealtimeEmulator(script=SCRIPT, ms_per_char=30.0) as oai,
        TwilioEmulator(linger_s=60.0, max_call_s=90.0) as twilio,
        running_app(tmp_path, openai_env(oai) | twilio_env(twilio, "openai")) as (base, _s, _a),
        chromium(fake_audio=tone_wav(tmp_path / "operator.wav")) as browser,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.add_init_script(WATCH_PARTIALS)
        await sign_in(page, base)
        twilio.dial_in(
            f"{base}/twilio/voice", audio=pcm16_to_ulaw(caller_pcm("hello there")), out=heard
        )
        row = page.get_by_role("table", name="Live calls").locator("tbody tr[data-call-id]")
        await expect(row).to_have_count(1, timeout=1000 * UNIT)
        await row.get_by_role("link").click()

        # Listen: the mixed call reaches the page's AudioWorklet, and is not silent.
        await page.get_by_role("button", name="Listen").click()
        await until(page, "listen", lambda got: any(rms > 0.01 for rms in got))
        # what the page held unplayed stays small: the call is heard well under 500 ms late
        held = await page.evaluate("window.switchboardAudio.queued.listen")
        assert held < 300, held
        transcript = page.get_by_role("list", name="Transcript")
        await expect(transcript).to_contain_text("How can I help", timeout=15000 * UNIT)
        partials = await page.evaluate("window.__partials")
        assert any("How can" in p for p in partials), partials  # shown as it was said
        await page.screenshot(path=str(SHOTS / "listen.png"), full_page=True)
        await page.get_by_role("button", name="Listen").click()  # stop listening

        # Whisper: the agent is told; the timeline says the console did it.
        await page.get_by_label("Text to whisper").fill("The caller is a VIP.")
        await page.get_by_role("button", name="Whisper").click()
        timeline = page.get_by_role("list", name="Timeline")
        await expect(timeline).to_contain_text("operator.whisper")
        system = [
            e["item"]["content"][0]["text"]
            for e in oai.received
            if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
        ]
        assert system == ["The caller is a VIP."]

        # Take over: the microphone (a tone) goes to the caller; the caller comes back.
        await page.get_by_role("button", name="Take over").click()
        await expect(page.get_by_role("button", name="Hand back")).to_be_visible()
        await until(page, "operator", lambda got: len(got) >= 25)  # 2.5 s through its socket
        await expect(timeline).to_contain_text("operator.take_over")
        await page.screenshot(path=str(SHOTS / "take-over.png"), full_page=True)

        # Hand back: the agent answers again, told that an operator had the call.
        await page.get_by_role("button", name="Hand back").click()
        await expect(page.get_by_role("button", name="Take over")).to_be_visible()
        await expect(transcript).to_contain_text("I am back with you now.", timeout=15000 * UNIT)
        await expect(timeline).to_contain_text("operator.context")
        await page.get_by_role("button", name="Hang up").click()
        await twilio.wait_calls(timeout_s=20 * UNIT)
    notes = [
        e["item"]["content"][0]["text"]
        for e in oai.received
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
    ]
    assert "spoke with the caller for" in notes[-1]

    # The caller heard the agent, then the operator's tone and no agent, then the agent again.
    pcm, rate = read_wav_pcm(heard)
    kinds = frame_kinds(pcm, rate)
    first, last = kinds.index("t"), kinds.rindex("t")
    assert kinds.count("t") >= 75, kinds  # 1.5 s of the tone at least
    assert "a" in kinds[:first]
    assert kinds[first : last + 1].count("a") <= 5, kinds[first : last + 1]
    assert kinds[last + 1 :].count("a") >= 25, "the agent spoke after the hand-back"
    detail = await read_only_call(tmp_path)
    acts = {(t.kind, t.data.get("via")) for t in detail.timeline}
    for kind in ("whisper", "take_over", "hand_back", "hang_up"):
        assert (f"operator.{kind}", "console") in acts, acts
