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
