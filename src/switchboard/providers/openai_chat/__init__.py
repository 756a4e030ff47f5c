"""OpenAI Chat Completions: structured (JSON) answers for post-call analysis."""

from switchboard.providers.openai_chat.client import OpenAIChatLLM
from switchboard.providers.openai_chat.codec import json_request, parse_completion

__all__ = ["OpenAIChatLLM", "json_request", "parse_completion"]
