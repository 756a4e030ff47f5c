"""OpenAI Realtime (GA dialect) emulator, independent of the client in ``switchboard.providers``.

``async with OpenAIRealtimeEmulator(script=[...]) as emu:`` then point ``OPENAI_BASE_URL`` at
``emu.base_url``; :func:`run` serves it for the CLI.
"""

from __future__ import annotations

from switchboard.emulators.openai_realtime.server import OpenAIRealtimeEmulator, run

__all__ = ["OpenAIRealtimeEmulator", "run"]
