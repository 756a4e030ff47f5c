"""Debian's Chromium, headless, driven by Playwright for Python (no browser download)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
#: Where the tests save a screenshot of each view: a temporary folder, so a test run leaves the
#: checkout as it was; ``SWITCHBOARD_SCREENSHOTS_DIR=docs/console`` refreshes the README's images.
SHOTS = Path(
    os.environ.get("SWITCHBOARD_SCREENSHOTS_DIR")
    or Path(tempfile.gettempdir()) / "switchboard-console-screenshots"
)


def need_chromium() -> None:
    """Skip without Chromium on a developer's machine; fail in CI (.ci/run installs it)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing (.ci/run installs it)")
        pytest.skip("Chromium is not installed: apt-get install chromium")


@asynccontextmanager
async def chromium(*, fake_audio: Path | None = None) -> AsyncIterator[Browser]:
    """Headless Chromium with a new empty profile (Playwright gives each plain launch a fresh
    temporary user-data-dir); ``fake_audio`` (a WAV) as its microphone."""
    need_chromium()
    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if fake_audio is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_audio}",
        ]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield browser
        finally:
            await browser.close()
