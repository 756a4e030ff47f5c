"""The composition root: one of each service per app, built from the settings, closed in order."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from fastapi import FastAPI

from switchboard.app.factory import create_app
from switchboard.app.state import AppState
from switchboard.bridge.manager import CallManager
from switchboard.config import Settings, load_settings
from switchboard.emulators.loopback import LoopbackServer
from switchboard.errors import ConfigError, SignatureError
from switchboard.gateway import Gateway
from switchboard.metrics import Metrics
from switchboard.store import CallStore
from switchboard.telephony.base import (
    IncomingCall,
    MediaCodec,
    MediaSocket,
    PreparedCall,
    StreamStarted,
    TelephonyType,
)
from switchboard.telephony.telnyx import TelnyxAdapter
from switchboard.tracing import Tracing

pytestmark = pytest.mark.anyio

UNSET = {
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TELNYX_API_KEY": None,
    "TELNYX_PUBLIC_KEY": None,
    "SWITCHBOARD_SIGNING_SECRET": None,
    "SWITCHBOARD_OTEL": "0",
    "SWITCHBOARD_REDIS_URL": None,
}
TELNYX = {
    "TELNYX_API_KEY": "KEY_gateway_test",
    "TELNYX_PUBLIC_KEY": base64.b64encode(bytes(range(32))).decode(),  # 32 bytes, as Ed25519's
}


def settings_for(tmp_path: Path, **env: str | None) -> Settings:
    db = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    return load_settings(**{**UNSET, "SWITCHBOARD_DATABASE_URL": db, **env})


class IdleCalls:
    """A call handler that is never given a call (these tests look at the app around it)."""

    async def prepare(self, call: IncomingCall) -> PreparedCall:
        raise AssertionError("no call expected")

    async def run_media(
        self,
        *,
        call_id: str,
        carrier: TelephonyType,
        codec: MediaCodec,
        socket: MediaSocket,
        started: StreamStarted,
    ) -> None:
        raise AssertionError("no media expected")

    async def update_status(
        self, carrier: TelephonyType, carrier_call_id: str, status: str, **details: str
    ) -> None:
        raise AssertionError("no status expected")

    async def record_dtmf(self, carrier: TelephonyType, carrier_call_id: str, digit: str) -> None:
        raise AssertionError("no DTMF expected")

    async def aclose(self) -> None:
        return None


def state_of(app: FastAPI) -> AppState:
    state: AppState = app.state.switchboard
    return state


async def test_build_makes_each_service_from_the_settings(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    gateway = Gateway.build(settings)
    try:
        assert gateway.settings is settings
        assert gateway.providers.settings is settings
        assert isinstance(gateway.store, CallStore)
        assert str(gateway.store.engine.url).endswith("calls.db")
        assert isinstance(gateway.metrics, Metrics)  # monitoring.metrics_enabled by default
        assert gateway.tracing is None  # SWITCHBOARD_OTEL off
    finally:
        await gateway.aclose()
    traced = Gateway.build(settings_for(tmp_path, SWITCHBOARD_OTEL="1"))
    try:
        assert isinstance(traced.tracing, Tracing)
    finally:
        await traced.aclose()


async def test_given_store_and_tracing_are_used_as_they_are(tmp_path: Path) -> None:
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}")
    tracing = Tracing()
    gateway = Gateway.build(settings_for(tmp_path), store=store, tracing=tracing)
    assert gateway.store is store
    assert gateway.tracing is tracing
    await gateway.start()  # migrates the given store
    assert not (await store.list_calls()).items
    await gateway.aclose()


async def test_media_tokens_verify_only_with_the_same_signing_secret(tmp_path: Path) -> None:
    secret = "s" * 32
    one = Gateway.build(settings_for(tmp_path, SWITCHBOARD_SIGNING_SECRET=secret))
    two = Gateway.build(settings_for(tmp_path, SWITCHBOARD_SIGNING_SECRET=secret))
    other = Gateway.build(settings_for(tmp_path))  # unset: a random secret
    try:
        token = one.signer.sign("call_1", "twilio", carrier_call_id="CA1")
        assert two.signer.verify(token, carrier="twilio").call_id == "call_1"
        with pytest.raises(SignatureError):
            other.signer.verify(token, carrier="twilio")
    finally:
        for gateway in (one, two, other):
            await gateway.aclose()


async def test_replay_guards_belong_to_one_gateway(tmp_path: Path) -> None:
    one, two = Gateway.build(settings_for(tmp_path)), Gateway.build(settings_for(tmp_path))
    try:
        assert one.replay.twilio.requests.add("key")
        assert not one.replay.twilio.requests.add("key")
        assert two.replay.twilio.requests.add("key")  # another app remembers nothing of it
        assert one.replay.telnyx.check_and_add("event-1")
        assert not one.replay.telnyx.check_and_add("event-1")
        assert one.replay.twilio.calls.ttl_s == 24 * 3600.0  # answered CallSids: a day
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_carrier_adapter_is_created_once_and_closed_with_the_gateway(
    tmp_path: Path,
) -> None:
    gateway = Gateway.build(settings_for(tmp_path, **TELNYX))
    adapter = gateway.carriers.get(TelephonyType.TELNYX)
    assert isinstance(adapter, TelnyxAdapter)
    assert gateway.carriers.get("telnyx") is adapter  # by name or by type: the same one
    assert not adapter.is_closed
    await gateway.aclose()
    assert adapter.is_closed


async def test_an_unconfigured_carrier_has_no_adapter_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="switchboard.gateway")
    gateway = Gateway.build(settings_for(tmp_path))
    try:
        assert gateway.carriers.get(TelephonyType.TWILIO) is None
        assert gateway.carriers.get(TelephonyType.TWILIO) is None
        warnings = [r.getMessage() for r in caplog.records if "no call control" in r.getMessage()]
        assert len(warnings) == 1
        assert "TWILIO_AUTH_TOKEN" in warnings[0]  # the variable, never a value
    finally:
        await gateway.aclose()


async def test_the_app_the_manager_and_the_telnyx_runtime_share_one_gateway(
    tmp_path: Path,
) -> None:
    app = create_app(settings_for(tmp_path, SWITCHBOARD_PUBLIC_URL="https://sb.example", **TELNYX))
    state = state_of(app)
    try:
        manager = state.calls
        assert isinstance(manager, CallManager)
        assert manager.gateway is state.gateway
        assert state.telnyx.gateway is state.gateway
        assert state.telnyx.seen is state.gateway.replay.telnyx
        state.telnyx.check_configured()  # what the first webhook does
        # The webhooks' adapter is the one the calls use: one Telnyx client per app.
        assert state.telnyx.adapter is state.gateway.carriers.get(TelephonyType.TELNYX)
    finally:
        await state.aclose()


async def test_shutdown_ends_the_calls_before_it_closes_adapters_and_store(
    tmp_path: Path,
) -> None:
    seen: list[tuple[bool, bool]] = []

    class ClosingCalls(IdleCalls):
        async def aclose(self) -> None:
            adapter = gateway.carriers.get(TelephonyType.TELNYX)
            assert isinstance(adapter, TelnyxAdapter) and gateway.store is not None
            calls = await gateway.store.list_calls()  # the store still answers
            seen.append((adapter.is_closed, not calls.items))

    app = create_app(settings_for(tmp_path, **TELNYX), calls=ClosingCalls())
    gateway = state_of(app).gateway
    adapter = gateway.carriers.get(TelephonyType.TELNYX)
    assert isinstance(adapter, TelnyxAdapter)
    async with LoopbackServer(app):  # runs the app's lifespan: start, then shutdown
        pass
    assert seen == [(False, True)]  # the calls ended while the adapter and store were open
    assert adapter.is_closed


async def test_the_cluster_is_built_from_the_settings_and_not_joined(tmp_path: Path) -> None:
    local = Gateway.build(settings_for(tmp_path))
    assert local.cluster.backend == "memory"  # the embedded default: nothing to run
    assert await local.cluster.directory.nodes() == []  # built, not joined
    await local.aclose()
    # Redis by URL: nothing connects until the cluster is joined (this port has no server).
    shared = Gateway.build(settings_for(tmp_path, SWITCHBOARD_REDIS_URL="redis://127.0.0.1:9/0"))
    assert shared.cluster.backend == "redis"
    await shared.aclose()


async def test_node_ids_name_each_process_and_worker(tmp_path: Path) -> None:
    named = Gateway.build(settings_for(tmp_path, SWITCHBOARD_NODE_ID="edge-1"))
    worker = Gateway.build(
        settings_for(tmp_path, SWITCHBOARD_NODE_ID="edge-1", SWITCHBOARD_WORKER="2")
    )
    default = Gateway.build(settings_for(tmp_path, SWITCHBOARD_NODE_ID=""))
    other = Gateway.build(settings_for(tmp_path))
    try:
        assert named.node_id == "edge-1"
        assert worker.node_id == "edge-1-2"  # the workers of one node are distinct nodes
        assert f"-{os.getpid()}-" in default.node_id  # host-pid-random
        assert default.node_id != other.node_id  # unique per process start
        assert default.status.worker == str(os.getpid())
        with pytest.raises(ConfigError, match="SWITCHBOARD_NODE_ID"):
            settings_for(tmp_path, SWITCHBOARD_NODE_ID="a b")
        await default.start()  # joins the in-memory cluster: the signer takes its key
        token = default.signer.sign("call_1", "twilio")
        assert default.cluster.media_key and default.signer.verify(token, carrier="twilio")
        assert not default.draining
        default.drain()
        assert default.draining
    finally:
        for gateway in (named, worker, default, other):
            await gateway.aclose()
