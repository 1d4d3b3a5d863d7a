"""Read events from JSONL, CSV and Parquet into validated Arrow batches.

Every reader yields ``Batch`` objects: an Arrow table in the input layout (``INPUT_COLUMNS``
typed as in ``LEDGER_SCHEMA``) plus the rows that failed validation, each a ``Reject`` naming the
file, the line (JSONL/CSV: the physical line; Parquet: the 1-based row) and the field.

Why two methods: JSONL and CSV are validated line by line with msgspec (a batch is decoded in
one C call; only a batch holding a bad line is decoded again line by line to name every bad
line and field); for JSONL, DuckDB builds the columns meanwhile (``tailguard.events.jsonl``).
Parquet is already columnar, so it is validated in one vectorised DuckDB pass
(``tailguard.events.sql`` restates the msgspec rules as SQL) and never touches Python per row.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from tailguard.errors import InputError
from tailguard.events.batch import (
    DEFAULT_BATCH_ROWS,
    INPUT_SCHEMA,
    SQL_TYPES,
    Batch,
    Reject,
    TsWindow,
    engine,
    quantize_money,
    split_error,
    sql_literal,
    structs_to_table,
    ts_window,
)
from tailguard.events.csvrows import csv_rows
from tailguard.events.jsonl import read_jsonl
from tailguard.events.schema import INPUT_COLUMNS, Event

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "INPUT_SCHEMA",
    "SQL_TYPES",
    "Batch",
    "Reject",
    "quantize_money",
    "read_batches",
    "read_events",
    "structs_to_table",
]

# Parquet rows are streamed in chunks of about DuckDB's row group (pipelining, bounded memory)
_PARQUET_CHUNK_ROWS = 122_880


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
    path: str | os.PathLike[str],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    window: TsWindow | None = None,
) -> Iterator[Batch]:
    """Yield validated batches of the events in ``path`` (format from the file name).

    An event whose ``ts`` falls outside ``window`` (default: ``ts_window()``) is refused.
    """
    p = Path(path)
    win = ts_window(window)
    if not p.exists():
        raise InputError(f"{p}: no such file", [f"{p}:0: <file>: no such file"])
    fmt = _sniff_format(p)
    if fmt == "jsonl":
        yield from read_jsonl(p, batch_rows, window=win)
    elif fmt == "csv":
        yield from _read_csv(p, batch_rows, win)
    else:
        yield from _read_parquet(p, batch_rows, win)


def _read_csv(path: Path, batch_rows: int, window: TsWindow) -> Iterator[Batch]:
    name = str(path)
    header, rows = csv_rows(path)
    if "kind" not in header:
        raise InputError(
            f"{name}: not an events CSV", [f"{name}:1: kind: missing column in header"]
        )
    unknown = [c for c in header if c not in INPUT_COLUMNS]
    if unknown:
        raise InputError(
            f"{name}: unknown columns",
            [f"{name}:1: {c}: unknown column (see docs/events.md)" for c in unknown],
        )
    events: list[Any] = []
    rejects: list[Reject] = []
    line = 1
    for row in rows:
        line = row.line
        if row.values is None:
            rejects.append(Reject(name, row.line, row.field, row.reason, row.raw))
        else:
            clean = {k: v for k, v in row.values.items() if v != ""}
            try:
                ev = msgspec.convert(clean, Event, strict=False)
            except msgspec.ValidationError as exc:
                fld, reason = split_error(str(exc))
                rejects.append(Reject(name, row.line, fld, reason, ",".join(row.values.values())))
            else:
                if window.start <= ev.ts < window.end:
                    events.append(ev)
                else:
                    raw = ",".join(row.values.values())
                    rejects.append(Reject(name, row.line, "ts", window.reason(), raw))
        if len(events) + len(rejects) >= batch_rows:
            yield Batch(structs_to_table(events), rejects, line)
            events, rejects = [], []
    yield Batch(structs_to_table(events), rejects, line)


# --- Parquet: vectorised validation in DuckDB ---------------------------------------------------

_COMPATIBLE: dict[str, Any] = {
    "VARCHAR": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "BIGINT": pa.types.is_integer,
    "INTEGER": pa.types.is_integer,
    "DOUBLE": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
    "TIMESTAMPTZ": lambda t: pa.types.is_timestamp(t) and t.tz is not None,
    "BOOLEAN": pa.types.is_boolean,
}


def _compatible(sql_type: str, t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):  # dictionary-encoded (pandas' categoricals): its values count
        t = t.value_type
    if sql_type.startswith("DECIMAL"):
        return pa.types.is_decimal(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
    return bool(_COMPATIBLE[sql_type](t))


def _read_parquet(path: Path, batch_rows: int, window: TsWindow) -> Iterator[Batch]:
    """Read, check and normalise a Parquet file in one DuckDB pass (row numbers from 1).

    Money columns should be DECIMAL; a float money column is converted by the engine
    (nearest nano-dollar).
    """
    import duckdb
    import pyarrow.parquet as pq

    from tailguard.events.sql import normalized_select, problem_case
    from tailguard.events.stream import EngineStream

    name = str(path)
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{name}: not a Parquet file", [f"{name}:0: <file>: {exc}"]) from exc
    problems = [
        f"{name}:1: {c}: unknown column (see docs/events.md)"
        for c in schema.names
        if c not in INPUT_COLUMNS
    ]
    problems += [  # which of the two is meant is unknown, as for a JSON key given twice
        f"{name}:1: {c}: column named twice in the schema"
        for c in sorted({c for c in schema.names if schema.names.count(c) > 1})
    ]
    if problems:
        raise InputError(f"{name}: columns do not fit the event schema", problems)
    present = set(schema.names)
    for col in INPUT_COLUMNS:
        if col in present and not _compatible(SQL_TYPES[col], schema.field(col).type):
            t = schema.field(col).type
            why = (
                "timestamp column without a timezone (store UTC with tz)"
                if col == "ts" and pa.types.is_timestamp(t)
                else f"type {t} cannot hold {SQL_TYPES[col]}"
            )
            problems.append(f"{name}:1: {col}: {why}")
    if problems:
        raise InputError(f"{name}: columns do not fit the event schema", problems)
    raw_types = {c: schema.field(c).type for c in present}
    raw = ", ".join(
        col if col in present else f"CAST(NULL AS {SQL_TYPES[col]}) AS {col}"
        for col in INPUT_COLUMNS
    )
    con = engine()
    try:
        con.execute(
            f"CREATE TEMP VIEW raw AS SELECT file_row_number + 1 AS _row, {raw} "
            f"FROM read_parquet({sql_literal(name)}, file_row_number = true)"
        )
    except duckdb.Error as exc:
        con.close()
        raise InputError(f"{name}: cannot read", [f"{name}:0: <file>: {exc}"]) from exc
    # Streamed: the engine checks the next rows while the caller prices and stages these.
    stream = EngineStream(
        con,
        f"SELECT _row, {problem_case(SQL_TYPES, window, raw_types)} AS _err, "
        f"{normalized_select(SQL_TYPES, cast='TRY_CAST')} FROM raw",
        min(batch_rows, _PARQUET_CHUNK_ROWS),
    )
    try:
        for rb in stream:
            t = pa.Table.from_batches([rb])
            err = t.column("_err")
            rejects: list[Reject] = []
            if err.null_count != len(err):
                bad = t.filter(err.is_valid()).select(["_err", "_row", "event_id"]).to_pylist()
                for r in bad:
                    fld, reason = r["_err"].split("|", 1)
                    rejects.append(Reject(name, r["_row"], fld, reason, r["event_id"] or ""))
                t = t.filter(err.is_null())
            rows = rb.column(0)[rb.num_rows - 1].as_py() if rb.num_rows else 0
            yield Batch(t.drop_columns(["_row", "_err"]).cast(INPUT_SCHEMA), rejects, rows)
    except duckdb.Error as exc:
        raise InputError(f"{name}: cannot read", [f"{name}:0: <file>: {exc}"]) from exc
    finally:
        stream.close()


def read_events(path: str | os.PathLike[str], *, window: TsWindow | None = None) -> Batch:
    """Read a whole file into one batch (convenient for small files and tests)."""
    tables: list[pa.Table] = []
    rejects: list[Reject] = []
    rows = 0
    for b in read_batches(path, window=window):
        tables.append(b.table)
        rejects.extend(b.rejects)
        rows = b.rows_read
    table = pa.concat_tables(tables) if tables else INPUT_SCHEMA.empty_table()
    return Batch(table, rejects, rows)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
