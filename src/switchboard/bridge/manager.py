"""The call manager: routes calls to agents and providers and runs their sessions.

:class:`CallManager` implements the :class:`~switchboard.telephony.base.CallHandler` contract
carrier routes use. ``prepare`` (at the webhook) picks the agent for the dialled number and the
provider for the agent, creates the call record, and starts connecting the provider at once, so
the provider is usually ready by the time the carrier opens the media socket a second later.
``run_media`` bridges the socket with a :class:`~switchboard.bridge.session.CallSession`.
What each step connects — the call's record, its session and sinks, its counts and final
record — is ``bridge/wiring.py``'s; the manager decides when.

Each call runs in the task that serves its websocket; nothing here is shared between calls but
the read-mostly registry, agent book, tools and store, so one call's failure or slowness cannot
touch another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from switchboard.agents import AgentBook
from switchboard.bridge import operator_control
from switchboard.bridge.active import ActiveCall, BridgeOverrides, caller_audio
from switchboard.bridge.admission import CallAdmission
from switchboard.bridge.cluster_calls import (
    CallDirectoryWriter,
    ClusterAdmission,
    placed_call,
    prepared_elsewhere,
    release_elsewhere,
    remember_route,
    share_placement,
)
from switchboard.bridge.control import checked_destination
from switchboard.bridge.failover_wiring import (
    connect_wait_s,
    fallback_agent,
    pinned_provider,
)
from switchboard.bridge.planner import CallPlanner, Placement
from switchboard.bridge.restream import NextStream
from switchboard.bridge.resume import (
    RESUMABLE_ENDS,
    RESUME_LINE,
    conversation_of,
    ended_on_purpose,
    note_end,
)
from switchboard.bridge.resume_state import CarriedState, carried_state
from switchboard.bridge.session import CallSession
from switchboard.bridge.wiring import (
    call_started,
    choose_provider,
    close_call,
    connect_provider,
    open_record,
    open_session,
)
from switchboard.errors import ClusterUnavailable, ConfigError, SwitchboardError, TelephonyError
from switchboard.gateway import Gateway
from switchboard.logs import call_context
from switchboard.media import AudioFormat
from switchboard.providers.types import HistoryTurn
from switchboard.telephony.amd import MachineDetection, Verdict, dial_options
from switchboard.telephony.base import (
    CallDirection,
    IncomingCall,
    MediaCodec,
    MediaSocket,
    PreparedCall,
    StreamStarted,
    TelephonyType,
)

__all__ = ["ActiveCall", "CallManager"]

logger = logging.getLogger(__name__)


class CallManager:
    """Routes and runs calls for one app.

    The services (provider registry, carrier adapters, store, metrics, tracing) are the
    gateway's: the manager creates none of its own.

    Args:
        gateway: the app's services. Its ``store`` holds the call records (None keeps them in
            memory only); its ``metrics`` and ``tracing``, when set, count and trace each call.
        agents: agent profiles (``SWITCHBOARD_AGENTS`` or the packaged receptionist when None).
        provider_options: extra keyword arguments per provider name for its factory (tests use
            this to shorten reconnect backoffs, for instance).
        media_timeout_s: how long a prepared call waits for its media socket.
        bridge_overrides: adjusts every call's :class:`~switchboard.bridge.core.BridgeOptions`.
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        agents: AgentBook | None = None,
        provider_options: Mapping[str, Mapping[str, Any]] | None = None,
        media_timeout_s: float = 30.0,
        bridge_overrides: BridgeOverrides | None = None,
        admission: CallAdmission | None = None,
    ) -> None:
        self.gateway = gateway
        self.agents = agents or AgentBook.load(gateway.settings.agents_path)
        #: whether a new call may start (bridge/cluster_calls.py): by default at most
        #: ``SWITCHBOARD_MAX_CALLS`` at once on this node and each agent's
        #: ``max_concurrent_calls`` across the cluster, none while draining; a refused call is busy
        self.admission = admission or ClusterAdmission(
            gateway.cluster,
            max_calls=gateway.settings.max_calls,
            agents=self.agents,
            draining=lambda: gateway.draining,
        )
        #: this node's calls in the cluster's call directory
        self.directory = CallDirectoryWriter(gateway)
        self.provider_options: Mapping[str, Mapping[str, Any]] = provider_options or {}
        self.media_timeout_s = media_timeout_s
        self.bridge_overrides = bridge_overrides
        self.calls: dict[str, ActiveCall] = {}
        self._by_carrier_id: dict[tuple[str, str], str] = {}
        self.finished: dict[str, str] = {}  # call id -> end reason (recent, bounded)
        # HTTP tools and agent_request_url (raises ConfigError when they cannot sign)
        self.planner = CallPlanner.from_settings(gateway.settings, self.agents)
        self._outbound_agents: dict[str, Placement] = {}  # our call id -> placed, until answered
        self._outbound_ids: dict[tuple[str, str], str] = {}  # (carrier, carrier id) -> call id
        self._adopting: set[str] = set()  # calls prepared again here (see _adopt)
        #: calls being resumed here (see resume): the conversation each starts with
        self._resuming: dict[str, list[HistoryTurn]] = {}
        #: ... and the state each carries over (provider, turn, tool state: resume_state.py)
        self._carried: dict[str, CarriedState] = {}
        self._idle = asyncio.Event()  # set while no call is live
        self._idle.set()

    # -- CallHandler -----------------------------------------------------------------------------
    async def prepare(self, call: IncomingCall) -> PreparedCall:
        """Pick agent and provider, create the record, and start connecting the provider."""
        call_id = (
            call.call_id
            or self._outbound_ids.pop((call.carrier.value, call.carrier_call_id), None)
            or f"call_{uuid.uuid4().hex[:20]}"
        )
        placed = self._outbound_agents.pop(call_id, None)
        if placed is None and call.call_id:  # placed on another node of the cluster?
            placed = await placed_call(self.gateway.cluster, call_id)
        routed = await self.planner.route(self.agents, call, call_id, placed)
        agent = routed.agent  # with the call's variables in its prompt and greeting
        if agent is None:
            return PreparedCall(call_id, accepted=False, reason="no agent for this number")
        if placed is None:  # for a node that may adopt the call (its media may land there)
            await remember_route(
                self.gateway.cluster, call_id, Placement(agent.name, routed.variables)
            )
        if (refusal := await self._admit(call, call_id, agent.name)) is not None:
            return refusal
        carried = self._carried.get(call_id)
        try:
            chosen = choose_provider(self.gateway, agent)
            pinned = carried.provider if carried is not None else None
            provider_name = pinned_provider(self.gateway, agent, pinned, chosen)
            tools = self.planner.tools(agent)
            spec = caller_audio(call.carrier, provider_name, agent.carrier_codec)
            runs_as = agent  # on a provider not its own (a resume pinned after a failover)...
            if provider_name == pinned and pinned != chosen:  # ...as a failover made it run
                runs_as = fallback_agent(self.gateway, agent, provider_name, greet=False)
            config = runs_as.session_config(spec, tools.schemas())
            detection = placed.machine_detection if placed is not None else None
            if detection is not None:
                config.greeting = None  # said once a person is known to have answered
            if (history := self._resuming.get(call_id)) is not None:  # bridge/resume.py
                config.history, config.greeting = list(history), RESUME_LINE
            provider = self.gateway.providers.create_provider(
                provider_name, config, **self.provider_options.get(provider_name, {})
            )
        except SwitchboardError as exc:
            logger.error("call %s rejected: %s", call_id, exc, extra={"call_id": call_id})
            await self.admission.release(call_id)
            return PreparedCall(call_id, accepted=False, reason=str(exc), agent=agent.name)
        adopted = call_id in self._adopting or call_id in self._resuming
        sink = await open_record(
            self.gateway, call, call_id, agent, provider_name, config, routed, adopted=adopted
        )
        if sink is not None and call_id in self._resuming:
            data: dict[str, Any] = {"node": self.gateway.node_id, "turns": len(config.history)}
            if carried is not None:
                data |= {"provider": provider_name, "turn": carried.turn}
            sink.timeline("call.resumed", time.monotonic() * 1000.0, data)
        active = ActiveCall(
            call_id=call_id,
            incoming=call,
            agent=agent,
            provider_name=provider_name,
            provider=provider,
            tools=tools,
            connect_task=asyncio.get_running_loop().create_task(
                connect_provider(self.gateway, provider, call_id)
            ),
            sink=sink,
            machine_detection=detection,
            carried=carried,
        )
        self.calls[call_id] = active
        call_started(self.gateway, active, config)
        self._idle.clear()
        self._by_carrier_id[(call.carrier.value, call.carrier_call_id)] = call_id
        asyncio.get_running_loop().call_later(self.media_timeout_s, self._expire, call_id)
        await self.directory.register(active)  # after: nothing above may yield
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
        if (metrics := self.gateway.metrics) is not None:
            metrics.call_refused(call.carrier.value, "busy")
        return PreparedCall(call_id, accepted=False, reason=why, busy=True, agent=agent)

    def _expire(self, call_id: str) -> None:
        active = self.calls.get(call_id)
        if active is None or active.session is not None:
            return
        asyncio.get_running_loop().create_task(self._no_media(active))

    async def _no_media(self, active: ActiveCall) -> None:
        """A prepared call whose media never came here: ended — unless another node holds it
        now (its media went there and the adoption outlived this node's answer, or it was
        resumed there), in which case this stale copy is dropped like a handed-over call, so
        its end is neither recorded nor noted for a call that goes on."""
        call_id = active.call_id
        try:
            entry = await self.gateway.cluster.directory.get(call_id)
        except ClusterUnavailable:
            entry = None
        if entry is not None and entry.node_id != self.gateway.node_id and entry.state != "lost":
            logger.info("call %s: held by %s now; let go here", call_id, entry.node_id)
            await self.hand_over(call_id)
            return
        logger.warning(
            "call %s: no media stream within %.0f s",
            call_id,
            self.media_timeout_s,
            extra={"call_id": call_id},
        )
        await self._end(active, "no_media")

    async def run_media(
        self,
        *,
        call_id: str,
        carrier: TelephonyType,
        codec: MediaCodec,
        socket: MediaSocket,
        started: StreamStarted,
    ) -> None:
        """Bridge the media socket of a prepared call until the call ends (a call another
        node prepared is adopted first: bridge/cluster_calls.py)."""
        active = self.calls.get(call_id)
        if active is None:
            active = await self._adopt(call_id)
        splice = active.session.splice if active is not None and active.session else None
        if splice is not None and splice.expecting:  # the call's next stream (restream.py)
            stream = NextStream(codec, socket, started)
            if splice.offer(stream):
                await stream.released.wait()  # the socket stays open while the call uses it
                return
        if active is None or active.session is not None:
            logger.warning(
                "media for unknown or already bridged call %s", call_id, extra={"call_id": call_id}
            )
            await socket.close(1008, "unknown call")
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.shield(active.connect_task), connect_wait_s(self.gateway, active)
            )
        session = open_session(
            self.gateway,
            active,
            carrier=carrier,
            codec=codec,
            socket=socket,
            started=started,
            overrides=self.bridge_overrides,
            provider_options=self.provider_options,
        )
        active.session = session
        if session.amd is not None:  # verdicts that came before media, acted on at start
            for verdict, answered_by in active.early_verdicts:
                await session.amd.verdict(verdict, answered_by)
        await self.directory.set_state(call_id, "live")
        active.status = "in-progress"
        self.gateway.live.updated(call_id, status="in-progress")
        if active.sink is not None:
            active.sink.answered()
        reason = "internal_error"
        with call_context(call_id):  # every task of the call logs with its id
            try:
                reason = await session.run()
            finally:
                await self._end(active, reason)

    def restreaming(self, carrier: TelephonyType, carrier_call_id: str) -> str | None:
        """The id of the live call ``carrier_call_id`` whose media is moving to a new stream
        (Twilio's digits, bridge/restream.py): its voice webhook connects that call again."""
        call_id = self._by_carrier_id.get((carrier.value, carrier_call_id))
        active = self.calls.get(call_id) if call_id is not None else None
        session = active.session if active is not None else None
        splice = session.splice if session is not None else None
        return call_id if splice is not None and splice.expecting else None

    async def _adopt(self, call_id: str) -> ActiveCall | None:
        """Prepare here a call another node prepared, once that node let it go; None when
        there is no such call or it cannot be taken over."""
        cluster = self.gateway.cluster
        entry = await prepared_elsewhere(cluster, call_id)
        if entry is None:
            return None
        # the call's slots move here before the other node lets it go: were they freed first,
        # another call could take them in between and the agent's limit would be exceeded
        if await self.admission.admit(call_id, agent=entry.agent) is not None:
            return None
        if not await release_elsewhere(cluster, entry):
            await self.admission.release(call_id)
            return None
        logger.info(
            "call %s: media reached this node; taken over from %s",
            call_id,
            entry.node_id,
            extra={"call_id": call_id},
        )
        incoming = IncomingCall(
            carrier=TelephonyType(entry.carrier),
            carrier_call_id=entry.carrier_call_id,
            from_number=entry.from_number,
            to_number=entry.to_number,
            direction=CallDirection(entry.direction or "inbound"),
            call_id=call_id,
        )
        self._adopting.add(call_id)
        try:
            prepared = await self.prepare(incoming)
        finally:
            self._adopting.discard(call_id)
        return self.calls.get(call_id) if prepared.accepted else None

    async def resume(self, call: IncomingCall) -> PreparedCall:
        """Prepare again here a call whose media leg died without us ending it (Twilio's
        ``<Connect action>`` request): same call id and record, its conversation so far from
        the store as the new provider's history (bridge/resume.py). Refused (not accepted)
        when the call was ended on purpose or is still live on this node.

        Raises:
            ClusterUnavailable: the cluster cannot say whether the call was ended on purpose.
        """
        call_id = call.call_id or ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        # the old leg still ending on this node (its record being finalised): a short poll
        while call_id in self.calls and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if call_id in self.calls:
            return PreparedCall(call_id, accepted=False, reason="the call is live here")
        reason = self.finished.get(call_id)
        if reason is None or reason in RESUMABLE_ENDS:
            reason = await ended_on_purpose(self.gateway.cluster, call_id)
        if reason is not None and reason not in RESUMABLE_ENDS:
            return PreparedCall(call_id, accepted=False, reason=f"the call ended: {reason}")
        self._resuming[call_id] = await conversation_of(self.gateway.store, call_id)
        if (state := await carried_state(self.gateway.cluster, call_id)) is not None:
            self._carried[call_id] = state
        try:
            prepared = await self.prepare(call)
        finally:
            self._resuming.pop(call_id, None)
            self._carried.pop(call_id, None)
        logger.info(
            "call %s resumed on this node (%s)",
            call_id,
            "accepted" if prepared.accepted else prepared.reason,
            extra={"call_id": call_id},
        )
        return prepared

    async def hand_over(self, call_id: str) -> bool:
        """Let a prepared call go (its media reached another node, which adopts it): its
        provider session closes and its slots and directory entry go; its record stays for the
        adopting node. False when the call is not here or already bridged."""
        active = self.calls.get(call_id)
        if active is None or active.session is not None or active.ending:
            return False
        active.ending = True
        self.calls.pop(call_id, None)
        self._by_carrier_id.pop(
            (active.incoming.carrier.value, active.incoming.carrier_call_id), None
        )
        active.connect_task.cancel()
        # out of the directory first: the adopting node waits for that (RELEASE_WAIT_S), and
        # closing the provider's socket may take a while on a busy machine
        await self.admission.release(call_id)
        await self.directory.finish(call_id)
        with contextlib.suppress(Exception):
            await active.provider.disconnect()
        self.gateway.live.ended(call_id, "handed_over")
        if (metrics := self.gateway.metrics) is not None:
            config = active.provider.config
            metrics.call_ended(
                carrier=active.incoming.carrier.value,
                provider=active.provider_name,
                model=config.model_id,
                llm_model=config.extra.get("llm_model"),
                reason="handed_over",
                sink=None,
                media=None,
            )
        if not self.calls:
            self._idle.set()
        logger.info("call %s handed over to the node its media reached", call_id)
        return True

    async def _end(self, active: ActiveCall, reason: str) -> None:
        # Stays in ``calls`` until its record is final (graceful shutdown waits on that).
        if active.call_id not in self.calls or active.ending:
            return
        active.ending = True
        # before the record is finalised: another node asked to resume it must see the end
        await note_end(self.gateway.cluster, active.call_id, reason)
        try:
            await self._finish_call(active, reason)
        finally:
            self.calls.pop(active.call_id, None)
            await self.admission.release(active.call_id)
            await self.directory.finish(active.call_id)
            self.gateway.live.ended(active.call_id, reason)
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
        await close_call(self.gateway, active, reason)
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
        elif active.session is None:  # the carrier's progress before media (ringing, answered)
            active.status = status
        # bridged, the call stays in-progress: a progress webhook that arrives late (Telnyx
        # delivers a call's webhooks after its media may have started — behind other calls'
        # webhooks, or handed to the node that adopted the call) must not move it back, else
        # /v1/sessions showed a live call "answered" and the cluster tests saw it as not live

    async def record_dtmf(self, carrier: TelephonyType, carrier_call_id: str, digit: str) -> None:
        call_id = self._by_carrier_id.get((carrier.value, carrier_call_id))
        active = self.calls.get(call_id) if call_id else None
        if active is None:
            return
        if active.session is not None:
            await active.session.keypad.press(digit, "webhook")
        elif active.sink is not None:  # before media: only the timeline
            data = {"digit": digit, "source": "webhook"}
            active.sink.timeline("caller.dtmf", time.monotonic() * 1000.0, data)

    async def machine_detection(
        self, carrier: TelephonyType, carrier_call_id: str, verdict: Verdict, answered_by: str
    ) -> None:
        """A carrier's answering-machine verdict for an outbound call (``telephony/amd.py``)."""
        call_id = self._by_carrier_id.get((carrier.value, carrier_call_id))
        active = self.calls.get(call_id) if call_id else None
        if active is None or active.machine_detection is None:
            logger.debug("AMD verdict for unknown %s call %s", carrier, carrier_call_id)
            return
        if active.session is not None and active.session.amd is not None:
            await active.session.amd.verdict(verdict, answered_by)
        else:  # before media: the session acts on it when it starts
            active.early_verdicts.append((verdict, answered_by))

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
            await session.apply(session.core.request_hang_up("api_hangup", now, cut=True))
            return
        adapter = self.gateway.carriers.get(active.incoming.carrier)
        if adapter is not None:
            await adapter.hang_up(active.incoming.carrier_call_id)
        await self._end(active, "api_hangup")

    async def transfer(self, call_id: str, destination: str, *, mode: str = "cold") -> None:
        """Transfer a live call through its carrier: ``cold`` at once, ``warm`` with hold,
        a briefing and the caller given back when nobody answers (run in the background:
        the outcome is on the call's timeline).

        ``destination`` passes the call's agent's dial plan, as ``transfer_call`` does: a
        directory name, or a destination in the directory or ``transfer_allow``; a warm
        transfer's also ``SWITCHBOARD_OUTBOUND_ALLOW``.

        Raises:
            KeyError: no live call with that id.
            DialRefused: a dial plan does not allow ``destination`` (logged).
            TelephonyError: the carrier refused or is not configured.
            OperatorConflict: no warm transfer on this call (carrier, not bridged, busy).
        """
        active = self.calls[call_id]
        destination = checked_destination(
            active.agent.dial_plan, destination, "API transfer", call_id
        )
        if mode == "warm":
            await operator_control.warm_transfer(active.session, destination, call_id)
            return
        adapter = self.gateway.carriers.get(active.incoming.carrier)
        if adapter is None:
            raise TelephonyError(f"{active.incoming.carrier} call control is not configured")
        await adapter.transfer_call(active.incoming.carrier_call_id, destination)
        if active.session is not None:
            active.session.sink.timeline(
                "call.transferred", active.session.now(), {"to": destination}
            )
            active.session.end("transferred")

    # -- an operator's actions (``bridge/operator_control.py``); each raises KeyError when
    # the call is not live here and OperatorConflict when it is not bridged yet
    def bridged(self, call_id: str) -> CallSession:
        """The session of a live, bridged call."""
        active = self.calls[call_id]
        if active.ending:
            raise KeyError(call_id)
        if active.session is None:
            raise operator_control.OperatorConflict("the call's media has not started yet")
        return active.session

    async def say(self, call_id: str, text: str) -> None:
        """The agent of a live call speaks ``text`` now."""
        await operator_control.say(self.bridged(call_id), text)

    async def whisper(self, call_id: str, text: str, *, respond: bool = False) -> None:
        """Tell a live call's agent ``text``; the caller does not hear it."""
        await operator_control.whisper(self.bridged(call_id), text, respond=respond)

    async def take_over(self, call_id: str, by: str) -> None:
        """``by`` takes a live call over from its agent."""
        keep = operator_control.operator_transcriber(self.gateway.settings) is not None
        await operator_control.take_over(self.bridged(call_id), by, keep_audio=keep)

    async def hand_back(self, call_id: str) -> float:
        """A taken-over call goes back to its agent; the seconds the operator had it."""
        transcribe = operator_control.operator_transcriber(self.gateway.settings)
        return await operator_control.hand_back(self.bridged(call_id), transcribe)

    async def place_call(
        self,
        *,
        carrier: TelephonyType,
        to: str,
        from_: str,
        agent: str | None = None,
        variables: Mapping[str, str] | None = None,
        machine_detection: MachineDetection | None = None,
    ) -> tuple[str, str]:
        """Dial out through ``carrier`` for ``agent``; returns (our call id, carrier call id).

        ``variables`` fill the agent's ``{{name}}`` placeholders and go with its HTTP tools'
        requests. ``machine_detection`` asks the carrier for answering-machine detection
        (docs/telephony.md#answering-machine-detection).

        Raises:
            DialRefused: ``to`` is not allowed by ``SWITCHBOARD_OUTBOUND_ALLOW`` (logged).
            ConfigError: unknown agent, carrier not configured, no public URL, invalid
                variables, or a placeholder of the agent's neither they nor its defaults fill.
            TelephonyError: the carrier refused the call.
        """
        settings = self.gateway.settings
        to = checked_destination(settings.outbound_dial_plan, to, "outbound call")
        adapter = self.gateway.carriers.get(carrier)
        if adapter is None:
            raise ConfigError(f"carrier {carrier} is not configured")
        if not settings.public_url:
            raise ConfigError("set SWITCHBOARD_PUBLIC_URL so the carrier can reach us")
        chosen = self.agents.get(agent) if agent else self.agents.route(from_)
        if chosen is None:
            raise ConfigError(f"unknown agent {agent!r}")
        placement = self.planner.placement(chosen, variables)
        placement = dataclasses.replace(placement, machine_detection=machine_detection)
        options = dial_options(carrier.value, settings.public_url) if machine_detection else {}
        call_id = f"call_{uuid.uuid4().hex[:20]}"
        self._outbound_agents[call_id] = placement
        try:
            await share_placement(self.gateway.cluster, call_id, placement)  # for every node
            carrier_call_id = await adapter.place_call(
                to=to, from_=from_, call_id=call_id, **options
            )
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
        """Shut down: end every live call (records finalised, within 5 s). The carrier
        adapters are the gateway's, closed after this."""
        for active in list(self.calls.values()):
            if active.session is not None:
                active.session.end("shutdown")
            else:
                await self._end(active, "shutdown")
        if not await self.wait_idle(5.0):
            logger.warning("%d call(s) still ending at shutdown", len(self.calls))
        await self.planner.aclose()
