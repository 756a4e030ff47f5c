"""Gemini text LLM (REST ``streamGenerateContent``) for the segmented voice pipeline."""

from __future__ import annotations

from switchboard.providers.gemini_text.client import GeminiTextLLM
from switchboard.providers.gemini_text.codec import SseDecoder, StreamDecoder, request_body
from switchboard.providers.gemini_text.schema import function_declarations, gemini_schema

__all__ = [
    "GeminiTextLLM",
    "SseDecoder",
    "StreamDecoder",
    "function_declarations",
    "gemini_schema",
    "request_body",
]
