"""Agent profiles: who answers which number, with what prompt, voice, provider and tools.

Profiles live in YAML (the packaged ``agents.yaml``, or ``SWITCHBOARD_AGENTS``)::

    version: 1
    agents:
      receptionist:
        numbers: ["*"]                  # E.164 dialled numbers; "*" = catch-all default
        system_prompt: You are a friendly receptionist...
        greeting: Hello! How can I help?
        provider: openai                # or strategy: balanced / requirements: {...}
        fallback: [gemini, deepgram, local]  # failover order (default: the strategy's)
        model: gpt-realtime             # the session model (default: the provider's)
        # llm_model: gemini-2.5-pro     # with provider: deepgram, the pipeline's LLM
        tools:                          # Python tools by name, HTTP tools declared here
          - end_call
          - name: lookup_order          # an HTTP tool (docs/integrations.md#http-tools)
            description: Find an order by its number
            parameters: {type: object, properties: {order_id: {type: string}}}
            http: {url: "https://api.example.com/voice/lookup", headers: {X-Api-Key: "${MYCO_KEY}"}}
        tool_modules: ["myco.tools"]    # import paths of user @tool modules
        variables: {shop: "the shop"}   # defaults of the call's {{name}} variables
        limits: {max_call_seconds: 900, silence_timeout_s: 8, silence_hangup_s: 30,
                 failover_after_s: 3, stall_timeout_s: 5}
        directory: {billing: "+15550100200", desk: "sip:desk@pbx.example.com"}
        transfer_allow: ["+1415*", "sip:*@pbx.example.com"]
        dtmf_menu: {"1": {transfer: billing}, "0": {say: "Goodbye!", hangup: true}}
        thinking_audio: sounds/thinking.ogg  # played while a slow tool runs (WAV, MP3, Ogg)
        hold_audio: sounds/hold.ogg          # a warm transfer's hold sound (default generated)
        transfer_ring_s: 30                  # a warm transfer gives up after this much ringing
        webhooks: {url: "https://crm.example.com/hooks", events: [call.ended, call.analyzed]}
        recording: {enabled: true, format: flac, retention_days: 30}   # docs/recordings.md
        analysis:                       # after the call, by a text LLM (docs/integrations.md)
          summary: true
          success: the caller got an appointment
          extract: {type: object, properties: {name: {type: string}}, required: [name]}

``{{name}}`` in ``system_prompt`` and ``greeting`` is replaced per call by the call's variables
(:meth:`Agent.with_variables`; docs/integrations.md#per-call-variables). ``${VAR}`` in an HTTP
tool's ``url`` and header values is replaced from the environment when the file is loaded.

``transfer_call`` dials only the ``directory``'s destinations (by name or value) and what
``transfer_allow`` lists (exact numbers, ``+prefix*``, SIP users or hosts; see
:mod:`switchboard.telephony.dialplan`); with neither, it refuses every destination.

Validation is strict (unknown keys are errors); :class:`ConfigError` names the file and the
dotted key path of each problem (``agents.sales.limits.max_call_seconds``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from switchboard.audio._pyav import load_av
from switchboard.audio.files import read_audio_file
from switchboard.config import environment
from switchboard.errors import AudioError, ConfigError, ToolError
from switchboard.integrations.analysis import AnalysisSpec
from switchboard.integrations.events import WebhookTarget
from switchboard.integrations.http_config import ENVIRON_CONTEXT, HttpToolConfig
from switchboard.integrations.variables import CallVariables, merged, render
from switchboard.media import AudioSpec
from switchboard.providers.base import SessionConfig
from switchboard.providers.registry import ProviderType, Requirements
from switchboard.telephony.dialplan import DialPlan, parse_allow_entry, parse_destination
from switchboard.tools.builtin import builtin_registry
from switchboard.tools.registry import Tool, ToolRegistry

if TYPE_CHECKING:
    from switchboard.integrations.http_tools import HttpToolClient

__all__ = ["Agent", "AgentBook", "AgentLimits", "RecordingPolicy", "normalise_number"]

CATCH_ALL = "*"
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def normalise_number(number: str) -> str:
    """``"+1 (555) 010-0000"`` → ``"+15550100000"`` (spaces, dashes, dots, parentheses dropped)."""
    return re.sub(r"[\s().-]", "", number)


def _dialled_number(raw: str) -> str:
    number = raw if raw == CATCH_ALL else normalise_number(raw)
    if number != CATCH_ALL and not _E164.match(number):
        raise ValueError(f"{raw!r} is not an E.164 number (+15551234567) or '*'")
    return number


#: A dialled number in E.164 (spaces and punctuation allowed, then dropped) or ``"*"``.
DialledNumber = Annotated[str, AfterValidator(_dialled_number)]


def _transfer_target(raw: str) -> str:
    return parse_destination(raw).uri


def _allow_entry(raw: str) -> str:
    parse_allow_entry(raw)
    return raw.strip()


#: A transfer destination: an E.164 number or a SIP URI (normalised).
TransferTarget = Annotated[str, AfterValidator(_transfer_target)]
#: A ``transfer_allow`` entry (``+14155550100``, ``+1415*``, ``sip:*@pbx.example.com``...).
AllowEntryText = Annotated[str, AfterValidator(_allow_entry)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentLimits(_Strict):
    """Per-call limits.

    Attributes:
        max_call_seconds: the call is ended (with the goodbye) after this long; None = no limit.
        silence_timeout_s: caller silence before the agent re-prompts; None = never.
        silence_hangup_s: caller silence before the agent says goodbye and hangs up; None = never.
        max_concurrent_calls: calls of this agent at once across the whole cluster (prepared
            or bridged); one more is refused at the carrier as busy. None = no limit.
        failover_after_s: a lost provider socket not back within this long fails over.
        stall_timeout_s: a due reply without audio within this long fails over.
    """

    max_call_seconds: int | None = Field(default=900, gt=0)
    max_concurrent_calls: int | None = Field(default=None, gt=0)
    silence_timeout_s: float | None = Field(default=8.0, gt=0)
    silence_hangup_s: float | None = Field(default=30.0, gt=0)
    #: a provider socket lost and not back (reconnect or resumption) within this long fails
    #: over to the next provider (``fallback``)
    failover_after_s: float = Field(default=3.0, gt=0)
    #: a reply due (the caller's turn ended, a tool result sent) with no audio within this
    #: long fails over too: an open socket that stays silent
    stall_timeout_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _hangup_after_reprompt(self) -> AgentLimits:
        if (
            self.silence_timeout_s is not None
            and self.silence_hangup_s is not None
            and self.silence_hangup_s <= self.silence_timeout_s
        ):
            raise ValueError("silence_hangup_s must be longer than silence_timeout_s")
        return self


class RecordingPolicy(_Strict):
    """``recording:`` — a stereo file of each call (left the caller, right what the caller
    heard), under ``SWITCHBOARD_RECORDINGS_DIR`` (docs/recordings.md)."""

    enabled: bool = True
    #: ``wav`` (no extra needed), ``flac``, ``ogg`` (Opus) or ``mp3`` (the ``codecs`` extra).
    format: Literal["wav", "flac", "ogg", "mp3"] = "wav"
    #: Days a recording is kept before the sweeper deletes it; None keeps it until deleted.
    retention_days: int | None = Field(default=None, ge=1, le=36500)

    @model_validator(mode="after")
    def _codec_available(self) -> RecordingPolicy:
        # Checked (and FFmpeg loaded, ~0.15 s) when the agents are read, not in a call's
        # first second: a missing extra is a configuration error, and a call must not stall.
        if self.enabled and self.format != "wav":
            try:
                load_av(f"{self.format} recordings")
            except AudioError as exc:
                raise ValueError(str(exc)) from None
        return self


class MenuEntry(_Strict):
    """What one key of ``dtmf_menu`` does, with no model involved: ``transfer`` (a directory
    name or an allowed destination), ``say`` a line, ``hangup`` (after the line, if any)."""

    transfer: str | None = None
    say: str | None = Field(default=None, min_length=1)
    hangup: bool = False

    @model_validator(mode="after")
    def _does_something(self) -> MenuEntry:
        if self.transfer is None and self.say is None and not self.hangup:
            raise ValueError("a menu entry needs transfer, say or hangup")
        if self.transfer is not None and self.hangup:
            raise ValueError("a menu entry transfers or hangs up, not both")
        return self


MenuKey = Annotated[str, Field(pattern=r"^[0-9*#]$")]


class TurnTaking(_Strict):
    """When caller speech interrupts the agent, and when the caller's turn has ended
    (docs/turn-taking.md; ``bridge/turn_taking.py``, ``providers/pipeline/endpointing.py``).

    Attributes:
        enabled: False: any caller speech over the agent interrupts at once (the provider's
            own VAD decides), and a pipeline ends the turn on silence alone.
        min_interrupt_ms: caller voice over the agent interrupts once it lasted this long...
        min_interrupt_words: ...or once its transcript has this many words that are not
            backchannels.
        backchannels: more backchannel phrases, besides the language's ("mm-hmm", "yeah"...).
        false_interruption_ms: an interruption with no word transcribed this long after the
            caller's voice was noise: the agent resumes the rest of its reply (``resume``).
        resume: resume after a false interruption (else the agent stays silent).
        max_endpoint_ms: pipeline and local providers: how long a caller turn that sounds
            unfinished ("my number is five five...", "and") may wait for more speech.
    """

    enabled: bool = True
    min_interrupt_ms: int = Field(default=600, ge=0, le=10_000)
    min_interrupt_words: int = Field(default=2, ge=1, le=50)
    backchannels: list[str] = Field(default_factory=list)
    false_interruption_ms: int = Field(default=1500, ge=100, le=30_000)
    resume: bool = True
    max_endpoint_ms: int = Field(default=1200, ge=0, le=10_000)


class Agent(_Strict):
    """One agent profile (see the module docstring for the YAML)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    numbers: list[DialledNumber] = Field(default_factory=list)
    system_prompt: str = Field(min_length=1)
    greeting: str | None = None
    voice: str | None = None
    provider: ProviderType | None = None
    strategy: str | None = None
    requirements: dict[str, Any] = Field(default_factory=dict)
    model: str | None = None
    #: Providers a call moves to, in order, when its provider fails (docs/failover.md);
    #: None: the strategy's order after the chosen provider, restricted to configured ones,
    #: ``local`` last when installed; ``[]``: no failover.
    fallback: list[ProviderType] | None = None
    #: The LLM of a segmented pipeline (one of its ``llm_models`` in providers.yaml, e.g.
    #: ``gemini-2.5-pro`` for ``deepgram``); speech-to-speech providers refuse it at creation.
    llm_model: str | None = None
    #: Python tools by name (built-ins and ``tool_modules``), and HTTP tools declared in place.
    tools: list[str | HttpToolConfig] = Field(default_factory=list)
    tool_modules: list[str] = Field(default_factory=list)
    #: Defaults of the call's variables (``{{name}}``); a call's own variables win.
    variables: CallVariables = Field(default_factory=dict)
    limits: AgentLimits = AgentLimits()
    reprompt: str | None = "Are you still there?"
    goodbye: str = "Thank you for calling. Goodbye!"
    apology: str = "I'm sorry, I'm having technical trouble. Please call again later. Goodbye."
    barge_in: bool = True
    language: str = "en-US"
    turn_detection: dict[str, Any] | None = None
    turn_taking: TurnTaking = TurnTaking()
    #: Named transfer destinations (``billing: "+15550100200"``): ``transfer_call`` takes the
    #: names, and these destinations are dialable.
    directory: dict[str, TransferTarget] = Field(default_factory=dict)
    #: Further destinations ``transfer_call`` may dial (numbers, ``+prefix*``, SIP users/hosts);
    #: anything neither here nor in ``directory`` is refused.
    transfer_allow: list[AllowEntryText] = Field(default_factory=list)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    #: This agent's own event receiver (besides ``SWITCHBOARD_WEBHOOK_URL``): ``{url, events}``,
    #: signed with ``SWITCHBOARD_WEBHOOK_SECRET`` (docs/integrations.md).
    webhooks: WebhookTarget | None = None
    #: Post-call analysis by a text LLM: ``{summary, success, extract, provider, model}``.
    analysis: AnalysisSpec | None = None
    #: Audio to the provider: ``auto`` passes G.711 through where the provider takes it;
    #: ``pcm16`` forces the provider's PCM (24 kHz on OpenAI: a resampler each way).
    provider_audio: Literal["auto", "pcm16"] = "auto"
    #: The Telnyx media stream's codec, both ways: ``pcmu``/``pcma`` (8 kHz), ``l16``, ``opus``
    #: or ``g722`` (16 kHz; Opus and G.722 need the ``codecs`` extra). Default: ``pcmu``, or
    #: ``l16`` for Gemini (its 16 kHz input then needs no resampling). Twilio is always μ-law.
    carrier_codec: Literal["pcmu", "pcma", "l16", "opus", "g722"] | None = None
    #: A WAV, MP3 or Ogg/Opus file played to the caller when the call starts, instead of the
    #: provider speaking ``greeting`` (which then only stands for it in the transcript). MP3 and
    #: Ogg/Opus need the ``codecs`` extra; the file is decoded once at load to check it.
    greeting_audio: Path | None = None
    #: Record each call: ``{enabled: true, format: wav|flac|ogg|mp3, retention_days: N}``.
    recording: RecordingPolicy | None = None
    #: Played (looped) while a tool runs longer than ``thinking_after_ms``, until the reply
    #: starts; default a soft sound made locally. WAV, MP3 or Ogg/Opus, as ``greeting_audio``.
    thinking_audio: Path | None = None
    #: How long a tool may run before the caller hears the thinking sound; None: never.
    thinking_after_ms: int | None = Field(default=700, ge=0)
    #: Played (looped) to the caller on hold during a warm transfer; default the soft sound
    #: made locally. WAV, MP3 or Ogg/Opus, as ``greeting_audio``. docs/telephony.md#warm-transfer
    hold_audio: Path | None = None
    #: How long a warm transfer's destination may ring before the caller is given back.
    transfer_ring_s: float = Field(default=30.0, ge=1.0, le=60.0)
    #: Keys that act with no model involved (``{"1": {transfer: billing}}``); other keys go to
    #: the model as a caller input ("caller pressed 4 2"). docs/telephony.md#keypad-dtmf
    dtmf_menu: dict[MenuKey, MenuEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _menu_transfers_allowed(self) -> Agent:
        for key, entry in self.dtmf_menu.items():
            if entry.transfer is not None and not self.dial_plan.check(entry.transfer).allowed:
                raise ValueError(
                    f"dtmf_menu key {key!r}: {entry.transfer!r} is not in the directory "
                    "or transfer_allow"
                )
        return self

    @field_validator("greeting_audio", "thinking_audio", "hold_audio")
    @classmethod
    def _readable_audio(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                read_audio_file(value, 8000)
            except AudioError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[str | HttpToolConfig]) -> list[str | HttpToolConfig]:
        names = [item if isinstance(item, str) else item.name for item in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"tools named more than once: {', '.join(twice)}")
        return value

    @field_validator("requirements")
    @classmethod
    def _known_requirements(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Requirements.from_mapping(value)
        except (ConfigError, TypeError) as exc:
            raise ValueError(str(exc)) from exc
        return value

    @property
    def dial_plan(self) -> DialPlan:
        """Where ``transfer_call`` (and an API transfer of this agent's calls) may dial."""
        return DialPlan(self.transfer_allow, directory=self.directory)

    @property
    def provider_requirements(self) -> Requirements:
        """``requirements`` (and ``strategy``) as the registry's :class:`Requirements`."""
        data = dict(self.requirements)
        if self.strategy is not None:
            data.setdefault("strategy", self.strategy)
        return Requirements.from_mapping(data)

    @property
    def http_tools(self) -> list[HttpToolConfig]:
        """The HTTP tools declared in ``tools``."""
        return [item for item in self.tools if isinstance(item, HttpToolConfig)]

    def tool_registry(
        self, base: ToolRegistry | None = None, *, http: HttpToolClient | None = None
    ) -> ToolRegistry:
        """The tools this agent may call, in the order of ``tools``: built-ins and
        ``tool_modules`` by name, and the HTTP tools declared there.

        Args:
            base: a registry to start from instead of the built-ins (already holding user tools).
            http: sends the HTTP tools' requests; required when the agent declares any.

        Raises:
            ToolError: a tool module cannot be loaded, a tool name is unknown, or HTTP tools
                are declared and ``http`` is None.
        """
        registry = base if base is not None else builtin_registry()
        registry.load_import_paths(self.tool_modules)
        python = registry.subset(item for item in self.tools if isinstance(item, str))
        tools: list[Tool] = []
        for item in self.tools:
            if isinstance(item, str):
                tools.append(python.get(item))
            elif http is None:
                raise ToolError(f"agent {self.name!r} has HTTP tools: they need an HTTP client")
            else:
                tools.append(http.tool(item))
        return ToolRegistry(tools)

    def with_variables(self, variables: Mapping[str, str] | None) -> tuple[Agent, tuple[str, ...]]:
        """This agent for one call: ``variables`` over its defaults, substituted for
        ``{{name}}`` in ``system_prompt`` and ``greeting``.

        Returns:
            The call's agent (its ``variables`` are the merged ones) and the names of the
            placeholders no variable was given for (they became empty text).

        Raises:
            ValueError: the merged variables are invalid (too many, too long...).
        """
        values = merged(self.variables, variables)
        prompt = render(self.system_prompt, values)
        greeting = render(self.greeting, values) if self.greeting is not None else None
        missing = tuple(dict.fromkeys(prompt.missing + (greeting.missing if greeting else ())))
        agent = self.model_copy(
            update={
                "system_prompt": prompt.text,
                "greeting": greeting.text if greeting is not None else None,
                "variables": values,
            }
        )
        return agent, missing

    def session_config(
        self,
        audio_spec: AudioSpec,
        tools_schemas: list[dict[str, Any]] | None = None,
        *,
        model_id: str | None = None,
    ) -> SessionConfig:
        """The :class:`SessionConfig` for a provider session of this agent.

        Args:
            audio_spec: the audio the caller side speaks (e.g. μ-law 8 kHz).
            tools_schemas: ``ToolRegistry.schemas()`` of the tools offered.
            model_id: overrides ``model`` (e.g. the provider's default model when unset).
        """
        extra: dict[str, Any] = {}
        if self.turn_detection is not None:
            extra["turn_detection"] = dict(self.turn_detection)
        if self.provider_audio != "auto":
            extra["provider_audio"] = self.provider_audio
        if self.llm_model is not None:
            extra["llm_model"] = self.llm_model
        if self.barge_in and self.turn_taking.enabled:
            # the bridge decides interruptions; a pipeline also judges its end of turn
            extra["turn_taking"] = {
                "min_interrupt_words": self.turn_taking.min_interrupt_words,
                "backchannels": list(self.turn_taking.backchannels),
                "max_endpoint_ms": self.turn_taking.max_endpoint_ms,
            }
        return SessionConfig(
            model_id=model_id or self.model,
            audio_format=audio_spec.format,
            sample_rate=audio_spec.sample_rate,
            system_prompt=self.system_prompt,
            temperature=self.temperature,
            tools=list(tools_schemas or []),
            voice=self.voice,
            language=self.language,
            greeting=None if self.greeting_audio is not None else self.greeting,
            extra=extra,
        )


class _AgentFile(_Strict):
    version: Literal[1] = 1
    agents: dict[str, dict[str, Any]]


class AgentBook:
    """Every agent profile, with routing by dialled number."""

    def __init__(self, agents: list[Agent], *, source: str = "<memory>") -> None:
        self.source = source
        self._agents: dict[str, Agent] = {}
        self._by_number: dict[str, Agent] = {}
        for agent in agents:
            if agent.name in self._agents:
                raise ConfigError(f"{source}: agent {agent.name!r} is defined twice")
            self._agents[agent.name] = agent
            for number in agent.numbers:
                other = self._by_number.get(number)
                if other is not None:
                    raise ConfigError(
                        f"{source}: agents.{agent.name}.numbers: {number} is already answered "
                        f"by agent {other.name!r}"
                    )
                self._by_number[number] = agent

    @classmethod
    def load(
        cls, path: Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> AgentBook:
        """Load and validate an agents file (the packaged ``agents.yaml`` when ``path`` is None).

        Args:
            path: the file.
            environ: what ``${VAR}`` in HTTP tools expands from; the process environment and
                ``.env`` (:func:`switchboard.config.environment`) when omitted.

        Raises:
            ConfigError: the file is unreadable, not YAML, or invalid; the message names the file
                and the key path of each problem.
        """
        where = str(path) if path else "packaged agents.yaml"
        try:
            text = (
                path.read_text("utf-8")
                if path
                else resources.files("switchboard").joinpath("agents.yaml").read_text("utf-8")
            )
        except OSError as exc:
            raise ConfigError(f"cannot read {where}: {exc.strerror}") from exc
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where} is not valid YAML: {exc}") from exc
        try:
            parsed = _AgentFile.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_problems(exc, ())}") from exc
        agents: list[Agent] = []
        problems: list[str] = []
        context = {ENVIRON_CONTEXT: environment() if environ is None else environ}
        for name, body in parsed.agents.items():
            if "name" in body and body["name"] != name:
                problems.append(f"agents.{name}.name: differs from its key")
                continue
            try:
                agents.append(Agent.model_validate({**body, "name": name}, context=context))
            except ValidationError as exc:
                problems.append(_problems(exc, ("agents", name)))
        if problems:
            raise ConfigError(f"{where}: {'; '.join(problems)}")
        return cls(agents, source=where)

    def route(self, to_number: str) -> Agent | None:
        """The agent answering ``to_number``: exact match first, then the ``"*"`` default."""
        return self._by_number.get(normalise_number(to_number)) or self._by_number.get(CATCH_ALL)

    def get(self, name: str) -> Agent | None:
        """The agent called ``name``, or None."""
        return self._agents.get(name)

    @property
    def default(self) -> Agent | None:
        """The catch-all agent, if there is one."""
        return self._by_number.get(CATCH_ALL)

    def names(self) -> list[str]:
        return list(self._agents)

    def __iter__(self) -> Iterator[Agent]:
        return iter(list(self._agents.values()))

    def __len__(self) -> int:
        return len(self._agents)


def _problems(exc: ValidationError, prefix: tuple[str, ...]) -> str:
    return "; ".join(
        f"{'.'.join([*prefix, *(str(p) for p in err['loc'])]) or '<root>'}: {err['msg']}"
        for err in exc.errors()
    )
