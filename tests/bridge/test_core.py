"""Pure tests of the bridge core: pacing, marks, barge-in arithmetic, turns, control, timers."""

from __future__ import annotations

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
from switchboard.bridge.core import BridgeCore, BridgeOptions

FRAME = b"\xff" * 160


def frames(n: int) -> list[bytes]:
    return [FRAME] * n


def of(actions: list[Action], kind: type) -> list[Action]:
    return [a for a in actions if isinstance(a, kind)]


def test_pacing_keeps_lead_and_wakes_up_to_release_more() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=200, mark_interval_ms=1000, release_ms=20))
    core.start(0)
    out = core.agent_audio(frames(50), now=0)  # one second of audio
    assert len(of(out, SendToCaller)) == 10  # 200 ms lead
    wake = of(out, ScheduleWakeup)
    assert wake and isinstance(wake[-1], ScheduleWakeup) and wake[-1].at_ms == 1
    out = core.tick(100)  # 100 ms later: 5 more frames fit
    assert len(of(out, SendToCaller)) == 5
    assert core.queued_frames == 35


def test_marks_follow_interval_and_drain() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000, mark_interval_ms=200))
    core.start(0)
    out = core.agent_audio(frames(25), now=0)  # 500 ms
    marks = [a.name for a in of(out, SendMark) if isinstance(a, SendMark)]
    assert marks == ["1:200", "1:400"]
    out = core.response_done("completed", now=10)  # the end of the reply is marked
    assert [a.name for a in of(out, SendMark) if isinstance(a, SendMark)] == ["1:500"]


def test_barge_in_clears_truncates_with_acknowledged_ms_and_cuts_transcript() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000, mark_interval_ms=200))
    core.start(0)
    core.agent_text("one two three four five six seven eight nine ten", final=False, now=0)
    core.agent_audio(frames(50), now=0)  # 1000 ms, marks at 200..1000
    core.response_done("completed", now=10)
    core.mark_acked("1:200", now=200)
    core.mark_acked("1:400", now=400)
    out = core.caller_speech_started(now=450)
    assert of(out, ClearCallerBuffer)
    assert of(out, TruncateAssistant) == [TruncateAssistant(400)]
    transcripts = of(out, RecordTranscript)
    assert len(transcripts) == 1
    t = transcripts[0]
    assert isinstance(t, RecordTranscript)
    assert t.interrupted and t.role == "agent"
    assert t.text == "one two three four"  # 40 % of the text, cut at a word
    assert not core.agent_speaking(450)
    assert core.barge_ins == 1


def test_caller_speech_after_playout_is_not_a_barge_in() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    core.agent_text("hello there", final=True, now=0)
    core.agent_audio(frames(5), now=0)
    (mark,) = of(core.response_done("completed", now=5), SendMark)
    assert isinstance(mark, SendMark)
    out = core.mark_acked(mark.name, now=100)
    assert of(out, RecordTranscript) == [RecordTranscript("agent", "hello there", 100)]
    out = core.caller_speech_started(now=200)
    assert not of(out, ClearCallerBuffer)


def test_turn_latency_from_end_of_speech_to_first_frame() -> None:
    core = BridgeCore()
    core.start(0)
    core.caller_speech_started(1000)
    core.caller_speech_stopped(2000)
    out = core.agent_audio(frames(3), now=2350)
    assert of(out, RecordTurnLatency) == [RecordTurnLatency(1, 350)]
    out = core.agent_audio(frames(3), now=2400)
    assert not of(out, RecordTurnLatency)


def test_hangup_waits_for_goodbye_playout() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    out = core.function_call("c1", "end_call", {}, now=0)
    assert of(out, InvokeTool) == [InvokeTool("c1", "end_call", {})]
    out = core.request_hang_up("agent_ended", now=10)
    assert not of(out, HangUp)  # the goodbye has not even started
    core.agent_text("Goodbye!", final=True, now=20)
    core.agent_audio(frames(9), now=20)
    out = core.response_done("completed", now=30)
    (mark,) = of(out, SendMark)
    assert isinstance(mark, SendMark) and mark.name == "1:180"
    assert not of(out, HangUp)  # still playing
    out = core.mark_acked(mark.name, now=220)
    assert of(out, HangUp) == [HangUp("agent_ended")]
    assert of(out, RecordTranscript) == [RecordTranscript("agent", "Goodbye!", 220)]


def test_pending_control_falls_back_after_grace() -> None:
    core = BridgeCore(BridgeOptions(control_grace_ms=1000))
    core.start(0)
    out = core.request_transfer("+15550100", now=0)
    assert not of(out, TransferCall)
    assert of(out, ScheduleWakeup) == [ScheduleWakeup(1000)]
    assert of(core.tick(1000), TransferCall) == [TransferCall("+15550100")]


def test_silence_reprompts_then_hangs_up() -> None:
    core = BridgeCore(BridgeOptions(silence_timeout_ms=5000, silence_hangup_ms=9000))
    out = core.start(0)
    assert of(out, ScheduleWakeup) == [ScheduleWakeup(5000)]
    out = core.tick(5000)
    assert of(out, Say) == [Say("Are you still there?", "silence")]
    out = core.tick(9000)
    assert of(out, HangUp) == [HangUp("silence")]


def test_caller_speech_resets_silence() -> None:
    core = BridgeCore(BridgeOptions(silence_timeout_ms=5000))
    core.start(0)
    core.caller_speech_started(4000)
    assert not of(core.tick(5000), Say)
    assert of(core.tick(9000), Say)


def test_max_duration_says_goodbye_then_hangs_up() -> None:
    core = BridgeCore(BridgeOptions(max_call_ms=60_000, max_lead_ms=10_000))
    core.start(0)
    out = core.tick(60_000)
    assert next(a for a in out if isinstance(a, Say)).reason == "max_duration"
    core.agent_audio(frames(5), now=60_010)
    (mark,) = of(core.response_done("completed", 60_020), SendMark)
    assert isinstance(mark, SendMark)
    assert of(core.mark_acked(mark.name, 60_200), HangUp) == [HangUp("max_duration")]


def test_finish_records_unheard_part_as_interrupted() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000, mark_interval_ms=100))
    core.start(0)
    core.agent_text("alpha beta gamma delta", final=True, now=0)
    core.agent_audio(frames(10), now=0)  # 200 ms; marks at 100 and 200
    core.mark_acked("1:100", now=100)
    out = core.finish(now=150)
    (t,) = of(out, RecordTranscript)
    assert isinstance(t, RecordTranscript)
    assert t.interrupted and t.text == "alpha beta"


def test_tool_hangup_counts_only_the_reply_to_the_function_result() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    core.request_hang_up("agent_hangup", 10, goodbye="Bye now!", from_tool=True)
    # the response that carried the function call ends after the request: not the goodbye
    assert not of(core.response_done("completed", 12), HangUp)
    core.function_result_sent(15)
    core.agent_text("Goodbye!", final=True, now=20)
    core.agent_audio(frames(5), now=20)
    (mark,) = of(core.response_done("completed", 30), SendMark)
    assert isinstance(mark, SendMark)
    assert of(core.mark_acked(mark.name, 130), HangUp) == [HangUp("agent_hangup")]


def test_silent_reply_to_end_call_makes_the_bridge_say_the_goodbye() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    core.request_hang_up("agent_hangup", 10, goodbye="Bye now!", from_tool=True)
    core.function_result_sent(15)
    out = core.response_done("completed", 20)  # the model said nothing more
    assert of(out, Say) == [Say("Bye now!", "goodbye")]
    assert not of(out, HangUp)
    core.agent_text("Bye now!", final=True, now=30)
    core.agent_audio(frames(5), now=30)
    (mark,) = of(core.response_done("completed", 40), SendMark)
    assert isinstance(mark, SendMark)
    out = core.mark_acked(mark.name, 140)
    assert of(out, HangUp) == [HangUp("agent_hangup")]
    assert of(out, RecordTranscript) == [RecordTranscript("agent", "Bye now!", 140)]


# -- the caller's voice at our socket ------------------------------------------------------------
def speaking_core() -> BridgeCore:
    """A core with a second of agent audio on its way to the caller."""
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    core.agent_audio(frames(50), now=0)
    return core


def voice(core: BridgeCore, n: int, start: float) -> list[Action]:
    """``n`` voiced 20 ms caller frames from ``start``; the actions of the last."""
    out: list[Action] = []
    for i in range(n):
        out = core.caller_frame(True, start + 20 * i)
    return out


def test_a_run_of_caller_voice_over_agent_audio_barges_in() -> None:
    core = speaking_core()
    assert voice(core, 11, start=100) == []
    out = core.caller_frame(True, 320)  # the 12th voiced frame: 240 ms of speech
    assert of(out, ClearCallerBuffer) == [ClearCallerBuffer()]
    assert of(out, TruncateAssistant) == [TruncateAssistant(0)]
    assert core.barge_ins == 1
    core.agent_audio(frames(50), now=340)
    assert core.caller_frame(True, 340) == []  # the same run does not barge in twice


def test_a_pause_in_the_callers_voice_starts_the_run_again() -> None:
    core = speaking_core()
    voice(core, 11, start=100)
    assert core.caller_frame(False, 320) == []
    assert voice(core, 11, start=340) == []
    assert of(core.caller_frame(True, 560), ClearCallerBuffer)


def test_caller_voice_with_no_agent_audio_is_no_barge_in() -> None:
    core = BridgeCore()
    core.start(0)
    assert voice(core, 30, start=100) == []
    assert core.barge_ins == 0


def test_the_bridge_vad_stands_down_once_the_provider_reports_speech() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    core.provider_speech_started(10)  # this provider has VAD events of its own
    core.agent_audio(frames(50), now=100)
    assert voice(core, 30, start=200) == []
    assert core.barge_ins == 0
    assert of(core.provider_speech_started(900), ClearCallerBuffer)  # its word counts


def test_a_turn_is_timed_from_the_callers_last_voice_not_the_providers_event() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    voice(core, 11, start=1000)  # the last voiced frame arrives at 1200
    core.caller_frame(False, 1220)
    # the provider's VAD hangover: its end of speech comes 600 ms later
    out = core.provider_speech_stopped(1800)
    assert out == [RecordTimeline("caller.speech_stopped", 1220)]
    latency = of(core.provider_audio(frames(5), 2000), RecordTurnLatency)
    assert latency == [RecordTurnLatency(1, 780)]


def test_old_voice_does_not_time_a_turn() -> None:
    core = BridgeCore()
    core.start(0)
    voice(core, 5, start=1000)
    assert core.provider_speech_stopped(7000) == [RecordTimeline("caller.speech_stopped", 7000)]


def test_a_reply_after_voice_no_provider_event_answered_starts_the_turn() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    voice(core, 6, start=1000)  # last voiced frame at 1100; the provider reports nothing
    out = core.provider_audio(frames(5), 1500)
    assert out[0] == RecordTimeline("caller.speech_stopped", 1120)
    assert of(out, RecordTurnLatency) == [RecordTurnLatency(1, 380)]
    core.response_done("completed", 1510)
    core.mark_acked("1:100", 1600)
    # more audio without new caller voice is no new turn
    assert not of(core.provider_audio(frames(5), 3000), RecordTurnLatency)
    assert core.turn == 1


def test_no_turn_from_voice_the_provider_already_answered() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000))
    core.start(0)
    voice(core, 6, start=1000)
    core.provider_speech_stopped(1400)
    core.provider_audio(frames(5), 1500)
    core.response_done("completed", 1510)
    core.mark_acked("1:100", 1600)
    out = core.provider_audio(frames(5), 3000)
    assert not [a for a in out if isinstance(a, RecordTimeline) and "speech" in a.kind]


# -- what the carrier is told at the end ---------------------------------------------------------
def decided(core: BridgeCore) -> HangUp | TransferCall | None:
    return core.carrier_action


def test_the_decided_hang_up_or_transfer_is_kept_for_the_carrier() -> None:
    core = BridgeCore()
    core.start(0)
    assert decided(core) is None
    core.request_hang_up("api_hangup", 10, after_reply=False)
    assert decided(core) == HangUp("api_hangup")
    core = BridgeCore()
    core.start(0)
    out = core.request_transfer("+15550100201", 10)
    assert not of(out, TransferCall) and decided(core) is None  # waits for the goodbye
    assert of(core.tick(10_010), TransferCall) == [TransferCall("+15550100201")]
    assert decided(core) == TransferCall("+15550100201")


def test_a_cut_hang_up_does_not_wait_for_the_agent_to_finish_speaking() -> None:
    """An operator's or the API's hang-up ends the call now; ``after_reply=False`` alone
    (a voicemail message being played) lets the audio already playing finish."""
    for cut, expected in ((True, [HangUp("api_hangup")]), (False, [])):
        core = BridgeCore()
        core.start(0)
        core.provider_audio(frames(100), 0)  # two seconds of agent speech, playing
        out = core.request_hang_up("api_hangup", 100, after_reply=False, cut=cut)
        assert of(out, HangUp) == expected


def test_a_lost_provider_hangs_up_unless_the_core_decided_already() -> None:
    core = BridgeCore()
    core.start(0)
    assert core.provider_lost(failed=True, now=5) == [HangUp("provider_failed")]
    assert decided(core) == HangUp("provider_failed")
    core = BridgeCore()
    core.start(0)
    core.request_transfer("+15550100201", 10)
    core.tick(10_010)
    assert core.provider_lost(failed=False, now=10_020) == [HangUp("provider_closed")]
    assert decided(core) == TransferCall("+15550100201")  # the transfer still happens


def test_a_replaced_stream_counts_its_outstanding_marks_as_played() -> None:
    core = BridgeCore(BridgeOptions(max_lead_ms=10_000, mark_interval_ms=200))
    core.start(0)
    core.agent_text("thank you", final=True, now=0)
    core.agent_audio(frames(25), now=0)  # 500 ms, marks 1:200, 1:400, then 1:500
    core.response_done("completed", now=10)
    core.mark_acked("1:200", now=200)
    assert core.agent_speaking(10_000)  # the old stream will never echo 1:400 and 1:500
    out = core.stream_replaced(now=10_000)
    assert not core.agent_speaking(10_000)
    said = [a for a in of(out, RecordTranscript) if isinstance(a, RecordTranscript)]
    assert [(t.text, t.interrupted) for t in said] == [("thank you", False)]
    assert core.stream_replaced(now=10_001) == []  # nothing left to count
