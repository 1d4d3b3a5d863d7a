"""Every bad-input path names the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tailguard.errors import InputError
from tailguard.events.readers import read_events
from tailguard.events.schema import INPUT_COLUMNS
from tests.ledger.fixtures import events

GOOD = events()[0]


def _jsonl(p: Path, rows: list) -> Path:
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return p


def test_jsonl_roundtrip_all_kinds(tmp_path: Path) -> None:
    b = read_events(_jsonl(tmp_path / "e.jsonl", events()))
    assert b.rejects == []
    assert b.table.num_rows == len(events())
    assert b.table.schema.names == list(INPUT_COLUMNS)
    kinds = sorted(set(b.table.column("kind").to_pylist()))
    assert kinds == ["escalation", "llm_call", "retrieval", "task_outcome", "tool_call"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"input_tokens": "many"}, "input_tokens", "Expected `int`"),
        ({"input_tokens": -1}, "input_tokens", ">= 0"),
        ({"ts": "2025-06-01T10:00:00"}, "ts", "timezone"),
        ({"kind": "llm_cal"}, "kind", "Invalid value"),
        ({"model": None}, "model", "Expected `str`"),
        ({"workload": "batch"}, "workload", "Invalid enum value"),
        ({"attempt": 0}, "attempt", ">= 1"),
        ({"cache_read_tokens": 1000}, "cache_read_tokens", "exceed input_tokens"),
        ({"cost_usd": -0.5}, "cost_usd", ">= 0"),
    ],
)
def test_jsonl_bad_field_named(tmp_path: Path, change: dict, field: str, words: str) -> None:
    bad = {**GOOD, **change}
    b = read_events(_jsonl(tmp_path / "e.jsonl", [GOOD | {"event_id": "x"}, bad]))
    assert len(b.rejects) == 1
    r = b.rejects[0]
    assert (r.line, r.field) == (2, field)
    assert words in r.reason
    assert str(r).startswith(f"{tmp_path / 'e.jsonl'}:2: {field}: ")
    assert b.table.num_rows == 1  # the good row is kept


def test_jsonl_missing_field_and_broken_json(tmp_path: Path) -> None:
    no_model = {k: v for k, v in GOOD.items() if k != "model"}
    b = read_events(_jsonl(tmp_path / "e.jsonl", [no_model, "{not json", "", GOOD]))
    assert [(r.line, r.field) for r in b.rejects] == [(1, "model"), (2, "<json>")]
    assert b.table.num_rows == 1


def test_csv(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text(
        "event_id,kind,ts,customer_id,model,input_tokens,output_tokens\n"
        "a,llm_call,2025-06-01T00:00:00Z,c1,gpt-4o,10,2\n"
        "b,llm_call,2025-06-01T00:00:00Z,c1,gpt-4o,ten,2\n"
    )
    b = read_events(p)
    assert b.table.num_rows == 1
    assert [(r.line, r.field) for r in b.rejects] == [(3, "input_tokens")]


def test_csv_unknown_column(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_text("event_id,kind,ts,customer_id,colour\n")
    with pytest.raises(InputError) as exc:
        read_events(p)
    assert exc.value.problems == [f"{p}:1: colour: unknown column (see docs/events.md)"]


def test_parquet_rows_validated_in_engine(tmp_path: Path) -> None:
    rows = [
        {
            "event_id": "a",
            "kind": "llm_call",
            "customer_id": "c",
            "model": "m",
            "input_tokens": 10,
            "output_tokens": 1,
        },
        {
            "event_id": "b",
            "kind": "llm_call",
            "customer_id": "c",
            "model": None,
            "input_tokens": 10,
            "output_tokens": 1,
        },
        {"event_id": "c", "kind": "task_outcome", "customer_id": "c", "outcome": "won"},
        {
            "event_id": "d",
            "kind": "llm_call",
            "customer_id": "c",
            "model": "m",
            "input_tokens": 10,
            "output_tokens": 1,
            "cache_read_tokens": 11,
        },
    ]
    keys = sorted({k for r in rows for k in r})
    t = pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows])
    ts = pa.array([pa.scalar(1_750_000_000_000_000, pa.timestamp("us", tz="UTC"))] * 4)
    t = t.append_column("ts", ts)
    p = tmp_path / "e.parquet"
    pq.write_table(t, p)
    b = read_events(p)
    assert b.table.num_rows == 1
    assert [(r.line, r.field) for r in b.rejects] == [
        (2, "model"),
        (3, "outcome"),
        (4, "cache_read_tokens"),
    ]
    # defaults applied like the JSON path
    assert b.table.column("attempt").to_pylist() == [1]


def test_parquet_naive_timestamp_refused(tmp_path: Path) -> None:
    t = pa.table(
        {
            "event_id": ["a"],
            "kind": ["task_outcome"],
            "customer_id": ["c"],
            "outcome": ["accepted"],
            "ts": pa.array([0], pa.timestamp("us")),
        }
    )
    p = tmp_path / "e.parquet"
    pq.write_table(t, p)
    with pytest.raises(InputError) as exc:
        read_events(p)
    assert "ts: timestamp column without a timezone" in exc.value.problems[0]


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_events(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(InputError, match="cannot tell the format"):
        read_events(tmp_path / "x.txt")
