"""The ``requests`` column of ``llm_call`` (issue 11): how many provider requests one row stands
for. A usage-API bucket is one row with ``requests`` = the bucket's count; a call is 1. Absent or
null means 1; 0 or a negative count is refused by name, on every read path (JSONL, CSV, Parquet).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tailguard.events.readers import read_events

BASE = {
    "kind": "llm_call",
    "ts": "2025-06-01T00:00:00Z",
    "customer_id": "c1",
    "model": "gpt-4o",
    "input_tokens": 10,
    "output_tokens": 2,
}


def _rows() -> list[dict]:
    return [
        {**BASE, "event_id": "absent"},
        {**BASE, "event_id": "null", "requests": None},
        {**BASE, "event_id": "bucket", "requests": 42},
        {**BASE, "event_id": "zero", "requests": 0},
        {**BASE, "event_id": "tool", "kind": "tool_call", "tool": "s", "tool_kind": "read"},
    ]


def _write(tmp_path: Path, fmt: str) -> Path:
    rows = _rows()
    if fmt == "jsonl":
        p = tmp_path / "e.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "csv":
        p = tmp_path / "e.csv"
        cols = ["event_id", "kind", "ts", "customer_id", "model", "input_tokens"]
        cols += ["output_tokens", "requests", "tool", "tool_kind"]
        lines = [",".join(cols)]
        for r in rows:
            lines.append(",".join("" if r.get(c) is None else str(r[c]) for c in cols))
        p.write_text("\n".join(lines) + "\n")
    else:
        p = tmp_path / "e.parquet"
        when = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
        t = pa.Table.from_pylist(
            [
                {
                    **r,
                    "ts": when,
                    "requests": r.get("requests"),
                    "tool": r.get("tool"),
                    "tool_kind": r.get("tool_kind"),
                }
                for r in rows
            ]
        )
        pq.write_table(t, p)
    return p


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_requests_defaults_to_one_and_zero_is_refused(tmp_path: Path, fmt: str) -> None:
    b = read_events(_write(tmp_path, fmt))
    got = dict(
        zip(
            b.table.column("event_id").to_pylist(),
            b.table.column("requests").to_pylist(),
            strict=True,
        )
    )
    # absent and null mean one request; a bucket keeps its count; a tool call has none
    assert got == {"absent": 1, "null": 1, "bucket": 42, "tool": None}
    assert [(r.line, r.field) for r in b.rejects] == [(5 if fmt == "csv" else 4, "requests")]
    assert "1" in b.rejects[0].reason


def test_an_aggregate_row_reads_as_its_calls_in_workload(tmp_path: Path) -> None:
    """A second method: one row of ``requests`` = 10 (a usage bucket) and ten single calls of
    the same mean size give the same workload figures: 10 invocations, the same effective
    tokens per invocation, and all 10 over the alarm when the mean call is over it (a chat
    call of 15,000 effective tokens: 10,000 input + 1,250 output x 4)."""
    from tailguard.analytics.workload import workload
    from tailguard.ledger import Ledger

    call = {**BASE, "workload": "chat", "input_tokens": 10_000, "output_tokens": 1_250}
    bucket = {**call, "event_id": "b", "input_tokens": 100_000, "output_tokens": 12_500,
              "requests": 10}  # fmt: skip
    one, many = Ledger(tmp_path / "one"), Ledger(tmp_path / "many")
    one.append([bucket])
    many.append([{**call, "event_id": f"c{i}"} for i in range(10)])
    got = [
        next(c for c in workload(led)["classes"] if c["workload"] == "chat") for led in (one, many)
    ]
    keys = ("invocations", "effective_tokens", "effective_tokens_per_invocation", "status")
    assert [{k: g[k] for k in keys} for g in got] == [
        {"invocations": 10, "effective_tokens": 150_000,
         "effective_tokens_per_invocation": 15_000.0, "status": got[1]["status"]}
    ] * 2  # fmt: skip
    # the chat alarm is 5,000 effective tokens a turn: every one of the 10 calls is over it
    assert [g["over_alarm_share"] for g in got] == [1.0, 1.0]
