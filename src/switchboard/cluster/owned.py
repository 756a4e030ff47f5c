"""What one node holds — its calls and their slots — kept so it can be written back.

The shared store is the cluster's view; this node's own copy is the truth about its calls.
When a write fails (the store is unreachable) or the store forgot the node (Redis restarted
empty; other nodes declared it dead during a pause), :meth:`OwnedCalls.restore` writes the copy
back: entries re-registered, slots re-taken without a limit check (the calls are already up),
removals that failed retried. Every write it makes is idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import replace

from switchboard.cluster.base import SharedState
from switchboard.cluster.records import Admission, CallEntry, CallState, SlotRequest
from switchboard.errors import ClusterUnavailable

__all__ = ["OwnedCalls"]


class OwnedCalls:
    """The calls and slots of one node, mirrored into the shared state.

    Args:
        state: the node's backend.
        node_id: the node (entries must name it).
    """

    def __init__(self, state: SharedState, node_id: str) -> None:
        self._state, self._node = state, node_id
        self._calls: dict[str, CallEntry] = {}
        self._slots: dict[str, tuple[str, ...]] = {}
        self._unfinished: dict[str, tuple[str, ...]] = {}  # removals that failed, to retry
        self._slots_only: set[str] = set()  # of those, calls never registered here
        #: a write failed: the copy must be written back when the store answers again
        self.dirty = False

    def __len__(self) -> int:
        return len(self._calls)

    async def register(self, entry: CallEntry) -> None:
        """Keep ``entry`` and write it to the directory."""
        if entry.node_id != self._node:
            raise ValueError(f"entry is for node {entry.node_id!r}, this is {self._node!r}")
        self._calls[entry.call_id] = entry
        await self._write(self._state.directory.register(entry))

    async def set_state(self, call_id: str, state: CallState) -> None:
        """Change a kept call's state, and the directory's."""
        entry = self._calls.get(call_id)
        if entry is not None:
            self._calls[call_id] = replace(entry, state=state)
        await self._write(self._state.directory.set_state(call_id, state))

    async def acquire(self, call_id: str, requests: Sequence[SlotRequest]) -> Admission:
        """Take ``call_id``'s slots; granted ones are kept until :meth:`finish`."""
        admission = await self._state.limits.acquire(call_id, requests)
        if admission.granted:
            held = self._slots.get(call_id, ())
            self._slots[call_id] = held + tuple(r.scope for r in requests if r.scope not in held)
        return admission

    async def finish(self, call_id: str) -> None:
        """Forget ``call_id``: out of the directory, its slots freed.

        A call this node does not hold (never registered, or finished already) is left alone:
        a second finish must not remove the entry another node has registered since (a call
        adopted by the node its media reached).
        """
        if call_id not in self._calls and call_id not in self._slots:
            if call_id in self._unfinished:  # a removal that failed: retry it now
                await self._write(self._remove(call_id, self._unfinished[call_id]))
            return
        if self._calls.pop(call_id, None) is None:
            # slots only (a refused or failed adoption): the directory entry, if any, is
            # another node's, and stays
            self._slots_only.add(call_id)
        scopes = self._slots.pop(call_id, ())
        self._unfinished[call_id] = scopes
        await self._write(self._remove(call_id, scopes))

    async def restore(self) -> None:
        """Write the whole copy back (see the module docstring)."""
        for entry in list(self._calls.values()):
            await self._state.directory.register(entry)
        for call_id, scopes in list(self._slots.items()):
            await self._state.limits.restore(call_id, scopes)
        for call_id, scopes in list(self._unfinished.items()):
            await self._remove(call_id, scopes)
        self.dirty = False

    async def _remove(self, call_id: str, scopes: tuple[str, ...]) -> None:
        if call_id not in self._slots_only:
            await self._state.directory.remove(call_id, node_id=self._node)
        if scopes:
            await self._state.limits.release(call_id, scopes)
        self._unfinished.pop(call_id, None)
        self._slots_only.discard(call_id)

    async def _write(self, operation: Awaitable[object]) -> None:
        try:
            await operation
        except ClusterUnavailable:
            self.dirty = True  # the copy is right; the keeper writes it back when it can
            raise
