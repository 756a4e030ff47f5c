"""Scripted responses of the OpenAI Realtime emulator, in the documented GA event order.

Audio reply: ``response.created`` → ``rate_limits.updated`` → ``response.output_item.added`` →
``conversation.item.added`` → ``response.content_part.added`` → N ×
(``response.output_audio.delta``, ``response.output_audio_transcript.delta``) →
``response.output_audio.done`` → ``response.output_audio_transcript.done`` →
``response.content_part.done`` → ``response.output_item.done`` → ``conversation.item.done`` →
``response.done``. Function call: item ``function_call`` with arguments deltas/done. Both are
steps 3 and 4 of ``docs/wire/openai-realtime.md#response-sequence`` (vendor page:
https://platform.openai.com/docs/guides/realtime-conversations).

The connection is seen through :class:`ResponseTarget`, so this module never imports it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Protocol

from switchboard.emulators.openai_realtime.core import IdMaker, RealtimeSessionState
from switchboard.emulators.openai_realtime.host import EmulatorHost

__all__ = ["ResponseTarget", "run_response"]


class ResponseTarget(Protocol):
    """The connection a response streams on (:class:`~.connection.RealtimeConnection`)."""

    emu: EmulatorHost
    ids: IdMaker
    state: RealtimeSessionState
    items: dict[str, dict[str, Any]]
    item_audio_ms: dict[str, float]
    last_item: str | None

    async def send(self, event: dict[str, Any]) -> None:
        """Send one server event (``event_id`` added)."""
        ...

    def audio_for(self, text: str) -> bytes:
        """Speech-like audio for ``text`` in the session's output format."""
        ...


def _usage(in_tokens: int, out_text: int, out_audio: int) -> dict[str, Any]:
    return {
        "total_tokens": in_tokens + out_text + out_audio,
        "input_tokens": in_tokens,
        "output_tokens": out_text + out_audio,
        "input_token_details": {
            "text_tokens": in_tokens // 4,
            "audio_tokens": in_tokens - in_tokens // 4,
            "cached_tokens": 0,
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }


async def run_response(conn: ResponseTarget, rid: str, tool: Any, say: str) -> None:
    """Stream one response on ``conn`` (cancelled by barge-in or ``response.cancel``)."""
    created = {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []}
    created["output_modalities"] = ["audio"]
    await conn.send({"type": "response.created", "response": created})
    limits = [
        {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.01},
        {"name": "tokens", "limit": 400000, "remaining": 399000, "reset_seconds": 0.15},
    ]
    await conn.send({"type": "rate_limits.updated", "rate_limits": limits})
    if tool is not None:
        item = await _function_call(conn, rid, tool)
        usage = _usage(120, 20, 0)
    else:
        item = await _speak(conn, rid, say)
        usage = _usage(120, len(say) // 4 + 1, len(say) // 2 + 1)
    conn.items[item["id"]].pop("_resp", None)
    response = dict(created, status="completed", status_details=None, output=[item], usage=usage)
    await conn.send({"type": "response.done", "response": response})
    conn.emu.response_finished()


async def _begin_item(conn: ResponseTarget, rid: str, item: dict[str, Any]) -> str:
    previous = conn.last_item
    conn.items[item["id"]] = dict(item, _resp=rid)
    conn.last_item = item["id"]
    await conn.send(
        {"type": "response.output_item.added", "response_id": rid, "output_index": 0, "item": item}
    )
    await conn.send({"type": "conversation.item.added", "item": item, "previous_item_id": previous})
    return str(previous) if previous else ""


async def _end_item(conn: ResponseTarget, rid: str, item: dict[str, Any], previous: str) -> None:
    conn.items[item["id"]].update(item)
    await conn.send(
        {"type": "response.output_item.done", "response_id": rid, "output_index": 0, "item": item}
    )
    await conn.send(
        {"type": "conversation.item.done", "item": item, "previous_item_id": previous or None}
    )


async def _function_call(conn: ResponseTarget, rid: str, tool: Any) -> dict[str, Any]:
    item_id, call_id = conn.ids("item"), conn.ids("call")
    name = str(tool["name"])
    raw = tool.get("raw_arguments")  # lets tests send malformed JSON on purpose
    arguments = str(raw) if raw is not None else json.dumps(tool.get("arguments", {}))
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": "in_progress",
        "call_id": call_id,
        "name": name,
        "arguments": "",
    }
    previous = await _begin_item(conn, rid, item)
    base = {"response_id": rid, "item_id": item_id, "output_index": 0, "call_id": call_id}
    await conn.send({"type": "response.function_call_arguments.delta", **base, "delta": arguments})
    await conn.send(
        {
            "type": "response.function_call_arguments.done",
            **base,
            "name": name,
            "arguments": arguments,
        }
    )
    done = dict(item, status="completed", arguments=arguments)
    await _end_item(conn, rid, done, previous)
    return done


async def _speak(conn: ResponseTarget, rid: str, say: str) -> dict[str, Any]:
    item_id = conn.ids("item")
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    previous = await _begin_item(conn, rid, item)
    conn.item_audio_ms[item_id] = 0.0
    base = {"response_id": rid, "item_id": item_id, "output_index": 0, "content_index": 0}
    await conn.send(
        {"type": "response.content_part.added", **base, "part": {"type": "audio", "transcript": ""}}
    )
    fmt, rate = conn.state.output_format
    audio = conn.audio_for(say)
    bps = 2 if fmt == "pcm16" else 1
    step = max(bps, rate * conn.emu.chunk_ms // 1000 * bps)
    chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
    words = say.split(" ")
    per_chunk = max(1, -(-len(words) // max(1, len(chunks))))
    conn.state.voice_locked = True
    for n, chunk in enumerate(chunks):
        delta = base64.b64encode(chunk).decode("ascii")
        await conn.send({"type": "response.output_audio.delta", **base, "delta": delta})
        conn.item_audio_ms[item_id] += len(chunk) / bps * 1000 / rate
        piece = words[n * per_chunk : (n + 1) * per_chunk]
        if piece:
            text = " ".join(piece) + (" " if (n + 1) * per_chunk < len(words) else "")
            await conn.send(
                {"type": "response.output_audio_transcript.delta", **base, "delta": text}
            )
        await asyncio.sleep(len(chunk) / bps / rate if conn.emu.realtime else 0)
    await conn.send({"type": "response.output_audio.done", **base})
    await conn.send({"type": "response.output_audio_transcript.done", **base, "transcript": say})
    part = {"type": "audio", "transcript": say}
    await conn.send({"type": "response.content_part.done", **base, "part": part})
    done = dict(item, status="completed", content=[{"type": "output_audio", "transcript": say}])
    await _end_item(conn, rid, done, previous)
    return done
