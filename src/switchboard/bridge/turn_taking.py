"""Backchannel-aware barge-in and false-interruption recovery, as pure code (times in ms).

Theory of operation
-------------------
Caller speech over agent audio is not always an interruption: "mm-hmm", "yeah", a cough.
:class:`BargeInJudge` decides when it is. The bridge core feeds it every caller frame (voiced
or not, from the bridge's own detector), the provider's speech events, and the caller's
transcripts (interim and final), and asks it what to do:

* **Interrupt** (``Verdict.INTERRUPT``) while the agent speaks, once the caller's current run
  of voice has lasted ``min_interrupt_ms``, or a transcript of the speech heard over the agent
  holds ``min_interrupt_words`` words that are not backchannels. A run of voice may hold
  pauses up to ``voice_gap_ms`` (between words). When the bridge's detector heard nothing
  (a quiet line), the provider's own speech start..stop stands for the run.
* Speech over the agent opens a *candidate*; its transcript counts only while the candidate
  is open, so the late transcript of the turn the agent is answering never interrupts that
  answer. A candidate closes on a final transcript that does not qualify, or
  ``false_interruption_ms`` after the speech ended.
* **Resume** (``Verdict.RESUME``): after an interruption, if no word at all is transcribed
  within ``false_interruption_ms`` of the end of the caller's voice, and the agent has not
  started another reply, the interruption was noise: the agent resumes the unplayed rest of
  its reply. The core keeps that audio (see ``bridge/core.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from switchboard.bridge.replies import cut_at_word
from switchboard.providers.backchannels import BACKCHANNELS, content_words, normal_words

__all__ = [
    "BACKCHANNELS",
    "BargeInJudge",
    "TurnTakingOptions",
    "Verdict",
    "content_words",
    "unheard_rest",
]


@dataclass(frozen=True, slots=True)
class TurnTakingOptions:
    """The turn-taking settings of one call (an agent's ``turn_taking`` in agents.yaml)."""

    min_interrupt_ms: float = 600.0
    min_interrupt_words: int = 2
    #: Extra backchannels, added to the language's (``BACKCHANNELS``).
    backchannels: frozenset[str] = frozenset()
    language: str = "en"
    #: An interruption with no word transcribed this long after the caller's voice was noise.
    false_interruption_ms: float = 1500.0
    #: Resume the rest of the reply after a false interruption (else stay silent).
    resume: bool = True
    #: A pause up to this long keeps a run of voice going (between words).
    voice_gap_ms: float = 300.0

    @property
    def phrases(self) -> frozenset[str]:
        base = BACKCHANNELS.get(self.language.split("-")[0].lower(), BACKCHANNELS["en"])
        extra = {normal_words(p) for p in self.backchannels}
        return base | extra if extra else base  # the shared set, not a copy per call


class Verdict(enum.Enum):
    NONE = "none"
    INTERRUPT = "interrupt"
    RESUME = "resume"


@dataclass(slots=True)
class _Candidate:
    start: float
    provider_speaking: bool = False
    heard_voice: bool = False
    ended_at: float | None = None


@dataclass(slots=True)
class BargeInJudge:
    """When caller speech interrupts the agent, and when an interruption was noise.

    Not thread-safe; one per call. ``speaking`` arguments say whether agent audio is playing.
    """

    options: TurnTakingOptions = field(default_factory=TurnTakingOptions)
    _run_start: float | None = None
    _last_voice: float | None = None
    _candidate: _Candidate | None = None
    _fired_at: float | None = None  # an interruption awaiting its first word
    _phrases: frozenset[str] = frozenset()
    reason: str = ""  # why the last interruption fired ("duration" / "words")

    def __post_init__(self) -> None:
        self._phrases = self.options.phrases

    # -- inputs ----------------------------------------------------------------------------------
    def frame(self, voiced: bool, now: float, *, speaking: bool) -> Verdict:
        """One 20 ms caller frame at our socket."""
        opts = self.options
        if voiced:
            if self._last_voice is None or now - self._last_voice > opts.voice_gap_ms:
                self._run_start = now
            self._last_voice = now
            if speaking and self._candidate is None:
                self._candidate = _Candidate(now if self._run_start is None else self._run_start)
            if self._candidate is not None:
                self._candidate.heard_voice = True
            start = now if self._run_start is None else self._run_start
            run = now + 20.0 - start
            if speaking and run >= opts.min_interrupt_ms:
                return self._fire(now, "duration")
        elif (
            self._candidate is not None
            and self._candidate.ended_at is None
            and self._last_voice is not None
            and now - self._last_voice > opts.voice_gap_ms
        ):
            self._candidate.ended_at = self._last_voice + 20.0
        return Verdict.NONE

    def speech_started(self, now: float, *, speaking: bool) -> Verdict:
        """The provider heard the caller start speaking."""
        if speaking and self._candidate is None:
            self._candidate = _Candidate(now)
        if self._candidate is not None:
            self._candidate.provider_speaking = True
            self._candidate.ended_at = None
        return Verdict.NONE

    def speech_stopped(self, now: float) -> None:
        """The provider heard the caller stop."""
        cand = self._candidate
        if cand is not None:
            cand.provider_speaking = False
            if cand.ended_at is None:
                last = self._last_voice
                cand.ended_at = last + 20.0 if cand.heard_voice and last is not None else now

    def transcript(self, text: str, *, final: bool, now: float, speaking: bool) -> Verdict:
        """Caller words (interim or final)."""
        if self._fired_at is not None and normal_words(text):
            self._fired_at = None  # words came: a real interruption, nothing to resume
        cand = self._candidate
        if cand is None:
            return Verdict.NONE
        if speaking and content_words(text, self._phrases) >= self.options.min_interrupt_words:
            return self._fire(now, "words")
        if final:
            self._candidate = None  # a backchannel: the agent talks on
        return Verdict.NONE

    def new_reply(self) -> None:
        """The agent started another reply: nothing to resume, and speech that began over the
        last one (its late transcript) does not interrupt this one, which may answer it."""
        self._fired_at = None
        self._candidate = None

    # -- timers ----------------------------------------------------------------------------------
    def due(self) -> float | None:
        """When :meth:`tick` has something to decide, if ever."""
        times: list[float] = []
        cand = self._candidate
        if cand is not None:
            if cand.provider_speaking and not cand.heard_voice:
                times.append(cand.start + self.options.min_interrupt_ms)
            if cand.ended_at is not None:
                times.append(cand.ended_at + self.options.false_interruption_ms)
        if self._fired_at is not None:
            times.append(self._resume_at())
        return min(times) if times else None

    def tick(self, now: float, *, speaking: bool) -> Verdict:
        opts = self.options
        cand = self._candidate
        if cand is not None:
            if (
                speaking
                and cand.provider_speaking
                and not cand.heard_voice
                and now - cand.start >= opts.min_interrupt_ms
            ):
                return self._fire(now, "duration")
            if cand.ended_at is not None and now >= cand.ended_at + opts.false_interruption_ms:
                self._candidate = None
        if self._fired_at is not None and now >= self._resume_at():
            self._fired_at = None
            if opts.resume:
                return Verdict.RESUME
        return Verdict.NONE

    # -- internals -------------------------------------------------------------------------------
    def _resume_at(self) -> float:
        assert self._fired_at is not None
        last = self._last_voice
        end = max(self._fired_at, last + 20.0 if last is not None else self._fired_at)
        return end + self.options.false_interruption_ms

    def _fire(self, now: float, reason: str) -> Verdict:
        self._candidate = None
        self._fired_at = now
        self.reason = reason
        return Verdict.INTERRUPT


def unheard_rest(
    text: str,
    acked_ms: int,
    sent_ms: int,
    sent: list[bytes],
    sent_from_ms: int,
    queued: list[bytes],
    frame_ms: int,
) -> tuple[list[bytes], str]:
    """What the caller did not hear of a cut reply: its frames after the acknowledged
    ``acked_ms`` (of the ``sent`` ones, the first of which starts ``sent_from_ms`` into the
    reply, then the ``queued``), and the text after the share of ``text`` that was heard (cut
    at a word, like the transcript of the heard share)."""
    heard = cut_at_word(text, acked_ms / sent_ms) if sent_ms else ""
    unheard = sent[max(0, acked_ms - sent_from_ms) // frame_ms :]
    return unheard + queued, text[len(heard) :].strip()
