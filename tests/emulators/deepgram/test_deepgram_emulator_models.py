"""The Deepgram emulator's live socket refuses models Deepgram does not stream (Whisper)."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from switchboard.emulators.deepgram import DeepgramEmulator


@pytest.mark.anyio
async def test_the_emulator_refuses_whisper_on_the_live_socket() -> None:
    async with DeepgramEmulator(api_key="dg") as dg:
        url = dg.base_url.replace("http://", "ws://") + "/v1/listen?model=whisper-large"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"Authorization": "Token dg"}):
                pass
    assert refused.value.response.status_code == 400
    assert b"not available for live streaming" in refused.value.response.body
    assert dg.listen_queries == []
