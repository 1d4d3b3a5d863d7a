"""Roll-ups on ClickHouse: the DuckDB ledger's two levels (``rollup``, ``rollup_daily``,
``tailguard.ledger.rollup``), rebuilt per changed UTC day from the de-duplicated events.

Why not a materialized view: a materialized view sums every row as it is INSERTED, and in a
``ReplacingMergeTree`` a replayed or raced event is inserted twice before a merge removes one;
the view would count it twice, for ever (Langfuse and OpenMeter document this). So the roll-up
is a REFRESH from the de-duplicated events (each event id once). The roll-up tables are
partitioned by UTC day, so a changed day is swapped in on its own with ``REPLACE PARTITION``
(atomic per day: a reader sees the day's old rows or its new ones, never a mix or a double).

When: ``refresh`` first compares the whole table's signature (rows stored, latest insert:
``count()`` is read from the parts' metadata, ``max(_inserted)`` is one column) with the sum
of the recorded ones; when they differ, it compares each UTC day's signature in
``ledger_events`` with the one recorded when its roll-up rows were built
(``ledger_rollup_days``) and rebuilds the days that changed: their rows are recomputed from the
de-duplicated events (``_days_source``) into a staging table, and each day's partition is
swapped in. It runs when a ClickHouse query context opens (a report never reads a stale
day). The signature is read BEFORE the rebuild, so an insert racing a rebuild leaves a
signature that no longer matches: the next refresh rebuilds that day again. Rebuilding is
idempotent; a refresh killed midway leaves every day either old (still marked stale) or new.

Cost: the changed days' events (a day's rows, de-duplicated in the query; or the month with
FINAL from ``FINAL_FROM_DAYS`` changed days on), nothing of the unchanged days (measured in
BENCHMARKS.md). Until 3 Dec 2026 the tables were partitioned by month and a rebuild copied the
month's other days; ``ensure`` drops tables of that layout (the next refresh rebuilds them).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.ledger.rollup import (
    DAILY_SCHEMA,
    ROLLUP_SCHEMA,
    aggregate_sql,
    daily_sql,
)

if TYPE_CHECKING:
    from tailguard.ledger.clickhouse import ClickHouseLedger

FULL_TABLE = "ledger_rollup"
DAILY_TABLE = "ledger_rollup_daily"
STATE_TABLE = "ledger_rollup_days"
#: the relation names the reports read (``tailguard.ledger.rollup.VIEW`` / ``DAILY_VIEW``)
VIEWS = {FULL_TABLE: "rollup", DAILY_TABLE: "rollup_daily"}
#: one partition per UTC day: a changed day is replaced alone
PARTITION_KEY = "toYYYYMMDD(day)"


def _type(t: pa.DataType) -> str:
    if pa.types.is_string(t):
        return "Nullable(String)"
    if pa.types.is_date(t):
        return "Date32"  # the partition key: never NULL
    if pa.types.is_decimal(t):
        return f"Nullable(Decimal({t.precision}, {t.scale}))"
    if pa.types.is_integer(t):
        return "Nullable(Int64)"
    if pa.types.is_floating(t):
        return "Nullable(Float64)"
    if pa.types.is_timestamp(t):
        return "Nullable(DateTime64(6, 'UTC'))"
    raise TypeError(f"no ClickHouse type for roll-up column type {t}")


def _ddl(db: str, name: str, schema: pa.Schema) -> str:
    cols = ",\n  ".join(f"`{f.name}` {_type(f.type)}" for f in schema)
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{name} (\n  {cols}\n) ENGINE = MergeTree\n"
        f"PARTITION BY {PARTITION_KEY} ORDER BY (customer_id, day)\n"
        "SETTINGS allow_nullable_key = 1"
    )


def to_clickhouse(sql: str) -> str:
    """A2's roll-up SQL (DuckDB's spelling) in ClickHouse's: the epoch in microseconds, and a
    day number back to a DATE."""
    return sql.replace("epoch_us(ts)", "toUnixTimestamp64Micro(ts)").replace(
        "CAST(DATE '1970-01-01' + CAST(_dn AS INTEGER) AS DATE)",
        "toDate32(addDays(toDate32('1970-01-01'), toInt32(_dn)))",
    )


def ensure(led: ClickHouseLedger) -> None:
    """Create the roll-up tables (idempotent). Tables of an older layout (partitioned by
    month) are dropped with the record of what was built: the next refresh rebuilds them."""
    from tailguard.ledger.clickhouse import _quote

    eng = led.engine()
    keys = eng.arrow(
        f"SELECT name, partition_key FROM system.tables WHERE database = "
        f"{_quote(led.spec.database)} AND name IN ({_quote(FULL_TABLE)}, {_quote(DAILY_TABLE)})"
    ).to_pylist()
    if any(k["partition_key"].replace(" ", "") != PARTITION_KEY for k in keys):
        for table in (FULL_TABLE, DAILY_TABLE, STATE_TABLE):
            eng.command(f"DROP TABLE IF EXISTS {led.db}.{table}")
    eng.command(_ddl(led.db, FULL_TABLE, ROLLUP_SCHEMA))
    eng.command(_ddl(led.db, DAILY_TABLE, DAILY_SCHEMA))
    eng.command(
        f"CREATE TABLE IF NOT EXISTS {led.db}.{STATE_TABLE} (\n"
        "  `day` Date32, `raw_rows` UInt64, `max_inserted` DateTime64(6, 'UTC'),\n"
        "  `built` DateTime64(6, 'UTC') DEFAULT now64(6)\n"
        ") ENGINE = ReplacingMergeTree(built) ORDER BY day"
    )


def stale_days(led: ClickHouseLedger) -> dict[int, list[tuple[Any, int, Any]]]:
    """{month as YYYYMM: [(day, rows stored, latest insert)]} of every UTC day whose roll-up is
    missing or older than its events (one scan of ``ts`` and ``_inserted``)."""
    from tailguard.ledger.clickhouse import EVENTS_TABLE

    eng = led.engine()
    total = eng.arrow(
        f"SELECT count() AS n, max(_inserted) AS m FROM {led.db}.{EVENTS_TABLE}"
    ).to_pylist()[0]
    recorded = eng.arrow(
        f"SELECT sum(raw_rows) AS n, max(max_inserted) AS m FROM {led.db}.{STATE_TABLE} FINAL"
    ).to_pylist()[0]
    if total["n"] == 0 or (total["n"], total["m"]) == (recorded["n"], recorded["m"]):
        return {}  # nothing stored, or every day as recorded (no day-by-day scan)
    now = eng.arrow(
        f"SELECT toDate32(ts, 'UTC') AS d, count() AS n, max(_inserted) AS m "
        f"FROM {led.db}.{EVENTS_TABLE} GROUP BY d ORDER BY d"
    ).to_pylist()
    built = {
        r["day"]: (r["raw_rows"], r["max_inserted"])
        for r in eng.arrow(
            f"SELECT day, raw_rows, max_inserted FROM {led.db}.{STATE_TABLE} FINAL"
        ).to_pylist()
    }
    out: dict[int, list[tuple[Any, int, Any]]] = {}
    for r in now:
        if built.get(r["d"]) != (r["n"], r["m"]):
            out.setdefault(r["d"].year * 100 + r["d"].month, []).append((r["d"], r["n"], r["m"]))
    return out


#: from this many changed days on, a rebuild reads the month with FINAL; below, only the days'
#: rows, de-duplicated in the query (FINAL merges the whole partition whatever the WHERE)
FINAL_FROM_DAYS = 8


def _days_source(led: ClickHouseLedger, in_days: str, n_days: int) -> str:
    """The de-duplicated events of the listed days. Every copy of an event has the same
    sorting key (customer, ts, id), so the same day: keeping the greatest ``_version`` per key
    among the days' rows is what FINAL keeps, without merging the rest of the month."""
    from tailguard.events.schema import LEDGER_SCHEMA
    from tailguard.ledger.clickhouse import EVENTS_TABLE

    where = f"toDate32(ts, 'UTC') IN ({in_days})"
    if n_days >= FINAL_FROM_DAYS:
        return f"(SELECT * FROM {led.db}.events WHERE {where})"
    cols = ", ".join(f"`{n}`" for n in LEDGER_SCHEMA.names)
    return (
        f"(SELECT {cols} FROM {led.db}.{EVENTS_TABLE} WHERE {where} "
        "ORDER BY _version DESC LIMIT 1 BY customer_id, ts, event_id)"
    )


def rebuild_days(led: ClickHouseLedger, month: int, days: list[tuple[Any, int, Any]]) -> None:
    """Recompute the roll-up rows of ``days`` (all in ``month``) from the de-duplicated
    events into staging tables, then swap each day's partition in (a roll-up row belongs to
    one UTC day, and the tables are partitioned by day: the unchanged days are not touched)."""
    from tailguard.analytics.clickhouse import SETTINGS, literal

    eng = led.engine()
    db = led.db
    tag = uuid.uuid4().hex[:12]
    stages = {t: f"{db}.`_{t}_{tag}`" for t in (FULL_TABLE, DAILY_TABLE)}
    in_days = ", ".join(literal(d) for d, _, _ in days)
    source = _days_source(led, in_days, len(days))
    full_sql = to_clickhouse(aggregate_sql(source, has_requests=True))
    try:
        for table, stage in stages.items():
            eng.command(f"CREATE TABLE {stage} AS {db}.{table}")
        full_cols = ", ".join(f"`{n}`" for n in ROLLUP_SCHEMA.names)
        daily_cols = ", ".join(f"`{n}`" for n in DAILY_SCHEMA.names)
        eng.command(
            f"INSERT INTO {stages[FULL_TABLE]} ({full_cols}) "
            f"SELECT {full_cols} FROM ({full_sql}) {SETTINGS}"
        )
        eng.command(
            f"INSERT INTO {stages[DAILY_TABLE]} ({daily_cols}) "
            f"SELECT {daily_cols} FROM ({daily_sql(stages[FULL_TABLE])}) {SETTINGS}"
        )
        for table, stage in stages.items():
            have = {
                r["p"]
                for r in eng.arrow(f"SELECT DISTINCT toYYYYMMDD(day) AS p FROM {stage}").to_pylist()
            }
            for d, _, _ in days:
                part = d.year * 10000 + d.month * 100 + d.day
                if part in have:
                    eng.command(f"ALTER TABLE {db}.{table} REPLACE PARTITION {part} FROM {stage}")
                else:  # no roll-up row that day (cannot happen for a day with events)
                    eng.command(f"ALTER TABLE {db}.{table} DROP PARTITION {part}")
        values = ", ".join(f"({literal(d)}, {int(n)}, {literal(m)})" for d, n, m in days)
        eng.command(f"INSERT INTO {db}.{STATE_TABLE} (day, raw_rows, max_inserted) VALUES {values}")
    finally:
        for stage in stages.values():
            eng.command(f"DROP TABLE IF EXISTS {stage}")


def refresh(led: ClickHouseLedger, *, rebuild: bool = False) -> list[int]:
    """Rebuild the roll-ups of every day that changed (``rebuild``: of every day, after a
    change to the roll-up's definition); the months swapped in."""
    led.init()
    ensure(led)
    with led._lock():
        if rebuild:
            led.engine().command(f"TRUNCATE TABLE {led.db}.{STATE_TABLE}")
        months = stale_days(led)
        for month, days in months.items():
            rebuild_days(led, month, days)
    return sorted(months)


__all__ = ["DAILY_TABLE", "FULL_TABLE", "VIEWS", "ensure", "refresh", "stale_days"]
