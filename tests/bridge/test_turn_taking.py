"""Backchannel-aware barge-in and false-interruption recovery: the judge alone, then in the core
(pure: no sockets, no clock)."""

from __future__ import annotations

from switchboard.bridge.actions import (
    Action,
    ClearCallerBuffer,
    RecordTimeline,
    RecordTranscript,
    SendToCaller,
    TruncateAssistant,
)
from switchboard.bridge.core import BridgeCore, BridgeOptions
from switchboard.bridge.turn_taking import (
    BargeInJudge,
    TurnTakingOptions,
    Verdict,
)
from switchboard.providers.backchannels import content_words

EN = TurnTakingOptions().phrases


def test_backchannels_are_not_content_words_in_any_spelling() -> None:
    assert content_words("Mm-hmm.", EN) == 0
    assert content_words("uh huh, yeah okay right", EN) == 0
    assert content_words("Yeah, but I need the billing team", EN) == 6
    assert content_words("wait", EN) == 1
    de = TurnTakingOptions(language="de-DE").phrases
    assert content_words("Ja, genau.", de) == 0
    extra = TurnTakingOptions(backchannels=frozenset({"Fair enough"})).phrases
    assert content_words("fair enough", extra) == 0


def voice(judge: BargeInJudge, start: float, ms: float, *, speaking: bool = True) -> list[Verdict]:
    out = []
    t = start
    while t < start + ms:
        out.append(judge.frame(True, t, speaking=speaking))
        t += 20
    return out


def test_a_short_run_of_voice_is_no_interruption_a_long_one_is() -> None:
    judge = BargeInJudge()
    assert Verdict.INTERRUPT not in voice(judge, 0, 500)  # a 500 ms backchannel
    for t in range(500, 1200, 20):
        judge.frame(False, t, speaking=True)
    verdicts = voice(judge, 2000, 1500)
    assert verdicts.index(Verdict.INTERRUPT) == 29  # the frame that completes 600 ms
    assert judge.reason == "duration"


def test_pauses_between_words_keep_one_run() -> None:
    judge = BargeInJudge()
    voice(judge, 0, 300)
    for t in (300, 320, 340):  # a 60 ms pause
        judge.frame(False, t, speaking=True)
    assert Verdict.INTERRUPT in voice(judge, 360, 300)


def test_words_that_are_not_backchannels_interrupt_before_the_duration() -> None:
    judge = BargeInJudge()
    voice(judge, 0, 200)
    assert judge.transcript("yeah", final=False, now=200, speaking=True) is Verdict.NONE
    assert judge.transcript("stop please", final=False, now=240, speaking=True) is (
        Verdict.INTERRUPT
    )
    assert judge.reason == "words"


def test_a_final_backchannel_closes_the_candidate() -> None:
    judge = BargeInJudge()
    judge.speech_started(0, speaking=True)
    assert judge.transcript("mm-hmm", final=True, now=900, speaking=True) is Verdict.NONE
    # the late transcript of the caller's earlier question does not interrupt its answer
    assert judge.transcript("what are your hours", final=True, now=950, speaking=True) is (
        Verdict.NONE
    )


def test_provider_speech_alone_times_the_run_when_the_bridge_hears_nothing() -> None:
    judge = BargeInJudge()
    judge.speech_started(1000, speaking=True)
    assert judge.due() == 1600
    assert judge.tick(1599, speaking=True) is Verdict.NONE
    assert judge.tick(1600, speaking=True) is Verdict.INTERRUPT


def test_an_interruption_without_words_is_noise_and_resumes() -> None:
    judge = BargeInJudge()
    verdicts = voice(judge, 0, 800)
    assert Verdict.INTERRUPT in verdicts
    assert judge.due() == 800 + 1500
    assert judge.tick(2299, speaking=False) is Verdict.NONE
    assert judge.tick(2300, speaking=False) is Verdict.RESUME
    assert judge.due() is None


def test_words_or_a_new_reply_after_an_interruption_mean_no_resume() -> None:
    for settle in ("words", "reply"):
        judge = BargeInJudge()
        voice(judge, 0, 800)
        if settle == "words":
            judge.transcript("I", final=False, now=1000, speaking=False)
        else:
            judge.new_reply()
        assert judge.tick(5000, speaking=False) is Verdict.NONE


FRAME = b"\x10" * 160


def of(actions: list[Action], kind: type) -> list[Action]:
    return [a for a in actions if isinstance(a, kind)]


def talking_core(reply_ms: int = 4000) -> BridgeCore:
    core = BridgeCore(
        BridgeOptions(turn_taking=TurnTakingOptions(), max_lead_ms=200, mark_interval_ms=200)
    )
    core.start(0)
    core.agent_audio([FRAME] * (reply_ms // 20), now=0)
    core.agent_text("One two three four five six seven eight nine ten.", final=True, now=0)
    core.response_done("completed", 0)
    return core


def caller(core: BridgeCore, start: int, ms: int, voiced: bool = True) -> list[Action]:
    out: list[Action] = []
    for t in range(start, start + ms, 20):
        out += core.tick(t)
        out += core.caller_frame(voiced, t)
    return out


def test_core_a_backchannel_plays_on_a_sentence_clears_within_the_threshold() -> None:
    core = talking_core()
    out = core.provider_speech_started(500)
    out += caller(core, 500, 400)
    out += core.caller_transcript("Mm-hmm.", final=True, now=1300)
    assert not of(out, ClearCallerBuffer) and not of(out, TruncateAssistant)
    out = caller(core, 2000, 1000)
    clears = [a for a in out if isinstance(a, ClearCallerBuffer)]
    assert len(clears) == 1 and core.barge_ins == 1
    timeline = [a for a in of(out, RecordTimeline) if isinstance(a, RecordTimeline)]
    (barge,) = [a for a in timeline if a.kind == "barge_in"]
    assert barge.at_ms == 2580 and barge.data["source"] == "turn_taking:duration"


def test_core_noise_resumes_the_unheard_rest_with_a_truthful_transcript() -> None:
    core = talking_core()
    for t in range(0, 1000, 20):  # one second played and acknowledged
        core.tick(t)
    for name in list(core._outstanding):
        if int(name.split(":")[1]) <= 1000:
            core.mark_acked(name, 1000)
    out = caller(core, 1000, 800)  # a noise burst; no transcript ever comes
    assert of(out, ClearCallerBuffer)
    cut = [a for a in of(out, RecordTranscript) if isinstance(a, RecordTranscript)]
    assert cut and cut[0].interrupted and cut[0].text.startswith("One two")
    out = caller(core, 1800, 1600, voiced=False)
    resumed = [a for a in of(out, RecordTimeline) if isinstance(a, RecordTimeline)]
    assert [a.kind for a in resumed if a.kind == "reply.resumed"] == ["reply.resumed"]
    assert of(out, SendToCaller)
    out = caller(core, 3400, 4000, voiced=False)
    for name in list(core._outstanding):
        out += core.mark_acked(name, 7400)
    said = [a for a in of(out, RecordTranscript) if isinstance(a, RecordTranscript)]
    assert said and not said[-1].interrupted
    full = "One two three four five six seven eight nine ten."
    assert f"{cut[0].text} {said[-1].text}" == full  # heard, then the rest: nothing twice


def test_core_the_cut_replys_own_late_text_does_not_cancel_the_resume() -> None:
    """The pipeline sends the final text of the response the bridge cut (before its
    ``response.done``): that is the cut reply's, not a new reply, so noise still resumes."""
    core = BridgeCore(
        BridgeOptions(turn_taking=TurnTakingOptions(), max_lead_ms=200, mark_interval_ms=200)
    )
    core.start(0)
    core.agent_audio([FRAME] * 200, now=0)  # still generating: no response.done yet
    for t in range(0, 1000, 20):
        core.tick(t)
    out = caller(core, 1000, 800)  # noise cuts it
    assert of(out, ClearCallerBuffer)
    core.agent_text("We are open nine to five.", final=True, now=1850)
    core.response_done("cancelled", 1860)
    out = caller(core, 1800, 1600, voiced=False)
    resumed = [a for a in of(out, RecordTimeline) if isinstance(a, RecordTimeline)]
    assert [a.kind for a in resumed if a.kind == "reply.resumed"] == ["reply.resumed"]


def test_core_keeps_only_the_unplayed_frames_of_a_long_reply() -> None:
    """A reply's frames are kept for a resume only until the carrier says they were played:
    a reply streamed for minutes (the soak's echo) must not hold every frame it sent."""
    core = talking_core(reply_ms=60_000)
    for t in range(0, 30_000, 20):  # half a minute played, each mark acknowledged on time
        core.tick(t)
        for name in list(core._outstanding):
            if int(name.split(":")[1]) <= t:
                core.mark_acked(name, t)
    assert len(core._sent_frames) <= (200 + 200) // 20  # the lead and one mark interval
    out = caller(core, 30_000, 800)  # a noise burst cuts the reply
    assert of(out, ClearCallerBuffer)
    assert core._resumable is not None
    frames, _ = core._resumable
    reply = core._reply
    assert reply is not None
    unheard_ms = 60_000 - reply.acked_ms  # what was sent unplayed, then what was still queued
    assert len(frames) * 20 == unheard_ms


def test_core_without_turn_taking_interrupts_at_once() -> None:
    core = BridgeCore(BridgeOptions())
    core.start(0)
    core.agent_audio([FRAME] * 100, now=0)
    assert of(core.provider_speech_started(100), ClearCallerBuffer)


def test_speech_over_one_reply_does_not_interrupt_the_next() -> None:
    judge = BargeInJudge()
    voice(judge, 0, 400)  # over the greeting, which then ends
    judge.new_reply()  # the answer to that speech starts
    assert judge.transcript(
        "What are your opening hours?", final=True, now=2000, speaking=True
    ) is (Verdict.NONE)
