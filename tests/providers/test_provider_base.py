"""What every provider shares: ``say`` is part of the contract, unsupported unless overridden."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.errors import ProviderError, UnsupportedOperation
from switchboard.media import AudioChunk
from switchboard.providers.base import BaseProvider


class Silent(BaseProvider):
    """A provider that can do everything but speak arbitrary text (the base class's ``say``)."""

    async def _do_connect(self) -> None:
        return None

    async def _do_send_audio(self, chunk: AudioChunk) -> None:
        return None

    async def _do_function_result(self, call_id: str, result: Any) -> None:
        return None

    async def _do_interrupt(self, played_ms: int | None) -> None:
        return None

    async def _do_disconnect(self) -> None:
        return None


@pytest.mark.anyio
async def test_say_is_unsupported_unless_a_provider_overrides_it() -> None:
    with pytest.raises(UnsupportedOperation, match="Silent cannot speak arbitrary text") as info:
        await Silent().say("Are you still there?")
    assert isinstance(info.value, ProviderError)
    assert info.value.code == "unsupported" and not info.value.fatal  # the call goes on


def test_the_providers_that_speak_override_it() -> None:
    from switchboard.providers.gemini_live import GeminiLiveProvider
    from switchboard.providers.openai_realtime import OpenAIRealtimeProvider
    from switchboard.providers.pipeline.engine import PipelineProvider

    for speaker in (OpenAIRealtimeProvider, GeminiLiveProvider, PipelineProvider):
        assert speaker.say is not BaseProvider.say, speaker.__name__
