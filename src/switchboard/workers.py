"""Several worker processes serving one port: ``switchboard serve --workers N``.

Theory of operation. The parent process (the supervisor) makes every check ``serve`` makes, then
the checks only several processes need: a cluster state in Redis (``SWITCHBOARD_REDIS_URL``:
without it each process would keep its own replay guard, call directory and limits, and a call's
webhook and media socket landing on different workers would not find each other); Redis not
answering yet is logged, not fatal (each worker starts not ready and joins it when it answers:
``Cluster.start(retry=True)``). It brings the database's schema up to date once, so that N
workers do not race the same migration, binds the listening socket, and hands it to N
processes started with uvicorn's multiprocess supervisor. That supervisor:

* forwards SIGTERM/SIGINT to every worker and waits for them (each drains as ``serve`` does);
* pings each worker every half second and replaces one that died, or left a ping unanswered
  for :data:`WORKER_PING_TIMEOUT_S`;
* stops everything when a worker fails before serving (bad configuration, the
  database unreachable at start): a restart would fail the same way.

Each worker builds its own app (:class:`WorkerApp`, pickled to the child with the parent's
:class:`~switchboard.config.Settings`, so a worker reads no environment of its own) and joins the
cluster as its own node: its node id is ``host-pid-random`` (unique per process start, so a
replaced worker is a new node and the dead one's calls are marked lost), or, when
``SWITCHBOARD_NODE_ID`` is set, that id with ``-w<pid>`` appended. A worker asks the kernel to
end it when the supervisor dies (``PR_SET_PDEATHSIG``), so a supervisor killed outright leaves no
orphan serving the port.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from uvicorn.supervisors.multiprocess import Process

from switchboard.config import Settings
from switchboard.errors import ClusterUnavailable, ConfigError

__all__ = ["WorkerApp", "parse_workers", "serve_workers", "workers_refusal"]

logger = logging.getLogger(__name__)

#: How long a worker may leave the supervisor's ping unanswered before it is killed as hung
#: and replaced. uvicorn's 5 s default killed workers still importing on a busy machine (the
#: ping is answered by a thread that starts once the spawned process has unpickled its app).
WORKER_PING_TIMEOUT_S = 30
#: prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def parse_workers(text: str) -> int:
    """``--workers``: a count of at least 1, or ``auto`` (the cores this process may run on:
    ``os.cpu_count()`` narrowed to the CPU affinity mask, e.g. a container's cpuset).

    Raises:
        ValueError: neither (argparse turns it into a usage error).
    """
    if text.strip().lower() == "auto":
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0)) or 1
        return os.cpu_count() or 1  # pragma: no cover - no affinity mask (macOS)
    count = int(text)
    if count < 1:
        raise ValueError(f"--workers must be at least 1, not {count}")
    return count


def workers_refusal(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` processes cannot serve with ``settings``, or None when they can."""
    if workers <= 1:
        return None
    if not settings.secret("redis_url"):
        return (
            f"--workers {workers} needs SWITCHBOARD_REDIS_URL: several processes share their "
            "replay guards, call directory, limits and control messages through Redis "
            "(docs/cluster.md); without it run one worker per node"
        )
    if importlib.util.find_spec("redis") is None:
        return (
            f"--workers {workers} needs the redis client: pip install 'switchboard-voice[cluster]'"
        )
    return None


@dataclass(frozen=True)
class WorkerApp:
    """The app factory each worker process calls (uvicorn ``factory=True``); picklable.

    Attributes:
        settings: the supervisor's settings (the generated API token included).
        log_level, log_format: the supervisor's logging configuration, applied in the worker.
    """

    settings: Settings
    log_level: str
    log_format: str

    def __call__(self) -> Any:
        from switchboard.app import create_app
        from switchboard.logs import configure_logging, secret_values

        _die_with_parent()
        configure_logging(
            level=self.log_level, fmt=self.log_format, secrets=secret_values(self.settings)
        )
        settings = self.settings
        if settings.node_id:  # SWITCHBOARD_NODE_ID names the machine; each worker is a node
            update = {"node_id": f"{settings.node_id}-w{os.getpid()}"}
            settings = settings.model_copy(update=update)
        logger.info("worker %d serving", os.getpid())
        app = create_app(settings)
        _SERVED.append(app)  # what this worker drains on SIGTERM (_WorkerProcess)
        return app


#: The app this worker process made (one per process; read by its drain on SIGTERM).
_SERVED: list[Any] = []


async def _drain_served() -> None:
    from switchboard.app.drain import drain_app

    if _SERVED:
        await drain_app(_SERVED[-1].state.switchboard)


class WorkerProcess(Process):
    """uvicorn's worker process, running :class:`~switchboard.app.drain.GatewayServer` (drain on
    SIGTERM, start-up objects frozen) instead of uvicorn's plain server. Module level: the
    spawn start method pickles it."""

    @property
    def server(self) -> Any:
        from switchboard.app.drain import GatewayServer

        if self._server is None:
            self._server = GatewayServer(self.config, _drain_served)
        return self._server


def _die_with_parent() -> None:
    """Have the kernel send SIGTERM to this worker when the supervisor dies (Linux)."""
    if not sys.platform.startswith("linux"):  # pragma: no cover - elsewhere: best effort
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: orphans stay possible
        return
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def _prepare(settings: Settings) -> None:
    """Before any worker starts: the schema is migrated once. Redis not answering yet is
    logged, not fatal: the workers start not ready and join it when it answers."""
    from switchboard.cluster import Cluster
    from switchboard.store import CallStore

    cluster = Cluster.from_settings(settings)
    try:
        await cluster.ping()  # ClusterUnavailable names the server, never the URL
    except ClusterUnavailable as exc:
        logger.warning("starting the workers not ready until Redis answers: %s", exc)
    finally:
        await cluster.aclose()
    store = CallStore.from_settings(settings)
    try:
        await store.migrate()
    finally:
        await store.aclose()


def serve_workers(
    settings: Settings,
    config_options: dict[str, Any],
    *,
    workers: int,
    log_level: str,
    log_format: str,
) -> int:
    """Serve with ``workers`` processes on one socket until SIGTERM/SIGINT; the exit status.

    Args:
        settings: checked by ``serve`` already (secrets, token).
        config_options: the ``uvicorn.Config`` options ``serve`` uses (host, port, websocket
            protocol, sizes).
        workers: how many processes (2 or more).

    Raises:
        ConfigError: :func:`workers_refusal` says no.
        StoreError: the database cannot be migrated.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess, multiprocess

    # The supervisor makes (and remakes) its workers through the module's ``Process``: each
    # worker then serves with our server class, so SIGTERM (sent to every worker by the
    # supervisor) drains each one.
    multiprocess.Process = WorkerProcess  # type: ignore[misc]

    if (reason := workers_refusal(settings, workers)) is not None:
        raise ConfigError(reason)
    asyncio.run(_prepare(settings))
    factory = WorkerApp(settings, log_level=log_level, log_format=log_format)
    config = uvicorn.Config(
        factory,
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=WORKER_PING_TIMEOUT_S,
        **config_options,
    )
    sock = config.bind_socket()
    try:
        logger.info("serving with %d workers on %s:%s", workers, config.host, config.port)
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    return 0


def with_token(settings: Settings, token: str) -> Settings:
    """``settings`` with ``token`` as the API token (a generated one is shared by workers)."""
    return settings.model_copy(update={"api_token": SecretStr(token)})
