"""The writer's overflow on disk: ops as JSON lines, kept until the database takes them.

When the database is unreachable the :class:`~switchboard.store.writer.BatchWriter` holds what
calls record in memory, up to its bound, and appends the rest here; when the process stops
during an outage everything still held is appended too. A later writer (this process once the
database is back, or the next process started with the same spool directory) reads the file
back in order and applies it.

Files: ``<dir>/spool-<database>-<pid>-<random>.jsonl``, one per writer, locked (``flock``) while
it is in use so that several workers can share a directory: a writer adopts only the files
nobody holds, and only those of its own database (``<database>`` is a digest of its URL and
schema), so a spool is never applied to another database that shares the directory.
What has been applied is remembered in ``<file>.done`` (a byte offset), written after
each committed batch; the file is deleted once drained. A crash between a commit and that write
applies one batch twice when the file is adopted (transcript lines twice; a duplicate create
fails alone and is logged).

Encoding (:func:`encode_op`, :func:`decode_op`): the ops are frozen dataclasses; so are
:class:`~switchboard.media.Usage` and :class:`~switchboard.cost.CostBreakdown`. Each dataclass
becomes ``{"$t": name, "f": {field: value}}``, a ``datetime`` ``{"$dt": iso}``, a ``date``
``{"$date": iso}``, a tuple ``{"$tuple": [...]}``, and a mapping with a key starting with
``$`` ``{"$map": [[key, value], ...]}`` (so data from a model can never pass for a tag).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, cast

from switchboard.cost import CostBreakdown, CostLine
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store import ops

__all__ = ["Spool", "decode_op", "encode_op"]

logger = logging.getLogger(__name__)


def _dataclasses() -> dict[str, type[Any]]:
    """Every dataclass an op can hold, by name: the ops themselves (new ones included)."""
    found: dict[str, type[Any]] = {c.__name__: c for c in (Usage, CostBreakdown, CostLine)}
    for name in ops.__all__:
        value = getattr(ops, name)
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            found[name] = value
    return found


_TYPES = _dataclasses()


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _TYPES.get(name) is not type(value):
            raise StoreError(f"cannot spool a {name}")
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$t": name, "f": fields}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in value):
            return {"$map": [[k, _encode(v)] for k, v in value.items()]}
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise StoreError(f"cannot spool a value of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$t" in value:
        cls = _TYPES[value["$t"]]
        return cls(**{k: _decode(v) for k, v in value["f"].items()})
    if "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if "$date" in value:
        return date.fromisoformat(value["$date"])
    if "$tuple" in value:
        return tuple(_decode(v) for v in value["$tuple"])
    if "$map" in value:
        return {k: _decode(v) for k, v in value["$map"]}
    return {k: _decode(v) for k, v in value.items()}


def encode_op(op: ops.Op) -> str:
    """One op as one line of JSON (no newline inside).

    Raises:
        StoreError: the op holds a value the spool cannot write back exactly.
    """
    return json.dumps(_encode(op), separators=(",", ":"), ensure_ascii=False)


def decode_op(line: str) -> ops.Op:
    """The op :func:`encode_op` wrote.

    Raises:
        StoreError: the line is not an encoded op.
    """
    try:
        op = _decode(json.loads(line))
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise StoreError(f"unreadable spooled op: {exc!r}") from exc
    if type(op).__name__ not in ops.__all__ or not dataclasses.is_dataclass(op):
        raise StoreError(f"spooled line is not an op: {type(op).__name__}")
    return cast("ops.Op", op)


class _File:
    """One spool file, locked by this process: appended to, read from its ``.done`` offset."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self.handle = handle  # holds the lock; opened for appending
        self.done = _read_done(path)  # bytes already applied

    def pending(self) -> bool:
        return self.path.stat().st_size > self.done

    def read(self, limit: int) -> tuple[list[bytes], int]:
        """Up to ``limit`` whole lines after the done offset, and the offset after them."""
        lines: list[bytes] = []
        offset = self.done
        with self.path.open("rb") as reader:
            reader.seek(offset)
            while len(lines) < limit:
                line = reader.readline()
                if not line.endswith(b"\n"):
                    break  # the end, or a line still being written
                offset += len(line)
                lines.append(line)
        return lines, offset

    def count(self) -> int:
        with self.path.open("rb") as reader:
            reader.seek(self.done)
            return sum(1 for line in reader if line.strip())

    def mark_done(self, offset: int) -> None:
        self.done = offset
        self.path.with_name(self.path.name + ".done").write_text(str(offset), encoding="ascii")

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.with_name(self.path.name + ".done").unlink()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.handle.close()  # releases the lock


def _read_done(path: Path) -> int:
    try:
        return int(path.with_name(path.name + ".done").read_text(encoding="ascii") or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _lock(path: Path) -> IO[str] | None:
    handle = path.open("a", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None  # another writer holds it
    return handle


class Spool:
    """The ops waiting on disk for one writer, oldest first (see the module docstring).

    Args:
        directory: where spool files live (created when first needed).
        database: names the database the ops belong to (a digest of its URL and schema);
            only files with the same name are adopted.
    """

    def __init__(self, directory: str | os.PathLike[str], *, database: str = "db") -> None:
        self.directory = Path(directory)
        self.database = database
        self._files: list[_File] = []  # adopted ones first, then ours
        self._own: _File | None = None
        self._adopted = False

    def adopt(self) -> int:
        """Take over spool files no other writer holds (a previous run's); returns how many
        ops they still hold. Called once, before the first read."""
        self._adopted = True
        if not self.directory.is_dir():
            return 0
        pending = 0
        mine = self.directory.glob(f"spool-{self.database}-*.jsonl")
        for path in sorted(mine, key=lambda p: p.stat().st_mtime):
            if any(f.path == path for f in self._files):
                continue
            handle = _lock(path)
            if handle is None:
                continue
            spooled = _File(path, handle)
            count = spooled.count()
            if count == 0:
                spooled.remove()
                continue
            logger.warning("adopting %d spooled call-record writes from %s", count, path.name)
            self._files.insert(len(self._files) - (self._own is not None), spooled)
            pending += count
        return pending

    @property
    def empty(self) -> bool:
        """Whether nothing waits on disk (adopted files included once :meth:`adopt` ran)."""
        return not self._files

    def append(self, batch: list[ops.Op]) -> None:
        """Append ``batch`` to this writer's own file, flushed to the OS before returning.

        Raises:
            OSError: the file cannot be written (the caller counts the ops as dropped).
        """
        if self._own is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"spool-{self.database}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            path = self.directory / name
            handle = _lock(path)
            if handle is None:  # pragma: no cover - a fresh random name is never held
                raise OSError(f"cannot lock {path}")
            self._own = _File(path, handle)
            self._files.append(self._own)
        text = "".join(encode_op(op) + "\n" for op in batch)
        self._own.handle.write(text)
        self._own.handle.flush()

    def read(self, limit: int) -> tuple[list[ops.Op], int]:
        """Up to ``limit`` of the oldest ops, and the count to pass to :meth:`consumed`.

        Unreadable lines (a file cut short by a crash) are skipped with an error log.
        """
        if not self._files:
            return [], 0
        spooled = self._files[0]
        lines, offset = spooled.read(limit)
        batch: list[ops.Op] = []
        for line in lines:
            try:
                batch.append(decode_op(line.decode("utf-8")))
            except (StoreError, UnicodeDecodeError) as exc:
                logger.error("skipping a spooled write in %s: %s", spooled.path.name, exc)
        return batch, offset

    def consumed(self, mark: int) -> None:
        """The ops :meth:`read` returned are committed: move past them (and drop a drained
        file)."""
        spooled = self._files[0]
        spooled.mark_done(mark)
        if not spooled.pending():
            self._files.pop(0)
            if spooled is self._own:
                self._own = None
            spooled.remove()

    def close(self) -> None:
        """Release the locks (files with ops left stay for the next writer to adopt)."""
        for spooled in self._files:
            spooled.handle.close()
        self._files, self._own = [], None
