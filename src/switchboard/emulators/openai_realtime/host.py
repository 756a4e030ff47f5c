"""What one emulated Realtime connection needs from the emulator that accepted it.

:class:`~.server.OpenAIRealtimeEmulator` satisfies :class:`EmulatorHost`; connections and the
response streamer depend on this protocol only, so the module graph stays a tree
(server → connection → responses → host), with no import back up to the server.
"""

from __future__ import annotations

from typing import Any, Protocol

from switchboard.emulators.common import Script
from switchboard.emulators.openai_realtime.core import IdMaker

__all__ = ["EmulatorHost"]


class EmulatorHost(Protocol):
    """The emulator's shared settings, records and hooks, as seen by one connection."""

    @property
    def ids(self) -> IdMaker:
        """Id source shared by every connection (ids stay unique across reconnects)."""
        ...

    @property
    def script(self) -> Script:
        """The scripted turns, consumed by whichever connection reaches them first."""
        ...

    @property
    def echo(self) -> bool:
        """Echo mode: appended audio comes straight back as output audio."""
        ...

    @property
    def realtime(self) -> bool:
        """Pace reply audio at playout speed."""
        ...

    @property
    def chunk_ms(self) -> int:
        """Duration of each ``response.output_audio.delta``."""
        ...

    @property
    def ms_per_char(self) -> float:
        """Length of the speech-like reply audio per character of text."""
        ...

    @property
    def vad_threshold(self) -> float:
        """RMS (0..1) above which caller audio counts as speech."""
        ...

    @property
    def record(self) -> bool:
        """Keep every event in :attr:`received` / :attr:`sent`."""
        ...

    @property
    def received(self) -> list[dict[str, Any]]:
        """Client events received, all connections, in order."""
        ...

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Server events sent."""
        ...

    @property
    def violations(self) -> list[dict[str, Any]]:
        """Errors sent for client events the real service would refuse."""
        ...

    @property
    def silent(self) -> bool:
        """Failure injection: connections send nothing more."""
        ...

    def response_finished(self) -> None:
        """Called after each ``response.done``."""
        ...
