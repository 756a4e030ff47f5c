"""Cutting streamed LLM text into sentences, so each can go to TTS as soon as it is complete.

Theory of operation: text deltas are appended to a buffer; after every delta the buffer is scanned
for a sentence end — ``.``, ``!``, ``?`` or ``…`` (possibly followed by closing quotes/brackets)
and then whitespace, or a newline. Everything up to that point is one sentence. Periods that do
not end sentences are skipped: common abbreviations (``Mr.``, ``e.g.``), single initials (``J.``)
and decimals (``3.5`` — no whitespace follows the dot). A sentence end needs the *following*
whitespace, so ``"It costs $3."`` is held until the next delta shows whether ``"5"`` follows.
Run-on text longer than ``max_chars`` is cut at the last comma/semicolon/colon (or space) so TTS
never waits for a very long sentence. :meth:`SentenceSplitter.flush` returns the remainder at the
end of the stream. With ``first_clause_chars``, a long *first* sentence is cut after its first
clause (a comma at least that far in): the caller hears the reply start as soon as that clause
is synthesised.
"""

from __future__ import annotations

import math
import re

__all__ = ["SentenceSplitter", "heard_text", "split_sentences"]

_END = re.compile(r"""([.!?…]+["')\]»”’]*)(\s+)|(\n+)""")
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "no",
        "approx",
        "dept",
        "inc",
        "ltd",
        "co",
        "mt",
        "ave",
        "a.m",
        "p.m",
        "u.s",
    }
)


def _is_abbreviation(text: str, dot_index: int) -> bool:
    """Whether the ``.`` at ``dot_index`` closes an abbreviation or an initial."""
    start = dot_index
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:dot_index].lstrip("(\"'“‘")
    if word.lower() in _ABBREVIATIONS:
        return True
    return len(word) == 1 and word.isupper()  # an initial: "J. R. R. Tolkien"


class SentenceSplitter:
    """Streaming sentence splitter (see the module docstring).

    Args:
        max_chars: cut run-on text at a clause boundary once the buffer is this long.
        min_chars: sentences shorter than this are joined to the next one ("Hi." "I'm Ann.")
            except at :meth:`flush`; 0 disables joining.
        first_clause_chars: cut a first sentence longer than twice this at its first comma
            at least this far in; 0: never.
    """

    def __init__(
        self, *, max_chars: int = 220, min_chars: int = 0, first_clause_chars: int = 0
    ) -> None:
        if max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        self.max_chars = max_chars
        self.min_chars = min_chars
        self.first_clause_chars = first_clause_chars
        self._first = True  # nothing returned yet
        self._buf = ""

    @property
    def pending(self) -> str:
        """Text received but not yet returned as a sentence."""
        return self._buf

    def push(self, delta: str) -> list[str]:
        """Add a text delta; return the sentences it completed (stripped, non-empty)."""
        self._buf += delta
        out: list[str] = []
        while True:
            cut = self._find_end()
            if cut is None:
                break
            sentence = self._buf[:cut].strip()
            self._buf = self._buf[cut:].lstrip()
            if sentence:
                out.append(sentence)
        while len(self._buf) >= self.max_chars:
            cut = self._clause_cut()
            out.append(self._buf[:cut].strip())
            self._buf = self._buf[cut:].lstrip()
        return self._first_clause(out)

    def _first_clause(self, out: list[str]) -> list[str]:
        if not out or not self._first:
            return out
        self._first = False
        n, first = self.first_clause_chars, out[0]
        comma = first.find(", ", n) if n else -1
        if n and len(first) > 2 * n and 0 < comma < len(first) - n:
            return [first[: comma + 1], first[comma + 2 :], *out[1:]]
        return out

    def flush(self) -> list[str]:
        """Return whatever is left as a last sentence (end of the LLM stream)."""
        rest = self._buf.strip()
        self._buf = ""
        return self._first_clause([rest] if rest else [])

    def _find_end(self) -> int | None:
        for match in _END.finditer(self._buf):
            if match.group(3) is not None:  # newline
                if match.start() == 0:
                    continue
                return match.end()
            dot = match.start(1)
            punct = match.group(1)
            if punct == "." and _is_abbreviation(self._buf, dot):
                continue
            if self.min_chars and len(self._buf[: match.end(1)].strip()) < self.min_chars:
                continue
            return match.end()
        return None

    def _clause_cut(self) -> int:
        window = self._buf[: self.max_chars]
        for sep in (";", ":", ",", " "):
            idx = window.rfind(sep)
            if idx > self.max_chars // 3:
                return idx + 1
        return self.max_chars


def split_sentences(text: str, *, max_chars: int = 220) -> list[str]:
    """Split a whole text into sentences (what streaming it in one delta would give)."""
    splitter = SentenceSplitter(max_chars=max_chars)
    return splitter.push(text) + splitter.flush()


def heard_text(sentences: list[tuple[str, float]], played_ms: float) -> str:
    """The part of a reply the caller heard, from ``(sentence, audio_ms)`` pairs in order.

    Sentences that finished before ``played_ms`` are kept whole; the one being played is cut to
    its first words in proportion to the fraction played (rounded up, so a started word counts).
    """
    kept: list[str] = []
    position = 0.0
    for text, ms in sentences:
        if ms <= 0:
            continue
        if position + ms <= played_ms:
            kept.append(text)
            position += ms
            continue
        fraction = max(0.0, (played_ms - position) / ms)
        words = text.split()
        n = math.ceil(len(words) * fraction)
        if n:
            kept.append(" ".join(words[:n]))
        break
    return " ".join(kept)
