"""Two methods, one answer: the msgspec rules (JSONL) and their SQL restatement (Parquet).

Hypothesis generates valid events of every kind (nulls, absent fields, fields of other kinds,
big ints, money as numbers and strings); both readers must agree cell for cell.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.events.readers import read_events

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
small = st.integers(0, 2**40)
money = st.one_of(
    st.none(),
    st.decimals(0, 10**6, places=4, allow_nan=False).map(lambda d: float(d)),
    st.decimals(0, 1000, places=9, allow_nan=False).map(str),
    st.integers(0, 10**6),
)
# inside the default time window [2000-01-01, 2100-01-01): valid events only
ts = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2099, 12, 31, 23, 59, 59),
    timezones=st.just(dt.UTC),
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
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(evs=st.lists(event(), min_size=1, max_size=12))
def test_parquet_sql_rules_agree_with_msgspec(tmp_path_factory, evs: list[dict]) -> None:
    """The same events, as JSONL (msgspec) and as a raw Parquet file with every field as
    written (SQL rules: defaults, fields of other kinds dropped), read to the same table."""
    d = tmp_path_factory.mktemp("j")
    p = d / "e.jsonl"
    p.write_text("".join(json.dumps(e) + "\n" for e in evs))
    via_json = read_events(p)
    assert via_json.rejects == []  # the generator makes valid events only
    raw = _raw_parquet(evs, d / "e.parquet")
    via_parquet = read_events(raw)
    assert via_parquet.rejects == []
    # the same rows, cell for cell (row order may differ: compare as multisets)
    assert sorted(via_parquet.table.to_pylist(), key=repr) == sorted(
        via_json.table.to_pylist(), key=repr
    )


def _raw_parquet(evs: list[dict], path: Path) -> Path:
    """Every field as the producer wrote it, typed as the ledger's input schema."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tailguard.events.readers import INPUT_SCHEMA

    rows = []
    for e in evs:
        r = {}
        for f in INPUT_SCHEMA:
            v = e.get(f.name)
            if v is not None and f.name == "ts":
                v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            elif v is not None and f.name in ("cost_usd", "amount_usd"):
                v = Decimal(str(v)).quantize(Decimal("1e-9"))
            r[f.name] = v
        rows.append(r)
    pq.write_table(pa.Table.from_pylist(rows, schema=INPUT_SCHEMA), path)
    return path


def test_money_is_decoded_exactly(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"event_id": "a", "kind": "escalation", "ts": "2025-01-01T00:00:00Z", '
        '"customer_id": "c", "minutes": 1, "cost_usd": 123456789.1234567891}\n'
    )
    # Decimal from the JSON text, never through a binary float; rounded half-even to 1e-9
    assert str(read_events(p).table.column("cost_usd")[0].as_py()) == "123456789.123456789"
