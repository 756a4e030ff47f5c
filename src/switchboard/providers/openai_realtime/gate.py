"""When switchboard, not the server's VAD, asks OpenAI Realtime for a reply (pure).

With turn-taking (an agent's ``turn_taking``, ``bridge/turn_taking.py``) the session is
configured with ``turn_detection.create_response`` and ``interrupt_response`` false: the
server VAD still reports and commits the caller's speech, but a backchannel said over the
agent ("mm-hmm") must neither cut the reply nor be answered, and noise that the bridge took for
an interruption must not be answered either (the bridge resumes the cut reply instead).

Theory of operation: the session tells the gate whether each caller utterance began while
agent audio was playing (``speech_started``); the protocol feeds it commits and transcripts.

* Speech that did not overlap the agent is answered on commit, as the server would.
* Speech over the agent waits for its transcript: it is answered when it holds a word that
  is not a backchannel, or any word once the bridge interrupted the agent for it (it may
  then play after the agent's reply, which the bridge did not cut); a backchannel or noise
  stays in the conversation unanswered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.providers.backchannels import BACKCHANNELS, content_words

__all__ = ["ResponseGate"]


@dataclass(slots=True)
class ResponseGate:
    """Which committed caller items get a ``response.create`` (see the module docstring)."""

    backchannels: frozenset[str] = BACKCHANNELS["en"]
    _overlapped: set[str] = field(default_factory=set)
    _waiting: set[str] = field(default_factory=set)
    _interrupted: set[str] = field(default_factory=set)

    def speech_started(self, item_id: str, *, overlapped: bool) -> None:
        """The caller began ``item_id`` (``overlapped``: agent audio was playing)."""
        if overlapped:
            self._overlapped.add(item_id)

    def interrupted(self) -> None:
        """The bridge cut the agent: the open overlapped speech is an interruption."""
        self._interrupted |= self._overlapped

    def committed(self, item_id: str) -> bool:
        """The server committed ``item_id``: True to answer it now."""
        if item_id not in self._overlapped:
            return True
        self._waiting.add(item_id)
        return False

    def transcript(self, item_id: str, text: str) -> bool:
        """``item_id``'s final transcript: True to answer it now."""
        if item_id not in self._waiting:
            return False
        self._waiting.discard(item_id)
        self._overlapped.discard(item_id)
        interrupted = item_id in self._interrupted
        self._interrupted.discard(item_id)
        words = content_words(text, self.backchannels)
        return (interrupted and bool(text.strip())) or words > 0
