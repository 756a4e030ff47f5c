"""Real processes for the multi-node tests: ``switchboard serve`` nodes, HAProxy, Redis databases.

* :func:`redis_database` leases a Redis database of its own to one test (a marker key set with
  ``NX`` in the first empty database from 15 down), so parallel runs never share a call directory;
  the nodes use the default key prefix in it. Its keys are deleted afterwards.
* :class:`ServeNode` is ``switchboard serve --workers N`` as a subprocess in its own session, so
  :meth:`ServeNode.kill` SIGKILLs the whole node (supervisor and workers) as a machine dying would.
* :class:`Balancer` is HAProxy in front of nodes (``deploy/haproxy.cfg``'s settings on loopback).

Without Redis or haproxy the tests are skipped with the reason — under ``CI=true`` they fail.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.cluster.nodes import IN_CI, REDIS_URL, free_port, require_redis
from tests.conftest import UNIT

__all__ = [
    "API_TOKEN",
    "Balancer",
    "ServeNode",
    "clean_env",
    "redis_database",
    "require_haproxy",
    "worker_pids",
]

API_TOKEN = "cluster-api-token-0123456789abcdefghij"
_LEASE_KEY = "switchboard-test:lease"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without switchboard, carrier or provider settings, plus
    ``extra`` (a node reads nothing the test did not choose)."""
    prefixes = ("SWITCHBOARD_", "TWILIO_", "TELNYX_", "OPENAI_", "GEMINI_", "DEEPGRAM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


@contextmanager
def redis_database(base_url: str = REDIS_URL) -> Iterator[str]:
    """A Redis URL on a database this test alone uses (leased with a marker key)."""
    require_redis()
    from redis import Redis

    parts = urlsplit(base_url)
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))
        client = Redis.from_url(url)
        try:
            if client.dbsize() == 0 and client.set(_LEASE_KEY, token, nx=True, ex=3600):
                break
        finally:
            client.close()
    else:
        pytest.fail("no free Redis database (1-15) to lease for this test")
    try:
        yield url
    finally:
        client = Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match="{switchboard}:*"))
            if keys:
                client.delete(*keys)
            if client.get(_LEASE_KEY) == token.encode():
                client.delete(_LEASE_KEY)
        finally:
            client.close()


def require_haproxy() -> str:
    """The haproxy binary; skips (fails under CI=true) when it is not installed."""
    binary = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true and the balancer tests must run, but haproxy is not installed")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return binary


def worker_pids(pid: int) -> list[int]:
    """The worker processes of the supervisor ``pid`` (its children but multiprocessing's
    resource tracker), from /proc."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            stat = (entry / "stat").read_text()
            # after the command name, which may hold spaces: state, then the parent's pid
            if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
                continue
            if b"spawn_main" in (entry / "cmdline").read_bytes():
                children.append(int(entry.name))
    return sorted(children)


def _group(pgid: int) -> list[int]:
    """The live processes of the process group ``pgid`` (zombies excluded), from /proc."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == pgid:
                    members.append(int(entry.name))
    return members


def _wait_http(url: str, *, process: subprocess.Popen[bytes], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s * UNIT
    while True:
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not answer {url} within {limit_s * UNIT:.0f} s")
        time.sleep(0.1)  # a process starting: nothing to wait on but its port


@dataclass
class ServeNode:
    """``switchboard serve --workers N`` on a free loopback port, in its own session."""

    name: str
    env: Mapping[str, str]
    workdir: Path
    workers: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: processes of the node still running when :meth:`stop` returned (then SIGKILLed)
    leftovers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "switchboard.cli", "serve",
            "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip

    def start(self, *, ready_path: str = "/healthz", limit_s: float = 60.0) -> None:
        """Start the node and wait until ``ready_path`` answers 200."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.argv(),
            env=dict(self.env),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # kill() takes the supervisor and its workers at once
        )
        log.close()
        _wait_http(f"{self.url}{ready_path}", process=self.process, limit_s=limit_s, what=self.name)

    def log(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return path.read_text("utf-8", errors="replace") if path.exists() else ""

    def workers_now(self) -> list[int]:
        assert self.process is not None
        return worker_pids(self.process.pid)

    def stop(self, *, limit_s: float = 20.0) -> int | None:
        """SIGTERM the supervisor (it stops its workers) and wait; its exit status. Whatever of
        the node is still running afterwards (a worker that outlived it) is SIGKILLed."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            if process.poll() is not None:
                return process.returncode
            process.terminate()
            try:
                return process.wait(limit_s * UNIT)
            except subprocess.TimeoutExpired:
                what = f"{self.name} did not stop within {limit_s * UNIT:.0f} s"
                raise AssertionError(what) from None
        finally:
            # multiprocessing's resource tracker ends on its own once the supervisor is gone
            deadline = time.monotonic() + 5 * UNIT
            while (left := _group(process.pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.leftovers = left
            if self.leftovers:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL every process of the node: no goodbye, no cleanup."""
        process, self.process = self.process, None
        if process is not None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


HAPROXY_CFG = """\
global
    maxconn 2000
    stats socket {stats_socket} mode 600 level user

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    # a check's answer may take this long (else HAProxy waits for "inter", 500 ms here: a node
    # answering slowly on a busy 2-core machine was marked down and every request went to the other)
    timeout check 3s
    option http-server-close

frontend gateway
    bind 127.0.0.1:{port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk GET {check_path}
    http-check expect status 200
{servers}
"""


@dataclass
class Balancer:
    """HAProxy balancing round-robin over ``nodes`` (a request at a time, WebSockets tunnelled)."""

    binary: str
    nodes: list[ServeNode]
    workdir: Path
    check_path: str = "/healthz"
    port: int = field(default_factory=free_port)
    #: nodes that take requests only when every other node is down (HAProxy ``backup``)
    backup: frozenset[str] = frozenset()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(
            f"    server {node.name} 127.0.0.1:{node.port} check inter 500ms fall 3 rise 1"
            + (" backup" if node.name in self.backup else "")
            for node in self.nodes
        )
        return HAPROXY_CFG.format(
            port=self.port,
            check_path=self.check_path,
            servers=servers,
            stats_socket=self.stats_socket,
        )

    @property
    def stats_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    def server_states(self) -> dict[str, str]:
        """Each node's state as HAProxy sees it (``show stat``: UP, DOWN, …)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            data = b"".join(iter(lambda: sock.recv(65536), b""))
        rows = list(csv.reader(io.StringIO(data.decode().lstrip("# "))))
        header = rows[0]
        name, server = header.index("pxname"), header.index("svname")
        status = header.index("status")
        return {
            row[server]: row[status]
            for row in rows[1:]
            if len(row) == len(header) and row[name] == "nodes"
            if row[server] not in ("FRONTEND", "BACKEND")
        }

    def wait_all_up(self, limit_s: float = 20.0) -> None:
        """Until HAProxy's checks see every node up (the tests count on where requests go)."""
        deadline = time.monotonic() + limit_s * UNIT
        while (states := self.server_states()) and set(states.values()) != {"UP"}:
            if time.monotonic() > deadline:
                raise AssertionError(f"the balancer does not see every node up: {states}")
            time.sleep(0.1)  # HAProxy's checks run every 500 ms

    def start(self) -> None:
        path = self.workdir / "haproxy.cfg"
        path.write_text(self.config(), "utf-8")
        check = subprocess.run(
            [self.binary, "-c", "-q", "-f", str(path)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stderr
        log = (self.workdir / "haproxy.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        _wait_http(f"{self.url}/healthz", process=self.process, limit_s=20.0, what="haproxy")
        self.wait_all_up()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10 * UNIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
