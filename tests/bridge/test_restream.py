"""The stream splice of ``bridge/restream.py`` (Twilio's digits move a call to a new stream):
in memory, with a recording fake for the carrier's control. The whole path over sockets is
``tests/e2e/test_voicemail.py::test_the_agent_presses_keys_on_a_twilio_ivr_and_the_call_goes_on``.
"""

from __future__ import annotations

import asyncio

import pytest

from switchboard.bridge.restream import NextStream, SplicingControl, StreamSplice
from switchboard.errors import TelephonyError
from switchboard.media import AudioFormat, AudioSpec
from switchboard.telephony.base import StreamStarted
from switchboard.telephony.twilio.media import TwilioMediaCodec

pytestmark = pytest.mark.anyio


class Socket:
    async def receive_text(self) -> str:
        raise AssertionError("not read here")

    async def send_text(self, data: str) -> None:
        pass

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


class Control:
    """Records what was asked of the carrier; ``refuse`` makes ``send_dtmf`` fail."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.sent: list[str] = []
        self.refuse = refuse

    async def hang_up(self) -> None:
        self.sent.append("hangup")

    async def transfer(self, destination: str) -> None:
        self.sent.append(f"transfer {destination}")

    async def send_dtmf(self, digits: str) -> None:
        if self.refuse:
            raise TelephonyError("refused")
        self.sent.append(f"dtmf {digits}")


def stream() -> NextStream:
    started = StreamStarted("MZ2", "CA1", AudioSpec(AudioFormat.ULAW, 8000), {})
    return NextStream(TwilioMediaCodec(), Socket(), started)


async def quiet() -> None:
    pass


def expecting(splice: StreamSplice) -> bool:
    """Read afresh each time (mypy would keep a narrowed property)."""
    return splice.expecting


async def test_digits_return_once_the_next_stream_is_taken() -> None:
    splice = StreamSplice(wait_s=5.0)
    control = SplicingControl(Control(), splice, quiet=quiet)
    sending = asyncio.ensure_future(control.send_dtmf("12"))
    await asyncio.sleep(0)
    assert expecting(splice)  # said before the redirect: the voice webhook will know the call
    assert not sending.done()
    new = stream()
    taking = asyncio.ensure_future(splice.next_stream())
    assert splice.offer(new)
    assert await taking is new and splice.current is new and splice.moves == 1
    assert not expecting(splice) and not splice.offer(stream())  # one stream per redirect
    splice.attached()
    await asyncio.wait_for(sending, 1.0)
    splice.close()
    assert new.released.is_set()  # the media route holding the socket lets it go


async def test_a_refused_redirect_expects_no_stream() -> None:
    splice = StreamSplice(wait_s=5.0)
    control = SplicingControl(Control(refuse=True), splice, quiet=quiet)
    with pytest.raises(TelephonyError):
        await control.send_dtmf("1")
    assert not splice.expecting and await splice.next_stream() is None


async def test_no_stream_in_time_ends_the_wait() -> None:
    splice = StreamSplice(wait_s=0.05)
    splice.expect()
    assert await splice.next_stream() is None
    assert not splice.expecting


async def test_a_stream_offered_before_the_old_one_is_read_to_its_stop_is_still_taken() -> None:
    """The new socket's ``start`` can be handed over before the session has read the old
    stream's ``stop``: the call is still between streams, and takes it."""
    splice = StreamSplice(wait_s=5.0)
    splice.expect()
    new = stream()
    assert splice.offer(new)
    assert not expecting(splice) and splice.moving  # the webhook is done; the session is not
    assert await splice.next_stream() is new and not splice.moving


async def test_a_stream_offered_to_a_call_that_ends_is_let_go() -> None:
    splice = StreamSplice(wait_s=5.0)
    splice.expect()
    new = stream()
    assert splice.offer(new)
    splice.close()  # the call ended before it took the stream
    assert new.released.is_set() and not splice.moving
