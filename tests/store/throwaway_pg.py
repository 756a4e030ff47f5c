"""A PostgreSQL server of the test's own, on a free port, that the test may stop and restart.

The machine's shared server (127.0.0.1:5432) is used by other tests and must never be stopped,
so outage tests start a throwaway cluster: ``initdb`` into a temporary directory and ``pg_ctl``
start/stop, as the ``postgres`` user when running as root (PostgreSQL refuses to run as root).

:func:`throwaway_postgres` skips the test with the reason when that is impossible here (no
PostgreSQL binaries, not root and not postgres), and fails it under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.backends import IN_CI

__all__ = ["ThrowawayPostgres", "throwaway_postgres"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class ThrowawayPostgres:
    """One cluster in ``directory`` listening on 127.0.0.1:``port`` (trust authentication)."""

    def __init__(self, bindir: Path, directory: Path, port: int, user: str | None) -> None:
        self.bindir, self.directory, self.port, self._user = bindir, directory, port, user
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.directory / "data"), "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8")  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-o", options,
                  "-l", str(self.directory / "log.txt"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` drops every connection at once, as a crash does."""
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started :class:`ThrowawayPostgres`, stopped and deleted afterwards."""
    bindir = _binaries()
    user = None if os.geteuid() != 0 else "postgres"
    reason = None
    if bindir is None:
        reason = "no PostgreSQL server binaries under /usr/lib/postgresql"
    elif user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            reason = "running as root without a postgres user to run the server as"
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true and the database outage test must run, but {reason}")
        pytest.skip(f"throwaway PostgreSQL: {reason}")
    assert bindir is not None
    directory = Path(tempfile.mkdtemp(prefix="sb-pg-"))
    if user is not None:
        shutil.chown(directory, user)
    server = ThrowawayPostgres(bindir, directory, _free_port(), user)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
