"""The query context every report takes: one connection, one dialect, the ledger's own dates.

Why one object: the time zone used to be set in seven reports, the last-event day looked up in
four, and the engine-specific pieces (``epoch``, ``quantile_cont``, ``con.register``, temp tables)
were spread over every file. A ``QueryContext`` is built once (from a ``Ledger``, a ledger
directory or an open connection) and handed to any number of reports:

    with QueryContext.open("ledger/") as ctx:
        panel = kpis(ctx)
        table = margins(ctx)

- **The connection**, with the session time zone set to UTC in one place (``Dialect.setup``):
  every date bucket (day, week, month) is a UTC one, whatever the machine's zone.
- **The ledger's dates**: the first and last event (``span``, ``last_day``), read once and kept;
  the window helpers of ``tailguard.analytics.period`` take a context as well as a connection
  and use the kept span rather than scanning again.
- **The dialect**: every expression or statement that differs between engines is a method of
  ONE object (``Dialect``). DuckDB's is ``DUCKDB``; a second engine (ClickHouse via chdb) plugs in
  by subclassing ``Dialect`` and passing it to ``QueryContext.open``. Everything else in the
  reports is portable SQL (CTEs, CASE inside aggregates, ``count(DISTINCT)``, window functions,
  LEFT JOIN, ``coalesce``, ``CAST(x AS DOUBLE)``) with ``?`` positional parameters.

The context duck-types the part of a DuckDB connection the reports use (``execute(sql,
params).fetchall() / .fetchone() / .description``, ``register(name, table)``), so a function
written against a connection runs unchanged on a context, whatever the engine.

Month and quarter arithmetic lives in ``tailguard.analytics.period`` (``month_start``,
``add_months``, ``month_last``, ``quarter_start``), re-exported here.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from tailguard.analytics.period import (
    Window,
    add_months,
    month_last,
    month_start,
    quarter_start,
)
from tailguard.errors import ArgumentError

T = TypeVar("T")

if TYPE_CHECKING:
    import pyarrow as pa

    from tailguard.ledger.store import Ledger

__all__ = [
    "DAILY",
    "DUCKDB",
    "ROLLUP",
    "TASK",
    "Dialect",
    "DuckDBDialect",
    "QueryContext",
    "Result",
    "Source",
    "add_months",
    "as_context",
    "month_last",
    "month_start",
    "quarter_start",
    "using",
]

#: the view of the ledger's roll-ups (``tailguard.ledger.rollup``): per customer × user × UTC
#: day × kind × provider × model × feature × workload × outcome × action × rule × tool_kind,
#: exact sums; NOT unique per key (one file per segment): every read re-aggregates
ROLLUP = "rollup"

#: the second level: one row per customer × UTC day (per segment: re-aggregate), the sums of
#: ``tailguard.ledger.rollup.DAILY_MEASURES``; about 1 row per 50 events on the simulator
DAILY = "rollup_daily"

#: the third level: one row per customer × task × workload × UTC day over the LLM calls and task
#: outcomes (``tailguard.ledger.rollup.TASK_SCHEMA``): distinct tasks and per-task sums without
#: the events; about 1 row per 11 events on the simulator
TASK = "rollup_task"

#: ``trunc`` units
UNITS = ("week", "month", "quarter", "year")


class Dialect:
    """What differs between engines, behind named methods (the contract a second engine
    implements; /work/coord/NOTES.md has it in prose).

    Expression methods return SQL text (given SQL text for their operand); statement methods run
    on a connection the dialect opened (``open``) or was handed (``setup``).
    """

    name = "abstract"

    # --- connection --------------------------------------------------------------------------

    def open(self, ledger: Ledger, *, threads: int | None = None) -> Any:
        """A connection with relations ``events`` and ``customers`` over ``ledger`` (the column
        names and types of ``LEDGER_SCHEMA`` / ``CUSTOMER_SCHEMA``, money as exact DECIMAL), its
        session time zone UTC."""
        raise NotImplementedError

    def setup(self, con: Any) -> None:
        """Session settings on a connection (UTC); idempotent."""
        raise NotImplementedError

    def execute(self, con: Any, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list]:
        """Run ``sql`` (``?`` positional parameters) and return (column names, rows). Rows hold
        Python values: Decimal money, int counts, tz-aware UTC datetimes, ``datetime.date``
        dates, None for NULL."""
        raise NotImplementedError

    def close(self, con: Any) -> None:
        """Close a connection this dialect opened."""
        con.close()

    def sibling(self, con: Any) -> Any | None:
        """A second connection to ``con``'s database that may run a query while ``con`` runs
        another (``beside``); None when the engine has none (each query then runs in turn)."""
        return None

    # --- expressions -------------------------------------------------------------------------

    def epoch_seconds(self, ts: str) -> str:
        """Seconds since 1970-01-01 UTC of the timestamp ``ts`` (numeric)."""
        raise NotImplementedError

    def day_number(self, ts: str) -> str:
        """Whole days since 1970-01-01 UTC (BIGINT, floored) of the timestamp ``ts``: a day key
        with no time-zone arithmetic."""
        return f"CAST(floor({self.epoch_seconds(ts)} / 86400) AS BIGINT)"

    def to_date(self, ts: str) -> str:
        """The UTC calendar day (DATE) of the timestamp ``ts``."""
        raise NotImplementedError

    def date_number(self, d: str) -> str:
        """Whole days since 1970-01-01 (BIGINT) of the DATE ``d``: the roll-up's ``day`` as the
        same key ``day_number`` gives a timestamp."""
        raise NotImplementedError

    def trunc(self, unit: str, ts: str) -> str:
        """The DATE starting the UTC ``unit`` (``week``: ISO, Monday; ``month``, ``quarter``,
        ``year``) that holds the timestamp ``ts``."""
        raise NotImplementedError

    def quantile(self, expr: str, q: float) -> str:
        """An aggregate: the exact ``q`` quantile of ``expr``, linear interpolation between
        order statistics (numpy's default)."""
        raise NotImplementedError

    # --- tables ------------------------------------------------------------------------------

    def register(self, con: Any, name: str, table: pa.Table) -> None:
        """Make an Arrow table queryable as ``name`` (replacing one of that name)."""
        raise NotImplementedError

    def temp_table(self, con: Any, name: str, sql: str, params: Sequence[Any] = ()) -> None:
        """``CREATE OR REPLACE TEMP TABLE name AS sql``: session-local, gone on close."""
        raise NotImplementedError

    def drop(self, con: Any, name: str) -> None:
        """Drop the temp table or registered table ``name``; no error when absent."""
        raise NotImplementedError


class DuckDBDialect(Dialect):
    """DuckDB: Parquet segments read in place, Arrow tables registered without a copy."""

    name = "duckdb"

    def open(self, ledger: Ledger, *, threads: int | None = None) -> Any:
        return ledger.connect(threads=threads)  # views ``events`` and ``customers``, UTC

    def setup(self, con: Any) -> None:
        con.execute("SET TimeZone = 'UTC'")

    def sibling(self, con: Any) -> Any | None:
        cur = con.cursor()  # the same in-memory database: its views, not its temp tables
        self.setup(cur)
        return cur

    def execute(self, con: Any, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list]:
        cur = con.execute(sql, list(params)) if params else con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()

    def epoch_seconds(self, ts: str) -> str:
        return f"epoch({ts})"

    def to_date(self, ts: str) -> str:
        return f"CAST({ts} AS DATE)"  # the session zone is UTC (setup)

    def date_number(self, d: str) -> str:
        return f"({d} - DATE '1970-01-01')"

    def trunc(self, unit: str, ts: str) -> str:
        if unit not in UNITS:
            raise ArgumentError("unit", f"{unit!r} is not one of {', '.join(UNITS)}")
        return f"CAST(date_trunc('{unit}', {ts}) AS DATE)"

    def quantile(self, expr: str, q: float) -> str:
        return f"quantile_cont({expr}, {float(q)!r})"

    def register(self, con: Any, name: str, table: pa.Table) -> None:
        con.register(name, table)

    def temp_table(self, con: Any, name: str, sql: str, params: Sequence[Any] = ()) -> None:
        stmt = f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}"
        con.execute(stmt, list(params)) if params else con.execute(stmt)

    def drop(self, con: Any, name: str) -> None:
        con.unregister(name)  # a registered Arrow table (no error when there is none)
        con.execute(f"DROP TABLE IF EXISTS {name}")


DUCKDB = DuckDBDialect()


@dataclass
class Result:
    """The answer to ``QueryContext.execute``: the cursor methods the reports use."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    @property
    def description(self) -> list[tuple[str]]:
        return [(c,) for c in self.columns]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


@dataclass(frozen=True)
class Source:
    """Where a report reads its per-day sums (``QueryContext.source``): the same SQL text runs
    on either table with these pieces substituted."""

    #: ``rollup`` or ``events``
    table: str
    #: the window's WHERE on that table, and its parameters
    where: str
    params: list[Any]
    #: how many events a row stands for: the roll-up's ``events`` column, or ``1``
    n: str
    #: how many LLM requests a row stands for (``llm_call`` rows only)
    requests: str
    #: the row's UTC day as days since 1970-01-01
    day_number: str
    rollup: bool


@dataclass
class QueryContext:
    """One engine connection, its dialect, and the ledger's dates, for any number of reports.

    Build it with ``QueryContext.open(ledger)`` (owns and closes its connection) or
    ``QueryContext.wrap(con)`` (a caller's connection, left open).
    """

    con: Any
    dialect: Dialect = field(default=DUCKDB)
    ledger: Ledger | None = None
    owned: bool = False
    #: read the ledger's roll-ups where they answer the question: True (every level), the names
    #: of the levels to read (e.g. ``("rollup",)``), or False (events only: the second method the
    #: tests compare the roll-up paths against)
    use_rollup: bool | tuple[str, ...] = True
    _span: tuple[dt.datetime | None, dt.datetime | None] | None = field(default=None, repr=False)
    _relations: dict[str, bool] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls,
        ledger: Ledger | str | os.PathLike[str],
        *,
        dialect: Dialect | None = None,
        threads: int | None = None,
    ) -> QueryContext:
        """A context over ``ledger`` (a ``Ledger``, its directory or a ClickHouse URL) with its
        own connection; a ClickHouse ledger brings its dialect (issue 14)."""
        from tailguard.ledger.url import open_ledger

        led = open_ledger(ledger)
        d = dialect or getattr(led, "dialect", None) or DUCKDB
        con = d.open(led, threads=threads)
        d.setup(con)
        return cls(con, d, led, owned=True)

    @classmethod
    def wrap(cls, con: Any, *, dialect: Dialect | None = None) -> QueryContext:
        """A context over a caller's connection (which has ``events`` and ``customers``)."""
        d = dialect or DUCKDB
        d.setup(con)
        return cls(con, d)

    def sibling(self) -> QueryContext | None:
        """A context on a second connection to this one's database (``beside``), or None."""
        con = self.dialect.sibling(self.con)
        if con is None:
            return None
        return QueryContext(con, self.dialect, self.ledger, owned=True, use_rollup=self.use_rollup)

    def close(self) -> None:
        """Close the connection if this context opened it."""
        if self.owned:
            self.dialect.close(self.con)
            self.owned = False

    def __enter__(self) -> QueryContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the connection, engine-neutral ------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        """Run ``sql`` (``?`` parameters) through the dialect; a cursor-like ``Result``."""
        cols, rows = self.dialect.execute(self.con, sql, params or ())
        return Result(cols, rows)

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of ``sql``."""
        return self.execute(sql, params).rows

    def register(self, name: str, table: pa.Table) -> None:
        """An Arrow table queryable as ``name`` (``Dialect.register``)."""
        self.dialect.register(self.con, name, table)

    def temp_table(self, name: str, sql: str, params: Sequence[Any] | None = None) -> None:
        """``CREATE OR REPLACE TEMP TABLE name AS sql`` (``Dialect.temp_table``)."""
        self.dialect.temp_table(self.con, name, sql, params or ())

    def drop(self, name: str) -> None:
        self.dialect.drop(self.con, name)

    # --- expressions (the dialect's) -----------------------------------------------------------

    def epoch_seconds(self, ts: str = "ts") -> str:
        return self.dialect.epoch_seconds(ts)

    def day_number(self, ts: str = "ts") -> str:
        return self.dialect.day_number(ts)

    def to_date(self, ts: str = "ts") -> str:
        return self.dialect.to_date(ts)

    def date_number(self, d: str = "day") -> str:
        return self.dialect.date_number(d)

    def trunc(self, unit: str, ts: str = "ts") -> str:
        return self.dialect.trunc(unit, ts)

    def quantile(self, expr: str, q: float) -> str:
        return self.dialect.quantile(expr, q)

    # --- the roll-ups ------------------------------------------------------------------------

    def has_rollup(self, relation: str = ROLLUP) -> bool:
        """True when the connection has the ledger's roll-up view ``relation`` (``rollup``, or
        ``rollup_daily``: ``Ledger.connect`` makes both; a hand-made connection with only
        ``events`` has neither) and ``use_rollup`` is on."""
        if self.use_rollup is False:
            return False
        if self.use_rollup is not True and relation not in self.use_rollup:
            return False
        if relation not in self._relations:
            try:
                self.fetch(f"SELECT * FROM {relation} LIMIT 0")
                self._relations[relation] = True
            except Exception:  # any engine's "no such table": read events
                self._relations[relation] = False
        return self._relations[relation]

    def source(self, win: Window) -> Source:
        """Where to read per-day sums over ``win``: the roll-up when it can answer
        (``rollup_where``), else the events; the ``Source`` names the table, its WHERE and the
        expressions that differ between the two (a row count, LLM requests, the day number)."""
        on_days = self.rollup_where(win)
        if on_days is not None:
            return Source(ROLLUP, *on_days, "events", "requests", self.date_number("day"), True)
        where, params = win.sql()
        req = "coalesce(requests, 1)"
        return Source("events", where, list(params), "1", req, self.day_number("ts"), False)

    def rollup_where(self, win: Window, relation: str = ROLLUP) -> tuple[str, list[Any]] | None:
        """A WHERE on the roll-up's ``day`` that selects exactly the events ``win.sql()``
        selects, or None when the roll-up ``relation`` cannot answer (none on the connection,
        or a window bound that is not a UTC midnight: the roll-up's grain is the UTC day)."""
        if not self.has_rollup(relation):
            return None
        parts, params = [], []
        for bound, op in ((win.start, ">="), (win.end, "<")):
            if bound is None:
                continue
            utc = bound.astimezone(dt.UTC)
            if utc.time() != dt.time(0):
                return None
            parts.append(f"day {op} ?")
            params.append(utc.date())
        return (" AND ".join(parts) or "TRUE"), params

    # --- the ledger's dates --------------------------------------------------------------------

    def span(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(first, last) event timestamp of the whole ledger, read once per context: the
        connection's view of the segments is fixed when it is made, so the answer cannot go
        stale while the context lives."""
        if self._span is None:
            rel = next((r for r in (DAILY, ROLLUP) if self.has_rollup(r)), None)
            src = f"min(first_ts), max(last_ts) FROM {rel}" if rel else None
            row = self.fetch(f"SELECT {src or 'min(ts), max(ts) FROM events'}")
            self._span = (row[0][0], row[0][1]) if row else (None, None)
        return self._span

    def first_day(self) -> dt.date | None:
        """The UTC day of the ledger's first event (None when empty)."""
        lo = self.span()[0]
        return None if lo is None else lo.astimezone(dt.UTC).date()

    def last_day(self) -> dt.date | None:
        """The UTC day of the ledger's last event (None when empty): the default "today" of
        every report (the wall clock is never read)."""
        hi = self.span()[1]
        return None if hi is None else hi.astimezone(dt.UTC).date()

    def ledger_window(self) -> Window:
        """Every day the ledger holds events (``period.ledger_span``)."""
        from tailguard.analytics.period import ledger_span

        return ledger_span(self)

    def bounded(self, win: Window | None = None) -> Window:
        """``win`` with an open side closed at the data's first / last day (``period.bounded``)."""
        from tailguard.analytics.period import bounded

        return bounded(self, win or Window())


def as_context(source: Any, *, dialect: Dialect | None = None) -> QueryContext:
    """A ``QueryContext`` from a context (itself), a ``Ledger`` or directory (opened: close
    it), or an open connection (wrapped, left open)."""
    from tailguard.ledger.store import Ledger

    if isinstance(source, QueryContext):
        return source
    if isinstance(source, (Ledger, str, os.PathLike)):
        return QueryContext.open(source, dialect=dialect)
    return QueryContext.wrap(source, dialect=dialect)


def start(fn: Callable[[], T], *, name: str = "tailguard-report") -> Callable[[], T]:
    """Run ``fn`` in a thread now; the returned callable waits for its result (or raises its
    error), as often as it is called. The engine releases the GIL, so one report's queries run
    beside the caller's work (``beside``; the dashboard's pages)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # raised to whoever waits for the result
            box["error"] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    return result


@contextmanager
def beside(ctx: QueryContext, fn: Callable[..., T], *args: Any) -> Iterator[Callable[[], T]]:
    """Run ``fn(sibling, *args)`` in a thread, on a second connection to ``ctx``'s database
    (``QueryContext.sibling``), while the caller goes on with ``ctx``; yields a callable that
    waits for it and returns its result. DuckDB releases the GIL while a query runs, so the
    engine runs one report's queries while Python builds another's rows (``kpis``: the
    workload classes' 0.5 s of queries beside the panel's tables). Without a sibling (an
    engine that runs one query at a time), or when ``fn`` failed on it (a relation its
    connection cannot see: a registered table), ``fn(ctx, *args)`` runs when asked for: the
    same result, in turn, and its own error if it has one."""
    side = ctx.sibling()
    if side is None:
        yield lambda: fn(ctx, *args)
        return
    on_side = start(lambda: fn(side, *args), name="tailguard-beside")

    def result() -> T:
        try:
            return on_side()
        except Exception:  # asked again on ctx
            return fn(ctx, *args)

    try:
        yield result
    finally:
        with suppress(Exception):  # waited for before its connection closes
            on_side()
        side.close()


@contextmanager
def using(source: Any, *, dialect: Dialect | None = None) -> Iterator[QueryContext]:
    """``as_context(source)`` for the length of a ``with`` block; a connection it opened is
    closed at the end, a caller's context or connection is left open. Every report's entry."""
    ctx = as_context(source, dialect=dialect)
    try:
        yield ctx
    finally:
        if ctx is not source:
            ctx.close()
