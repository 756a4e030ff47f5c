"""The writer's spool: every op survives the trip through a file exactly, in order, once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.cost import CostBreakdown, CostLine
from switchboard.errors import StoreError
from switchboard.media import Usage
from switchboard.store import ops
from switchboard.store.spool import Spool, decode_op, encode_op

_text = st.text(max_size=20)
_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text
)
_data: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.one_of(_text, st.sampled_from(["$t", "$dt", "$map", "$tuple", "f"])),
    st.recursive(
        _json_scalars,
        lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_text, c, max_size=3)),
        max_leaves=8,
    ),
    max_size=4,
)
_times = st.datetimes(timezones=st.just(UTC))
_usage = st.builds(
    Usage,
    input_text_tokens=st.integers(0, 10**6),
    output_audio_tokens=st.integers(0, 10**6),
    input_audio_seconds=st.floats(0, 1e4),
)
_cost = st.builds(
    CostBreakdown,
    lines=st.lists(
        st.builds(
            CostLine,
            category=st.sampled_from(["provider", "telephony"]),
            source=_text,
            item=_text,
            quantity=st.floats(0, 1e6),
            unit_price=st.floats(0, 10),
            per=st.floats(1, 1e6),
            unit=_text,
            amount=st.floats(0, 1e3),
        ),
        max_size=3,
    ).map(tuple),
    total=st.floats(0, 1e3),
    prices_as_of=st.one_of(st.none(), st.dates(min_value=date(2020, 1, 1))),
    notes=st.lists(_text, max_size=2).map(tuple),
)
_ops: st.SearchStrategy[ops.Op] = st.one_of(
    st.builds(
        ops.CreateCall,
        carrier=st.one_of(st.none(), _text),
        carrier_call_id=_text,
        from_number=_text,
        to_number=_text,
        created_at=_times,
        extra=_data,
    ),
    st.builds(
        ops.UpdateCall,
        call_id=_text,
        fields=st.fixed_dictionaries(
            {},
            optional={"answered_at": _times, "usage": _usage, "cost": _cost, "extra": _data},
        ),
    ),
    st.builds(
        ops.FinalizeCall,
        call_id=_text,
        status=_text,
        end_reason=st.one_of(st.none(), _text),
        usage=st.one_of(st.none(), _usage),
        cost=st.one_of(st.none(), _cost),
        ended_at=_times,
    ),
    st.builds(
        ops.AddTranscript,
        call_id=_text,
        role=st.sampled_from(["caller", "agent"]),
        text=st.text(),
        started_ms=st.one_of(st.none(), st.integers(0, 10**7)),
    ),
    st.builds(
        ops.AddToolCall,
        call_id=_text,
        name=_text,
        arguments=_data,
        result=_data,
        ok=st.booleans(),
        duration_ms=st.floats(0, 1e5),
        at=_times,
    ),
    st.builds(ops.AddTimeline, call_id=_text, kind=_text, data=_data, at=_times),
    st.builds(
        ops.AddTurnLatency, call_id=_text, turn=st.integers(0, 100), latency_ms=st.floats(0, 1e5)
    ),
)


@given(_ops)
def test_every_op_round_trips_exactly(op: ops.Op) -> None:
    line = encode_op(op)
    assert "\n" not in line
    assert decode_op(line) == op


def test_data_that_looks_like_a_tag_stays_data() -> None:
    op = ops.AddTimeline("c1", "x", {"$dt": "2024-01-01T00:00:00", "$t": "Usage"})
    assert decode_op(encode_op(op)) == op


@pytest.mark.parametrize("line", ["", "{", "[1]", '{"$t": "Nope", "f": {}}', '{"a": 1}', "1"])
def test_what_is_not_an_op_is_refused(line: str) -> None:
    with pytest.raises(StoreError):
        decode_op(line)


def _timeline(n: int) -> list[ops.Op]:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return [ops.AddTimeline("c1", f"e{i}", {"i": i}, at) for i in range(n)]


def test_ops_come_back_in_order_in_batches_and_the_file_goes_when_drained(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.adopt() == 0 and spool.empty
    spool.append(_timeline(5))
    spool.append(_timeline(8)[5:])
    first, mark = spool.read(3)
    assert [op.kind for op in first if isinstance(op, ops.AddTimeline)] == ["e0", "e1", "e2"]
    spool.consumed(mark)
    rest, mark = spool.read(100)
    assert len(rest) == 5
    spool.consumed(mark)
    assert spool.empty
    assert list((tmp_path / "spool").iterdir()) == []
    spool.close()


def test_a_later_writer_adopts_what_is_left_and_only_what_nobody_holds(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.adopt()
    first.append(_timeline(4))
    _batch, mark = first.read(1)
    first.consumed(mark)  # one applied before the process stopped
    other = Spool(tmp_path)
    assert other.adopt() == 0  # still locked by the first writer
    first.close()
    later = Spool(tmp_path)
    assert later.adopt() == 3
    left, mark = later.read(10)
    assert [op.kind for op in left if isinstance(op, ops.AddTimeline)] == ["e1", "e2", "e3"]
    later.consumed(mark)
    assert later.empty and list(tmp_path.iterdir()) == []
    later.close()
    other.close()


def test_a_line_cut_short_by_a_crash_is_skipped_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.adopt()
    spool.append(_timeline(2))
    spool.close()
    (path,) = tmp_path.glob("spool-*.jsonl")
    with path.open("a") as handle:
        handle.write('{"$t": "AddTimeline", "f": {"call\n')  # a torn write
    later = Spool(tmp_path)
    assert later.adopt() == 3
    batch, mark = later.read(10)
    assert len(batch) == 2
    later.consumed(mark)
    assert later.empty
    later.close()


def test_a_group_with_a_webhook_event_round_trips() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    final = ops.FinalizeCall("c1", "completed", "agent_hangup", Usage(input_text_tokens=3), None,
                             None, at)  # fmt: skip
    event = ops.EnqueueEvent(
        "c1", "call.ended", {"reason": "agent_hangup", "$dt": "looks like a tag"},
        ("https://example.com/hook",), with_record=True, at=at,
    )  # fmt: skip
    group = ops.Group((final, event))
    assert decode_op(encode_op(group)) == group


def test_a_spool_is_only_adopted_for_its_own_database(tmp_path: Path) -> None:
    first = Spool(tmp_path, database="aaaa")
    first.append(_timeline(2))
    first.close()
    other = Spool(tmp_path, database="bbbb")
    assert other.adopt() == 0 and other.empty  # another database's writes stay where they are
    other.close()
    same = Spool(tmp_path, database="aaaa")
    assert same.adopt() == 2
    same.close()
