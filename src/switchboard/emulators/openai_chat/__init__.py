"""OpenAI Chat Completions emulator (``POST /v1/chat/completions``, non-streaming, structured
outputs). Independent of the client: written from OpenAI's API reference, never from its codec.
"""

from __future__ import annotations

from switchboard.emulators.openai_chat.core import CHAT_MODELS, ChatCore, ChatReply, openai_error
from switchboard.emulators.openai_chat.server import OpenAIChatEmulator, run

__all__ = ["CHAT_MODELS", "ChatCore", "ChatReply", "OpenAIChatEmulator", "openai_error", "run"]
