"""NodeCallLimit: at most SWITCHBOARD_MAX_CALLS calls hold a slot at once (pure)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.bridge.admission import NodeCallLimit

pytestmark = pytest.mark.anyio


async def test_admits_up_to_the_limit_then_refuses_until_a_call_ends() -> None:
    limit = NodeCallLimit(2)
    assert await limit.admit("a", agent="x") is None
    assert await limit.admit("b", agent="x") is None
    why = await limit.admit("c", agent="x")
    assert why is not None and "2 concurrent calls" in why
    assert await limit.admit("a", agent="x") is None  # the same call again: still one slot
    await limit.release("a")
    await limit.release("a")  # twice: harmless
    await limit.release("never-admitted")
    assert await limit.admit("c", agent="x") is None
    assert limit.held == 2


async def test_zero_means_no_limit() -> None:
    limit = NodeCallLimit(0)
    for index in range(500):
        assert await limit.admit(f"call-{index}", agent="x") is None
    with pytest.raises(ValueError, match="max_calls"):
        NodeCallLimit(-1)


@given(st.integers(1, 5), st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=60))
def test_never_more_than_the_limit_whatever_the_order(
    max_calls: int, steps: list[tuple[bool, int]]
) -> None:
    async def run() -> None:
        limit = NodeCallLimit(max_calls)
        held: set[str] = set()
        for admit, n in steps:
            call = f"call-{n}"
            if admit:
                if await limit.admit(call, agent="x") is None:
                    held.add(call)
                else:
                    assert len(held) == max_calls and call not in held
            else:
                await limit.release(call)
                held.discard(call)
            assert limit.held == len(held) <= max_calls

    asyncio.run(run())
