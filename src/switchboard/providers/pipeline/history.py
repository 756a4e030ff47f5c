"""The conversation history of a segmented pipeline, bounded by turns and by (estimated) tokens.

The system prompt is not stored here: it is passed first, separately, to every LLM request. The
history is a list of :class:`ChatMessage`; trimming removes whole *turns* from the oldest end — a
turn starts at a ``user`` message or an agent-initiated ``assistant`` message (greeting) — so a
tool call is never separated from its result. The newest turn is always kept, however long.

Tokens are estimated as ``ceil(chars / 4)`` per message (plus the function names/arguments of tool
calls): the budget is a guard against unbounded growth, not an exact bill.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

from switchboard.providers.pipeline.components import ChatMessage

__all__ = ["ConversationHistory", "estimate_tokens"]


def estimate_tokens(message: ChatMessage) -> int:
    """Rough token count of one message (4 characters a token, at least 1)."""
    chars = len(message.content)
    for call in message.tool_calls:
        chars += len(call.name) + len(json.dumps(call.arguments))
    return max(1, math.ceil(chars / 4))


class ConversationHistory:
    """Messages of one call, trimmed to at most ``max_turns`` turns and ``max_tokens`` tokens."""

    def __init__(self, *, max_turns: int = 20, max_tokens: int = 6000) -> None:
        if max_turns < 1 or max_tokens < 1:
            raise ValueError("max_turns and max_tokens must be positive")
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self._messages: list[ChatMessage] = []

    @property
    def messages(self) -> list[ChatMessage]:
        """A copy of the current messages, oldest first."""
        return list(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def append(self, message: ChatMessage) -> None:
        """Add ``message`` at the end, then trim the oldest turns if over budget."""
        self._messages.append(message)
        self._trim()

    def replace_content(self, message: ChatMessage, content: str) -> ChatMessage | None:
        """Rewrite the text of ``message`` (found by identity; barge-in truncation).

        Returns the new message object, or None when ``message`` is no longer in the history or
        was dropped because it became empty (an assistant message with no text and no calls).
        """
        for i, existing in enumerate(self._messages):
            if existing is message:
                if content or message.tool_calls:
                    self._messages[i] = replace(message, content=content)
                    return self._messages[i]
                del self._messages[i]
                return None
        return None

    def _turn_starts(self) -> list[int]:
        starts = [
            i
            for i, m in enumerate(self._messages)
            if m.role == "user" or (m.role == "assistant" and (i == 0 or self._starts_turn(i)))
        ]
        return starts or [0]

    def _starts_turn(self, i: int) -> bool:
        prev = self._messages[i - 1]
        # An assistant message after a finished assistant message (no pending tool calls) is a
        # new agent-initiated turn (``say``); after a user or tool message it continues the turn.
        return prev.role == "assistant" and not prev.tool_calls

    def _trim(self) -> None:
        while True:
            starts = self._turn_starts()
            too_many_turns = len(starts) > self.max_turns
            too_many_tokens = sum(map(estimate_tokens, self._messages)) > self.max_tokens
            if not (too_many_turns or too_many_tokens) or len(starts) < 2:
                return
            del self._messages[: starts[1]]
