"""OpenAI Realtime (GA WebSocket dialect) voice provider.

The registry loads ``switchboard.providers.openai_realtime:create_provider``.
"""

from __future__ import annotations

from typing import Any

from switchboard.config import Settings
from switchboard.providers.base import SessionConfig
from switchboard.providers.openai_realtime.protocol import RealtimeProtocol
from switchboard.providers.openai_realtime.session import OpenAIRealtimeProvider

__all__ = ["OpenAIRealtimeProvider", "RealtimeProtocol", "create_provider"]


def create_provider(
    config: SessionConfig | None, *, settings: Settings, **options: Any
) -> OpenAIRealtimeProvider:
    """Build an :class:`OpenAIRealtimeProvider` (``config`` may instead go to ``connect``);
    ``options`` are its keyword arguments (``max_reconnect_attempts``, ``renew_margin_s``...)."""
    return OpenAIRealtimeProvider(config, settings=settings, **options)
