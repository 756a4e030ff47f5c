"""LoopbackServer closes its socket also when it never served: an unclosed socket is a
ResourceWarning in whichever later test the garbage collector happens to run."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from switchboard.emulators.loopback import LoopbackServer, bind_loopback

pytestmark = pytest.mark.anyio


async def test_a_server_never_started_closes_its_socket_on_aclose() -> None:
    sock = bind_loopback()
    server = LoopbackServer(Starlette(), sock=sock)
    await server.aclose()
    assert sock.fileno() == -1


async def test_a_server_serves_and_closes_its_socket() -> None:
    sock = bind_loopback()
    async with LoopbackServer(Starlette(), sock=sock, lifespan="off") as server:
        assert server.port == sock.getsockname()[1]
    assert sock.fileno() == -1
