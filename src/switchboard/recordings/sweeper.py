"""Deleting recordings past their retention, a bounded amount of work at a time.

The sweeper walks the retention directories (``<dir>/<N>d/``, see ``recordings/files.py``) one
pass every ``interval_s``; a pass looks at no more than ``batch`` entries and resumes the next
pass where it stopped, so a directory of a million recordings never stalls the event loop for
long. A file whose last write (the call's end) is more than ``N`` days old is deleted and the
call's record loses its link (``recording_url``, ``recording``); a ``.part`` file left by a
process that died mid-call is deleted on the same terms, and never before it is a day old (a
live call's ``.part`` is written every second). ``keep/`` is never swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from switchboard.errors import StoreError
from switchboard.recordings.files import PART_SUFFIX, RecordingsDir, retention_of
from switchboard.store import CallStore, ops

__all__ = ["RecordingSweeper"]

logger = logging.getLogger(__name__)

_DAY_S = 86400.0


class RecordingSweeper:
    """Deletes expired recordings (see module doc).

    Args:
        directory: the recordings directory.
        store: the call records whose links are cleared (None: files only).
        interval_s: seconds between passes.
        batch: directory entries looked at per pass at most.
    """

    def __init__(
        self,
        directory: RecordingsDir,
        store: CallStore | None,
        *,
        interval_s: float = 600.0,
        batch: int = 500,
    ) -> None:
        self.directory = directory
        self.store = store
        self.interval_s = interval_s
        self.batch = batch
        self._walk: Iterator[tuple[Path, int]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.deleted = 0

    def _entries(self) -> Iterator[tuple[Path, int]]:
        """Every file under a retention directory, with its retention in days."""
        root = self.directory.root
        if not root.is_dir():
            return
        for sub in sorted(root.iterdir()):
            days = retention_of(sub.name)
            if days is None or not sub.is_dir():
                continue
            with contextlib.suppress(OSError), os.scandir(sub) as entries:
                for entry in entries:
                    yield Path(entry.path), days

    async def sweep(self, now: float | None = None) -> list[str]:
        """One pass: look at up to ``batch`` entries, delete the expired ones; returns the call
        ids whose recordings were deleted."""
        now = time.time() if now is None else now
        if self._walk is None:
            self._walk = self._entries()
        expired: list[tuple[Path, str]] = []
        for _ in range(self.batch):
            item = next(self._walk, None)
            if item is None:
                self._walk = None  # the next pass starts over
                break
            path, days = item
            try:
                age_s = now - path.stat().st_mtime
            except OSError:
                continue  # gone meanwhile
            # a .part is a live call's (written every second) unless a day old: a dead process's
            limit = max(days * _DAY_S, _DAY_S) if path.name.endswith(PART_SUFFIX) else days * _DAY_S
            if age_s >= limit:
                expired.append((path, path.name.split(".", 1)[0]))
        removed: list[str] = []
        for path, call_id in expired:
            try:
                path.unlink()
            except OSError as exc:
                logger.warning("cannot delete expired recording %s: %s", path.name, exc)
                continue
            self.deleted += 1
            removed.append(call_id)
            if not path.name.endswith(PART_SUFFIX):
                await self._unlink_record(call_id)
        if removed:
            logger.info("deleted %d expired recording(s)", len(removed))
        return removed

    async def _unlink_record(self, call_id: str) -> None:
        if self.store is None:
            return
        try:
            await self.store.write(
                [ops.MergeExtra(call_id, {"recording_url": None, "recording": None})]
            )
        except StoreError as exc:
            if "no call" not in str(exc):  # a recording whose record was deleted: nothing to do
                logger.warning("cannot clear the recording link of %s: %s", call_id, exc)

    # -- the task --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start sweeping every ``interval_s`` (in the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # a bad pass must not end the sweeping
                logger.warning("recording sweep failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        """Stop sweeping."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
