"""The agent side's state in the turn manager: one response and its sentences (pure).

A :class:`Response` is one reply of the agent (an LLM stream, or a ``say``): the sentences cut
from its text as they went to TTS, with the audio each has produced so far, its function calls
and its token counts. :meth:`Response.keep_produced` is what a barge-in keeps of it for the
history (``turns.py``): the audio the caller may have heard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from switchboard.providers.pipeline.components import ChatMessage, LLMFunctionCall
from switchboard.providers.pipeline.sentences import SentenceSplitter

__all__ = ["DEFAULT_MS_PER_CHAR", "FIRST_CLAUSE_CHARS", "Response", "Sentence"]

#: Initial estimate of synthesized speech length per character (about 14 characters a second).
DEFAULT_MS_PER_CHAR = 70.0
#: A reply's first sentence longer than twice this is cut at its first comma this far in.
FIRST_CLAUSE_CHARS = 20


@dataclass(slots=True)
class Sentence:
    """One sentence sent to TTS, and the audio it has produced so far."""

    text: str
    audio_ms: float = 0.0
    done: bool = False


@dataclass(slots=True)
class Response:
    """One agent reply (see the module docstring)."""

    id: str
    item_id: str
    t0: float | None
    from_caller: bool
    # the reply's first clause goes to TTS alone: the caller hears the answer begin sooner
    splitter: SentenceSplitter = field(
        default_factory=lambda: SentenceSplitter(first_clause_chars=FIRST_CLAUSE_CHARS)
    )
    sentences: list[Sentence] = field(default_factory=list)
    calls: list[LLMFunctionCall] = field(default_factory=list)
    llm_done: bool = False
    status: Literal["completed", "cancelled", "failed"] = "completed"
    reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    ttfa_ms: float | None = None
    message: ChatMessage | None = None

    @property
    def spoken_text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    @property
    def audio_ms(self) -> float:
        return sum(s.audio_ms for s in self.sentences)

    def keep_produced(self, ms_per_char: float) -> None:
        """Keep only the audio that was produced (narrowed later by the bridge's
        ``interrupt(played_ms)``): whole sentences, and of the one cut off, its first words in
        proportion to its audio so far over its estimated full length (characters ×
        ``ms_per_char``, the call's measured TTS speech rate)."""
        self.sentences = [s for s in self.sentences if s.audio_ms > 0]
        for sentence in self.sentences:
            if not sentence.done:
                full_ms = max(sentence.audio_ms, len(sentence.text) * ms_per_char)
                words = sentence.text.split()
                sentence.text = " ".join(
                    words[: math.ceil(len(words) * sentence.audio_ms / full_ms)]
                )
                sentence.done = True
