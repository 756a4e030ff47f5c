"""``usageMetadata`` (ai.google.dev/api/live#usagemetadata) → :class:`Usage`.

Token counts split by modality when the per-modality details are present
(``promptTokensDetails``/``responseTokensDetails``: ``[{modality, tokenCount}]``). Without
details, prompt tokens count as text input and response tokens as audio output (the session's
only response modality). ``thoughtsTokenCount`` is billed as text output,
``toolUsePromptTokenCount`` as text input. Whether several
``usageMetadata`` in one turn are cumulative or per message is UNCONFIRMED: the protocol keeps
the last one of the turn (cumulative reading), which is also right when only the final
``turnComplete`` carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchboard.providers.base import Usage

__all__ = ["usage_from_metadata"]


def _by_modality(details: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in details if isinstance(details, list) else []:
        if isinstance(item, dict):
            modality = str(item.get("modality", "TEXT"))
            out[modality] = out.get(modality, 0) + int(item.get("tokenCount", 0))
    return out


def usage_from_metadata(meta: Mapping[str, Any]) -> Usage:
    """Convert one ``usageMetadata`` object (empty → zero usage)."""
    prompt = int(meta.get("promptTokenCount", 0))
    response = int(meta.get("responseTokenCount", meta.get("candidatesTokenCount", 0)))
    thoughts = int(meta.get("thoughtsTokenCount", 0))
    tool_prompt = int(meta.get("toolUsePromptTokenCount", 0))
    p = _by_modality(meta.get("promptTokensDetails"))
    r = _by_modality(meta.get("responseTokensDetails") or meta.get("candidatesTokensDetails"))
    if p:
        in_audio = p.get("AUDIO", 0)
        in_text = sum(v for k, v in p.items() if k != "AUDIO")
    else:
        in_audio, in_text = 0, prompt
    if r:
        out_audio = r.get("AUDIO", 0)
        out_text = sum(v for k, v in r.items() if k != "AUDIO")
    else:
        out_audio, out_text = response, 0
    return Usage(
        input_text_tokens=in_text + tool_prompt,
        input_audio_tokens=in_audio,
        cached_input_tokens=int(meta.get("cachedContentTokenCount", 0)),
        output_text_tokens=out_text + thoughts,
        output_audio_tokens=out_audio,
    )
