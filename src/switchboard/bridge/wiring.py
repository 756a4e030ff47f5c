"""One call wired to the gateway's services: its record at the webhook, its session when the
media socket opens, its counts and final record at the end.

The call manager decides when (``prepare``, ``run_media``, the call's end); these functions
say what each step connects. A bridged call reports through one chain of sinks, innermost
first: the call record (``bridge/recording.py``), the metrics, the trace, the console's live
view. The carrier's REST control is bound to the call's carrier id, and the agent gives the
bridge options, the tools' context and the recorded greeting.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from switchboard.agents import Agent
from switchboard.bridge.active import (
    ActiveCall,
    BoundCarrierControl,
    BridgeOverrides,
    bridge_options,
    recorded_greeting,
    recorded_thinking,
)
from switchboard.bridge.apology import apology_audio
from switchboard.bridge.audio_recording import finish_recording, open_recording
from switchboard.bridge.failover_wiring import call_failover, cost_by_provider, served_usage
from switchboard.bridge.keypad import MenuChoice
from switchboard.bridge.planner import RoutedCall
from switchboard.bridge.recording import CallRecordSink
from switchboard.bridge.resume_state import StateNoteSink
from switchboard.bridge.session import CallSession
from switchboard.bridge.sink import CallSink
from switchboard.bridge.warm_transfer import WarmLeg, WarmOptions
from switchboard.cost import ServedUsage
from switchboard.errors import SwitchboardError
from switchboard.gateway import Gateway
from switchboard.live import CallPricing, LiveSink
from switchboard.logs import call_context
from switchboard.providers.base import BaseProvider, SessionConfig
from switchboard.telephony.base import (
    CallDirection,
    IncomingCall,
    MediaCodec,
    MediaSocket,
    StreamStarted,
    TelephonyType,
)
from switchboard.telephony.telnyx.rest import TelnyxAdapter
from switchboard.telephony.telnyx.warm import TelnyxWarmLeg
from switchboard.telephony.twilio.rest import TwilioAdapter
from switchboard.telephony.twilio.warm import TwilioWarmLeg
from switchboard.tools import ToolContext

__all__ = [
    "call_started",
    "choose_provider",
    "close_call",
    "connect_provider",
    "open_record",
    "open_session",
]

logger = logging.getLogger(__name__)


def choose_provider(gateway: Gateway, agent: Agent) -> str:
    """The provider for ``agent``: its own, ``SWITCHBOARD_PROVIDER``, or the best match.

    Raises:
        ConfigError: the chosen provider is not configured, or none meets the requirements.
    """
    if agent.provider is not None:
        return agent.provider.value
    settings = gateway.settings
    if settings.provider != "auto":
        return settings.provider
    return gateway.providers.select_best_provider(agent.provider_requirements).value


async def connect_provider(gateway: Gateway, provider: BaseProvider, call_id: str) -> None:
    """Connect the call's provider (traced); a failure is logged, and the session finds the
    provider not connected when the media socket opens."""
    tracing = gateway.tracing
    try:
        span = (
            tracing.span(call_id, "provider.connect")
            if tracing is not None
            else contextlib.nullcontext()
        )
        with call_context(call_id), span:  # the provider's tasks log with the call's id
            await provider.connect()
    except (SwitchboardError, OSError, TimeoutError) as exc:
        logger.error(
            "call %s: provider connect failed: %s", call_id, exc, extra={"call_id": call_id}
        )


def call_started(gateway: Gateway, active: ActiveCall, config: SessionConfig) -> None:
    """A prepared call starts: the console's live calls, the metrics and the trace."""
    gateway.live.started(active.call_id, active.summary())
    if gateway.metrics is not None:
        gateway.metrics.call_started()
    if gateway.tracing is not None:
        gateway.tracing.call_started(
            active.call_id,
            carrier=active.incoming.carrier.value,
            provider=active.provider_name,
            model=config.model_id or "",
            agent=active.agent.name,
        )


async def open_record(
    gateway: Gateway,
    call: IncomingCall,
    call_id: str,
    agent: Agent,
    provider_name: str,
    config: SessionConfig,
    routed: RoutedCall,
    *,
    adopted: bool = False,
) -> CallRecordSink | None:
    """The call's record, created (awaited: the webhook answers once it exists), with how its
    agent was chosen on its timeline; None without a store or when the store is down (the
    call is taken anyway, unrecorded; logged). An ``adopted`` call (prepared on another node)
    continues the record that node created when the database is shared."""
    store = gateway.store
    if store is None:
        return None
    per_call = gateway.integrations.for_call(agent.webhooks, agent.analysis)
    sink = CallRecordSink(store, call_id, per_call)
    if adopted and (served := await _recorded(gateway, call_id)) is not None:
        sink.providers = list(served)  # a failover here adds to the providers before it
        sink.timeline("call.adopted", time.monotonic() * 1000.0, {"node": gateway.node_id})
        return sink
    if not await sink.create(
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
        return None
    for kind, data in routed.timeline:  # how the agent was chosen
        sink.timeline(kind, time.monotonic() * 1000.0, data)
    return sink


async def _recorded(gateway: Gateway, call_id: str) -> tuple[str, ...] | None:
    """The providers that served ``call_id`` so far when the call store already holds its
    record, else None (also when the store cannot say)."""
    assert gateway.store is not None
    try:
        detail = await gateway.store.get_call(call_id)
    except SwitchboardError as exc:
        logger.warning("call %s: cannot read its record: %s", call_id, exc)
        return None
    return detail.record.providers if detail is not None else None


def open_session(
    gateway: Gateway,
    active: ActiveCall,
    *,
    carrier: TelephonyType,
    codec: MediaCodec,
    socket: MediaSocket,
    started: StreamStarted,
    overrides: BridgeOverrides | None,
    provider_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> CallSession:
    """The session that bridges ``active`` over this media socket (not yet running)."""
    call_id, agent = active.call_id, active.agent
    adapter = gateway.carriers.get(carrier)
    control = (
        BoundCarrierControl(adapter, started.call_id or active.incoming.carrier_call_id)
        if adapter is not None
        else None
    )
    carrier_limit = gateway.settings.catalog.telephony.get(carrier.value)
    options = bridge_options(
        agent,
        carrier_limit.max_call_seconds if carrier_limit is not None else None,
        overrides,
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
    carried = active.carried  # a resumed call: the tools' state as the other node left it
    if carried is not None:
        carried.restore(context)
    sink: CallSink | None = active.sink  # record ← metrics ← tracing, outermost last
    if gateway.metrics is not None:
        sink = active.metered = gateway.metrics.call_sink(
            sink,
            carrier=carrier.value,
            provider=active.provider_name,
            model=active.provider.config.model_id,
        )
    if gateway.tracing is not None:
        sink = gateway.tracing.call_sink(call_id, sink)
    config = active.provider.config
    pricing = CallPricing(
        gateway.settings.catalog,
        active.provider_name,
        config.model_id,
        carrier.value,
        config.extra.get("llm_model"),
    )
    live = LiveSink(gateway.live, call_id, sink, pricing=pricing)
    noted = StateNoteSink(  # what a resume on another node carries over (resume_state.py)
        live,
        cluster=gateway.cluster,
        call_id=call_id,
        provider=active.provider_name,
        context=context,
        turn=carried.turn if carried is not None else 0,
    )
    failover, outer = call_failover(  # the transcript as heard is kept in front of the sinks
        gateway, active, started.audio, noted, provider_options or {}
    )
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
        apology_audio=apology_audio if gateway.settings.offline_voice else None,
        sink=outer,
        dial_plan=agent.dial_plan,
        greeting=recorded_greeting(agent, started.audio, call_id),
        recorder=open_recording(gateway, agent, call_id, started.audio),
        dtmf_menu={
            key: MenuChoice(transfer=entry.transfer, say=entry.say, hang_up=entry.hangup)
            for key, entry in agent.dtmf_menu.items()
        },
        thinking_after_ms=agent.thinking_after_ms,
        thinking_audio=recorded_thinking(agent, started.audio, call_id),
        machine_detection=active.machine_detection,
        greeting_text=agent.greeting,
        failover=failover,
        warm=warm_options(gateway, active, carrier, started),
        # Twilio's digits redirect the call: its media goes on on the next stream
        restream=carrier is TelephonyType.TWILIO,
    )
    session.operator.on_partial = live.partial  # the transcript as it comes, to the console
    if carried is not None:
        session.core.continue_turns(carried.turn)
    return session


def warm_options(
    gateway: Gateway, active: ActiveCall, carrier: TelephonyType, started: StreamStarted
) -> WarmOptions | None:
    """What the call's warm transfers need; None on a carrier without call control."""
    adapter = gateway.carriers.get(carrier)
    incoming, agent = active.incoming, active.agent
    inbound = incoming.direction is CallDirection.INBOUND
    ours = incoming.to_number if inbound else incoming.from_number
    carrier_id = started.call_id or incoming.carrier_call_id
    leg: Callable[[str], WarmLeg]
    if isinstance(adapter, TwilioAdapter):
        twilio = adapter

        def leg(room: str) -> WarmLeg:
            return TwilioWarmLeg(
                twilio, call_sid=carrier_id, room=room, from_=ours, briefings=gateway.briefings
            )

    elif isinstance(adapter, TelnyxAdapter):
        telnyx = adapter

        def leg(room: str) -> WarmLeg:
            return TelnyxWarmLeg(
                telnyx,
                gateway.warm_legs,
                call_control_id=carrier_id,
                call_id=active.call_id,
                from_=ours,
                public_url=gateway.settings.public_url,
            )

    else:
        return None
    return WarmOptions(
        leg=leg,
        outbound=gateway.settings.outbound_dial_plan,
        briefings=gateway.briefings,
        speak=apology_audio if gateway.settings.offline_voice else None,
        ring_s=agent.transfer_ring_s,
        hold_audio=recorded_thinking(agent, started.audio, active.call_id, what="hold"),
        agent=agent.name,
    )


async def close_call(gateway: Gateway, active: ActiveCall, reason: str) -> None:
    """Count and trace the call that ended with ``reason`` and finalise its record (usage
    and cost)."""
    if active.session is not None:  # first: the record's end carries the recording's link
        finish_recording(gateway, active.call_id, active.session.recorder, active.sink)
    config = active.provider.config
    if active.machine_detection is not None:  # an outbound call's AMD outcome
        amd = active.session.amd if active.session is not None else None
        outcome = (amd.outcome if amd is not None else None) or "unknown"
        if active.sink is not None:
            active.sink.set_extra(outcome=outcome)
        if gateway.metrics is not None:
            gateway.metrics.outbound_outcome(active.incoming.carrier.value, outcome)
    if gateway.metrics is not None:
        session = active.session
        gateway.metrics.call_ended(
            carrier=active.incoming.carrier.value,
            provider=active.provider_name,
            model=config.model_id,
            llm_model=config.extra.get("llm_model"),
            reason=reason,
            sink=active.metered,
            media=session.codec.stats if session is not None else None,
        )
    if gateway.tracing is not None:  # with the usage its sink saw
        gateway.tracing.call_ended(active.call_id, reason)
    failover = active.session.failover if active.session is not None else None
    served: list[ServedUsage] = []
    if active.sink is not None and failover is not None and failover.failovers:
        costs = cost_by_provider(gateway, failover)
        active.sink.timeline("call.cost_by_provider", time.monotonic() * 1000.0, costs)
        served = served_usage(failover, config.model_id, config.extra.get("llm_model"))
    if active.sink is not None:
        await active.sink.finalize(
            status="failed" if reason in ("provider_failed", "internal_error") else "completed",
            end_reason=reason,
            provider=served[-1].provider if served else active.provider_name,
            model=config.model_id,
            llm_model=config.extra.get("llm_model"),
            carrier=active.incoming.carrier.value,
            catalog=gateway.settings.catalog,
            served=served,
        )
