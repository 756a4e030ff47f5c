"""``switchboard demo --keep``: the gateway stays up after the demo call and prints the
console's URL with the demo's token, which opens the call's record through the API."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from switchboard.demo import run_demo
from tests.conftest import UNIT
from tests.waiting import printed

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.local]


async def test_demo_keep_leaves_the_gateway_up_with_the_console_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = asyncio.Event()
    demo = asyncio.create_task(
        run_demo(
            out=tmp_path / "heard.wav",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
            keep=True,
            kept=stop,
        )
    )
    try:
        out = await printed(capsys, "/console/#token=", limit_s=150)
        match = re.search(r"(http://127\.0\.0\.1:\d+)/console/#(\S+)", out)
        assert match, out
        base, fragment = match[1], parse_qs(urlsplit(f"#{match[2]}").fragment)
        token, call_id = fragment["token"][0], fragment["call"][0]
        async with httpx.AsyncClient(base_url=base, timeout=10 * UNIT) as http:
            assert (await http.get("/console/")).status_code == 200
            auth = {"Authorization": f"Bearer {token}"}
            record = await http.get(f"/v1/calls/{call_id}", headers=auth)
            assert record.status_code == 200
            assert record.json()["transcript"], "the demo's conversation is there to explore"
        assert not demo.done(), "the gateway stays up"
    finally:
        stop.set()
    assert await asyncio.wait_for(demo, 30 * UNIT) == 0
