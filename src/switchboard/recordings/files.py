"""Where recordings live: one file per call under ``SWITCHBOARD_RECORDINGS_DIR``.

Layout: ``<dir>/<N>d/<call id>.<format>`` for a recording kept ``N`` days, ``<dir>/keep/…``
for one kept until deleted by hand. The retention is fixed when the call is recorded (the
agent's ``retention_days`` then), so the sweeper needs nothing but the file system: a file is
expired once its last write (the call's end) is ``N`` days old. A recording being written is
``<call id>.<format>.part`` and is renamed when finished, so a file with the final name is
always complete and valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from switchboard.audio.stereo import CONTENT_TYPES, RecordingFormat

__all__ = [
    "KEEP_DIR",
    "PART_SUFFIX",
    "RecordingFile",
    "RecordingsDir",
    "retention_of",
]

KEEP_DIR = "keep"
PART_SUFFIX = ".part"
_CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RETENTION_DIR = re.compile(r"([0-9]{1,5})d")


def retention_of(directory: str) -> int | None:
    """The retention in days a sub-directory's name says (None: ``keep`` or not ours)."""
    match = _RETENTION_DIR.fullmatch(directory)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """A finished recording on disk."""

    call_id: str
    path: Path
    format: RecordingFormat

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


class RecordingsDir:
    """The recordings directory (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, call_id: str, fmt: RecordingFormat, retention_days: int | None) -> Path:
        """Where the finished recording of ``call_id`` goes (its directory is created).

        Raises:
            ValueError: a call id that is not a plain file name.
        """
        if not _CALL_ID.fullmatch(call_id):
            raise ValueError(f"not a recordable call id: {call_id!r}")
        sub = KEEP_DIR if retention_days is None else f"{retention_days}d"
        directory = self.root / sub
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{call_id}.{fmt}"

    def find(self, call_id: str) -> RecordingFile | None:
        """The finished recording of ``call_id``, if there is one."""
        if not _CALL_ID.fullmatch(call_id) or not self.root.is_dir():
            return None
        for sub in self.root.iterdir():
            if sub.name != KEEP_DIR and retention_of(sub.name) is None:
                continue
            for fmt in CONTENT_TYPES:
                path = sub / f"{call_id}.{fmt}"
                if path.is_file():
                    return RecordingFile(call_id, path, fmt)  # type: ignore[arg-type]
        return None
