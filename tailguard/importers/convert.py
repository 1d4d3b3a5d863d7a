"""From a source's records to validated ledger batches: the part every importer shares.

Each source turns one record into one event (a dict of the ledger's input columns) or raises
``Problem`` naming the field. The events of a batch then go through the same checks as an
event file (``tailguard.events.sql``, run in DuckDB on the whole batch), so an import accepts
exactly what ``ingest`` accepts; ``tailguard.ledger.ingest`` prices, dedupes and commits them.

Money: a source's cost is read from its text (a JSON number through its shortest ``repr``, never
a float sum) and rounded half-even once to the ledger's nano-dollar (``quantize_money``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from tailguard.events.batch import (
    INPUT_SCHEMA,
    SQL_TYPES,
    Batch,
    Reject,
    TsWindow,
    engine,
    quantize_money,
    ts_window,
)
from tailguard.events.sql import normalized_select, problem_case
from tailguard.importers.mapping import ImportMap
from tailguard.importers.records import Record, read_records

#: (record, map) -> the event's input columns, or None for a record that is not a model call;
#: a list for a record that is several events (a usage result and its web searches)
Converter = Callable[[Record, ImportMap], "dict[str, Any] | list[dict[str, Any]] | None"]

#: (path, map, *, batch_rows, window, counts) -> validated batches: one per source
Reader = Callable[..., Iterator[Batch]]

#: a record -> its sub-records, each named (``results[2]``) for the reject line: a usage-API
#: bucket holds one result per group, and each result is one event
Exploder = Callable[[Record], Iterator[tuple[str, Record]]]

_SCHEMA = INPUT_SCHEMA.append(pa.field("_row", pa.int64()))
_RAW_CHARS = 2000


class Problem(Exception):  # a row's problem: caught per row, never raised to a caller
    """A record cannot become an event: ``field`` and ``reason`` go into the reject line."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def integer(record: Mapping[str, Any], key: str, *, default: int | None = None) -> int | None:
    """A token count: an int, or its text (a CSV cell); absent or empty gives ``default``."""
    v = record.get(key)
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        raise Problem(key, f"not an integer: {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    raise Problem(key, f"not an integer: {v!r}")


def money(value: Any, key: str) -> Decimal | None:
    """A dollar amount to nano-dollars, half-even; a float through its shortest text."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Problem(key, f"not a number: {value!r}")
    try:
        d = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise Problem(key, f"not a number: {value!r}") from None
    if not d.is_finite():
        raise Problem(key, f"not a finite number: {value!r}")
    return quantize_money(d)


def timestamp(value: Any, key: str, *, naive_is_utc: bool = False) -> dt.datetime:
    """An ISO 8601 text or Unix seconds; a timestamp without a zone is refused unless the
    source documents it as UTC (``naive_is_utc``)."""
    if value is None or value == "":
        raise Problem(key, "missing required field")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, dt.datetime):
        t = value
    else:
        try:
            t = dt.datetime.fromisoformat(str(value).strip().replace(" UTC", "+00:00"))
        except ValueError:
            raise Problem(key, f"not an ISO 8601 timestamp: {value!r}") from None
    if t.tzinfo is None:
        if not naive_is_utc:
            raise Problem(key, f"timestamp without a timezone: {value!r}")
        t = t.replace(tzinfo=dt.UTC)
    return t


def read_source(
    path: str | Path,
    mp: ImportMap,
    *,
    convert: Converter,
    batch_rows: int,
    window: TsWindow | None = None,
    counts: dict[str, int] | None = None,
    explode: Exploder | None = None,
) -> Iterator[Batch]:
    """Yield validated batches of the events ``convert`` makes of ``path``'s records.

    ``counts["skipped"]`` is increased for each record that is not a model call (a Langfuse
    span, say) or that the map excludes: neither is a problem, nor an event. With ``explode``,
    each record is first split into sub-records (one event each, on the record's line; a
    problem's field is prefixed with the sub-record's name).
    """
    p = Path(path)
    name = str(p)
    win = ts_window(window)
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    n = 0  # records read (for the ingest's counts)
    con = engine()
    try:
        for line, rec in read_records(p):
            n += 1
            parts = explode(rec) if explode is not None and "__error__" not in rec else None
            for where, sub in parts if parts is not None else [("", rec)]:
                prefix = where + "." if where else ""
                if "__error__" in sub:
                    rejects.append(Reject(name, line, prefix + "<row>", sub["__error__"], ""))
                    continue
                try:
                    ev = convert(sub, mp)
                except Problem as pr:
                    rejects.append(Reject(name, line, prefix + pr.field, pr.reason, _raw(sub)))
                    continue
                if ev is None:
                    if counts is not None:
                        counts["skipped"] = counts.get("skipped", 0) + 1
                    continue
                for one in ev if isinstance(ev, list) else [ev]:
                    one["_row"] = line
                    rows.append(one)
            if len(rows) >= batch_rows:
                yield _validated(con, name, rows, rejects, win, n)
                rows, rejects = [], []
        yield _validated(con, name, rows, rejects, win, n)
    finally:
        con.close()


def _raw(rec: Record) -> str:
    return msgspec.json.encode(rec).decode()[:_RAW_CHARS]


def _validated(
    con: Any,
    name: str,
    rows: list[dict[str, Any]],
    rejects: list[Reject],
    window: TsWindow,
    records: int,
) -> Batch:
    """The events of ``rows`` checked as an event file's are, in one DuckDB pass."""
    if not rows:
        return Batch(INPUT_SCHEMA.empty_table(), rejects, records)
    table = pa.Table.from_pylist(rows, schema=_SCHEMA)
    raw_types = {f.name: f.type for f in table.schema}
    con.register("import_raw", table)
    try:
        checked = con.sql(
            f"SELECT _row, {problem_case(SQL_TYPES, window, raw_types)} AS _err, "
            f"{normalized_select(SQL_TYPES, cast='TRY_CAST')} FROM import_raw"
        ).to_arrow_table()
    finally:
        con.unregister("import_raw")
    err = checked.column("_err")
    if err.null_count != len(err):
        bad = checked.filter(err.is_valid()).select(["_err", "_row", "event_id"]).to_pylist()
        for r in bad:
            fld, reason = r["_err"].split("|", 1)
            rejects.append(Reject(name, r["_row"], fld, reason, r["event_id"] or ""))
        checked = checked.filter(err.is_null())
    return Batch(checked.drop_columns(["_row", "_err"]).cast(INPUT_SCHEMA), rejects, records)
