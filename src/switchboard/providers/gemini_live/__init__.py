"""Gemini Live (``BidiGenerateContent``) speech-to-speech provider.

``protocol.py`` is the sans-I/O wire protocol, ``session.py`` the asyncio provider; the registry
finds :func:`create_provider` here (``ProviderType.GEMINI``).
"""

from __future__ import annotations

from typing import Any

from switchboard.config import Settings
from switchboard.providers.base import SessionConfig
from switchboard.providers.gemini_live.protocol import GeminiLiveProtocol, ProtocolState
from switchboard.providers.gemini_live.session import GeminiLiveProvider
from switchboard.providers.gemini_live.setup import LiveSetup

__all__ = [
    "GeminiLiveProtocol",
    "GeminiLiveProvider",
    "LiveSetup",
    "ProtocolState",
    "create_provider",
]


def create_provider(
    config: SessionConfig | None, *, settings: Settings, **options: Any
) -> GeminiLiveProvider:
    """Registry factory: an unconnected :class:`GeminiLiveProvider` (options go to its init;
    ``config`` may be ``None`` and given to ``connect`` instead)."""
    return GeminiLiveProvider(config, settings=settings, **options)
