"""The offline voice's apology/filler: one synthesis per (text, format), shared by the calls
that ask for it together (each call's failover watch asks at its start)."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.bridge import apology
from switchboard.media import AudioFormat, AudioSpec

pytest.importorskip("piper")

pytestmark = pytest.mark.anyio

ULAW = AudioSpec(AudioFormat.ULAW, 8000)


async def test_calls_asking_together_share_one_synthesis(monkeypatch: pytest.MonkeyPatch) -> None:
    from switchboard.providers.local import tts

    made: list[AudioSpec] = []
    real_init = tts.PiperTTS.__init__

    def counting_init(self: tts.PiperTTS, spec: AudioSpec, *args: object, **kw: object) -> None:
        made.append(spec)
        real_init(self, spec, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(tts.PiperTTS, "__init__", counting_init)
    text = "One moment, please, test forty two."
    spoken = await asyncio.gather(*(apology.apology_audio(text, ULAW) for _ in range(20)))
    assert made == [ULAW]
    assert spoken[0] and len(spoken[0]) > 1600  # over 0.2 s of μ-law
    assert all(s == spoken[0] for s in spoken)
    assert await apology.apology_audio(text, ULAW) == spoken[0]  # cached now
    assert made == [ULAW]
    assert not apology._pending


async def test_a_caller_that_ends_while_waiting_does_not_cancel_the_synthesis() -> None:
    text = "One moment, please, test forty three."
    first = asyncio.create_task(apology.apology_audio(text, ULAW))
    second = asyncio.create_task(apology.apology_audio(text, ULAW))
    await asyncio.sleep(0)
    first.cancel()  # that call hung up
    audio = await second
    assert audio and len(audio) > 1600
    with pytest.raises(asyncio.CancelledError):
        await first
