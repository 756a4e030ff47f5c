"""Frames released together go to the carrier as one message where its codec allows it."""

from __future__ import annotations

from switchboard.bridge.actions import (
    Action,
    ClearCallerBuffer,
    SendMark,
    SendToCaller,
    join_frames,
)
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.telnyx.media import TelnyxMediaCodec
from switchboard.telephony.twilio.media import TwilioMediaCodec


def test_runs_of_frames_join_and_marks_keep_their_place() -> None:
    a, b, c, d = (bytes([i]) * 160 for i in range(4))
    actions: list[Action] = [
        SendToCaller(a),
        SendToCaller(b),
        SendMark("1:40"),
        SendToCaller(c),
        ClearCallerBuffer(),
        SendToCaller(d),
    ]
    assert join_frames(actions) == [
        SendToCaller(a + b),
        SendMark("1:40"),
        SendToCaller(c),
        ClearCallerBuffer(),
        SendToCaller(d),
    ]
    assert join_frames([]) == []


def test_codecs_say_whether_a_message_may_carry_several_frames_and_count_frames() -> None:
    twilio = TwilioMediaCodec()
    twilio.receive(
        '{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"streamSid":"MZ1",'
        '"callSid":"CA1","accountSid":"AC1","tracks":["inbound"],"customParameters":{},'
        '"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}'
    )
    assert twilio.joins_frames
    twilio.send_media(b"\xff" * 480)
    assert twilio.stats["frames_out"] == 3
    telnyx = TelnyxMediaCodec(outbound_spec=AudioSpec(AudioFormat.PCM16, 16000))
    assert telnyx.joins_frames
    telnyx.send_media(b"\x00" * 1280)  # 40 ms of L16 16 kHz
    assert telnyx.stats["frames_out"] == 2
