"""The generic segmented voice pipeline: STT → LLM → TTS behind the provider interface.

* :mod:`.components` — the SpeechToText / TextLLM / TextToSpeech protocols and their events;
* :mod:`.sentences` — streaming sentence splitter (LLM text → TTS sentences);
* :mod:`.history` — the bounded conversation history;
* :mod:`.turns` — the pure turn-taking, barge-in and tool-loop state machine, with
  :mod:`.responses` (an agent reply's state), :mod:`.endpointing` and :mod:`.endpoint_wait`
  (whether a caller turn sounds finished; the wait of one that does not, in caller audio),
  and :mod:`.actions` — what it asks the engine to do;
* :mod:`.engine` — :class:`PipelineProvider`, the asyncio session that runs the parts.
"""

from switchboard.providers.pipeline.components import (
    ChatMessage,
    LLMDone,
    LLMEvent,
    LLMFunctionCall,
    LLMTextDelta,
    PartsBuilder,
    PipelineParts,
    SpeechToText,
    SttConnection,
    SttEvent,
    SttSpeechStarted,
    SttTranscript,
    SttUtteranceEnd,
    TextLLM,
    TextToSpeech,
)
from switchboard.providers.pipeline.engine import PipelineProvider
from switchboard.providers.pipeline.history import ConversationHistory, estimate_tokens
from switchboard.providers.pipeline.sentences import SentenceSplitter, split_sentences
from switchboard.providers.pipeline.turns import TurnAction, TurnManager, heard_text

__all__ = [
    "ChatMessage",
    "ConversationHistory",
    "LLMDone",
    "LLMEvent",
    "LLMFunctionCall",
    "LLMTextDelta",
    "PartsBuilder",
    "PipelineParts",
    "PipelineProvider",
    "SentenceSplitter",
    "SpeechToText",
    "SttConnection",
    "SttEvent",
    "SttSpeechStarted",
    "SttTranscript",
    "SttUtteranceEnd",
    "TextLLM",
    "TextToSpeech",
    "TurnAction",
    "TurnManager",
    "estimate_tokens",
    "heard_text",
    "split_sentences",
]
