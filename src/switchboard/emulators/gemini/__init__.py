"""Gemini emulator: Live ``BidiGenerateContent`` websocket + REST ``streamGenerateContent`` (SSE).

Independent of the clients (built from ``docs/wire/gemini.md`` — vendor pages
https://ai.google.dev/api/live and https://ai.google.dev/api/generate-content — never from their
codecs). See :class:`GeminiEmulator` and :func:`run`.
"""

from __future__ import annotations

from switchboard.emulators.gemini.live import Conversation, LiveConnection, LiveService
from switchboard.emulators.gemini.rest import RestCore, RestReply, google_error
from switchboard.emulators.gemini.server import GeminiEmulator, run
from switchboard.emulators.gemini.setup import SetupError, check_setup

__all__ = [
    "Conversation",
    "GeminiEmulator",
    "LiveConnection",
    "LiveService",
    "RestCore",
    "RestReply",
    "SetupError",
    "check_setup",
    "google_error",
    "run",
]
