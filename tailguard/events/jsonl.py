"""JSONL reading: msgspec validates, DuckDB builds the columns, both at once.

msgspec is the definition of a valid event, so every line is still decoded by it, in blocks
(``decode_lines``: one C call per chunk of the file). Building Arrow columns from a million
Python structs costs more than the decode itself, so a DuckDB ``read_json`` over the same file
builds them instead, on the other core, while msgspec decodes (DuckDB releases the GIL).

The two must agree row for row, so DuckDB's rows are used for a block only when msgspec
accepted every line of it and DuckDB parsed it without error. Anything else (a bad line, a
value DuckDB refuses: a duplicate key, a field of another kind with a wrong type, a line over
DuckDB's object size) sends that block and the rest of the file down the struct path, which
names every bad line. Where the two parsers can both accept a value but read it differently,
msgspec's reading is taken:

- money always comes from msgspec's ``Decimal`` (exact; DuckDB would go through a double);
- a timestamp DuckDB rounds differently (more than six fractional digits: DuckDB truncates,
  msgspec rounds) or refuses (lower-case ``t``/``z``) is taken from msgspec's datetime;
- everything else (strings, integers, doubles) both read identically from JSON that msgspec
  accepted; ``tests/events/test_jsonl_engine.py`` checks the two paths cell for cell.
"""

from __future__ import annotations

import decimal
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailguard.events.batch import (
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
from tailguard.events.schema import INPUT_COLUMNS, MONEY_COLUMNS, Event, FieldsOnly
from tailguard.events.stream import EngineStream

_CHUNK_BYTES = 16 << 20
_AS_DICTS = msgspec.json.Decoder()  # plain objects, to count their keys
_KEY_MARK = re.compile(rb'"\s*:')  # the end of a key
_FIELDS = frozenset(INPUT_COLUMNS)
_BAD_MONEY = (decimal.InvalidOperation, pa.ArrowInvalid, pa.ArrowTypeError, TypeError)
# The RFC 3339 forms DuckDB reads to the same instant as msgspec (checked case by case in
# the tests); any other accepted form takes msgspec's datetime.
_SAFE_TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})"


def read_jsonl(
    path: Path, batch_rows: int, *, engine: bool = True, window: TsWindow | None = None
) -> Iterator[Batch]:
    """Yield validated batches of at most ``batch_rows`` physical lines of ``path``.

    ``engine=False`` builds every batch from msgspec's structs (the reference the tests
    compare the engine path against). An event outside ``window`` (default ``ts_window()``)
    is refused, and so is an object that gives a key twice.
    """
    fields_only = msgspec.json.Decoder(FieldsOnly)
    public = msgspec.json.Decoder(Event)
    win = ts_window(window)
    name = str(path)
    rows_read = 0
    columns = _EngineRows(path) if engine else None
    try:
        with path.open("rb") as fh:
            for chunks, lines in _line_blocks(fh, batch_rows):
                first = rows_read + 1
                rows_read += lines
                table: pa.Table | None = None
                try:
                    events: list[Any] = []
                    for chunk in chunks:
                        events.extend(fields_only.decode_lines(chunk))
                except msgspec.DecodeError:  # ValidationError is a DecodeError
                    if columns is not None:  # DuckDB's rows no longer line up: stop it
                        columns.close()
                        columns = None
                else:
                    built = None
                    if columns is not None and events:
                        built = columns.take(len(events))
                        if built is None:  # DuckDB refused something: go on without it
                            columns.close()
                            columns = None
                    if built is not None:  # DuckDB refuses a key given twice: checked
                        table = _with_msgspec_values(built, events)
                    elif not _may_repeat_a_key(chunks):
                        table = _from_structs(events)
                    if table is not None and _breaks_rules(table, win):
                        table = None
                if table is None:  # a bad line in the block: find and name every one
                    evs, rejects = _decode_one_by_one(public, name, chunks, first, win)
                    yield Batch(structs_to_table(evs), rejects, rows_read)
                else:
                    yield Batch(table, [], rows_read)
    finally:
        if columns is not None:
            columns.close()


def _from_structs(events: list[Any]) -> pa.Table | None:
    try:
        return structs_to_table(events)
    except _BAD_MONEY:  # not finite, or over DECIMAL(18, 9): the slow path names the line
        return None


def _breaks_rules(table: pa.Table, window: TsWindow) -> bool:
    """The ``__post_init__`` rules and the time window over a whole batch (defaults are
    already applied)."""
    llm = pc.equal(table.column("kind"), "llm_call")
    cached = pc.add(
        pc.fill_null(table.column("cache_read_tokens"), 0),
        pc.fill_null(table.column("cache_write_tokens"), 0),
    )
    bad = pc.or_(
        pc.greater(cached, table.column("input_tokens")),
        pc.or_(
            pc.greater(
                pc.fill_null(table.column("reasoning_tokens"), 0), table.column("output_tokens")
            ),
            pc.greater(
                pc.fill_null(table.column("cache_write_1h_tokens"), 0),
                pc.fill_null(table.column("cache_write_tokens"), 0),
            ),
        ),
    )
    bad = pc.and_(llm, pc.fill_null(bad, False))
    ts = table.column("ts")
    start, end = (pa.scalar(t, ts.type) for t in (window.start, window.end))
    bad = pc.or_(bad, pc.or_(pc.less(ts, start), pc.greater_equal(ts, end)))
    for m in MONEY_COLUMNS:
        col = table.column(m)
        bad = pc.or_(bad, pc.fill_null(pc.less(col, pa.scalar(0, col.type)), False))
    return bool(pc.any(bad).as_py())


def _line_blocks(fh: IO[bytes], max_lines: int) -> Iterator[tuple[list[bytes], int]]:
    """Split a file into blocks of at most ``max_lines`` physical lines.

    A block is a list of chunks, each ending at a line end (the file's last may not), so a
    block is never joined into one large copy. Yields (chunks, number of physical lines).
    """
    pending: list[bytes] = []
    count = 0
    carry = b""
    while True:
        data = fh.read(_CHUNK_BYTES)
        if not data:
            break
        if carry:
            data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line end yet: a line longer than a chunk
            carry = data
            continue
        chunk, carry = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
        n = chunk.count(b"\n")
        while count + n >= max_lines:
            pos = -1
            for _ in range(max_lines - count):
                pos = chunk.index(b"\n", pos + 1)
            pending.append(chunk[: pos + 1])
            yield pending, max_lines
            n -= max_lines - count
            pending, count, chunk = [], 0, chunk[pos + 1 :]
        if chunk:
            pending.append(chunk)
            count += n
    if carry:  # a last line without a line end
        pending.append(carry)
        count += 1
    if pending:
        yield pending, count


def _may_repeat_a_key(chunks: list[bytes]) -> bool:
    """False when no object in ``chunks`` can give a key twice (msgspec keeps the last).

    Every key is a string followed by ``:``, and so is nothing else outside a string; so
    when the ``":`` marks number no more than the keys msgspec decoded, no key repeats.
    More marks (a repeated key, or a nested object) send the block to the line-by-line
    path, which decides exactly.
    """
    for chunk in chunks:
        keys = sum(len(d) for d in _AS_DICTS.decode_lines(chunk) if isinstance(d, dict))
        if len(_KEY_MARK.findall(chunk)) > keys:
            return True
    return False


def _repeated_key(raw: bytes) -> str | None:
    """The first event field the JSON line ``raw`` gives twice at its top level, or None.

    Only fields of the event count (``INPUT_COLUMNS``): a repeated unknown key, or one inside
    a nested value, is ignored like the value itself (DuckDB, whose columns are the event's
    fields, sees it the same way, so both paths agree).
    """
    top = _AS_DICTS.decode(raw)
    if not isinstance(top, dict) or len(_KEY_MARK.findall(raw)) <= len(top):
        return None
    last: list[str | None] = [None]

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        # called for every object, the top-level one last: keep that one's answer
        seen: set[str] = set()
        last[0] = None
        for k, _ in items:
            if k in seen and k in _FIELDS:
                last[0] = k
                break
            seen.add(k)
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)
    return last[0]


def _decode_one_by_one(
    dec: msgspec.json.Decoder[Any], name: str, chunks: list[bytes], first: int, window: TsWindow
) -> tuple[list[Any], list[Reject]]:
    """The slow path for a block holding a bad line: decode each line, name each bad one."""
    events: list[Any] = []
    rejects: list[Reject] = []
    lineno = first - 1
    for chunk in chunks:
        lines = chunk.split(b"\n")
        if chunk.endswith(b"\n"):
            lines.pop()
        for raw in lines:
            lineno += 1
            if not raw.strip():
                continue
            try:
                ev = dec.decode(raw)
            except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
                fld, reason = split_error(str(exc))
                rejects.append(Reject(name, lineno, fld, reason, _text(raw)))
                continue
            except msgspec.DecodeError as exc:
                rejects.append(Reject(name, lineno, "<json>", f"invalid JSON: {exc}", _text(raw)))
                continue
            key = _repeated_key(raw)
            if key is not None:
                why = "key given twice in one object (which value is meant?)"
                rejects.append(Reject(name, lineno, key, why, _text(raw)))
            elif not window.start <= ev.ts < window.end:
                rejects.append(Reject(name, lineno, "ts", window.reason(), _text(raw)))
            else:
                events.append(ev)
    return events, rejects


def _text(raw: bytes) -> str:
    return raw.decode(errors="replace").rstrip("\r\n")


def _with_msgspec_values(table: pa.Table, events: list[Any]) -> pa.Table | None:
    """DuckDB's columns, with money (and any timestamp DuckDB reads differently) from msgspec."""
    ts = table.column("ts")
    ok = pc.fill_null(table.column("_ts_ok"), False)
    if not pc.all(ok).as_py():
        mask = ~ok.to_numpy()
        values = pa.array([events[i].ts for i in np.flatnonzero(mask)], ts.type)
        ts = pc.replace_with_mask(ts.combine_chunks(), pa.array(mask), values)
    arrays = []
    for f in INPUT_SCHEMA:
        if f.name in MONEY_COLUMNS:
            present = np.flatnonzero(table.column(f"_has_{f.name}").to_numpy())
            if not len(present):
                arrays.append(pa.nulls(len(events), f.type))
                continue
            col: list[Decimal | None] = [None] * len(events)
            try:
                for i in present:  # a field of another kind is ignored, as msgspec does
                    v = getattr(events[i], f.name, None)
                    col[i] = None if v is None else quantize_money(v)
                arrays.append(pa.array(col, f.type))
            except _BAD_MONEY:  # not finite, or over DECIMAL(18, 9): the slow path names it
                return None
        elif f.name == "ts":
            arrays.append(ts)
        else:
            arrays.append(table.column(f.name))
    return pa.Table.from_arrays(arrays, schema=INPUT_SCHEMA)


class _EngineRows:
    """DuckDB's reading of the whole file, taken ``n`` rows at a time.

    ``take`` returns None once DuckDB failed or ran short (the caller falls back).
    """

    def __init__(self, path: Path) -> None:
        self._stream = EngineStream(engine(), _query(str(path)), 65_536)
        self._batches = iter(self._stream)
        self._held: list[pa.RecordBatch] = []
        self._held_rows = 0

    def take(self, n: int) -> pa.Table | None:
        try:
            while self._held_rows < n:
                rb = next(self._batches)
                self._held.append(rb)
                self._held_rows += rb.num_rows
        except Exception:  # an engine error, or StopIteration: fewer rows than msgspec's
            return None
        table = pa.Table.from_batches(self._held)
        out, rest = table.slice(0, n), table.slice(n)
        self._held = rest.to_batches()
        self._held_rows = rest.num_rows
        return out

    def close(self) -> None:
        self._stream.close()


def _query(path: str) -> str:
    from tailguard.events.sql import normalized_select

    cols = {c: SQL_TYPES[c] for c in INPUT_SCHEMA.names}
    cols["ts"] = "VARCHAR"
    for m in MONEY_COLUMNS:  # DuckDB only says where money is; the value comes from msgspec
        cols[m] = "JSON"
    spec = "{" + ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in cols.items()) + "}"
    ok = f"regexp_full_match(ts, {sql_literal(_SAFE_TS)})"
    raw = (
        f"SELECT * REPLACE (CASE WHEN {ok} THEN TRY_CAST(ts AS TIMESTAMPTZ) END AS ts, "
        + ", ".join(f"CAST(NULL AS {SQL_TYPES[m]}) AS {m}" for m in MONEY_COLUMNS)
        + f"), {ok} AS _ts_ok, "
        + ", ".join(f"{m} IS NOT NULL AS _has_{m}" for m in MONEY_COLUMNS)
        + f" FROM read_json({sql_literal(path)}, format = 'newline_delimited', columns = {spec})"
    )
    flags = ", ".join(f"_has_{m}" for m in MONEY_COLUMNS)
    return f"SELECT _ts_ok, {flags}, {normalized_select(SQL_TYPES)} FROM ({raw})"
