"""The Gemini emulator's echo mode (load tests): caller audio back as 24 kHz model audio."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from tests.emulators.gemini.test_gemini_emulator import audio_msg, live, recv_json

from switchboard.emulators.gemini import GeminiEmulator


@pytest.mark.anyio
async def test_echo_returns_each_chunk_at_24k_continuous_across_chunks() -> None:
    t = np.arange(1600) / 16000.0
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")  # 100 ms at 16 kHz
    async with GeminiEmulator(echo=True, record=False) as emu, live(emu) as ws:
        assert "setupComplete" in await recv_json(ws)
        back = []
        for i in range(0, tone.size, 320):  # 20 ms chunks, as the bridge sends them
            await ws.send(audio_msg(tone[i : i + 320].tobytes()))
            msg = await recv_json(ws)  # one chunk back per chunk in, nothing else
            (part,) = msg["serverContent"]["modelTurn"]["parts"]
            assert part["inlineData"]["mimeType"] == "audio/pcm;rate=24000"
            back.append(base64.b64decode(part["inlineData"]["data"]))
        assert [len(b) for b in back] == [960] * 5  # 20 ms at 24 kHz each
        out = np.frombuffer(b"".join(back), dtype="<i2").astype(float)
        # the same tone at 24 kHz: output k sits at input position (k + 1)·2/3 − 1, 1/48 ms late
        expected = 8000 * np.sin(2 * np.pi * 440 * (np.arange(out.size) / 24000.0 - 1 / 48000))
        assert np.max(np.abs(out[3:] - expected[3:])) < 80  # linear interpolation's error
        assert len(emu.live.received) == 1 and emu.live.violations == []  # the setup only
        assert emu.live.audio_bytes == tone.size * 2
