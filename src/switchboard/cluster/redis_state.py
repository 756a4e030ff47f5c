"""Shared state in Redis: claims, the call directory and slot limits (docs/cluster.md).

Each operation is one Lua script or one command, so it is atomic across nodes; where the data
lives in Redis is listed in docs/cluster.md#what-lives-where. The inbox (ordered messages to
one node) is in ``redis_inbox.py``; :class:`RedisState` ties them together for one node.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from switchboard.cluster import redis_lua
from switchboard.cluster.base import (
    Admission,
    CallEntry,
    CallState,
    NodeInfo,
    SlotRequest,
    check_name,
)
from switchboard.cluster.channels import DEFAULT_READER_MAXLEN, ChannelReader
from switchboard.cluster.redis import RedisLink
from switchboard.cluster.redis_channels import RedisChannels
from switchboard.cluster.redis_inbox import RedisInbox

__all__ = ["RedisState"]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class _RedisClaims:
    def __init__(self, link: RedisLink, namespace: str, node_id: str) -> None:
        self._link, self._node = link, node_id
        self._namespace = check_name(namespace, "namespace")
        self._claim = link.client.register_script(redis_lua.CLAIM)
        self._release = link.client.register_script(redis_lua.RELEASE_CLAIM)

    def _key(self, key: str) -> str:
        return self._link.key("claim", self._namespace, key)

    async def claim(self, key: str, *, ttl_s: float) -> bool:
        # A fresh token per claim: a retry of this very call finds its own token and still
        # wins, while a second request (same node or not) finds a different one and loses.
        token = f"{self._node} {uuid.uuid4().hex}"
        with self._link.errors("claim"):
            won = await self._claim(keys=[self._key(key)], args=[token, _ms(ttl_s)])
        return bool(won)

    async def release(self, key: str) -> None:
        with self._link.errors("release claim"):
            await self._release(keys=[self._key(key)], args=[f"{self._node} "])


class _RedisDirectory:
    def __init__(self, link: RedisLink) -> None:
        self._link = link
        client = link.client
        self._register = client.register_script(redis_lua.REGISTER)
        self._set_state = client.register_script(redis_lua.SET_STATE)
        self._remove = client.register_script(redis_lua.REMOVE)
        self._heartbeat = client.register_script(redis_lua.HEARTBEAT)
        self._nodes = client.register_script(redis_lua.NODES)
        self._sweep = client.register_script(redis_lua.SWEEP)

    def _call(self, call_id: str) -> str:
        return self._link.key("call", call_id)

    async def register(self, entry: CallEntry) -> None:
        link = self._link
        keys = [
            self._call(entry.call_id),
            link.key("calls"),
            link.key("node-calls", entry.node_id),
            link.key("carrier", entry.carrier, entry.carrier_call_id),
        ]
        fields = [item for pair in entry.to_fields().items() for item in pair]
        with link.errors("register call"):
            await self._register(keys=keys, args=[entry.call_id, link.prefix, *fields])

    async def set_state(self, call_id: str, state: CallState) -> bool:
        with self._link.errors("set call state"):
            found = await self._set_state(
                keys=[self._call(call_id)], args=[state, self._link.prefix]
            )
        return bool(found)

    async def remove(self, call_id: str, *, node_id: str | None = None) -> None:
        link = self._link
        with link.errors("remove call"):
            await self._remove(
                keys=[self._call(call_id), link.key("calls")],
                args=[call_id, link.prefix, node_id or ""],
            )

    async def get(self, call_id: str) -> CallEntry | None:
        with self._link.errors("read call"):
            raw = await self._link.client.hgetall(self._call(call_id))
        return CallEntry.from_fields({str(k): str(v) for k, v in raw.items()}) if raw else None

    async def find_carrier_call(self, carrier: str, carrier_call_id: str) -> CallEntry | None:
        with self._link.errors("find carrier call"):
            call_id = await self._link.client.get(
                self._link.key("carrier", carrier, carrier_call_id)
            )
        return None if call_id is None else await self.get(str(call_id))

    async def list_calls(self, *, node_id: str | None = None) -> list[CallEntry]:
        link = self._link
        index = link.key("calls") if node_id is None else link.key("node-calls", node_id)
        with link.errors("list calls"):
            call_ids = sorted(str(member) for member in await link.client.smembers(index))
            async with link.client.pipeline(transaction=False) as pipe:
                for call_id in call_ids:
                    pipe.hgetall(self._call(call_id))
                rows: list[dict[str, str]] = await pipe.execute()
            gone = [cid for cid, row in zip(call_ids, rows, strict=True) if not row]
            if gone:  # lost calls whose retention ended: their hashes expired
                await link.client.srem(index, *gone)
        entries = [CallEntry.from_fields(row) for row in rows if row]
        return sorted(entries, key=lambda entry: (entry.started_at, entry.call_id))

    async def heartbeat(self, node_id: str, *, ttl_s: float) -> bool:
        with self._link.errors("heartbeat"):
            fresh = await self._heartbeat(
                keys=[self._link.key("nodes")], args=[node_id, _ms(ttl_s)]
            )
        return bool(fresh)

    async def nodes(self) -> list[NodeInfo]:
        with self._link.errors("list nodes"):
            reply: list[Any] = await self._nodes(keys=[self._link.key("nodes")])
        now = int(reply[0])
        pairs = zip(reply[1::2], reply[2::2], strict=True)
        return [NodeInfo(str(node), (float(expiry) - now) / 1000) for node, expiry in pairs]

    async def sweep(self, *, retention_s: float) -> list[str]:
        with self._link.errors("sweep dead nodes"):
            marked: list[str] = await self._sweep(
                keys=[self._link.key("nodes")], args=[self._link.prefix, _ms(retention_s)]
            )
        return sorted(marked)

    async def leave(self, node_id: str) -> None:
        with self._link.errors("leave"):
            await self._link.client.zadd(self._link.key("nodes"), {node_id: 0})


class _RedisLimits:
    def __init__(self, link: RedisLink, node_id: str) -> None:
        self._link, self._node = link, node_id
        self._acquire = link.client.register_script(redis_lua.ACQUIRE)
        self._count = link.client.register_script(redis_lua.COUNT)

    def _slots(self, scope: str) -> str:
        return self._link.key("slots", check_name(scope, "scope"))

    def _member(self, call_id: str) -> str:
        return f"{self._node}|{call_id}"

    async def acquire(self, call_id: str, requests: Sequence[SlotRequest]) -> Admission:
        keys = [self._link.key("nodes"), *(self._slots(r.scope) for r in requests)]
        args: list[str | int] = [self._member(call_id), *(r.limit for r in requests)]
        with self._link.errors("acquire slots"):
            full = int(await self._acquire(keys=keys, args=args))
        return Admission(True) if full == 0 else Admission(False, requests[full - 1].scope)

    async def release(self, call_id: str, scopes: Sequence[str]) -> None:
        member = self._member(call_id)
        with self._link.errors("release slots"):
            async with self._link.client.pipeline(transaction=True) as pipe:
                for scope in scopes:
                    pipe.zrem(self._slots(scope), member)
                await pipe.execute()

    async def restore(self, call_id: str, scopes: Sequence[str]) -> None:
        member = self._member(call_id)
        with self._link.errors("restore slots"):
            async with self._link.client.pipeline(transaction=True) as pipe:
                for scope in scopes:
                    pipe.zadd(self._slots(scope), {member: 0}, nx=True)
                await pipe.execute()

    async def count(self, scope: str) -> int:
        with self._link.errors("count slots"):
            held = await self._count(keys=[self._link.key("nodes"), self._slots(scope)])
        return int(held)


class RedisState:
    """One node's :class:`~switchboard.cluster.base.SharedState` in Redis.

    Args:
        url: ``SWITCHBOARD_REDIS_URL``.
        node_id: this node.
        prefix: first part of every key.
        block_s: longest blocking read of the inbox.
    """

    def __init__(
        self, url: str, node_id: str, *, prefix: str = "switchboard", block_s: float = 1.0
    ) -> None:
        self.node_id = check_name(node_id, "node id")
        self.link = RedisLink(url, prefix=prefix, block_s=block_s)
        self._directory = _RedisDirectory(self.link)
        self._limits = _RedisLimits(self.link, self.node_id)
        self._inbox = RedisInbox(self.link, self.node_id)
        self._secret = self.link.client.register_script(redis_lua.SET_ONCE)
        self._channels = RedisChannels(self.link)

    @property
    def backend(self) -> str:
        return "redis"

    @property
    def directory(self) -> _RedisDirectory:
        return self._directory

    @property
    def limits(self) -> _RedisLimits:
        return self._limits

    @property
    def inbox(self) -> RedisInbox:
        return self._inbox

    def claims(self, namespace: str) -> _RedisClaims:
        return _RedisClaims(self.link, namespace, self.node_id)

    async def shared_secret(self, name: str, proposal: bytes) -> bytes:
        with self.link.errors("read shared secret"):  # the value is never part of a message
            stored = await self._secret(keys=[self.link.key("secret", name)], args=[proposal.hex()])
        return bytes.fromhex(str(stored))

    async def put_note(self, name: str, value: str, *, ttl_s: float) -> None:
        with self.link.errors("write note"):
            await self.link.client.set(self.link.key("note", name), value, px=_ms(ttl_s))

    async def get_note(self, name: str) -> str | None:
        with self.link.errors("read note"):
            value = await self.link.client.get(self.link.key("note", name))
        return None if value is None else str(value)

    async def publish(self, channel: str, data: bytes) -> int:
        return await self._channels.publish(channel, data)

    def subscribe(
        self, channel: str, *, maxlen: int = DEFAULT_READER_MAXLEN
    ) -> AbstractAsyncContextManager[ChannelReader]:
        return self._channels.subscribe(channel, maxlen=maxlen)

    async def ping(self) -> None:
        await self.link.ping()

    async def aclose(self) -> None:
        await self.link.aclose()
