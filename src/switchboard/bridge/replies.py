"""One agent reply as the bridge core tracks it, and the share of its text the caller heard.

Pure bookkeeping for :class:`~switchboard.bridge.core.BridgeCore`: how much of a reply was
released to the carrier (``sent_ms``), covered by a playout mark (``marked_ms``) and
acknowledged as played (``acked_ms``). When a reply is cut off, its transcript is cut to the
share the caller heard, at a word boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reply", "cut_at_word"]


@dataclass(slots=True)
class Reply:
    """An agent reply: its text so far and how much of its audio was sent, marked, played."""

    seq: int
    text: str = ""
    final_text: str | None = None
    sent_ms: int = 0
    marked_ms: int = 0
    acked_ms: int = 0
    done: bool = False
    recorded: bool = False
    first_frame_at: float | None = None

    @property
    def transcript(self) -> str:
        """The reply's text: the provider's final text when it gave one, else the deltas."""
        return self.final_text if self.final_text is not None else self.text

    def heard(self, *, interrupted: bool) -> str | None:
        """The transcript line to record for this reply, or None when there is nothing to say.

        An interrupted reply keeps only the share of its text the caller heard (acknowledged
        over sent audio); one cut off before any audio was sent, or before any word was
        heard, records nothing.
        """
        text = self.transcript
        if interrupted:
            text = cut_at_word(text, self.acked_ms / self.sent_ms) if self.sent_ms else ""
        return text if text or not interrupted else None


def cut_at_word(text: str, share: float) -> str:
    """The first ``share`` of ``text``, cut at a word boundary."""
    if share >= 1.0 or not text:
        return text
    if share <= 0.0:
        return ""
    cut = text[: int(len(text) * share)]
    if " " in cut and not text[len(cut) : len(cut) + 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip()
