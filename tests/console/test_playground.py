"""The Playground in a real browser: talk to an agent of the local provider (no keys) with the
fake microphone playing a synthesised question; the transcript and the turn's latency show."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

import pytest
from playwright.async_api import expect

from switchboard.media import AudioFormat
from switchboard.providers.local import synth
from tests.conftest import UNIT
from tests.console.browser import SHOTS, chromium, need_chromium
from tests.console.test_console import sign_in
from tests.e2e.harness import agent_book, read_only_call, running_app
from tests.meaning import means

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.browser, pytest.mark.local]


def question_wav(path: Path) -> Path:
    """A question with long silence after it (Chromium loops the file)."""
    pcm = synth.caller_audio(
        "What are your opening hours?",
        fmt=AudioFormat.PCM16,
        sample_rate=16000,
        lead_ms=6000,  # after the greeting
        trail_ms=12000,
        line=False,
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    path.write_bytes(out.getvalue())
    return path


async def test_playground_holds_a_spoken_turn_with_the_local_provider(tmp_path: Path) -> None:
    need_chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    book = agent_book(provider="local", greeting="Hello, Acme here.", tools=["end_call"])
    async with (
        running_app(tmp_path, {"SWITCHBOARD_PROVIDER": "local"}, agents=book) as (base, _s, _a),
        chromium(fake_audio=question_wav(tmp_path / "question.wav")) as browser,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await sign_in(page, base)
        await page.get_by_role("link", name="Playground").click()
        await expect(page.get_by_label("Agent", exact=True)).to_have_value("frontdesk")
        await page.get_by_role("button", name="Start talking").click()
        await expect(page.get_by_role("button", name="Stop")).to_be_visible()
        transcript = page.get_by_role("list", name="Playground transcript")
        await expect(transcript).to_contain_text("Acme here", timeout=30000 * UNIT)  # greeting
        caller = transcript.locator("li.caller:not(.partial) .text")
        await expect(caller.first).to_be_visible(timeout=30000 * UNIT)
        heard = await caller.first.text_content()
        assert heard and means(heard.lower(), "hours"), heard
        await expect(transcript.locator("li.agent:not(.partial)")).to_have_count(
            2, timeout=30000 * UNIT
        )
        latency = page.get_by_label("Last turn latency")
        await expect(latency).to_have_text(re.compile(r"^\d+ ms$"))
        await page.screenshot(path=str(SHOTS / "playground.png"))
        ms = int((await latency.text_content() or "0").split()[0])
        assert 0 < ms < 5000 * UNIT
        await page.get_by_role("button", name="Stop").click()
        await expect(page.get_by_role("button", name="Start talking")).to_be_visible()
    with pytest.raises(AssertionError):  # nothing was dialled: no call record
        await read_only_call(tmp_path)
