"""The call bridge's decisions, as pure synchronous code: events in, actions out.

Theory of operation
-------------------
The runner (``bridge/session.py``) feeds the core what happens — agent audio already converted
to 20 ms carrier frames, provider events, carrier marks, the clock — and carries out the actions
the core returns. The core never sees a socket, a task or a real clock; ``now`` (milliseconds on
any monotonic scale) is passed in, so every rule below is tested without an event loop.

Outbound pacing
    Frames are released on the reply's own timeline: frame ``k`` is due to play at
    ``start + k·frame_ms`` and goes out about ``max_lead_ms`` before that, so the carrier never
    buffers a whole reply. When the lead falls below ``max_lead_ms``, ``release_ms`` of frames
    go at once (two by default: half the wakeups, and one carrier message where the carrier
    allows), so the lead stays between ``max_lead_ms`` and ``max_lead_ms + release_ms``.
    ``sent_until`` estimates when the carrier will have played all that was sent (a carrier
    that ran dry resumes when audio arrives). A core that fell behind (a
    late wakeup, audio that came late) sends the frames already due at once and keeps the
    timeline: a carrier that ran dry plays the rest later, which no sender can undo without
    dropping audio, but the delay then sits in the carrier's cushion, which grows by the gap
    and absorbs the next stall, instead of as a standing backlog here that every stall of a
    real-time stream (an echo, speech streamed at playback speed) would add to. The timeline
    restarts with each reply, after a barge-in, and past ``max_catch_up_ms`` behind.
    The core asks for a single wakeup (``ScheduleWakeup``) when it must release more frames or
    a timer falls due, never a task per frame.

Playout marks
    Every ``mark_interval_ms`` of a reply and after its last frame, a mark named
    ``"<reply>:<ms>"`` follows the audio. The carrier echoes it when everything before it has
    played, so ``played_ms`` of the current reply is known from acknowledgements, not guessed.

Barge-in
    Caller speech (``caller_speech_started``) or the provider's own interruption while agent
    audio is queued or unacknowledged → ``ClearCallerBuffer`` at once, ``TruncateAssistant``
    with the acknowledged ``played_ms``, and the agent transcript of that reply cut to the share
    that was heard and marked ``interrupted``. A reply's transcript is recorded as said only once
    its last mark is acknowledged.

Turn latency
    From the caller's end of speech (``caller_speech_stopped``) to the first frame of the next
    reply released to the carrier: the latency the caller experiences at the carrier socket.

Control
    ``request_hang_up``/``request_transfer`` wait until the reply that follows the request (the
    goodbye) has been played (its last mark acknowledged), or a grace period passed, then
    emit ``HangUp``/``TransferCall``. Silence: after ``silence_timeout_ms`` without caller speech
    or agent audio, ``Say(reprompt)``; after ``silence_hangup_ms``, hang up. The call's maximum
    duration: ``Say(goodbye)`` and hang up after it. A lost provider hangs up too. The hang-up
    or transfer decided is kept (``carrier_action``): the runner tells the carrier at the end.

The caller's voice
    The runner tells the core whether each caller frame is voiced (``caller_frame``); the
    provider's speech events come as ``provider_speech_started``/``_stopped`` and its audio as
    ``provider_audio``. From these the core times turns from the caller's real end of speech
    and barges in for providers that report no caller speech (``bridge/voice.py``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from switchboard.bridge.actions import (
    Action,
    ClearCallerBuffer,
    HangUp,
    InvokeTool,
    RecordTimeline,
    RecordTranscript,
    RecordTurnLatency,
    Say,
    ScheduleWakeup,
    SendMark,
    SendToCaller,
    TransferCall,
    TruncateAssistant,
)
from switchboard.bridge.options import BridgeOptions
from switchboard.bridge.replies import Reply
from switchboard.bridge.turn_taking import BargeInJudge, Verdict, unheard_rest
from switchboard.bridge.voice import CallerVoice

__all__ = ["BridgeCore", "BridgeOptions"]


class BridgeCore:
    """Decisions for one call. Not thread-safe; one instance per call."""

    def __init__(self, options: BridgeOptions | None = None) -> None:
        self.options = options or BridgeOptions()
        self._queue: deque[bytes] = deque()
        self._sent_until = 0.0  # when the carrier will have played what was sent (estimate)
        self._paced_until = 0.0  # the due end of the last frame released (reply timeline)
        self._reply: Reply | None = None
        self._reply_seq = 0
        self._outstanding: dict[str, tuple[int, int]] = {}  # mark -> (reply seq, ms)
        self._turn = 0
        self._turn_started_at: float | None = None
        self._last_activity = 0.0
        self._reprompted = False
        self._started_at = 0.0
        self._pending: HangUp | TransferCall | None = None  # emitted once the goodbye played
        self._pending_deadline = 0.0
        self._reply_done_since_request = False
        self._goodbye: str | None = None
        self._awaiting_result = False
        self._audio_since_result = False
        self._wakeup_at: float | None = None
        self._carrier_action: HangUp | TransferCall | None = None
        self.voice = CallerVoice()
        #: Backchannel-aware barge-in (``bridge/turn_taking.py``); None: speech interrupts.
        self.turn_judge = (
            BargeInJudge(self.options.turn_taking) if self.options.turn_taking else None
        )
        # The current reply's released frames not yet acknowledged as played (to resume after a
        # false interruption), from the reply's ``_sent_from_ms``: trimmed at each mark, so a long
        # reply holds only the carrier's unplayed lead, not every frame since it began.
        self._sent_frames: list[bytes] = []
        self._sent_from_ms = 0
        self._resumable: tuple[list[bytes], str] | None = None  # cut audio and its text
        self._discarding = False  # the rest of an interrupted reply, until its response.done
        self.ended = False
        self.barge_ins = 0
        self.frames_sent = 0

    # -- state -----------------------------------------------------------------------------------
    def agent_speaking(self, now: float) -> bool:
        """Agent audio is queued here, or sent and not yet known to have played.

        Acknowledged marks are the truth; only audio sent after the last mark (the reply is
        still streaming) falls back on the real-time playout estimate.
        """
        if self._queue or self._outstanding:
            return True
        reply = self._reply
        unmarked = reply is not None and reply.sent_ms > reply.marked_ms
        return unmarked and self._sent_until > now

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    @property
    def turn(self) -> int:
        return self._turn

    def continue_turns(self, turns: int) -> None:
        """Count turns on from ``turns`` (a call resumed after that many on another node:
        its turn latencies go on numbering)."""
        self._turn = max(self._turn, turns)

    @property
    def turn_pending(self) -> bool:
        """The caller finished speaking and the agent's reply has not started yet."""
        return self._turn_started_at is not None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, now: float) -> list[Action]:
        self._started_at = self._last_activity = now
        out: list[Action] = [RecordTimeline("call.started", now)]
        self._schedule(out, now)
        return out

    def finish(self, now: float) -> list[Action]:
        """The call is over: record what the caller heard of an unfinished reply."""
        out: list[Action] = []
        self._record_reply(out, now, interrupted=True)
        self.ended = True
        return out

    # -- agent side ------------------------------------------------------------------------------
    def _current_reply(self, out: list[Action], now: float) -> Reply:
        """The reply being generated; a new one once the previous reply is done.

        A finished reply whose audio is still queued when the next begins is recorded as said
        now: its audio plays before the new reply's, ahead of any later barge-in.
        """
        reply = self._reply
        if reply is None or reply.done:
            if reply is not None and not reply.recorded:
                self._record_reply(out, now, interrupted=False)
            self._reply_seq += 1
            reply = self._reply = Reply(self._reply_seq)
            self._sent_frames, self._sent_from_ms = [], 0
            if self.turn_judge is not None:  # another reply: the cut one is not resumed
                self.turn_judge.new_reply()
                self._resumable = None
        return reply

    def agent_audio(self, frames: list[bytes], now: float) -> list[Action]:
        """Queue agent audio (whole carrier frames) and release what the lead allows."""
        out: list[Action] = []
        if self.ended or not frames or self._discarding:
            return out
        self._audio_since_result = True
        self._current_reply(out, now)
        self._queue.extend(frames)
        self._pump(out, now)
        self._schedule(out, now)
        return out

    def agent_text(self, text: str, *, final: bool, now: float) -> list[Action]:
        out: list[Action] = []
        if self._discarding:
            # the text of the reply just cut (the pipeline's final text of a cancelled
            # response): not another reply, which would drop the cut one's resumable rest
            return out
        reply = self._current_reply(out, now)
        if final:
            reply.final_text = text
        else:
            reply.text += text
        return out

    def response_done(self, status: str, now: float) -> list[Action]:
        """The provider finished generating a reply (its audio may still be playing)."""
        out: list[Action] = [RecordTimeline("response.done", now, {"status": status})]
        self._discarding = False
        if self._reply is not None and not self._reply.done:
            self._reply.done = True
            if not self._queue:
                self._mark(out, self._reply)  # the end of the reply (else marked at drain)
            if not self._queue and not self._outstanding:
                self._record_reply(out, now, interrupted=status != "completed")
        if self._pending is not None and not self._awaiting_result:
            if self._goodbye and not self._audio_since_result:
                # The reply to the function result had nothing to say: say the goodbye.
                out.append(Say(self._goodbye, "goodbye"))
                self._goodbye = None
            else:
                self._reply_done_since_request = True
        self._check_pending(out, now)
        self._schedule(out, now)
        return out

    def tick(self, now: float) -> list[Action]:
        """Pacing and timers; call when a ``ScheduleWakeup`` falls due."""
        self._wakeup_at = None
        out: list[Action] = []
        if self.ended:
            return out
        self._pump(out, now)
        if self.turn_judge is not None:
            self._verdict(out, self.turn_judge.tick(now, speaking=self._speaking(now)), now)
        self._timers(out, now)
        self._check_pending(out, now)
        self._schedule(out, now)
        return out

    # -- caller side -----------------------------------------------------------------------------
    def caller_speech_started(self, now: float) -> list[Action]:
        self._last_activity = now
        self._reprompted = False
        self._turn_started_at = None
        out: list[Action] = [RecordTimeline("caller.speech_started", now)]
        if self.turn_judge is not None:  # the judge decides (caller_frame, caller_transcript)
            self.turn_judge.speech_started(now, speaking=self._speaking(now))
            self._schedule(out, now)
        elif self.options.barge_in and self.agent_speaking(now):
            self._barge_in(out, now, source="caller_speech")
        return out

    def provider_interrupted(self, now: float) -> list[Action]:
        """The provider stopped its reply because it heard the caller (Gemini ``interrupted``)."""
        out: list[Action] = []
        if self.agent_speaking(now):
            self._barge_in(out, now, source="provider")
        return out

    def caller_speech_stopped(self, now: float) -> list[Action]:
        """The caller stopped speaking at ``now`` (the turn's latency is measured from it)."""
        self._last_activity = max(self._last_activity, now)
        self._turn_started_at = now
        return [RecordTimeline("caller.speech_stopped", now)]

    def caller_transcript(self, text: str, *, final: bool, now: float) -> list[Action]:
        out: list[Action] = []
        if self.turn_judge is not None and text.strip():
            verdict = self.turn_judge.transcript(
                text, final=final, now=now, speaking=self._speaking(now)
            )
            self._verdict(out, verdict, now)
        if not final or not text.strip():
            return out
        self._last_activity = now
        return [*out, RecordTranscript("caller", text.strip(), now)]

    def mark_acked(self, name: str, now: float) -> list[Action]:
        out: list[Action] = []
        where = self._outstanding.pop(name, None)
        if where is None:
            return out
        seq, ms = where
        reply = self._reply
        if reply is not None and reply.seq == seq:
            reply.acked_ms = max(reply.acked_ms, ms)
            played = (reply.acked_ms - self._sent_from_ms) // self.options.frame_ms
            if played > 0 and self._sent_frames:  # heard: never resumed
                del self._sent_frames[:played]
                self._sent_from_ms += played * self.options.frame_ms
            if reply.done and not self._queue and not self._outstanding:
                self._record_reply(out, now, interrupted=False)
        self._last_activity = max(self._last_activity, now)
        self._check_pending(out, now)
        self._schedule(out, now)
        return out

    def stream_replaced(self, now: float) -> list[Action]:
        """The carrier's media stream was replaced by a new one of the same call (Twilio's
        digits): the marks still outstanding on the old stream never come back, and count as
        played (that audio was played or cut with the old stream)."""
        out: list[Action] = []
        for name in list(self._outstanding):
            out += self.mark_acked(name, now)
        return out

    def function_call(
        self, call_id: str, name: str, arguments: dict[str, Any], now: float
    ) -> list[Action]:
        return [
            RecordTimeline("tool.call", now, {"name": name, "call_id": call_id}),
            InvokeTool(call_id, name, arguments),
        ]

    # -- control ---------------------------------------------------------------------------------
    def request_hang_up(
        self,
        reason: str,
        now: float,
        *,
        after_reply: bool = True,
        goodbye: str | None = None,
        from_tool: bool = False,
        grace_ms: float | None = None,
        cut: bool = False,
    ) -> list[Action]:
        """Hang up once the coming reply (a goodbye) has played, or at once.

        ``after_reply=False`` waits for no new reply but lets the audio already playing finish
        (a voicemail message); ``cut`` hangs up now, over the agent (an operator's or the API's
        hang-up, a drain's deadline: nobody waits for the end of a sentence).

        ``from_tool``: a tool asked; the reply that counts is the one to its function result
        (see :meth:`function_result_sent`). If that reply has no audio and ``goodbye`` is set,
        the core has the agent say ``goodbye`` and hangs up once it has played.
        ``grace_ms``: how long the reply may take (default ``control_grace_ms``).
        """
        out: list[Action] = [RecordTimeline("hangup.requested", now, {"reason": reason})]
        self._set_pending(HangUp(reason), now, after_reply, goodbye, from_tool)
        if grace_ms is not None:
            self._pending_deadline = now + grace_ms
        if cut:
            self._pending_deadline = now
        self._check_pending(out, now)
        self._schedule(out, now)
        return out

    def request_transfer(
        self, destination: str, now: float, *, from_tool: bool = False, after_reply: bool = True
    ) -> list[Action]:
        out: list[Action] = [
            RecordTimeline("transfer.requested", now, {"destination": destination})
        ]
        self._set_pending(TransferCall(destination), now, after_reply, None, from_tool)
        self._check_pending(out, now)
        self._schedule(out, now)
        return out

    def function_result_sent(self, now: float) -> list[Action]:
        """The tool that requested the pending hang-up/transfer has answered the model."""
        self._awaiting_result = False
        self._audio_since_result = False
        return []

    def _set_pending(
        self,
        pending: HangUp | TransferCall,
        now: float,
        after_reply: bool,
        goodbye: str | None = None,
        from_tool: bool = False,
    ) -> None:
        self._pending = pending
        self._pending_deadline = now + self.options.control_grace_ms
        self._reply_done_since_request = not after_reply
        self._goodbye = goodbye
        self._awaiting_result = from_tool
        self._audio_since_result = False

    def _check_pending(self, out: list[Action], now: float) -> None:
        if self._pending is None or self.ended:
            return
        played = self._reply_done_since_request and not self.agent_speaking(now)
        if not played and now < self._pending_deadline:
            return
        action, self._pending = self._pending, None
        self._record_reply(out, now, interrupted=self.agent_speaking(now))
        out.append(action)
        self._carrier_action = action
        self.ended = True

    @property
    def carrier_action(self) -> HangUp | TransferCall | None:
        """What the carrier must do once the call's loops have stopped, if anything: the
        hang-up or transfer the core decided, or the hang-up after the provider was lost."""
        return self._carrier_action

    def provider_lost(self, *, failed: bool, now: float) -> list[Action]:
        """The provider's session ended (``failed``: it failed or never connected): the call
        ends and the carrier hangs up, unless a hang-up or transfer was already decided."""
        hang_up = HangUp("provider_failed" if failed else "provider_closed")
        if self._carrier_action is None:
            self._carrier_action = hang_up
        return [hang_up]

    # -- an operator (``bridge/operator.py``) ------------------------------------------------------
    def operator_took_over(self, now: float) -> list[Action]:
        """An operator has the call: the agent's reply in progress stops as in a barge-in
        (cleared, truncated at what was heard, its transcript cut)."""
        out: list[Action] = []
        if self.agent_speaking(now):
            self._barge_in(out, now, source="operator")
        return out

    def keep_alive(self, now: float) -> None:
        """Someone is talking though not to the agent (an operator has the call): the silence
        timers start again from ``now``."""
        self._last_activity = max(self._last_activity, now)
        self._reprompted = False

    # -- the caller's voice at our socket (see ``CallerVoice``) ----------------------------------
    def caller_frame(self, voiced: bool, now: float) -> list[Action]:
        """A caller frame reached our socket (``voiced``: the bridge's voice detector heard
        speech in it). A run of voice over agent audio starts a barge-in while the provider
        has not shown that it reports caller speech itself. With turn-taking, the judge
        decides instead (how long the run of voice has lasted)."""
        if self.turn_judge is not None:
            self.voice.frame(voiced, now)
            out: list[Action] = []
            self._verdict(
                out, self.turn_judge.frame(voiced, now, speaking=self._speaking(now)), now
            )
            return out
        if self.voice.frame(voiced, now) and self.agent_speaking(now):
            return self.caller_speech_started(now)
        return []

    def provider_speech_started(self, now: float) -> list[Action]:
        """The provider heard the caller start speaking (from now on its word counts)."""
        self.voice.provider_reports_speech = True
        return self.caller_speech_started(now)

    def provider_speech_stopped(self, now: float) -> list[Action]:
        """The provider's end of speech: the turn is timed from the caller's last voice."""
        if self.turn_judge is not None:
            self.turn_judge.speech_stopped(now)
        return self.caller_speech_stopped(self.voice.speech_end(now))

    def provider_audio(self, frames: list[bytes], now: float) -> list[Action]:
        """Agent audio from the provider. A reply that follows caller voice no end of speech
        has answered (Gemini sends none without voice-activity messages) starts the turn at
        the caller's last voice."""
        out: list[Action] = []
        if not self.turn_pending and not self.agent_speaking(now):
            end = self.voice.unanswered_end(now)
            if end is not None:
                out += self.caller_speech_stopped(end)
        return out + self.agent_audio(frames, now)

    # -- internals -------------------------------------------------------------------------------
    def _speaking(self, now: float) -> bool:
        """Agent audio is playing that caller speech may interrupt."""
        return self.options.barge_in and self.agent_speaking(now)

    def _verdict(self, out: list[Action], verdict: Verdict, now: float) -> None:
        """Carry out the turn-taking judge's verdict."""
        if verdict is Verdict.INTERRUPT and self.agent_speaking(now):
            assert self.turn_judge is not None
            self._last_activity = now
            self._reprompted = False
            self._barge_in(out, now, source=f"turn_taking:{self.turn_judge.reason}")
        elif verdict is Verdict.RESUME and self._resumable is not None:
            self._resume(out, now)
        self._schedule(out, now)

    def _resume(self, out: list[Action], now: float) -> None:
        """A false interruption: play the rest of the cut reply as a reply of its own."""
        assert self._resumable is not None
        frames, text = self._resumable
        self._resumable = None
        if not frames:
            return
        self._reply_seq += 1
        reply = self._reply = Reply(self._reply_seq, text=text, done=True)
        self._sent_frames, self._sent_from_ms = [], 0
        self._turn_started_at = None  # the noise was no turn of the caller's
        self._queue.extend(frames)
        out.append(
            RecordTimeline(
                "reply.resumed",
                now,
                {"reply": reply.seq, "ms": len(frames) * self.options.frame_ms},
            )
        )
        self._pump(out, now)

    def _barge_in(self, out: list[Action], now: float, *, source: str) -> None:
        reply = self._reply
        played = reply.acked_ms if reply is not None else 0
        if self.turn_judge is not None:
            self._resumable = None
            if reply is not None:  # kept for a false interruption
                rest = (reply.transcript, reply.acked_ms, reply.sent_ms)
                sent = (self._sent_frames, self._sent_from_ms)
                self._resumable = unheard_rest(
                    *rest, *sent, list(self._queue), self.options.frame_ms
                )
            self._sent_frames, self._sent_from_ms = [], 0
            # The provider may send the rest of the reply before it stops (Gemini without
            # interruptions, OpenAI deltas in flight): dropped until its response.done.
            self._discarding = reply is not None and not reply.done
        self.barge_ins += 1
        self._queue.clear()
        self._outstanding.clear()
        self._sent_until = self._paced_until = now
        out.append(ClearCallerBuffer())
        out.append(TruncateAssistant(played))
        out.append(RecordTimeline("barge_in", now, {"played_ms": played, "source": source}))
        self._record_reply(out, now, interrupted=True)

    def _record_reply(self, out: list[Action], now: float, *, interrupted: bool) -> None:
        reply = self._reply
        if reply is None or reply.recorded:
            return
        reply.recorded = True
        reply.done = True
        text = reply.heard(interrupted=interrupted)
        if text is not None:
            out.append(RecordTranscript("agent", text, now, interrupted=interrupted))

    def _mark(self, out: list[Action], reply: Reply) -> None:
        if reply.sent_ms > reply.marked_ms:
            name = f"{reply.seq}:{reply.sent_ms}"
            reply.marked_ms = reply.sent_ms
            self._outstanding[name] = (reply.seq, reply.sent_ms)
            out.append(SendMark(name))

    def _pump(self, out: list[Action], now: float) -> None:
        queue = self._queue
        reply = self._reply
        if not queue or reply is None:
            return
        opts = self.options
        frame_ms = opts.frame_ms
        if self._sent_until < now:
            self._sent_until = now  # the carrier ran dry: what is sent now plays from now
        paced = self._paced_until
        if reply.sent_ms == 0:
            paced = max(paced, now)  # a reply's timeline starts no earlier than its first frame
        # Behind the timeline (a late wakeup, audio that came late), the frames already due go
        # at once and the timeline stays put: moving it to now would keep the lost time in
        # this queue for the rest of the reply (see "Outbound pacing").
        paced = max(paced, now - opts.max_catch_up_ms)
        # release_ms at a time: the lead goes back up to max_lead_ms + release_ms - frame_ms
        limit = now + opts.max_lead_ms + max(opts.release_ms - frame_ms, 0)
        interval = opts.mark_interval_ms
        while queue and paced < limit:
            frame = queue.popleft()
            out.append(SendToCaller(frame))
            if self.turn_judge is not None:
                self._sent_frames.append(frame)
            self.frames_sent += 1
            paced += frame_ms
            self._sent_until += frame_ms
            reply.sent_ms += frame_ms
            if reply.first_frame_at is None:
                reply.first_frame_at = now
                out.append(RecordTimeline("reply.first_audio", now, {"reply": reply.seq}))
                if self._turn_started_at is not None:
                    self._turn += 1
                    out.append(RecordTurnLatency(self._turn, now - self._turn_started_at))
                    self._turn_started_at = None
            if reply.sent_ms - reply.marked_ms >= interval:
                self._mark(out, reply)
        self._paced_until = paced
        if not queue and reply.done:
            self._mark(out, reply)
        self._last_activity = max(self._last_activity, now)

    def _timers(self, out: list[Action], now: float) -> None:
        opts = self.options
        if self._pending is not None:
            return
        if opts.max_call_ms is not None and now - self._started_at >= opts.max_call_ms:
            out.append(RecordTimeline("call.max_duration", now))
            out.append(Say(opts.goodbye_text, "max_duration"))
            self._set_pending(HangUp("max_duration"), now, True)
            return
        if self.agent_speaking(now):
            return
        idle = now - max(self._last_activity, self._sent_until)
        if opts.silence_hangup_ms is not None and idle >= opts.silence_hangup_ms:
            out.append(RecordTimeline("call.silence_hangup", now))
            self._set_pending(HangUp("silence"), now, False)
        elif (
            opts.silence_timeout_ms is not None
            and idle >= opts.silence_timeout_ms
            and not self._reprompted
        ):
            self._reprompted = True
            out.append(RecordTimeline("call.reprompt", now))
            out.append(Say(opts.reprompt_text, "silence"))

    def _schedule(self, out: list[Action], now: float) -> None:
        """Ask for one wakeup at the earliest time something is due."""
        due: list[float] = []
        opts = self.options
        if self._queue:
            due.append(self._paced_until - opts.max_lead_ms + 1)
        if self._pending is not None:
            due.append(self._pending_deadline)
        else:
            if opts.max_call_ms is not None:
                due.append(self._started_at + opts.max_call_ms)
            base = max(self._last_activity, self._sent_until)
            if opts.silence_timeout_ms is not None and not self._reprompted:
                due.append(base + opts.silence_timeout_ms)
            if opts.silence_hangup_ms is not None:
                due.append(base + opts.silence_hangup_ms)
        judged = self.turn_judge.due() if self.turn_judge is not None else None
        if judged is not None:
            due.append(judged)
        if not due:
            return
        at = max(min(due), now + 1)
        if self._wakeup_at is None or at < self._wakeup_at or self._wakeup_at <= now:
            self._wakeup_at = at
            out.append(ScheduleWakeup(at))
