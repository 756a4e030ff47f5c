"""The DEEPGRAM provider: Deepgram live STT → Gemini text LLM → Deepgram Aura TTS.

* :mod:`.listen` / :mod:`.stt` — live transcription (pure protocol / websocket client);
* :mod:`.speak` / :mod:`.tts` — Aura synthesis (pure protocol / websocket + REST client);
* :func:`create_provider` — the registry factory, building a :class:`PipelineProvider`.

Phone calls (``config.audio_format`` μ-law) pass μ-law 8 kHz straight through both ways: Deepgram
accepts ``encoding=mulaw&sample_rate=8000`` and Aura produces it.
"""

from __future__ import annotations

from typing import Any

import httpx

from switchboard.config import Settings
from switchboard.errors import ConfigError
from switchboard.providers.base import AudioFormat, SessionConfig
from switchboard.providers.deepgram.listen import ListenEncoding, ListenOptions, ListenProtocol
from switchboard.providers.deepgram.speak import WS_SAMPLE_RATES, SpeakOptions, SpeakProtocol
from switchboard.providers.deepgram.stt import DeepgramSTT
from switchboard.providers.deepgram.tts import DeepgramTTS
from switchboard.providers.pipeline import PipelineParts, PipelineProvider

__all__ = [
    "DeepgramSTT",
    "DeepgramTTS",
    "ListenOptions",
    "ListenProtocol",
    "SpeakOptions",
    "SpeakProtocol",
    "create_provider",
    "listen_options_for",
    "speak_options_for",
]

_ENGINE_OPTIONS = ("max_history_turns", "max_history_tokens", "barge_in", "greeting")
#: The catalogue endpoint the STT speaks to (``providers.yaml`` ``endpoint``).
LISTEN_ENDPOINT = "deepgram.listen"
_STT_OPTIONS = ("keepalive_s", "max_reconnects", "reconnect_delay_s")


def listen_options_for(config: SessionConfig, model: str, **overrides: Any) -> ListenOptions:
    """STT options matching the call's audio: μ-law/A-law 8 kHz as is, PCM16 at 8 or 16 kHz."""
    encoding: ListenEncoding
    match config.audio_format:
        case AudioFormat.ULAW:
            encoding, rate = "mulaw", 8000
        case AudioFormat.ALAW:
            encoding, rate = "alaw", 8000
        case _:
            encoding = "linear16"
            rate = config.sample_rate if config.sample_rate in (8000, 16000) else 16000
    return ListenOptions(
        model=model, encoding=encoding, sample_rate=rate, language=config.language, **overrides
    )


def speak_options_for(config: SessionConfig, voice: str) -> SpeakOptions:
    """TTS output in the call's codec and rate (μ-law 8 kHz for phones, linear16 otherwise)."""
    match config.audio_format:
        case AudioFormat.ULAW:
            return SpeakOptions(voice, "mulaw", 8000)
        case AudioFormat.ALAW:
            return SpeakOptions(voice, "alaw", 8000)
        case _:
            rate = config.sample_rate if config.sample_rate in WS_SAMPLE_RATES else 24000
            return SpeakOptions(voice, "linear16", rate)


def create_provider(
    config: SessionConfig | None, *, settings: Settings, **options: Any
) -> PipelineProvider:
    """Build the Deepgram pipeline (registry factory for ``ProviderType.DEEPGRAM``).

    STT model is ``config.model_id`` or the catalogue's default (``nova-2``); it must be a
    streaming model (``endpoint: deepgram.listen``: Deepgram does not stream Whisper). The LLM is
    ``config.extra["llm_model"]`` (an agent's ``llm_model``), one of the catalogue's
    ``llm_models``, or else ``components.llm`` (``gemini-2.5-flash``), asked for the
    ``thinking_budget`` its catalogue entry gives (``gemini-2.5-pro``: 128). The voice is
    ``config.voice`` or the catalogue's default (``aura-asteria-en``). The parts are built for
    each configuration, so ``config`` may be ``None`` here and given to ``connect`` instead.

    Options: ``max_history_turns``, ``max_history_tokens``, ``barge_in``, ``greeting`` (engine);
    ``keepalive_s``, ``max_reconnects``, ``reconnect_delay_s``, ``endpointing``,
    ``utterance_end_ms`` (STT); ``use_websocket`` (TTS); ``http_client`` (shared by LLM and TTS);
    ``include_thoughts`` (ask a thinking LLM for thought summaries: counted, never spoken).

    Raises:
        ConfigError: ``DEEPGRAM_API_KEY`` or ``GEMINI_API_KEY`` is missing, an unknown option, or
            (here or in ``connect(config)``) an STT model that does not stream or an
            ``llm_model`` outside ``llm_models``.
    """
    from switchboard.providers.gemini_text import GeminiTextLLM  # sibling provider package

    entry = settings.catalog.providers.get("deepgram")
    default_model = entry.default_model if entry else "nova-2"
    default_voice = (entry.default_voice if entry else None) or "aura-asteria-en"
    llm_model = (entry.components.get("llm") if entry else None) or "gemini-2.5-flash"
    engine = {k: options.pop(k) for k in _ENGINE_OPTIONS if k in options}
    stt_kw = {k: options.pop(k) for k in _STT_OPTIONS if k in options}
    listen_kw = {k: options.pop(k) for k in ("endpointing", "utterance_end_ms") if k in options}
    use_websocket = bool(options.pop("use_websocket", True))
    include_thoughts = bool(options.pop("include_thoughts", False))
    client: httpx.AsyncClient | None = options.pop("http_client", None)
    if options:
        raise ConfigError(f"unknown Deepgram provider options: {', '.join(sorted(options))}")
    if not settings.secret("gemini_api_key"):
        raise ConfigError("the Deepgram pipeline needs GEMINI_API_KEY", missing=("GEMINI_API_KEY",))

    def parts(config: SessionConfig) -> PipelineParts:
        stt_model = config.model_id or default_model
        # A model Deepgram would refuse on the live socket (whisper) or an LLM this pipeline
        # does not offer fails here, at creation, with the alternatives named.
        catalog = settings.catalog
        catalog.session_model("deepgram", stt_model, serves=LISTEN_ENDPOINT)
        chosen = catalog.pipeline_llm("deepgram", config.extra.get("llm_model"))
        llm_name = chosen[0] if chosen else str(config.extra.get("llm_model") or llm_model)
        budget = chosen[1].thinking_budget if chosen else None
        stt = DeepgramSTT(
            settings=settings,
            options=listen_options_for(config, stt_model, **listen_kw),
            **stt_kw,
        )
        tts = DeepgramTTS(
            settings=settings,
            options=speak_options_for(config, config.voice or default_voice),
            use_websocket=use_websocket,
            client=client,
        )
        llm = GeminiTextLLM(
            settings=settings,
            model=llm_name,
            client=client,
            thinking_budget=budget,
            include_thoughts=include_thoughts,
        )
        return PipelineParts(stt, llm, tts)

    return PipelineProvider(config, parts=parts, **engine)
