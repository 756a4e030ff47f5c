"""The OpenAI Realtime emulator serves realtime models only, refusing others as the service does."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.conftest import UNIT
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.emulators.openai_realtime import OpenAIRealtimeEmulator

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": "Bearer sk-test"}


async def test_a_non_realtime_model_gets_invalid_model_and_close_4000() -> None:
    async with OpenAIRealtimeEmulator() as emu:
        url = emu.base_url.replace("http://", "ws://") + "/realtime?model=gpt-4o"
        async with connect(url, additional_headers=AUTH) as ws:
            async with asyncio.timeout(5 * UNIT):
                event = json.loads(await ws.recv())
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
        assert event["type"] == "error"
        assert event["error"]["type"] == "invalid_request_error"
        assert event["error"]["code"] == "invalid_model"
        assert event["error"]["message"] == 'Model "gpt-4o" is not supported in realtime mode.'
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4000
        assert closed.value.rcvd.reason == "invalid_request_error.invalid_model"
        assert emu.refused_models == ["gpt-4o"]
        assert emu.connection_count == 0

        seed = "gpt-4o-mini-realtime-preview-2024-12-17"
        url = emu.base_url.replace("http://", "ws://") + f"/realtime?model={seed}"
        async with connect(url, additional_headers=AUTH) as ws:
            async with asyncio.timeout(5 * UNIT):
                created = json.loads(await ws.recv())
        assert created["type"] == "session.created"
        assert created["session"]["model"] == seed
