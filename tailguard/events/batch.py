"""What every reader yields, and the pieces the readers share.

A reader turns a file into ``Batch`` objects: an Arrow table in the input layout
(``INPUT_SCHEMA``: ``INPUT_COLUMNS`` typed as in ``LEDGER_SCHEMA``) plus the rows that failed
validation, each a ``Reject`` naming the file, the line and the field. The JSONL reader
(``tailguard.events.jsonl``) and the CSV and Parquet readers (``tailguard.events.readers``)
both build on this module, so neither imports the other.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from tailguard.errors import ConfigError
from tailguard.events.schema import (
    INPUT_SCHEMA,
    MONEY_COLUMNS,
    NULL_DEFAULTS,
)
from tailguard.vocabulary import KINDS

__all__ = ["INPUT_SCHEMA"]  # re-exported: the readers import it from here
DEFAULT_BATCH_ROWS = 500_000
NANO = Decimal("1e-9")
_PATH_RE = re.compile(r" - at `\$(?:\[\d+\])?\.?([^`]*)`$")


@dataclass(frozen=True)
class TsWindow:
    """The event times an input may carry: ``start`` included, ``end`` excluded (UTC).

    A timestamp in year 1 or 9999, at the Unix epoch, or from milliseconds read as seconds
    is a broken exporter, not an event: every report would bucket it into a month of its
    own. The default window (``DEFAULT_TS_WINDOW``) is fixed rather than relative to the
    clock so that ingesting the same file twice always gives the same answer.
    """

    start: dt.datetime
    end: dt.datetime

    def reason(self) -> str:
        return (
            f"outside the accepted time window [{self.start.date()}, {self.end.date()}) "
            "(set ts_window or TAILGUARD_TS_WINDOW to START..END to widen it)"
        )

    @classmethod
    def parse(cls, text: str) -> TsWindow:
        """``"2000-01-01..2100-01-01"`` (dates or ISO times, UTC when no offset is given)."""
        try:
            a, b = text.split("..")
            start, end = (_utc(dt.datetime.fromisoformat(x.strip())) for x in (a, b))
        except ValueError:
            raise ConfigError(
                f"ts_window (TAILGUARD_TS_WINDOW): {text!r} is not START..END "
                "(for example 2000-01-01..2100-01-01)"
            ) from None
        if start >= end:
            raise ConfigError(
                f"ts_window (TAILGUARD_TS_WINDOW): {text!r}: START must come before END"
            )
        return cls(start, end)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


#: no LLM API predates 2000, and 2100 is far past any real event: see docs/events.md
DEFAULT_TS_WINDOW = TsWindow(
    dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
)


def ts_window(window: TsWindow | None = None) -> TsWindow:
    """``window``, else the ``ts_window`` setting (``TAILGUARD_TS_WINDOW``, then the config
    file), else ``DEFAULT_TS_WINDOW``."""
    if window is not None:
        return window
    from tailguard.config import setting

    text = setting("ts_window")
    return TsWindow.parse(str(text)) if text else DEFAULT_TS_WINDOW


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


def split_error(msg: str) -> tuple[str, str]:
    """Turn a msgspec message into (field, reason)."""
    m = _PATH_RE.search(msg)
    if m:
        return (m.group(1) or "<row>"), msg[: m.start()]
    low = msg.lower()
    if low.startswith("object missing required field"):
        name = msg.split("`")[1] if "`" in msg else "<row>"
        return name, "missing required field"
    for name in (
        "cache_read_tokens",
        "cache_write_1h_tokens",
        "reasoning_tokens",
        "reported_cost_usd",
        "cost_usd",
        "amount_usd",
        "ts",
    ):
        if msg.startswith(name):
            return name, msg
    return "<row>", msg


def structs_to_table(events: list[Any]) -> pa.Table:
    """Build the input-layout Arrow table from decoded event structs.

    One Arrow table per kind, each column converted from one ``zip(*astuple)`` list; the
    columns a kind does not have are ``pa.nulls`` (no Python list of Nones), and the kinds'
    tables are concatenated. Rows come out grouped by kind (a ledger has no row order).
    """
    # The transposition creates a tuple per event; with the collector on, every few thousand
    # allocations trigger a scan of them all (measured: ~40% of this function). They hold no
    # cycles, so the collector is paused for the conversion and restored after.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _structs_to_table(events)
    finally:
        if was_enabled:
            gc.enable()


def _structs_to_table(events: list[Any]) -> pa.Table:
    groups: dict[type[Any], list[Any]] = {}
    for ev in events:
        groups.setdefault(type(ev), []).append(ev)
    tables = []
    for cls in sorted(groups, key=lambda c: KINDS.index(c.__struct_config__.tag)):
        evs = groups[cls]
        m = len(evs)
        present = dict(
            zip(
                cls.__struct_fields__,
                zip(*map(msgspec.structs.astuple, evs), strict=True),
                strict=True,
            )
        )
        kind = cls.__struct_config__.tag
        arrays = []
        for f in INPUT_SCHEMA:
            if f.name == "kind":
                arrays.append(pa.array([kind] * m, f.type))
            elif f.name in present:
                col = present[f.name]
                if f.name in MONEY_COLUMNS:
                    col = [None if v is None else quantize_money(v) for v in col]
                arr = pa.array(col, f.type)
                if f.name in NULL_DEFAULTS and arr.null_count:  # structs without __post_init__
                    arr = pc.fill_null(arr, pa.scalar(NULL_DEFAULTS[f.name], f.type))
                arrays.append(arr)
            else:
                arrays.append(pa.nulls(m, f.type))
        tables.append(pa.Table.from_arrays(arrays, schema=INPUT_SCHEMA))
    if not tables:
        return INPUT_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    return {
        pa.string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
    }[t]


#: the SQL type of each input column
SQL_TYPES = {f.name: _sql_type(f.type) for f in INPUT_SCHEMA}


def engine() -> Any:
    """A fresh in-memory DuckDB connection whose session time zone is UTC, with DuckDB's own
    progress bar off: it computes roll-ups inside ``Ledger.connect`` and ingest, where the CLI
    owns the terminal (a repair of a large ledger printed bars under a report)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def sql_literal(s: str) -> str:
    """``s`` as a SQL string literal."""
    return "'" + s.replace("'", "''") + "'"
