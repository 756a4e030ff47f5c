"""Fuzz the provider protocols: any server frames give events or a protocol error.

The first byte picks the protocol; every frame goes to the same protocol object, so state built
by earlier frames (an open response, pending tool calls) meets the later ones. Only
RemoteProtocolError and ProviderError may escape: the sessions end the call on those.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["switchboard"]):
    from switchboard.errors import ProviderError, RemoteProtocolError
    from switchboard.providers.base import SessionConfig
    from switchboard.providers.deepgram.listen import ListenOptions, ListenProtocol
    from switchboard.providers.deepgram.speak import SpeakProtocol
    from switchboard.providers.gemini_live import GeminiLiveProtocol, LiveSetup
    from switchboard.providers.gemini_text.codec import StreamDecoder
    from switchboard.providers.openai_realtime.protocol import RealtimeProtocol

import contextlib

from fuzz.common import frames, run


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind, body = data[0] % 5, data[1:]
    feed: object
    if kind == 0:
        openai = RealtimeProtocol(SessionConfig(), model="gpt-realtime")
        openai.start()
        feed = openai.receive
    elif kind == 1:
        gemini = GeminiLiveProtocol(LiveSetup(model="gemini-live-2.5-flash-preview"))
        gemini.setup()
        feed = gemini.receive
    elif kind == 2:
        feed = ListenProtocol(ListenOptions(model="nova-3")).receive
    elif kind == 3:
        feed = SpeakProtocol.receive
    else:
        decoder = StreamDecoder()
        try:
            decoder.feed(body.decode("utf-8", "replace"))
            decoder.finish()
        except (RemoteProtocolError, ProviderError):
            pass
        return
    assert callable(feed)
    for frame in frames(body):
        with contextlib.suppress(RemoteProtocolError, ProviderError):
            feed(frame)


if __name__ == "__main__":
    run(test_one_input)
