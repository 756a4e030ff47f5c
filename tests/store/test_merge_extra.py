"""``MergeExtra``: the recording link is set and cleared without touching the rest of
``extra`` (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from switchboard.errors import StoreError
from switchboard.store import CallStore, ops

pytestmark = pytest.mark.anyio


async def test_merge_sets_and_removes_keys_and_keeps_the_others(store: CallStore) -> None:
    await store.create_call(
        carrier="twilio",
        carrier_call_id="CA1",
        from_number="+15550001111",
        to_number="+15550002222",
        call_id="call_merge",
        extra={"variables": {"name": "Ada"}},
    )
    link = {"recording_url": "/v1/calls/call_merge/recording", "recording": {"format": "wav"}}
    await store.write([ops.MergeExtra("call_merge", link)])
    detail = await store.get_call("call_merge")
    assert detail is not None
    assert detail.record.extra == {"variables": {"name": "Ada"}, **link}
    await store.write([ops.MergeExtra("call_merge", {"recording_url": None, "recording": None})])
    detail = await store.get_call("call_merge")
    assert detail is not None and detail.record.extra == {"variables": {"name": "Ada"}}
    with pytest.raises(StoreError, match="no call"):
        await store.write([ops.MergeExtra("call_nope", {"a": 1})])


def test_merge_extra_survives_the_spool() -> None:
    from switchboard.store.spool import decode_op, encode_op

    op = ops.MergeExtra("call_1", {"recording_url": None, "recording": {"format": "ogg"}})
    assert decode_op(encode_op(op)) == op
