"""Writing a chunk of events: an Arrow table with the ledger's input columns, to Parquet or JSONL.

Strings are built by Arrow compute (dictionary arrays cast to string, ids joined element-wise),
never row by row in Python. JSONL lines are rendered by DuckDB's ``json_object`` over the Arrow
table, one object shape per kind with only that kind's fields, so a million lines cost about a
second and every line decodes with ``msgspec.json.Decoder(Event)``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tailguard.events.schema import INPUT_SCHEMA
from tailguard.simulate import catalog as cat
from tailguard.simulate.columns import KINDS, Chunk

_WORKLOADS = ("chat", "agent", "rag")
_STATUS = ("ok", "error")
_TOOL_KIND = ("read", "write")


def _dict(codes: np.ndarray, values: tuple[str, ...] | list[str]) -> pa.Array:
    """Strings from integer codes (negative code = null), via a dictionary array."""
    idx = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(values), pa.string())).cast(
        pa.string()
    )


def _ids(prefix: str, values: np.ndarray) -> pa.Array:
    mask = values < 0
    s = pc.cast(pa.array(values.astype(np.int64)), pa.string())
    out = pc.binary_join_element_wise(prefix, s, "")
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), out)


def _money(values: np.ndarray) -> pa.Array:
    """DECIMAL(18, 9) from floats already rounded to nano-dollars (NaN = null)."""
    mask = np.isnan(values)
    return pa.array(np.where(mask, 0.0, values), type=pa.float64(), mask=mask).cast(
        pa.decimal128(18, 9)
    )


def _ints(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.array(values.astype(type_.to_pandas_dtype()), type=type_, mask=values < 0)


def to_table(
    chunk: Chunk,
    *,
    seed: int,
    customer_ids: list[str],
    start: dt.date,
    event_offset: int,
    session_offset: int,
    task_offset: int,
) -> pa.Table:
    """The chunk as an Arrow table with exactly the columns and types of ``INPUT_COLUMNS``."""
    c = chunk.cols
    n = len(chunk)
    epoch_us = (
        int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp()) * 1_000_000
    )
    kind = c["kind"]
    llm = kind == 0
    model = np.where(c["model"] >= 0, c["model"], -1)
    provider = np.where(model >= 0, cat.MODEL_PROVIDER[np.maximum(model, 0)], -1)
    provider[~llm] = -1  # guard events name a model but no provider
    tool = c["tool"]
    tool_kind = np.where(tool >= 0, cat.TOOL_KIND[np.maximum(tool, 0)], -1)
    status = np.where((kind == 0) | (kind == 1), c["status"], -1)
    cols: dict[str, pa.Array] = {
        "event_id": _ids(f"ev-{seed}-", event_offset + np.arange(n, dtype=np.int64)),
        "kind": _dict(kind.astype(np.int64), KINDS),
        "ts": pa.array(epoch_us + c["ts"], type=pa.timestamp("us", tz="UTC")),
        "customer_id": _dict(c["cust"], customer_ids),
        "user_id": _dict(c["user"], chunk.users),
        "feature": _dict(c["feature"].astype(np.int64), cat.FEATURES),
        "task_id": _ids(f"t-{seed}-", np.where(c["task"] >= 0, c["task"] + task_offset, -1)),
        "session_id": _ids(
            f"s-{seed}-", np.where(c["session"] >= 0, c["session"] + session_offset, -1)
        ),
        "workload": _dict(c["workload"].astype(np.int64), _WORKLOADS),
        "provider": _dict(provider.astype(np.int64), cat.PROVIDERS),
        "model": _dict(model.astype(np.int64), cat.MODELS),
        "attempt": _ints(c["attempt"], pa.int32()),
        "input_tokens": _ints(c["input_tokens"], pa.int64()),
        "output_tokens": _ints(c["output_tokens"], pa.int64()),
        "cache_read_tokens": _ints(c["cache_read_tokens"], pa.int64()),
        "cache_write_tokens": _ints(c["cache_write_tokens"], pa.int64()),
        "reasoning_tokens": _ints(c["reasoning_tokens"], pa.int64()),
        "latency_ms": pa.array(c["latency_ms"], mask=np.isnan(c["latency_ms"])),
        "status": _dict(status.astype(np.int64), _STATUS),
        "tool": _dict(tool.astype(np.int64), cat.TOOLS),
        "tool_kind": _dict(tool_kind.astype(np.int64), _TOOL_KIND),
        "queries": _ints(c["queries"], pa.int64()),
        "reranks": _ints(c["reranks"], pa.int64()),
        "minutes": pa.array(c["minutes"], mask=np.isnan(c["minutes"])),
        "outcome": _dict(c["outcome"].astype(np.int64), cat.OUTCOMES),
        "action": _dict(c["action"].astype(np.int64), cat.GUARD_ACTIONS),
        "rule": _dict(c["rule"].astype(np.int64), cat.GUARD_RULES),
        "amount_usd": _money(c["amount_usd"]),
        "cost_usd": _money(c["cost_usd"]),
    }
    # a column the simulator does not fill (e.g. a source system's own reported cost) is null
    n = len(c["kind"])
    return pa.Table.from_arrays(
        [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in INPUT_SCHEMA],
        schema=INPUT_SCHEMA,
    )


class ParquetSink:
    """Appends chunks as row groups to one Parquet file (constant memory per chunk)."""

    def __init__(self, path: Path) -> None:
        self._w = pq.ParquetWriter(path, INPUT_SCHEMA, compression="zstd")

    def write(self, table: pa.Table) -> None:
        self._w.write_table(table, row_group_size=1 << 20)

    def close(self) -> None:
        self._w.close()


_ENVELOPE = "'event_id', event_id, 'kind', kind, 'ts', strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ'), "
_ENVELOPE += "'customer_id', customer_id, 'user_id', user_id, 'feature', feature, "
_ENVELOPE += "'task_id', task_id, 'session_id', session_id"
_KIND_FIELDS = {
    "llm_call": "workload provider model attempt input_tokens output_tokens cache_read_tokens "
    "cache_write_tokens reasoning_tokens cost_usd latency_ms status",
    "tool_call": "workload tool tool_kind status latency_ms",
    "retrieval": "workload queries reranks",
    "escalation": "workload minutes",
    "task_outcome": "workload outcome",
    "guard": "workload action rule amount_usd model",
}


def _json_sql() -> str:
    cases = []
    for kind, fields in _KIND_FIELDS.items():
        extra = ", ".join(f"'{f}', {f}" for f in fields.split())
        cases.append(f"WHEN '{kind}' THEN json_object({_ENVELOPE}, {extra})")
    return "SELECT CASE kind " + " ".join(cases) + " END AS line FROM t"


class JsonlSink:
    """Appends chunks as JSON lines (one object per event, only the fields of its kind)."""

    def __init__(self, path: Path) -> None:
        import duckdb

        self._f: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")
        self._sql = _json_sql()

    def write(self, table: pa.Table) -> None:
        # strftime on a naive UTC timestamp: no time-zone conversion, explicit 'Z'
        t = table.set_column(
            table.schema.get_field_index("ts"), "ts", table["ts"].cast(pa.timestamp("us"))
        )
        self._con.register("t", t)
        lines = self._con.sql(self._sql).to_arrow_table().column("line")
        self._con.unregister("t")
        body = "\n".join(lines.to_pylist())
        if body:
            self._f.write(body.encode())
            self._f.write(b"\n")

    def close(self) -> None:
        self._f.close()
        self._con.close()
