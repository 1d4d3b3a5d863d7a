"""The ledger on ClickHouse: a ``ReplacingMergeTree`` of events, idempotent by ``event_id``.

Two ways to reach the engine, one ledger: ``chdb:///path/dir`` runs ClickHouse in this process
(``chdb``; the data lives in ``dir/clickhouse``, one process at a time: chdb locks the
directory), ``clickhouse://host:8123/db`` or ``https://host:8443/db`` goes through
``clickhouse-connect`` to a server. Both are an ``_Engine`` with three calls (a statement, a
query answered as Arrow, an Arrow insert): everything else is the same SQL.

Tables (created and migrated by ``init``; every column of ``LEDGER_SCHEMA`` with its type, so a
column the schema gains is added by the next ``init``)::

    ledger_events   ReplacingMergeTree(_version), PARTITION BY toYYYYMM(ts),
                    ORDER BY (customer_id, ts, event_id): a customer's rows are contiguous
    events          VIEW: ledger_events FINAL (the de-duplicated rows, LEDGER_SCHEMA's columns)
    ledger_ids      ReplacingMergeTree ORDER BY event_id: every stored id, written by the
                    materialized view ledger_ids_mv on each insert into ledger_events (an id
                    set, so a row inserted twice is harmless); the id check's index
    ledger_customers MergeTree of customer tables, each import a new _version
    customers       VIEW: the rows of the newest _version (CUSTOMER_SCHEMA's columns)
    ledger_allocations MergeTree of ``reconcile --allocate``'s rows, PARTITION BY month:
                    a month's allocation replaced whole (``write_allocations``)
    allocations     VIEW: ALLOCATION_SCHEMA's columns (what the DuckDB ledger's
                    DIR/allocations/*.parquet view gives)

Idempotency, three layers, so that the first occurrence of an ``event_id`` wins as in DuckDB:

1. within a batch, the first row of an id is kept (the DuckDB ledger's ``IdIndex``);
2. under the ledger's commit lock (one per process and path), ids already in ``ledger_events``
   are dropped before the insert (an ``IN`` on the batch's ids);
3. writers that do not share a lock (gateway replicas writing to one server) can both insert
   the same event: the rows have the same sorting key (the same event has the same customer
   and ts), so ``FINAL`` and background merges keep one. Which one: ``ReplacingMergeTree``
   keeps the greatest ``_version``, and ``_version`` is ``2^64 - 1 - insert time in ns``,
   a decreasing function of the insert time: the FIRST insert wins, as in DuckDB. (Two rows
   with the same id but a different customer or ts are different sorting keys: layer 2 stops
   them on one writer; two replicas racing with such rows would both count. No tailguard writer
   produces that: an event id names one event.)

Reports read ``events`` (``FINAL``): correct before background merges have run. The bench
(bench/bench_clickhouse.py) compares ``FINAL`` with a dedupe in the query.

Money stays ``Decimal(18, 9)`` (``LEDGER_SCHEMA``'s ``MONEY``); sums are ``Decimal(38, 9)``,
exact, as in DuckDB.
"""

from __future__ import annotations

import io
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.errors import LedgerError, MissingDependencyError
from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.ledger.compact import CompactResult
from tailguard.ledger.store import CommitResult, IdIndex, Ledger

if TYPE_CHECKING:
    import duckdb

EVENTS_TABLE = "ledger_events"
CUSTOMERS_TABLE = "ledger_customers"
#: ``reconcile --allocate``'s rows (``tailguard.finops.allocation``), one partition per month
ALLOCATIONS_TABLE = "ledger_allocations"
#: every stored event id, sorted by id (filled by a materialized view on ``ledger_events``):
#: the id check reads the few granules holding a batch's ids, not the whole ``event_id`` column
IDS_TABLE = "ledger_ids"
SCHEMES = ("chdb", "clickhouse", "clickhouses", "http", "https")

#: never NULL in a valid event: the sorting key and the kind
NOT_NULL = frozenset({"event_id", "kind", "ts", "customer_id"})
#: few distinct values: stored as LowCardinality (a dictionary per part)
LOW_CARDINALITY = frozenset(
    {"kind", "workload", "provider", "model", "status", "tool_kind", "outcome", "action"}
    | {"cost_source", "feature", "rule", "tool"}
)
_MAX_U64 = 2**64 - 1

#: per (process, ledger): commits serialised like the DuckDB ledger's file lock
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def ch_type(field: pa.Field) -> str:
    """The ClickHouse type of a ledger (or customer) column."""
    t = field.type
    if pa.types.is_string(t):
        base = "String"
    elif pa.types.is_timestamp(t):
        base = "DateTime64(6, 'UTC')"
    elif pa.types.is_decimal(t):
        base = f"Decimal({t.precision}, {t.scale})"
    elif t == pa.int32():
        base = "Int32"
    elif t == pa.int64():
        base = "Int64"
    elif t == pa.float64():
        base = "Float64"
    elif t == pa.bool_():
        base = "Bool"
    elif t == pa.date32():
        base = "Date32"
    else:  # a column type the schema gained and this mapping does not know yet
        raise LedgerError(f"no ClickHouse type for column {field.name} ({t})")
    if field.name in NOT_NULL:
        return base
    typ = f"Nullable({base})"
    return f"LowCardinality({typ})" if field.name in LOW_CARDINALITY else typ


def _columns_ddl(schema: pa.Schema) -> str:
    return ",\n  ".join(f"`{f.name}` {ch_type(f)}" for f in schema)


def _customer_schema() -> pa.Schema:
    from tailguard.customers import CUSTOMER_SCHEMA

    return CUSTOMER_SCHEMA


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- the two engines ---------------------------------------------------------------------------


class _Engine:
    """A statement, an Arrow query, an Arrow insert: all the ledger needs of ClickHouse."""

    def command(self, sql: str) -> None:
        raise NotImplementedError

    def arrow(self, sql: str) -> pa.Table:
        raise NotImplementedError

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection."""


#: the open chdb session: chdb runs ONE embedded server per process, on one data directory at
#: a time, so the session is shared by every handle and thread (queries are serialised inside)
_SESSION: dict[str, Any] = {}
#: one call at a time on the shared session: a streaming insert and a query from two threads
#: on one connection are refused by chdb ("a streaming insert is active on this connection")
_CHDB_CALL = threading.RLock()


def _chdb_session(data_dir: Path) -> Any:
    """The process's chdb session on ``data_dir``: opened on first use; a handle on another
    directory closes the one open before (a process works on one chdb ledger at a time, and
    switching costs a server start, about 0.1 s)."""
    try:
        import chdb.session
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise MissingDependencyError("chdb", "clickhouse") from exc
    key = str(data_dir.resolve())
    with _LOCKS_GUARD:
        sess = _SESSION.get(key)
        if sess is None:
            for old in _SESSION.values():
                old.close()
            _SESSION.clear()
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                sess = chdb.session.Session(key)
            except RuntimeError as exc:
                raise LedgerError(
                    f"{data_dir}: cannot open the chdb ledger (another process holds it? "
                    f"chdb serves one process; use a ClickHouse server for several): {exc}"
                ) from exc
            _SESSION[key] = sess
        return sess


class _Chdb(_Engine):
    """ClickHouse in this process (chdb). Thread-safe: calls are serialised (``_CHDB_CALL``);
    the engine still runs each query on every core."""

    SETTINGS = "SETTINGS join_use_nulls = 1, output_format_arrow_low_cardinality_as_dictionary = 0"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        _chdb_session(data_dir)  # open now: a directory held by another process fails here

    @property
    def session(self) -> Any:
        return _chdb_session(self.data_dir)

    def command(self, sql: str) -> None:
        with _CHDB_CALL:
            self.session.query(sql)

    def arrow(self, sql: str) -> pa.Table:
        with _CHDB_CALL:
            return self.session.query(f"{sql} {self.SETTINGS}", "ArrowTable")

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        with _CHDB_CALL, self.session.send_insert(f"INSERT INTO {table}", "ArrowStream") as ins:
            ins.append(sink.getvalue())
            ins.finish()


class _Server(_Engine):
    """A ClickHouse server through clickhouse-connect (HTTP)."""

    def __init__(self, url: urllib.parse.SplitResult, database: str) -> None:
        try:
            import clickhouse_connect
        except ImportError as exc:  # pragma: no cover - the extra is not installed
            raise MissingDependencyError("clickhouse-connect", "clickhouse") from exc
        secure = url.scheme in ("https", "clickhouses")
        self.client = clickhouse_connect.get_client(
            host=url.hostname or "localhost",
            port=url.port or (8443 if secure else 8123),
            username=urllib.parse.unquote(url.username or "default"),
            password=urllib.parse.unquote(url.password or ""),
            database=database,
            secure=secure,
            settings={"join_use_nulls": 1},
        )

    def command(self, sql: str) -> None:
        self.client.command(sql)

    def arrow(self, sql: str) -> pa.Table:
        return self.client.query_arrow(sql)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        self.client.insert_arrow(table, data)

    def close(self) -> None:
        self.client.close()


def conform(table: pa.Table) -> pa.Table:
    """Rows in ``LEDGER_SCHEMA``: a column the rows lack (a segment written before the schema
    gained ``requests`` or the cost components) is NULL, as the DuckDB ledger reads it."""
    if table.schema == LEDGER_SCHEMA:
        return table
    have = set(table.column_names)
    cols = [
        table.column(f.name) if f.name in have else pa.nulls(table.num_rows, f.type)
        for f in LEDGER_SCHEMA
    ]
    return pa.Table.from_arrays(cols, schema=LEDGER_SCHEMA.remove_metadata()).cast(LEDGER_SCHEMA)


# --- the URL -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClickHouseURL:
    """A parsed ledger URL: the engine, where the data is, and the local spool directory (the
    write-ahead log of the gateway and the SDK lives there, on the writer's disk)."""

    url: str
    scheme: str
    database: str
    local: Path  # chdb: the ledger directory; a server: the spool (``?spool=DIR``)

    @classmethod
    def parse(cls, url: str) -> ClickHouseURL:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise LedgerError(f"{url}: not a ClickHouse ledger URL ({', '.join(SCHEMES)})")
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.scheme == "chdb":
            if parts.netloc:
                raise LedgerError(
                    f"{url}: a chdb ledger is chdb:///absolute/path or chdb://relative/path "
                    "is not allowed (three slashes, then the directory)"
                )
            if not parts.path:
                raise LedgerError(f"{url}: a chdb ledger URL needs a directory")
            local = Path(parts.path)
            return cls(url, "chdb", query.get("database", "default"), local)
        database = parts.path.strip("/") or "default"
        spool = query.get("spool") or os.environ.get("TAILGUARD_SPOOL") or "./tailguard-spool"
        return cls(url, parts.scheme, database, Path(spool))


def is_clickhouse_url(spec: object) -> bool:
    """Whether a ledger setting names a ClickHouse ledger (``scheme://``), not a directory."""
    return isinstance(spec, str) and spec.split("://", 1)[0] in SCHEMES and "://" in spec


# --- the ledger --------------------------------------------------------------------------------


class ClickHouseLedger(Ledger):
    """A ledger whose events live in ClickHouse.

    A ``Ledger`` subtype, so that every caller written against ``Ledger`` (the reports, the
    SDK sink, the gateway, ``ingest``) takes it: ``commit``, ``append``, ``count``,
    ``customers_table``, ``write_customers`` and ``connect`` keep their meaning. The directory
    it inherits (``path``) is local: the chdb data directory, or a server ledger's spool, where
    the write-ahead log lives. It has no segments; ``compact`` is ClickHouse's own merges.
    """

    engine_name = "clickhouse"

    def __init__(self, url: str) -> None:
        self.spec = ClickHouseURL.parse(url)
        super().__init__(self.spec.local)
        self.url = url
        self._engine: _Engine | None = None
        self._ready = False

    # --- the engine ------------------------------------------------------------------------

    @property
    def dialect(self) -> Any:
        """The query layer's ClickHouse dialect: a ``QueryContext`` opened on this ledger runs
        the reports' SQL in ClickHouse (``tailguard.analytics.clickhouse``)."""
        from tailguard.analytics.clickhouse import CLICKHOUSE

        return CLICKHOUSE

    @property
    def db(self) -> str:
        return f"`{self.spec.database}`"

    def engine(self) -> _Engine:
        if self._engine is None:
            if self.spec.scheme == "chdb":
                self._engine = _Chdb(self.spec.local / "clickhouse")
            else:
                self._engine = _Server(urllib.parse.urlsplit(self.url), self.spec.database)
        return self._engine

    def query(self, sql: str) -> pa.Table:
        """Run ``sql`` on the ledger's database; the answer as an Arrow table."""
        self.init()
        return self.engine().arrow(sql)

    def close(self) -> None:
        """Release a server connection (a chdb session stays: it is shared in the process)."""
        if self._engine is not None and not isinstance(self._engine, _Chdb):
            self._engine.close()
        self._engine = None

    # --- DDL -------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether ``init`` has run on this database (the events table is there)."""
        if self.spec.scheme == "chdb" and not (self.spec.local / "clickhouse").exists():
            return False
        t = self.engine().arrow(
            f"SELECT count() AS n FROM system.tables WHERE database = {_quote(self.spec.database)}"
            f" AND name = {_quote(EVENTS_TABLE)}"
        )
        return bool(t.column("n")[0].as_py())

    def init(self) -> list[str]:
        """Create the tables and views, or add the columns ``LEDGER_SCHEMA`` gained since.
        Idempotent; returns the statements that changed something (for ``ledger init``)."""
        if self._ready:
            return []
        eng = self.engine()
        done: list[str] = []
        db = self.db
        if self.spec.database != "default":
            eng.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        had = self.exists()
        eng.command(
            f"CREATE TABLE IF NOT EXISTS {db}.{EVENTS_TABLE} (\n  {_columns_ddl(LEDGER_SCHEMA)},\n"
            "  `_version` UInt64,\n"
            "  `_inserted` DateTime64(6, 'UTC') DEFAULT now64(6),\n"
            "  INDEX event_id_bloom event_id TYPE bloom_filter GRANULARITY 4\n"
            ") ENGINE = ReplacingMergeTree(_version)\n"
            "PARTITION BY toYYYYMM(ts)\n"
            "ORDER BY (customer_id, ts, event_id)"
        )
        if not had:
            done.append(f"CREATE TABLE {self.spec.database}.{EVENTS_TABLE}")
        have = set(
            self.engine()
            .arrow(
                f"SELECT name FROM system.columns WHERE database = {_quote(self.spec.database)} "
                f"AND table = {_quote(EVENTS_TABLE)}"
            )
            .column("name")
            .to_pylist()
        )
        for f in LEDGER_SCHEMA:
            if f.name not in have:  # a column the schema gained: NULL in the older rows
                eng.command(
                    f"ALTER TABLE {db}.{EVENTS_TABLE} ADD COLUMN IF NOT EXISTS "
                    f"`{f.name}` {ch_type(f)}"
                )
                done.append(f"ADD COLUMN {f.name}")
        cust = _customer_schema()
        eng.command(
            f"CREATE TABLE IF NOT EXISTS {db}.{CUSTOMERS_TABLE} (\n  {_columns_ddl(cust)},\n"
            "  `_version` UInt64\n) ENGINE = MergeTree ORDER BY (_version, customer_id)"
        )
        had_ids = bool(
            eng.arrow(
                f"SELECT count() AS n FROM system.tables WHERE database = "
                f"{_quote(self.spec.database)} AND name = {_quote(IDS_TABLE)}"
            )
            .column("n")[0]
            .as_py()
        )
        eng.command(
            f"CREATE TABLE IF NOT EXISTS {db}.{IDS_TABLE} (`event_id` String)\n"
            "ENGINE = ReplacingMergeTree ORDER BY event_id"
        )
        eng.command(
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{IDS_TABLE}_mv TO {db}.{IDS_TABLE} "
            f"AS SELECT event_id FROM {db}.{EVENTS_TABLE}"
        )
        if had and not had_ids:  # a ledger from before the id table: its ids, once
            eng.command(f"INSERT INTO {db}.{IDS_TABLE} SELECT event_id FROM {db}.{EVENTS_TABLE}")
            done.append(f"FILL {self.spec.database}.{IDS_TABLE}")
        cols = ", ".join(f"`{n}`" for n in LEDGER_SCHEMA.names)
        eng.command(
            f"CREATE OR REPLACE VIEW {db}.events AS SELECT {cols} FROM {db}.{EVENTS_TABLE} FINAL"
        )
        ccols = ", ".join(f"`{n}`" for n in cust.names)
        eng.command(
            f"CREATE OR REPLACE VIEW {db}.customers AS SELECT {ccols} FROM {db}.{CUSTOMERS_TABLE}"
            f" WHERE _version = (SELECT max(_version) FROM {db}.{CUSTOMERS_TABLE})"
        )
        from tailguard.finops.allocation import ALLOCATION_SCHEMA

        acols = ", ".join(f"`{n}`" for n in ALLOCATION_SCHEMA.names)
        eng.command(
            f"CREATE TABLE IF NOT EXISTS {db}.{ALLOCATIONS_TABLE} (\n"
            "  `day` Date32, `provider` String, `customer_id` String,\n"
            "  `allocated_usd` Decimal(38, 24), `method` String\n) ENGINE = MergeTree\n"
            "PARTITION BY toYYYYMM(day) ORDER BY (day, provider, customer_id)"
        )
        eng.command(
            f"CREATE OR REPLACE VIEW {db}.allocations AS "
            f"SELECT {acols} FROM {db}.{ALLOCATIONS_TABLE}"
        )
        self._ready = True
        return done

    # --- write path ------------------------------------------------------------------------

    def _lock(self) -> threading.Lock:
        where = self.spec.local.resolve() if self.spec.scheme == "chdb" else self.url
        key = f"{self.spec.scheme}:{where}"
        with _LOCKS_GUARD:
            return _LOCKS.setdefault(key, threading.Lock())

    def known_ids(self, ids: pa.Array) -> set[str]:
        """The ids of ``ids`` already in the ledger. The batch's ids go to a scratch table
        first (a literal list of 100k ids would pass ClickHouse's query size limit), then one
        ``IN`` subquery reads ``ledger_ids`` (sorted by id: its primary index skips the granules
        holding none of the batch's ids; 0.22 CPU s for 500 ids at 110M events, against 2.0
        reading the events' ``event_id`` column)."""
        if len(ids) == 0:
            return set()
        scratch = f"{self.db}.`_ids_{os.getpid()}_{threading.get_ident()}`"
        eng = self.engine()
        eng.command(f"CREATE TABLE IF NOT EXISTS {scratch} (event_id String) ENGINE = Memory")
        try:
            eng.command(f"TRUNCATE TABLE {scratch}")
            eng.insert_arrow(scratch, pa.table({"event_id": ids.cast(pa.string())}))
            t = eng.arrow(
                f"SELECT DISTINCT event_id FROM {self.db}.{IDS_TABLE} "
                f"WHERE event_id IN (SELECT event_id FROM {scratch})"
            )
        finally:
            eng.command(f"DROP TABLE IF EXISTS {scratch}")
        return set(t.column("event_id").to_pylist())

    def commit(self, table: pa.Table) -> CommitResult:
        """Insert priced rows (LEDGER_SCHEMA); ids already in the ledger (or earlier in the
        batch) are dropped. Returns once ClickHouse has acknowledged the insert: what it counts
        as accepted is durable there (the caller's write-ahead log may then let it go)."""
        table = conform(table)
        self.init()
        with self._lock():
            kept = IdIndex([]).fresh(table)  # first occurrence within the batch
            seen = self.known_ids(kept.column("event_id"))
            if seen:
                import pyarrow.compute as pc

                mask = pc.invert(pc.is_in(kept.column("event_id"), value_set=pa.array(list(seen))))
                kept = kept.filter(mask)
            dup = table.num_rows - kept.num_rows
            if kept.num_rows == 0:
                return CommitResult(0, dup, None)
            self.insert_rows(kept)
            return CommitResult(kept.num_rows, dup, None)

    def insert_rows(self, table: pa.Table) -> None:
        """Insert LEDGER_SCHEMA rows as they are, stamped with this insert's version (no
        dedupe against the ledger: ``commit`` does that; ``FINAL`` settles what remains)."""
        version = _MAX_U64 - time.time_ns()
        stamped = table.append_column(
            "_version", pa.array([version] * table.num_rows, type=pa.uint64())
        )
        self.engine().insert_arrow(f"{self.db}.{EVENTS_TABLE}", stamped)

    def commit_files(self, files: list[Path], *, batch_rows: int = 500_000) -> CommitResult:
        """Commit staged Parquet files (``ingest`` stages its batches locally first, so that a
        bad row refuses the whole input before anything reaches ClickHouse). A crash midway
        leaves whole batches committed; running the ingest again adds exactly the rest."""
        import pyarrow.parquet as pq

        total = CommitResult(0, 0, None)
        for path in files:
            res = self.insert_file(path) if self.spec.scheme == "chdb" else None
            if res is None:  # a server, or a file the native path does not take: Arrow batches
                res = CommitResult(0, 0, None)
                for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
                    part = self.commit(pa.Table.from_batches([batch]))
                    res.accepted += part.accepted
                    res.duplicates += part.duplicates
            total.accepted += res.accepted
            total.duplicates += res.duplicates
        return total

    def insert_file(self, path: Path, *, check_known: bool = True) -> CommitResult | None:
        """chdb: ClickHouse reads the Parquet file itself (``INSERT ... SELECT FROM file()``,
        in parallel, no row passing through Python), with ``commit``'s rule: ids already in
        the ledger are left out (the file's ids that ``ledger_ids`` holds are found first,
        into a scratch table, then the insert skips them).

        ``None`` (the caller takes the Arrow path) for a file that repeats an id: which copy
        is first is the file's row order, which a parallel read does not keep, so such a file
        goes through ``commit``'s first-occurrence rule. Columns the file lacks (a segment
        older than a schema column) are NULL, as ``conform`` makes them.

        ``check_known=False`` skips the ledger's ids (``copy_from`` into an empty ledger: a
        directory ledger's segments hold each id once). A file's ids are spread over the
        whole id range, so the check reads most of ``ledger_ids`` per file: most of the cost of
        loading a big file into a big ledger (BENCHMARKS.md)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
        if not names >= NOT_NULL:
            return None
        ids = pq.read_table(path, columns=["event_id"]).column("event_id")
        rows = len(ids)
        if rows == 0:
            return CommitResult(0, 0, None)
        if pc.count_distinct(ids).as_py() != rows:
            return None
        self.init()
        src = f"file({_quote(str(Path(path).resolve()))}, Parquet)"
        cols = ", ".join(f"`{f.name}`" for f in LEDGER_SCHEMA if f.name in names)
        table = f"{self.db}.{EVENTS_TABLE}"
        eng = self.engine()
        with self._lock():
            where, known = "", 0
            scratch = f"{self.db}.`_known_{os.getpid()}_{threading.get_ident()}`"
            if check_known and self.has_events():  # the file's ids the ledger holds
                eng.command(f"DROP TABLE IF EXISTS {scratch}")
                eng.command(
                    f"CREATE TABLE {scratch} ENGINE = Memory AS SELECT DISTINCT event_id "
                    f"FROM {self.db}.{IDS_TABLE} WHERE event_id IN (SELECT event_id FROM {src})"
                )
                known = int(eng.arrow(f"SELECT count() AS n FROM {scratch}").column("n")[0].as_py())
                where = f" WHERE event_id NOT IN (SELECT event_id FROM {scratch})"
            try:
                if known < rows:
                    version = _MAX_U64 - time.time_ns()
                    eng.command(
                        f"INSERT INTO {table} ({cols}, `_version`) SELECT {cols}, "
                        f"toUInt64({version}) FROM {src}{where}"
                    )
            finally:
                eng.command(f"DROP TABLE IF EXISTS {scratch}")
        return CommitResult(rows - known, known, None)

    def compact(self, **kwargs: Any) -> CompactResult:
        """Nothing to do: ClickHouse merges parts itself (``FINAL`` is right before it has)."""
        return CompactResult()

    def segment_files(self) -> list[Path]:
        """No Parquet segments: the events are in ClickHouse."""
        return []

    # --- customers -------------------------------------------------------------------------

    def write_customers(self, table: pa.Table) -> None:
        """Replace the customer table: a new version inserted whole, then the older ones
        deleted (readers take the newest version, so they never see a mix)."""
        self.init()
        cust = _customer_schema()
        version = time.time_ns()
        data = table.select(cust.names).cast(cust)
        data = data.append_column("_version", pa.array([version] * data.num_rows, pa.uint64()))
        with self._lock():
            self.engine().insert_arrow(f"{self.db}.{CUSTOMERS_TABLE}", data)
            self.engine().command(
                f"ALTER TABLE {self.db}.{CUSTOMERS_TABLE} DELETE WHERE _version < {version}"
            )

    def write_allocations(self, period: str, table: pa.Table | None) -> None:
        """Replace month ``period``'s allocation rows (``ALLOCATION_SCHEMA``, every row in that
        month) with ``table``; ``None`` or no rows removes them. The month is swapped in whole
        (``REPLACE PARTITION`` from a staging table): a reader sees the old rows or the new."""
        from tailguard.finops.allocation import ALLOCATION_SCHEMA

        self.init()
        month = int(period.replace("-", ""))
        target = f"{self.db}.{ALLOCATIONS_TABLE}"
        eng = self.engine()
        with self._lock():
            if table is None or table.num_rows == 0:
                eng.command(f"ALTER TABLE {target} DROP PARTITION {month}")
                return
            data = table.select(ALLOCATION_SCHEMA.names).cast(ALLOCATION_SCHEMA)
            stage = f"{self.db}.`_{ALLOCATIONS_TABLE}_{os.getpid()}_{threading.get_ident()}`"
            eng.command(f"DROP TABLE IF EXISTS {stage}")
            eng.command(f"CREATE TABLE {stage} AS {target}")
            try:
                eng.insert_arrow(stage, data)
                eng.command(f"ALTER TABLE {target} REPLACE PARTITION {month} FROM {stage}")
            finally:
                eng.command(f"DROP TABLE IF EXISTS {stage}")

    def allocations_table(self) -> pa.Table:
        """Every stored allocation row (``ALLOCATION_SCHEMA``)."""
        from tailguard.finops.allocation import ALLOCATION_SCHEMA

        if not self.exists():
            return ALLOCATION_SCHEMA.empty_table()
        return self.query(f"SELECT * FROM {self.db}.allocations").cast(ALLOCATION_SCHEMA)

    def customers_table(self) -> pa.Table | None:
        if not self.exists():
            return None
        t = self.query(f"SELECT * FROM {self.db}.customers")
        if t.num_rows == 0:
            return None
        cust = _customer_schema()
        return t.select(cust.names).cast(cust)

    # --- read path -------------------------------------------------------------------------

    def count(self) -> int:
        """Events in the ledger, each id once."""
        if not self.exists():
            return 0
        t = self.query(f"SELECT count() AS n FROM {self.db}.events")
        return int(t.column("n")[0].as_py())

    def has_events(self) -> bool:
        """Whether any event is stored: one row read, not a FINAL count (``read_ledger``'s
        "no events yet" check runs before every report)."""
        if not self.exists():
            return False
        t = self.query(f"SELECT 1 AS x FROM {self.db}.{EVENTS_TABLE} LIMIT 1")
        return t.num_rows > 0

    def content_version(self) -> tuple[Any, ...]:
        """What identifies the ledger's content for a cache (the dashboard's): rows stored and
        the latest insert, and the customer table's version. Any write changes it."""
        if not self.exists():
            return ()
        ev = self.query(f"SELECT count() AS n, max(_inserted) AS m FROM {self.db}.{EVENTS_TABLE}")
        cu = self.query(f"SELECT max(_version) AS v FROM {self.db}.{CUSTOMERS_TABLE}")
        al = self.query(  # an allocation replaced or removed makes new parts
            "SELECT groupArraySorted(1000)(name) AS p FROM system.parts WHERE active AND "
            f"database = {_quote(self.spec.database)} AND table = {_quote(ALLOCATIONS_TABLE)}"
        )
        return (
            *ev.to_pylist()[0].values(),
            cu.column("v")[0].as_py(),
            tuple(al.column("p")[0].as_py() or ()),
        )

    def events_table(self, where: str = "1") -> pa.Table:
        """The de-duplicated events (``FINAL``) as LEDGER_SCHEMA, optionally filtered."""
        cols = ", ".join(f"`{n}`" for n in LEDGER_SCHEMA.names)
        t = self.query(f"SELECT {cols} FROM {self.db}.events WHERE {where}")
        return t.cast(LEDGER_SCHEMA)

    def connect(self, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with ``events`` and ``customers`` copied from ClickHouse (the
        de-duplicated rows, exact types): the reports that still speak DuckDB's SQL run on it
        unchanged. This moves every event to the client: the reports that run in ClickHouse
        itself go through a ``QueryContext`` (``tailguard.analytics.clickhouse``) instead;
        docs/scale.md lists which callers still come here."""
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        events = self.events_table() if self.exists() else LEDGER_SCHEMA.empty_table()
        con.register("_ch_events", events)
        con.execute("CREATE VIEW events AS SELECT * FROM _ch_events")
        cust = self.customers_table()
        con.register(
            "_ch_customers", cust if cust is not None else _customer_schema().empty_table()
        )
        con.execute("CREATE VIEW customers AS SELECT * FROM _ch_customers")
        con.register("_ch_allocations", self.allocations_table())
        con.execute("CREATE VIEW allocations AS SELECT * FROM _ch_allocations")
        return con

    def copy_from(self, source: Ledger, *, batch_rows: int = 500_000) -> CommitResult:
        """Copy a DuckDB/Parquet ledger's events and customers across (idempotent: a second
        run, or a run after a partial one, adds only what is missing).

        Into an empty chdb ledger, the segments are inserted without the id check: the
        directory ledger holds each id once (its own first-occurrence rule), so there is
        nothing to check against until the copy itself has written; a copy that was
        interrupted finds the ledger not empty and checks every file. (A writer of this
        process racing the first copy could make a copy of an event inserted twice: FINAL
        keeps the first, as for raced replicas.)"""
        files = source.segment_files()
        if self.spec.scheme == "chdb" and files and not self.has_events():
            total = CommitResult(0, 0, None)
            for path in files:
                res = self.insert_file(path, check_known=False)
                if res is None:  # a segment repeating an id (not written by the ledger)
                    res = self.commit_files([path], batch_rows=batch_rows)
                total.accepted += res.accepted
                total.duplicates += res.duplicates
        else:
            total = self.commit_files(files, batch_rows=batch_rows)
        cust = source.customers_table()
        if cust is not None:
            self.write_customers(cust)
        return total


def open_clickhouse(url: str) -> ClickHouseLedger:
    """A ClickHouse ledger for ``url`` (nothing is created until ``init`` or a write)."""
    return ClickHouseLedger(url)


__all__ = [
    "EVENTS_TABLE",
    "ClickHouseLedger",
    "ClickHouseURL",
    "ch_type",
    "is_clickhouse_url",
    "open_clickhouse",
]
