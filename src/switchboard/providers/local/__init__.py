"""The offline *local* provider: Silero VAD + Whisper tiny.en, a rule-based agent, Piper.

Nothing leaves the machine and no key is needed: the models ship inside pip packages (the
``[local]`` extra). The parts plug into the generic pipeline engine
(:class:`~switchboard.providers.pipeline.PipelineProvider`):

* :class:`~.stt.LocalSTT` — VAD-segmented utterances transcribed by Whisper on a shared pool;
* :class:`~.dialog.RuleDialog` — intents and templates from an agent YAML (:mod:`.agent`);
* :class:`~.tts.PiperTTS` — the joe voice, sentence by sentence, in the call's codec and rate.

:func:`create_provider` is the registry's factory (``switchboard.providers.local:create_provider``).
Importing this package does not load any model; :func:`~.models.require` turns a missing extra
into a :class:`~switchboard.errors.ConfigError` naming ``pip install 'switchboard-voice[local]'``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, ClassVar

from switchboard.catalog import Catalog
from switchboard.config import Settings
from switchboard.providers.base import (
    AudioFormat,
    AudioSpec,
    ProviderCapabilities,
    SessionConfig,
)
from switchboard.providers.local.agent import AgentScript, load_agent
from switchboard.providers.local.dialog import RuleDialog
from switchboard.providers.local.stt import LocalSTT
from switchboard.providers.local.tts import PiperTTS
from switchboard.providers.pipeline import PipelineParts, PipelineProvider

__all__ = [
    "AgentScript",
    "LocalProvider",
    "LocalSTT",
    "PiperTTS",
    "RuleDialog",
    "create_provider",
    "load_agent",
]

_RAW = (AudioFormat.PCM16, AudioFormat.ULAW, AudioFormat.ALAW)
_TTS_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
#: The catalogue endpoint of the local models (``providers.yaml`` ``endpoint``).
LOCAL_ENDPOINT = "local"


class LocalProvider(PipelineProvider):
    """The pipeline engine with the local parts; loads the Piper voice while STT starts.

    Its parts are built for each configuration (see :func:`create_provider`), so the
    configuration may be given at creation or to ``connect``.

    Args:
        config: the session configuration, or ``None`` to give it to ``connect``.
        agent: the rule agent to use whatever ``config.extra["agent_yaml"]`` says.
        vad_options: options of the VAD segmenter.
        end_on_complete: end the caller's utterance as soon as its early transcript sounds
            finished (:class:`~.stt.LocalSTT`); False: always after the VAD's full silence.
        window: decode short utterances on Whisper's 10 s window (:mod:`.window`); False: 30 s.
        length_scale: Piper's pace.
        catalog: when given, a ``model_id`` that is not a local model of the catalogue, or any
            ``llm_model``, is refused with :class:`ConfigError` (here or in ``connect(config)``).
        **engine: the pipeline engine's keyword arguments (``barge_in``, ``greeting``...).
    """

    capabilities: ClassVar[ProviderCapabilities] = ProviderCapabilities(
        realtime=False,
        function_calling=True,
        interruption=True,
        transcription=True,
        audio_formats=(AudioFormat.ULAW, AudioFormat.PCM16, AudioFormat.ALAW),
        input_sample_rates=(8000, 16000),
        output_sample_rates=(8000, 16000, 22050),
        languages=("en",),
        cost_tier="free",
        typical_latency_ms=800,
    )

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        agent: AgentScript | None = None,
        vad_options: dict[str, Any] | None = None,
        end_on_complete: bool = True,
        window: bool = True,
        length_scale: float | None = None,
        catalog: Catalog | None = None,
        **engine: Any,
    ) -> None:
        self._catalog = catalog
        self._fixed_agent = agent
        self._agent: AgentScript | None = None  # the current configuration's
        self._vad_options = vad_options
        self._end_on_complete = end_on_complete
        self._window = window
        self._length_scale = length_scale
        super().__init__(parts=self._local_parts, **engine)
        if config is not None:
            self._set_config(config)

    def _adopt_config(self, config: SessionConfig) -> SessionConfig:
        if self._catalog is not None:  # it runs Whisper tiny.en and its rules, nothing else
            if config.model_id is not None:
                self._catalog.session_model("local", config.model_id, serves=LOCAL_ENDPOINT)
            if config.extra.get("llm_model") is not None:
                self._catalog.pipeline_llm("local", config.extra["llm_model"])
        agent = self._fixed_agent or load_agent(config.extra.get("agent_yaml"))
        if config.greeting is None and agent.greeting:
            config = dataclasses.replace(config, greeting=agent.greeting)
        self._agent = agent
        return super()._adopt_config(config)

    def _local_parts(self, config: SessionConfig) -> PipelineParts:
        assert self._agent is not None  # set by _adopt_config just before
        stt = LocalSTT(
            _input_spec(config),
            vad_options=self._vad_options,
            end_on_complete=self._end_on_complete,
            window=self._window,
        )
        tts = PiperTTS(_output_spec(config), length_scale=self._length_scale)
        return PipelineParts(stt, RuleDialog(self._agent), tts)

    async def _do_connect(self) -> None:
        warm = getattr(self.tts, "warm_up", None)
        task = asyncio.ensure_future(warm()) if warm is not None else None
        try:
            await super()._do_connect()
        finally:
            if task is not None:
                await task


def _input_spec(config: SessionConfig) -> AudioSpec:
    spec = config.audio_spec
    if spec.format in _RAW and spec.sample_rate in (8000, 16000):
        return spec
    return AudioSpec(AudioFormat.PCM16, 16000)


def _output_spec(config: SessionConfig) -> AudioSpec:
    spec = config.audio_spec
    if spec.format in _RAW and spec.sample_rate in _TTS_RATES:
        return spec
    return AudioSpec(AudioFormat.PCM16, 22050)


def create_provider(
    config: SessionConfig | None = None, *, settings: Settings | None = None, **options: Any
) -> LocalProvider:
    """Build the local provider for one call (the registry's factory).

    Args:
        config: the session; ``config.extra["agent_yaml"]`` names the agent file (the packaged
            receptionist otherwise); its greeting is used when ``config.greeting`` is unset.
            Caller audio in ``config.audio_spec`` is used as is when it is raw at 8 or 16 kHz
            (μ-law 8 kHz for phones); TTS speaks in ``config.audio_spec`` too. ``None``: give
            it to ``connect`` instead.
        settings: its catalogue, to refuse a ``model_id`` other than the local models
            (``whisper-tiny.en``) or an ``llm_model`` (the rules are the local LLM); the local
            provider needs no keys.
        **options: ``vad_options`` (dict for the VAD segmenter), ``end_on_complete``
            and ``window`` (:class:`LocalProvider`), ``length_scale`` (Piper pace),
            ``agent`` (an :class:`AgentScript` object), and the engine's own keyword arguments
            (``barge_in``, ``greeting``, ``max_history_turns``...).

    Raises:
        ConfigError: the agent file is invalid, or the model is not a local one (models load
            later, in ``connect``).
    """
    catalog = settings.catalog if settings is not None else None
    return LocalProvider(config, catalog=catalog, **options)
