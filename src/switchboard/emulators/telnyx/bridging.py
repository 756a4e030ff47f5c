"""Telnyx Call Control commands that play to a leg or join two legs, as the emulator does them.

From developers.telnyx.com/api-reference/call-commands (``playback_start``, ``speak``,
``bridge``) and the Call Control webhooks:

* ``playback_start`` needs ``audio_url`` (or ``media_name``/``playback_content``); the
  emulator fetches the URL, keeps what the leg heard (PCM16 8 kHz, :attr:`Heard.played`),
  and sends ``call.playback.started`` then ``call.playback.ended`` (``status`` ``completed``)
  once the audio's length has passed on the call clock;
* ``speak`` needs ``payload`` and ``voice``: the text is kept (:attr:`Heard.spoken`), with
  ``call.speak.started`` / ``call.speak.ended``;
* ``bridge`` needs ``call_control_id`` of another live, answered call: both get
  ``call.bridged`` (each leg's own payload); from then on they talk, and when one hangs up
  the other is hung up too (the emulated person leaves after ``talk_s``).

Both play commands need an answered call (422 otherwise, as for any command on a call in
the wrong state; the error code is UNCONFIRMED).
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from switchboard.audio.resample import Resampler
from switchboard.emulators.telnyx.calls import EmulatedCall

__all__ = ["Heard", "bridge", "playback", "speak"]

Send = Callable[[EmulatedCall, str, dict[str, Any]], object]


@dataclass
class Heard:
    """What was played to one leg by commands (not its media stream)."""

    played: bytearray = field(default_factory=bytearray)  # PCM16 8 kHz
    spoken: list[str] = field(default_factory=list)
    bridged_with: str | None = None
    #: when (monotonic) the last playback or speech ended, and when the leg was bridged
    played_until: float | None = None
    bridged_at: float | None = None


def _pcm8k(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise wave.Error("only 16-bit mono WAV is played here")
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").tobytes()
    return Resampler(rate, 8000).process(pcm, last=True) if rate != 8000 else pcm


async def playback(call: EmulatedCall, heard: Heard, url: str, send: Send, *, speed: float) -> None:
    """Fetch ``url`` and play it to ``call`` (see the module docstring)."""
    send(call, "call.playback.started", call.payload(media_url=url, overlay=False))
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            resp = await client.get(url)
        resp.raise_for_status()
        pcm = _pcm8k(resp.content)
    except (httpx.HTTPError, wave.Error, EOFError) as exc:
        call.violations.append(f"playback_start: {url} could not be played: {exc}")
        send(call, "call.playback.ended", call.payload(media_url=url, status="file_not_found"))
        return
    heard.played += pcm
    await asyncio.sleep(len(pcm) / 2 / 8000 / speed)
    heard.played_until = time.monotonic()
    if call.is_alive:
        send(call, "call.playback.ended", call.payload(media_url=url, status="completed"))


async def speak(call: EmulatedCall, heard: Heard, text: str, send: Send, *, speed: float) -> None:
    """Say ``text`` to ``call`` (kept as text; ~65 ms a character on the call clock)."""
    heard.spoken.append(text)
    send(call, "call.speak.started", call.payload())
    await asyncio.sleep(len(text) * 0.065 / speed)
    heard.played_until = time.monotonic()
    if call.is_alive:
        send(call, "call.speak.ended", call.payload(status="completed"))


async def bridge(
    a: EmulatedCall,
    b: EmulatedCall,
    heard: Callable[[str], Heard],
    send: Send,
    end: Callable[[EmulatedCall, str, str, str], Awaitable[None]],
    *,
    talk_s: float,
    speed: float,
) -> None:
    """``a`` and ``b`` are bridged; the person on ``b`` talks ``talk_s`` and hangs up, and the
    caller on ``a`` with it."""
    heard(a.call_control_id).bridged_with = b.call_control_id
    heard(b.call_control_id).bridged_with = a.call_control_id
    heard(a.call_control_id).bridged_at = heard(b.call_control_id).bridged_at = time.monotonic()
    for leg in (a, b):
        send(leg, "call.bridged", leg.payload())
    await asyncio.sleep(talk_s / speed)
    await end(b, "normal_clearing", "callee", "bridged_call_ended")
    await end(a, "normal_clearing", "callee", "bridged_call_ended")
