"""Call recordings made by switchboard: one stereo file per call (docs/recordings.md).

Left is what the caller said, right what the caller heard — the agent's audio at its playout
time, cut where a barge-in cleared it. :class:`CallRecording` writes one call's file as the
call runs (``recording.py``, on the pure :class:`Tape`); :class:`RecordingsDir` says where files
go and finds them (``files.py``); :class:`RecordingSweeper` deletes them past their retention
(``sweeper.py``). :class:`Recordings` is the gateway's handle on all three.
"""

from __future__ import annotations

from switchboard.config import Settings
from switchboard.recordings.files import RecordingFile, RecordingsDir
from switchboard.recordings.recording import CallRecording, RecordingInfo
from switchboard.recordings.sweeper import RecordingSweeper
from switchboard.recordings.tape import HOLDBACK_MS, Tape
from switchboard.store import CallStore

__all__ = [
    "HOLDBACK_MS",
    "CallRecording",
    "RecordingFile",
    "RecordingInfo",
    "RecordingSweeper",
    "Recordings",
    "RecordingsDir",
    "Tape",
]


class Recordings:
    """The recordings directory and its sweeper (started with the app)."""

    def __init__(self, directory: RecordingsDir, sweeper: RecordingSweeper) -> None:
        self.directory = directory
        self.sweeper = sweeper

    @classmethod
    def build(cls, settings: Settings, store: CallStore | None) -> Recordings:
        directory = RecordingsDir(settings.recordings_dir)
        sweeper = RecordingSweeper(
            directory, store, interval_s=settings.recordings_sweep_interval_s
        )
        return cls(directory, sweeper)

    def start(self) -> None:
        """Start the sweeper (in the running loop)."""
        self.sweeper.start()

    async def aclose(self) -> None:
        await self.sweeper.aclose()
