"""The engine path (DuckDB) and the exact path (msgspec) read JSONL to identical tables.

The msgspec structs define validity; the SQL restates it for speed. Hypothesis generates valid
events of every kind (with nulls, absent fields, fields of other kinds, big ints, money as
numbers and strings) and both readers must agree cell for cell. Files the engine cannot prove
clean must fall back (``_jsonl_fast`` returns None), never be read differently.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.events.readers import _jsonl_fast, read_events

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
small = st.integers(0, 2**40)
money = st.one_of(
    st.none(),
    st.decimals(0, 10**6, places=4, allow_nan=False).map(lambda d: float(d)),
    st.decimals(0, 1000, places=9, allow_nan=False).map(str),
    st.integers(0, 10**6),
)
ts = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
).map(
    lambda d: (
        d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{d.microsecond:06d}" if d.microsecond else "") + "Z"
    )
)


@st.composite
def event(draw: st.DrawFn, i: int = 0) -> dict:
    kind = draw(
        st.sampled_from(
            ["llm_call", "tool_call", "retrieval", "escalation", "task_outcome", "guard"]
        )
    )
    e: dict = {"event_id": draw(ids), "kind": kind, "ts": draw(ts), "customer_id": draw(ids)}
    for opt in ("user_id", "feature", "task_id", "session_id"):
        if draw(st.booleans()):
            e[opt] = draw(st.one_of(st.none(), ids))
    if draw(st.booleans()):
        e["workload"] = draw(st.sampled_from(["chat", "agent", "rag", "other", None]))
    if kind == "llm_call":
        inp = draw(small)
        out = draw(small)
        cr = draw(st.integers(0, inp))
        e |= {
            "model": draw(ids),
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_tokens": draw(st.sampled_from([cr, None])),
            "cache_write_tokens": draw(st.integers(0, inp - cr)),
            "reasoning_tokens": draw(st.integers(0, out)),
            "attempt": draw(st.one_of(st.none(), st.integers(1, 9))),
            "status": draw(st.sampled_from(["ok", "error", None])),
            "provider": draw(st.one_of(st.none(), ids)),
            "latency_ms": draw(st.one_of(st.none(), st.integers(0, 10**6), st.floats(0, 1e6))),
        }
    elif kind == "tool_call":
        e |= {"tool": draw(ids), "tool_kind": draw(st.sampled_from(["read", "write"]))}
    elif kind == "retrieval":
        e |= {"queries": draw(st.one_of(st.none(), small)), "reranks": draw(small)}
    elif kind == "escalation":
        e |= {"minutes": draw(st.floats(0, 1e4))}
    elif kind == "task_outcome":
        e |= {
            "outcome": draw(
                st.sampled_from(
                    ["accepted", "rejected", "abandoned", "timed_out", "tool_error", "escalated"]
                )
            )
        }
    else:
        e |= {
            "action": draw(st.sampled_from(["degrade", "deny", "kill", "overage"])),
            "rule": draw(ids),
            "amount_usd": draw(money),
        }
    if kind in ("llm_call", "tool_call", "retrieval", "escalation"):
        e["cost_usd"] = draw(money)
    if draw(st.booleans()):  # a field of another kind: both readers ignore it
        e["outcome" if kind != "task_outcome" else "model"] = "accepted"
    return e


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(evs=st.lists(event(), min_size=1, max_size=12))
def test_engine_and_msgspec_paths_agree(tmp_path_factory, evs: list[dict]) -> None:
    p = tmp_path_factory.mktemp("j") / "e.jsonl"
    p.write_text("".join(json.dumps(e) + "\n" for e in evs))
    fast = _jsonl_fast(p)
    from tailguard.events import readers

    slow = next(readers._read_jsonl_exact(p, 1000))
    slow_table = slow.table
    assert slow.rejects == []  # the generator makes valid events only
    if fast is None:
        return  # the engine could not prove the file clean: it deferred, which is allowed
    # the same rows, cell for cell (row order may differ: compare as multisets)
    assert sorted(fast.to_pylist(), key=repr) == sorted(slow_table.to_pylist(), key=repr)


def test_clean_file_takes_the_engine_path(tmp_path: Path) -> None:
    from tests.ledger.fixtures import events

    p = tmp_path / "e.jsonl"
    p.write_text("".join(json.dumps(e) + "\n" for e in events()))
    assert _jsonl_fast(p) is not None


def test_string_for_int_defers_to_exact_reader(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(
        json.dumps(
            {
                "event_id": "a",
                "kind": "llm_call",
                "ts": "2025-01-01T00:00:00Z",
                "customer_id": "c",
                "model": "m",
                "input_tokens": "12",
                "output_tokens": 1,
            }
        )
        + "\n"
    )
    assert _jsonl_fast(p) is None
    assert [(r.line, r.field) for r in read_events(p).rejects] == [(1, "input_tokens")]


def test_money_beyond_double_precision_defers(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"event_id": "a", "kind": "escalation", "ts": "2025-01-01T00:00:00Z", '
        '"customer_id": "c", "minutes": 1, "cost_usd": 123456789.1234567891}\n'
    )
    assert _jsonl_fast(p) is None
    # exact path: Decimal from the text, rounded half-even to nano-dollars
    assert str(read_events(p).table.column("cost_usd")[0].as_py()) == "123456789.123456789"
