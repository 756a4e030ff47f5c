"""The call manager: routes calls to agents and providers and runs their sessions.

:class:`CallManager` implements the :class:`~switchboard.telephony.base.CallHandler` contract
carrier routes use. ``prepare`` (at the webhook) picks the agent for the dialled number and the
provider for the agent, creates the call record, and starts connecting the provider at once, so
the provider is usually ready by the time the carrier opens the media socket a second later.
``run_media`` bridges the socket with a :class:`~switchboard.bridge.session.CallSession`.

Each call runs in the task that serves its websocket; nothing here is shared between calls but
the read-mostly registry, agent book, tools and store, so one call's failure or slowness cannot
touch another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from switchboard.agents import Agent, AgentBook
from switchboard.bridge.admission import CallAdmission, NodeCallLimit
from switchboard.bridge.apology import apology_audio
from switchboard.bridge.control import checked_destination
from switchboard.bridge.core import BridgeOptions
from switchboard.bridge.greeting import greeting_audio
from switchboard.bridge.planner import CallPlanner, Placement
from switchboard.bridge.recording import CallRecordSink
from switchboard.bridge.session import CallSession
from switchboard.config import Settings
from switchboard.errors import AudioError, ConfigError, SwitchboardError, TelephonyError
from switchboard.logs import call_context
from switchboard.media import AudioFormat, AudioSpec
from switchboard.metrics import Metrics
from switchboard.providers.base import BaseProvider
from switchboard.providers.registry import ProviderRegistry
from switchboard.telephony.base import (
    IncomingCall,
    MediaCodec,
    MediaSocket,
    PreparedCall,
    StreamStarted,
    TelephonyAdapter,
    TelephonyType,
)
from switchboard.tools import ToolContext, ToolRegistry

if TYPE_CHECKING:  # the otel extra is optional: imported only when SWITCHBOARD_OTEL is set
    from switchboard.tracing import Tracing

__all__ = ["ActiveCall", "CallManager"]

logger = logging.getLogger(__name__)


@dataclass
class ActiveCall:
    """A call between ``prepare`` and its end."""

    call_id: str
    incoming: IncomingCall
    agent: Agent
    provider_name: str
    provider: BaseProvider
    tools: ToolRegistry
    connect_task: asyncio.Task[None]
    created_at: float = field(default_factory=time.time)
    session: CallSession | None = None
    status: str = "ringing"
    sink: CallRecordSink | None = None
    ending: bool = False

    def summary(self) -> dict[str, Any]:
        """What ``GET /v1/sessions`` shows of a live call."""
        return {
            "call_id": self.call_id,
            "carrier": self.incoming.carrier.value,
            "carrier_call_id": self.incoming.carrier_call_id,
            "direction": self.incoming.direction.value,
            "from": self.incoming.from_number,
            "to": self.incoming.to_number,
            "agent": self.agent.name,
            "provider": self.provider_name,
            "model": self.provider.config.model_id,
            "status": self.status,
            "provider_state": self.provider.state.value,
            "started_at": self.created_at,
            "barge_ins": self.session.core.barge_ins if self.session else 0,
            "turns": self.session.core.turn if self.session else 0,
        }


class _BoundCarrierControl:
    """Carrier REST operations for one call (the ids bound)."""

    def __init__(self, adapter: TelephonyAdapter, carrier_call_id: str) -> None:
        self._adapter = adapter
        self._id = carrier_call_id

    async def hang_up(self) -> None:
        await self._adapter.hang_up(self._id)

    async def transfer(self, destination: str) -> None:
        await self._adapter.transfer_call(self._id, destination)


class CallManager:
    """Routes and runs calls for one app.

    Args:
        settings: the configuration.
        agents: agent profiles (``SWITCHBOARD_AGENTS`` or the packaged receptionist when None).
        store: call records (``switchboard.store.CallStore``); None keeps records in memory only.
        provider_options: extra keyword arguments per provider name for its factory (tests use
            this to shorten reconnect backoffs, for instance).
        media_timeout_s: how long a prepared call waits for its media socket.
        metrics: the app's Prometheus metrics (``create_app`` passes them); None counts nothing.
        tracing: OpenTelemetry call traces (``SWITCHBOARD_OTEL=1``); None traces nothing.
        admission: whether a new call may start (bridge/admission.py); by default at most
            ``SWITCHBOARD_MAX_CALLS`` at once in this process. A refused call is busy.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        agents: AgentBook | None = None,
        store: Any | None = None,
        registry: ProviderRegistry | None = None,
        provider_options: dict[str, dict[str, Any]] | None = None,
        media_timeout_s: float = 30.0,
        bridge_overrides: dict[str, Any] | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        admission: CallAdmission | None = None,
    ) -> None:
        self.settings = settings
        self.admission = admission or NodeCallLimit(settings.max_calls)
        self.metrics = metrics
        self.tracing = tracing
        self.registry = registry or ProviderRegistry(settings)
        self.agents = agents or AgentBook.load(settings.agents_path)
        self.store = store
        self.provider_options = provider_options or {}
        self.media_timeout_s = media_timeout_s
        self.bridge_overrides = bridge_overrides or {}
        self.calls: dict[str, ActiveCall] = {}
        self._by_carrier_id: dict[tuple[str, str], str] = {}
        self._adapters: dict[str, TelephonyAdapter | None] = {}
        self.finished: dict[str, str] = {}  # call id -> end reason (recent, bounded)
        # HTTP tools and agent_request_url (raises ConfigError when they cannot sign)
        self.planner = CallPlanner.from_settings(settings, self.agents)
        self._outbound_agents: dict[str, Placement] = {}  # our call id -> placed, until answered
        self._outbound_ids: dict[tuple[str, str], str] = {}  # (carrier, carrier id) -> call id
        self._idle = asyncio.Event()  # set while no call is live
        self._idle.set()

    # -- helpers ---------------------------------------------------------------------------------
    def adapter(self, carrier: TelephonyType | str) -> TelephonyAdapter | None:
        """The carrier's REST adapter, or None when the carrier's keys are not configured."""
        key = str(carrier)
        if key not in self._adapters:
            try:
                self._adapters[key] = self.registry.create_telephony_adapter(key)
            except ConfigError as exc:
                logger.warning("no call control for %s: %s", key, exc)
                self._adapters[key] = None
        return self._adapters[key]

    def choose_provider(self, agent: Agent) -> str:
        """The provider for ``agent``: its own, ``SWITCHBOARD_PROVIDER``, or the best match.

        Raises:
            ConfigError: the chosen provider is not configured, or none meets the requirements.
        """
        if agent.provider is not None:
            return agent.provider.value
        if self.settings.provider != "auto":
            return self.settings.provider
        return self.registry.select_best_provider(agent.provider_requirements).value

    @staticmethod
    def caller_audio(carrier: TelephonyType, provider: str, codec: str | None = None) -> AudioSpec:
        """The caller audio the bridge sees: μ-law 8 kHz, or on Telnyx the agent's
        ``carrier_codec`` (A-law 8 kHz; L16, Opus and G.722 arrive as PCM16 16 kHz), by default
        L16 16 kHz for Gemini."""
        if carrier is TelephonyType.TELNYX:
            if codec == "pcma":
                return AudioSpec(AudioFormat.ALAW, 8000)
            if codec in ("l16", "opus", "g722") or (codec is None and provider == "gemini"):
                return AudioSpec(AudioFormat.PCM16, 16000)
        return AudioSpec(AudioFormat.ULAW, 8000)

    # -- CallHandler -----------------------------------------------------------------------------
    async def prepare(self, call: IncomingCall) -> PreparedCall:
        """Pick agent and provider, create the record, and start connecting the provider."""
        call_id = (
            call.call_id
            or self._outbound_ids.pop((call.carrier.value, call.carrier_call_id), None)
            or f"call_{uuid.uuid4().hex[:20]}"
        )
        placed = self._outbound_agents.pop(call_id, None)
        routed = await self.planner.route(self.agents, call, call_id, placed)
        agent = routed.agent  # with the call's variables in its prompt and greeting
        if agent is None:
            return PreparedCall(call_id, accepted=False, reason="no agent for this number")
        if (refusal := await self._admit(call, call_id, agent.name)) is not None:
            return refusal
        try:
            provider_name = self.choose_provider(agent)
            tools = self.planner.tools(agent)
            spec = self.caller_audio(call.carrier, provider_name, agent.carrier_codec)
            config = agent.session_config(spec, tools.schemas())
            provider = self.registry.create_provider(
                provider_name, config, **self.provider_options.get(provider_name, {})
            )
        except SwitchboardError as exc:
            logger.error("call %s rejected: %s", call_id, exc, extra={"call_id": call_id})
            await self.admission.release(call_id)
            return PreparedCall(call_id, accepted=False, reason=str(exc), agent=agent.name)
        sink = CallRecordSink(self.store, call_id) if self.store is not None else None
        if sink is not None and not await sink.create(
            carrier=call.carrier.value,
            carrier_call_id=call.carrier_call_id,
            direction=call.direction.value,
            provider=provider_name,
            model=config.model_id,
            agent=agent.name,
            from_number=call.from_number,
            to_number=call.to_number,
            extra={"variables": routed.variables} if routed.variables else None,
        ):
            sink = None  # the store is down: take the call anyway, unrecorded (logged)
        if sink is not None:
            for kind, data in routed.timeline:  # how the agent was chosen
                sink.timeline(kind, time.monotonic() * 1000.0, data)
        active = ActiveCall(
            call_id=call_id,
            incoming=call,
            agent=agent,
            provider_name=provider_name,
            provider=provider,
            tools=tools,
            connect_task=asyncio.get_running_loop().create_task(self._connect(provider, call_id)),
            sink=sink,
        )
        self.calls[call_id] = active
        self._idle.clear()
        self._by_carrier_id[(call.carrier.value, call.carrier_call_id)] = call_id
        if self.metrics is not None:
            self.metrics.call_started()
        if self.tracing is not None:
            self.tracing.call_started(
                call_id,
                carrier=call.carrier.value,
                provider=provider_name,
                model=config.model_id or "",
                agent=agent.name,
            )
        asyncio.get_running_loop().call_later(self.media_timeout_s, self._expire, call_id)
        logger.info(
            "call %s: %s %s → %s, agent %s, provider %s",
            call_id,
            call.carrier.value,
            call.from_number,
            call.to_number,
            agent.name,
            provider_name,
            extra={"call_id": call_id},
        )
        return PreparedCall(
            call_id,
            agent=agent.name,
            provider=provider_name,
            wideband=spec.format is AudioFormat.PCM16,
            carrier_codec=agent.carrier_codec.upper() if agent.carrier_codec else None,
            pcm_rate=provider.input_spec.sample_rate
            if provider.input_spec.format is AudioFormat.PCM16
            else None,
        )

    async def _admit(self, call: IncomingCall, call_id: str, agent: str) -> PreparedCall | None:
        """None when the node may take the call (a slot is held until it ends), else the busy
        refusal (counted, logged)."""
        why = await self.admission.admit(call_id, agent=agent)
        if why is None:
            return None
        logger.warning("call %s refused as busy: %s", call_id, why, extra={"call_id": call_id})
        if (metrics := self.metrics) is not None:
            metrics.call_refused(call.carrier.value, "busy")
        return PreparedCall(call_id, accepted=False, reason=why, busy=True, agent=agent)

    async def _connect(self, provider: BaseProvider, call_id: str) -> None:
        try:
            span = (
                self.tracing.span(call_id, "provider.connect")
                if self.tracing is not None
                else contextlib.nullcontext()
            )
            with call_context(call_id), span:  # the provider's tasks log with the call's id
                await provider.connect()
        except (SwitchboardError, OSError, TimeoutError) as exc:
            logger.error(
                "call %s: provider connect failed: %s", call_id, exc, extra={"call_id": call_id}
            )

    def _expire(self, call_id: str) -> None:
        active = self.calls.get(call_id)
        if active is None or active.session is not None:
            return
        logger.warning(
            "call %s: no media stream within %.0f s",
            call_id,
            self.media_timeout_s,
            extra={"call_id": call_id},
        )
        asyncio.get_running_loop().create_task(self._end(active, "no_media"))

    @staticmethod
    def _recorded_greeting(
        agent: Agent, spec: AudioSpec, call_id: str
    ) -> tuple[bytes, str | None] | None:
        """The agent's ``greeting_audio`` in the carrier's format (None: none, or unreadable)."""
        if agent.greeting_audio is None:
            return None
        try:
            return greeting_audio(agent.greeting_audio, spec), agent.greeting
        except (AudioError, OSError) as exc:  # checked at load; gone or broken since
            logger.error("call %s: greeting audio unusable: %s", call_id, exc)
            return None

    async def run_media(
        self,
        *,
        call_id: str,
        carrier: TelephonyType,
        codec: MediaCodec,
        socket: MediaSocket,
        started: StreamStarted,
    ) -> None:
        """Bridge the media socket of a prepared call until the call ends."""
        active = self.calls.get(call_id)
        if active is None or active.session is not None:
            logger.warning(
                "media for unknown or already bridged call %s", call_id, extra={"call_id": call_id}
            )
            await socket.close(1008, "unknown call")
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(active.connect_task), 15.0)
        adapter = self.adapter(carrier)
        control = (
            _BoundCarrierControl(adapter, started.call_id or active.incoming.carrier_call_id)
            if adapter is not None
            else None
        )
        agent = active.agent
        limits = agent.limits
        carrier_limit = self.settings.catalog.telephony.get(carrier.value)
        max_s = [s for s in (limits.max_call_seconds,) if s]
        if carrier_limit is not None and carrier_limit.max_call_seconds:
            max_s.append(carrier_limit.max_call_seconds)
        options = BridgeOptions(
            barge_in=agent.barge_in,
            silence_timeout_ms=limits.silence_timeout_s * 1000
            if limits.silence_timeout_s
            else None,
            silence_hangup_ms=limits.silence_hangup_s * 1000 if limits.silence_hangup_s else None,
            max_call_ms=min(max_s) * 1000 if max_s else None,
            reprompt_text=agent.reprompt or "Are you still there?",
            goodbye_text=agent.goodbye,
            **self.bridge_overrides,
        )
        context = ToolContext(
            call_id=call_id,
            caller=active.incoming.from_number,
            callee=active.incoming.to_number,
            carrier=carrier.value,
            agent=agent.name,
            variables=dict(agent.variables),
            extras={"directory": {k.lower(): v for k, v in agent.directory.items()}},
        )
        sink: Any = active.sink
        if self.metrics is not None:
            sink = self.metrics.call_sink(
                sink,
                carrier=carrier.value,
                provider=active.provider_name,
                model=active.provider.config.model_id,
            )
        if self.tracing is not None:
            sink = self.tracing.call_sink(call_id, sink)
        session = CallSession(
            call_id=call_id,
            codec=codec,
            socket=socket,
            started=started,
            provider=active.provider,
            tools=active.tools,
            tool_context=context,
            carrier_control=control,
            options=options,
            apology=agent.apology,
            apology_audio=apology_audio,
            sink=sink,
            dial_plan=agent.dial_plan,
            greeting=self._recorded_greeting(agent, started.audio, call_id),
        )
        active.session = session
        active.status = "in-progress"
        if active.sink is not None:
            active.sink.answered()
        reason = "internal_error"
        with call_context(call_id):  # every task of the call logs with its id
            try:
                reason = await session.run()
            finally:
                await self._end(active, reason)

    async def _end(self, active: ActiveCall, reason: str) -> None:
        # Stays in ``calls`` until its record is final (graceful shutdown waits on that).
        if active.call_id not in self.calls or active.ending:
            return
        active.ending = True
        try:
            await self._finish_call(active, reason)
        finally:
            self.calls.pop(active.call_id, None)
            await self.admission.release(active.call_id)
            if not self.calls:
                self._idle.set()

    async def _finish_call(self, active: ActiveCall, reason: str) -> None:
        self._by_carrier_id.pop(
            (active.incoming.carrier.value, active.incoming.carrier_call_id), None
        )
        active.status = "completed"
        active.connect_task.cancel()
        with contextlib.suppress(Exception):
            await active.provider.disconnect()
        self.finished[active.call_id] = reason
        if len(self.finished) > 1000:
            self.finished.pop(next(iter(self.finished)))
        if self.metrics is not None:
            session = active.session
            self.metrics.call_ended(
                carrier=active.incoming.carrier.value,
                provider=active.provider_name,
                model=active.provider.config.model_id,
                llm_model=active.provider.config.extra.get("llm_model"),
                reason=reason,
                sink=session.sink if session is not None else None,
                media=session.codec.stats if session is not None else None,
            )
        if self.tracing is not None:
            usage = getattr(active.session.sink, "total_usage", None) if active.session else None
            self.tracing.call_ended(active.call_id, reason, usage=usage)
        if active.sink is not None:
            await active.sink.finalize(
                status="failed" if reason in ("provider_failed", "internal_error") else "completed",
                end_reason=reason,
                provider=active.provider_name,
                model=active.provider.config.model_id,
                llm_model=active.provider.config.extra.get("llm_model"),
                carrier=active.incoming.carrier.value,
                catalog=self.settings.catalog,
            )
        logger.info("call %s ended: %s", active.call_id, reason, extra={"call_id": active.call_id})

    async def update_status(
        self, carrier: TelephonyType, carrier_call_id: str, status: str, **details: str
    ) -> None:
        call_id = self._by_carrier_id.get((carrier.value, carrier_call_id))
        active = self.calls.get(call_id) if call_id else None
        if active is None:
            logger.debug("status %s for unknown %s call %s", status, carrier, carrier_call_id)
            return
        if active.sink is not None:
            active.sink.timeline(f"carrier.{status}", time.monotonic() * 1000.0, dict(details))
        if status in ("completed", "busy", "failed", "no-answer", "canceled", "hangup"):
            if active.session is not None:
                active.session.end("caller_hangup")
            else:
                await self._end(active, f"carrier_{status}")
        else:
            active.status = status

    async def record_dtmf(self, carrier: TelephonyType, carrier_call_id: str, digit: str) -> None:
        call_id = self._by_carrier_id.get((carrier.value, carrier_call_id))
        active = self.calls.get(call_id) if call_id else None
        if active is not None and active.sink is not None:
            active.sink.timeline("caller.dtmf", time.monotonic() * 1000.0, {"digit": digit})

    # -- API operations --------------------------------------------------------------------------
    def sessions(self) -> list[dict[str, Any]]:
        """Live calls (a call whose record is being finalised is no longer live)."""
        return [active.summary() for active in self.calls.values() if not active.ending]

    async def hang_up(self, call_id: str) -> None:
        """Hang up a live call through its carrier.

        Raises:
            KeyError: no live call with that id.
        """
        active = self.calls[call_id]
        session = active.session
        if session is not None:
            now = session.now()
            await session.apply(session.core.request_hang_up("api_hangup", now, after_reply=False))
            return
        adapter = self.adapter(active.incoming.carrier)
        if adapter is not None:
            await adapter.hang_up(active.incoming.carrier_call_id)
        await self._end(active, "api_hangup")

    async def transfer(self, call_id: str, destination: str) -> None:
        """Transfer a live call (at once) through its carrier.

        ``destination`` passes the call's agent's dial plan, as ``transfer_call`` does: a
        directory name, or a destination in the directory or ``transfer_allow``.

        Raises:
            KeyError: no live call with that id.
            DialRefused: the agent's dial plan does not allow ``destination`` (logged).
            TelephonyError: the carrier refused or is not configured.
        """
        active = self.calls[call_id]
        destination = checked_destination(
            active.agent.dial_plan, destination, "API transfer", call_id
        )
        adapter = self.adapter(active.incoming.carrier)
        if adapter is None:
            raise TelephonyError(f"{active.incoming.carrier} call control is not configured")
        await adapter.transfer_call(active.incoming.carrier_call_id, destination)
        if active.session is not None:
            active.session.sink.timeline(
                "call.transferred", active.session.now(), {"to": destination}
            )
            active.session.end("transferred")

    async def place_call(
        self,
        *,
        carrier: TelephonyType,
        to: str,
        from_: str,
        agent: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> tuple[str, str]:
        """Dial out through ``carrier`` for ``agent``; returns (our call id, carrier call id).

        ``variables`` fill the agent's ``{{name}}`` placeholders and go with its HTTP tools'
        requests.

        Raises:
            DialRefused: ``to`` is not allowed by ``SWITCHBOARD_OUTBOUND_ALLOW`` (logged).
            ConfigError: unknown agent, carrier not configured, no public URL, invalid
                variables, or a placeholder of the agent's neither they nor its defaults fill.
            TelephonyError: the carrier refused the call.
        """
        to = checked_destination(self.settings.outbound_dial_plan, to, "outbound call")
        adapter = self.adapter(carrier)
        if adapter is None:
            raise ConfigError(f"carrier {carrier} is not configured")
        if not self.settings.public_url:
            raise ConfigError("set SWITCHBOARD_PUBLIC_URL so the carrier can reach us")
        chosen = self.agents.get(agent) if agent else self.agents.route(from_)
        if chosen is None:
            raise ConfigError(f"unknown agent {agent!r}")
        placement = self.planner.placement(chosen, variables)
        call_id = f"call_{uuid.uuid4().hex[:20]}"
        self._outbound_agents[call_id] = placement
        try:
            carrier_call_id = await adapter.place_call(to=to, from_=from_, call_id=call_id)
        except BaseException:
            self._outbound_agents.pop(call_id, None)
            raise
        self._outbound_ids[(str(carrier), carrier_call_id)] = call_id
        return call_id, carrier_call_id

    async def wait_idle(self, timeout_s: float = 5.0) -> bool:
        """Wait until no call is live (records finalised); False if some still are."""
        if self.calls:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout_s)
        return not self.calls

    async def aclose(self) -> None:
        """Shut down: end every live call (records finalised, within 5 s), close clients."""
        for active in list(self.calls.values()):
            if active.session is not None:
                active.session.end("shutdown")
            else:
                await self._end(active, "shutdown")
        if not await self.wait_idle(5.0):
            logger.warning("%d call(s) still ending at shutdown", len(self.calls))
        await self.planner.aclose()
        for adapter in self._adapters.values():
            if adapter is not None:
                with contextlib.suppress(Exception):
                    await adapter.aclose()
