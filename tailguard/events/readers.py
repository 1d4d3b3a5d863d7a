"""Read events from JSONL, CSV and Parquet into validated Arrow batches.

Every reader yields ``Batch`` objects: an Arrow table in the input layout (``INPUT_COLUMNS``
typed as in ``LEDGER_SCHEMA``) plus the rows that failed validation, each a ``Reject`` naming the
file, the line (JSONL/CSV: the physical line; Parquet: the 1-based row) and the field.

Why three paths: JSONL and CSV are validated line by line with msgspec (about a microsecond a
line, and the error names the field); Parquet is already columnar, so it is validated in one
vectorised DuckDB pass and never touches Python per row.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from tailguard.errors import InputError
from tailguard.events.schema import (
    GUARD_ACTIONS,
    INPUT_COLUMNS,
    KINDS,
    LEDGER_SCHEMA,
    OUTCOMES,
    WORKLOADS,
    Escalation,
    Event,
    Guard,
    LlmCall,
    Retrieval,
    TaskOutcome,
    ToolCall,
)

INPUT_SCHEMA = pa.schema([LEDGER_SCHEMA.field(n) for n in INPUT_COLUMNS])
DEFAULT_BATCH_ROWS = 500_000
NANO = Decimal("1e-9")
_MONEY_COLUMNS = ("cost_usd", "amount_usd")
_CLASSES: tuple[type[Any], ...] = (LlmCall, ToolCall, Retrieval, Escalation, TaskOutcome, Guard)
_PATH_RE = re.compile(r" - at `\$(?:\[\d+\])?\.?([^`]*)`$")


@dataclass(frozen=True)
class Reject:
    """One input row that failed validation."""

    file: str
    line: int
    field: str
    reason: str
    raw: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


@dataclass
class Batch:
    """Validated rows (``table``) and the rows that were refused (``rejects``)."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    #: input rows consumed so far in the file (for progress)
    rows_read: int = 0


def quantize_money(v: Decimal) -> Decimal:
    """Round money to nano-dollars, half-even: the one rounding step of the ledger."""
    return v.quantize(NANO, rounding=ROUND_HALF_EVEN)


def _split_error(msg: str) -> tuple[str, str]:
    """Turn a msgspec message into (field, reason)."""
    m = _PATH_RE.search(msg)
    if m:
        return (m.group(1) or "<row>"), msg[: m.start()]
    low = msg.lower()
    if low.startswith("object missing required field"):
        name = msg.split("`")[1] if "`" in msg else "<row>"
        return name, "missing required field"
    for name in ("cache_read_tokens", "reasoning_tokens", "cost_usd", "amount_usd"):
        if msg.startswith(name):
            return name, msg
    return "<row>", msg


def structs_to_table(events: list[Any]) -> pa.Table:
    """Build the input-layout Arrow table from decoded event structs, column by column.

    Events are grouped by class so each group's columns come out of one ``zip(*astuple)``:
    no per-cell Python work except money quantisation.
    """
    groups: dict[type[Any], list[Any]] = {}
    for ev in events:
        groups.setdefault(type(ev), []).append(ev)
    n = len(events)
    cols: dict[str, list[Any]] = {name: [] for name in INPUT_COLUMNS}
    for cls in _CLASSES:
        evs = groups.get(cls)
        if not evs:
            continue
        names = cls.__struct_fields__
        columns = list(zip(*(msgspec.structs.astuple(e) for e in evs), strict=True))
        present = dict(zip(names, columns, strict=True))
        kind = cls.__struct_config__.tag
        m = len(evs)
        for name in INPUT_COLUMNS:
            if name == "kind":
                cols[name].extend([kind] * m)
            elif name in present:
                col = present[name]
                if name in _MONEY_COLUMNS:
                    col = [None if v is None else quantize_money(v) for v in col]
                cols[name].extend(col)
            else:
                cols[name].extend([None] * m)
    arrays = [pa.array(cols[f.name], type=f.type) for f in INPUT_SCHEMA]
    table = pa.Table.from_arrays(arrays, schema=INPUT_SCHEMA)
    assert table.num_rows == n
    return table


def _sniff_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes:
        return "csv"
    if ".jsonl" in suffixes or ".ndjson" in suffixes or ".json" in suffixes:
        return "jsonl"
    raise InputError(
        f"{path}: cannot tell the format from the name; use .jsonl, .csv or .parquet",
        [f"{path}:0: <file>: unknown format"],
    )


def read_batches(
    path: str | os.PathLike[str], *, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[Batch]:
    """Yield validated batches of the events in ``path`` (format from the file name)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file", [f"{p}:0: <file>: no such file"])
    fmt = _sniff_format(p)
    if fmt == "jsonl":
        yield from _read_jsonl(p, batch_rows)
    elif fmt == "csv":
        yield from _read_csv(p, batch_rows)
    else:
        yield from _read_parquet(p, batch_rows)


def _read_jsonl(path: Path, batch_rows: int) -> Iterator[Batch]:
    one = msgspec.json.Decoder(Event)
    many = msgspec.json.Decoder(list[Event])
    name = str(path)
    rows_read = 0
    with path.open("rb") as fh:
        while True:
            lines: list[bytes] = []
            linenos: list[int] = []
            for raw in fh:
                rows_read += 1
                if raw.strip():
                    lines.append(raw)
                    linenos.append(rows_read)
                if len(lines) >= batch_rows:
                    break
            if not lines:
                return
            rejects: list[Reject] = []
            try:
                # Fast path: one C call for the whole batch.
                events = many.decode(b"[" + b",".join(lines) + b"]")
            except (msgspec.ValidationError, msgspec.DecodeError):
                # Slow path only for a batch that holds a bad line: find every one.
                events = []
                for raw, lineno in zip(lines, linenos, strict=True):
                    try:
                        events.append(one.decode(raw))
                    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                        if isinstance(exc, msgspec.ValidationError):
                            fld, reason = _split_error(str(exc))
                        else:  # ValidationError subclasses DecodeError: test it first
                            fld, reason = "<json>", f"invalid JSON: {exc}"
                        rejects.append(
                            Reject(
                                name, lineno, fld, reason, raw.decode(errors="replace").rstrip("\n")
                            )
                        )
            yield Batch(structs_to_table(events), rejects, rows_read)


def _read_csv(path: Path, batch_rows: int) -> Iterator[Batch]:
    name = str(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "kind" not in reader.fieldnames:
            raise InputError(
                f"{name}: not an events CSV", [f"{name}:1: kind: missing column in header"]
            )
        unknown = [c for c in reader.fieldnames if c not in INPUT_COLUMNS]
        if unknown:
            raise InputError(
                f"{name}: unknown columns",
                [f"{name}:1: {c}: unknown column (see docs/events.md)" for c in unknown],
            )
        events: list[Any] = []
        rejects: list[Reject] = []
        for row in reader:
            clean = {k: v for k, v in row.items() if v not in ("", None)}
            try:
                events.append(msgspec.convert(clean, Event, strict=False))
            except msgspec.ValidationError as exc:
                fld, reason = _split_error(str(exc))
                rejects.append(Reject(name, reader.line_num, fld, reason, ",".join(row.values())))
            if len(events) + len(rejects) >= batch_rows:
                yield Batch(structs_to_table(events), rejects, reader.line_num)
                events, rejects = [], []
        yield Batch(structs_to_table(events), rejects, reader.line_num)


# --- Parquet: vectorised validation in DuckDB ---------------------------------------------------


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


_REQUIRED = {
    "llm_call": ("model", "input_tokens", "output_tokens"),
    "tool_call": ("tool", "tool_kind"),
    "escalation": ("minutes",),
    "task_outcome": ("outcome",),
    "guard": ("action", "rule"),
}

# (condition that is an error, field, reason); the first that holds names the row's problem.
_CHECKS: list[tuple[str, str, str]] = [
    ("event_id IS NULL OR event_id = ''", "event_id", "missing required field"),
    ("kind IS NULL", "kind", "missing required field"),
    (f"NOT {_in('kind', KINDS)}", "kind", f"must be one of {', '.join(KINDS)}"),
    ("ts IS NULL", "ts", "missing required field"),
    ("customer_id IS NULL OR customer_id = ''", "customer_id", "missing required field"),
    *[
        (f"kind = '{k}' AND {c} IS NULL", c, "missing required field")
        for k, cs in _REQUIRED.items()
        for c in cs
    ],
    (
        f"workload IS NOT NULL AND NOT {_in('workload', WORKLOADS)}",
        "workload",
        f"must be one of {', '.join(WORKLOADS)}",
    ),
    ("status IS NOT NULL AND status NOT IN ('ok', 'error')", "status", "must be ok or error"),
    (
        "tool_kind IS NOT NULL AND tool_kind NOT IN ('read', 'write')",
        "tool_kind",
        "must be read or write",
    ),
    (
        f"outcome IS NOT NULL AND NOT {_in('outcome', OUTCOMES)}",
        "outcome",
        f"must be one of {', '.join(OUTCOMES)}",
    ),
    (
        f"action IS NOT NULL AND NOT {_in('action', GUARD_ACTIONS)}",
        "action",
        f"must be one of {', '.join(GUARD_ACTIONS)}",
    ),
    ("attempt IS NOT NULL AND attempt < 1", "attempt", "must be >= 1"),
    *[
        (f"{c} IS NOT NULL AND {c} < 0", c, "must be >= 0")
        for c in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "latency_ms",
            "queries",
            "reranks",
            "minutes",
            "cost_usd",
            "amount_usd",
        )
    ],
    (
        "coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0) > input_tokens",
        "cache_read_tokens",
        "cache_read_tokens + cache_write_tokens exceed input_tokens "
        "(input_tokens must include cache tokens, OpenTelemetry convention)",
    ),
    (
        "coalesce(reasoning_tokens, 0) > output_tokens",
        "reasoning_tokens",
        "reasoning_tokens exceed output_tokens (output_tokens must include reasoning)",
    ),
]
_ERROR_EXPR = (
    "CASE "
    + " ".join(
        f"WHEN {cond} THEN '{fld}|{reason.replace(chr(39), chr(39) * 2)}'"
        for cond, fld, reason in _CHECKS
    )
    + " END"
)
_DEFAULTS = {
    "attempt": "1",
    "cache_read_tokens": "0",
    "cache_write_tokens": "0",
    "reasoning_tokens": "0",
}


def _conform_parquet_batch(rb: pa.RecordBatch, name: str) -> pa.Table:
    """Cast a Parquet batch to the input schema, refusing a timestamp without a timezone."""
    arrays = []
    for f in INPUT_SCHEMA:
        idx = rb.schema.get_field_index(f.name)
        if idx < 0:
            arrays.append(pa.nulls(rb.num_rows, f.type))
            continue
        col = rb.column(idx)
        if f.name == "ts":
            if pa.types.is_timestamp(col.type) and col.type.tz is None:
                raise InputError(
                    f"{name}: ts has no timezone",
                    [f"{name}:1: ts: timestamp column without a timezone (store UTC with tz)"],
                )
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                raise InputError(
                    f"{name}: ts is text", [f"{name}:1: ts: store ts as a timestamp with tz"]
                )
        try:
            arrays.append(col.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                f"{name}: column {f.name} has type {col.type}",
                [f"{name}:1: {f.name}: cannot convert {col.type} to {f.type}: {exc}"],
            ) from exc
    unknown = [c for c in rb.schema.names if c not in INPUT_COLUMNS]
    if unknown:
        raise InputError(
            f"{name}: unknown columns",
            [f"{name}:1: {c}: unknown column (see docs/events.md)" for c in unknown],
        )
    return pa.Table.from_arrays(arrays, schema=INPUT_SCHEMA)


def _read_parquet(path: Path, batch_rows: int) -> Iterator[Batch]:
    import duckdb
    import pyarrow.parquet as pq

    name = str(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{name}: not a Parquet file", [f"{name}:0: <file>: {exc}"]) from exc
    con = duckdb.connect()
    offset = 0
    select = ", ".join(
        f"coalesce({c}, {_DEFAULTS[c]})::{'INTEGER' if c == 'attempt' else 'BIGINT'} AS {c}"
        if c in _DEFAULTS
        else c
        for c in INPUT_COLUMNS
    )
    for rb in pf.iter_batches(batch_size=batch_rows):
        batch = _conform_parquet_batch(rb, name)
        batch = batch.append_column("_row", pa.array(range(1, rb.num_rows + 1), pa.int64()))
        con.register("batch", batch)
        checked = con.sql(f"SELECT {_ERROR_EXPR} AS _err, * FROM batch").to_arrow_table()
        err = checked.column("_err")
        rejects: list[Reject] = []
        if err.null_count != len(err):
            bad = checked.filter(err.is_valid()).select(["_err", "_row", "event_id"]).to_pylist()
            for r in bad:
                fld, reason = r["_err"].split("|", 1)
                rejects.append(Reject(name, offset + r["_row"], fld, reason, r["event_id"] or ""))
            con.register("checked", checked)
            good = con.sql(f"SELECT {select} FROM checked WHERE _err IS NULL").to_arrow_table()
        else:
            good = con.sql(f"SELECT {select} FROM batch").to_arrow_table()
        offset += rb.num_rows
        yield Batch(good.cast(INPUT_SCHEMA), rejects, offset)
    con.close()


def read_events(path: str | os.PathLike[str]) -> Batch:
    """Read a whole file into one batch (convenient for small files and tests)."""
    tables: list[pa.Table] = []
    rejects: list[Reject] = []
    rows = 0
    for b in read_batches(path):
        tables.append(b.table)
        rejects.extend(b.rejects)
        rows = b.rows_read
    table = pa.concat_tables(tables) if tables else INPUT_SCHEMA.empty_table()
    return Batch(table, rejects, rows)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
