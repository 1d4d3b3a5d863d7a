"""Roll-ups on ClickHouse: the DuckDB ledger's four per-segment levels (``rollup``,
``rollup_daily``, ``rollup_task``, ``rollup_calls``, ``tailguard.ledger.rollup``) rebuilt per
changed UTC day from the de-duplicated events, and its month level (``rollup_month``,
``rollup_customer``, ``tailguard.ledger.merged``) rebuilt from them when a day changed.

Why not a materialized view: a materialized view sums every row as it is INSERTED, and in a
``ReplacingMergeTree`` a replayed or raced event is inserted twice before a merge removes one;
the view would count it twice, for ever (Langfuse and OpenMeter document this). So the roll-up
is a REFRESH from the de-duplicated events (each event id once). The per-day tables are
partitioned by UTC day, so a changed day is swapped in on its own with ``REPLACE PARTITION``
(atomic per day and table: a reader sees the day's old rows or its new ones, never a mix or a
double).

When: ``refresh`` first compares the whole table's signature (rows stored, latest insert:
``count()`` is read from the parts' metadata, ``max(_inserted)`` is one column) with the sum
of the recorded ones; when they differ, it compares each UTC day's signature in
``ledger_events`` with the one recorded when its roll-up rows were built
(``ledger_rollup_days``) and rebuilds the days that changed: their rows of the four levels are
recomputed from the de-duplicated events (``_days_source``) into staging tables, and each
day's partition is swapped in. It runs when a ClickHouse query context opens (a report never
reads a stale day). The signature is read BEFORE the rebuild, so an insert racing a rebuild
leaves a signature that no longer matches: the next refresh rebuilds that day again. Rebuilding
is idempotent; a refresh killed midway leaves every day either old (still marked stale) or new.

The month level (``ledger_rollup_month``, ``merged.MONTH_SCHEMA``: one row per customer x UTC
month, and one per customer for the whole ledger, ``month`` NULL) is not local to a day: a
task's first month moves when an earlier outcome arrives. It is recomputed whole from the
daily and task tables (far fewer rows than events; ``month_sql``) whenever the days' recorded
signature (the sum of ``ledger_rollup_days``) differs from the one it was built from
(``ledger_rollup_month_built``), and swapped in whole with ``REPLACE PARTITION``. The same
rules: the signature read before the build, a crash leaves it stale (rebuilt by the next
refresh), never a mix.

Cost: the changed days' events (a day's rows, de-duplicated in the query; or the month with
FINAL from ``FINAL_FROM_DAYS`` changed days on), nothing of the unchanged days, and the month
level from the day tables (measured in BENCHMARKS.md). Until 3 Dec 2026 the tables were
partitioned by month and a rebuild copied the month's other days, and there were two levels;
``ensure`` drops tables of an older layout (the next refresh rebuilds every day).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.ledger.merged import MONTH_SCHEMA
from tailguard.ledger.merged import TOTAL_VIEW as MONTH_TOTAL_VIEW
from tailguard.ledger.merged import VIEW as MONTH_VIEW
from tailguard.ledger.rollup import (
    CALLS_SCHEMA,
    DAILY_MEASURES,
    DAILY_MERGE,
    DAILY_SCHEMA,
    ROLLUP_SCHEMA,
    aggregate_sql,
    calls_sql,
    daily_sql,
    task_sql,
)
from tailguard.ledger.rollup import TASK_SCHEMA as TASK_LEVEL_SCHEMA

if TYPE_CHECKING:
    from tailguard.ledger.clickhouse import ClickHouseLedger

FULL_TABLE = "ledger_rollup"
DAILY_TABLE = "ledger_rollup_daily"
TASK_TABLE = "ledger_rollup_task"
CALLS_TABLE = "ledger_rollup_calls"
STATE_TABLE = "ledger_rollup_days"
MONTH_TABLE = "ledger_rollup_month"
#: the days' signature the month level was built from (``month_stale``)
MONTH_STATE_TABLE = "ledger_rollup_month_built"
#: the per-day tables: (schema, sorting key); each partitioned by UTC day
DAY_TABLES: dict[str, tuple[pa.Schema, str]] = {
    FULL_TABLE: (ROLLUP_SCHEMA, "customer_id, day"),
    DAILY_TABLE: (DAILY_SCHEMA, "customer_id, day"),
    TASK_TABLE: (TASK_LEVEL_SCHEMA, "customer_id, task_id, day"),
    CALLS_TABLE: (CALLS_SCHEMA, "workload, day, size"),
}
#: the relation names the reports read (``tailguard.ledger.rollup.VIEW``, ``DAILY_VIEW``,
#: ``TASK_VIEW``, ``CALLS_VIEW``): each a plain view of its table
VIEWS = {
    FULL_TABLE: "rollup",
    DAILY_TABLE: "rollup_daily",
    TASK_TABLE: "rollup_task",
    CALLS_TABLE: "rollup_calls",
}
#: one partition per UTC day: a changed day is replaced alone
PARTITION_KEY = "toYYYYMMDD(day)"


def _type(t: pa.DataType, *, nullable_date: bool = False) -> str:
    if pa.types.is_string(t):
        return "Nullable(String)"
    if pa.types.is_date(t):  # a day: the partition key, never NULL (but the month level's month)
        return "Nullable(Date32)" if nullable_date else "Date32"
    if pa.types.is_decimal(t):
        return f"Nullable(Decimal({t.precision}, {t.scale}))"
    if pa.types.is_integer(t):
        return "Nullable(Int64)"
    if pa.types.is_floating(t):
        return "Nullable(Float64)"
    if pa.types.is_timestamp(t):
        return "Nullable(DateTime64(6, 'UTC'))"
    raise TypeError(f"no ClickHouse type for roll-up column type {t}")


def _ddl(db: str, name: str, schema: pa.Schema, order_by: str) -> str:
    cols = ",\n  ".join(f"`{f.name}` {_type(f.type)}" for f in schema)
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{name} (\n  {cols}\n) ENGINE = MergeTree\n"
        f"PARTITION BY {PARTITION_KEY} ORDER BY ({order_by})\n"
        "SETTINGS allow_nullable_key = 1"
    )


def _month_ddl(db: str) -> str:
    """The month level: one partition (swapped in whole), ``month`` NULL on the whole-ledger
    rows."""
    cols = ",\n  ".join(
        f"`{f.name}` {_type(f.type, nullable_date=f.name == 'month')}" for f in MONTH_SCHEMA
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{MONTH_TABLE} (\n  {cols}\n) ENGINE = MergeTree\n"
        "ORDER BY (customer_id, month) SETTINGS allow_nullable_key = 1"
    )


def to_clickhouse(sql: str) -> str:
    """A2's roll-up SQL (DuckDB's spelling) in ClickHouse's: the epoch in microseconds, a day
    number back to a DATE, and the integer division (``//`` starts a comment in ClickHouse;
    ``DIV`` truncates, as DuckDB's ``//`` does: ``rollup._floordiv`` divides non-negatives)."""
    return (
        sql.replace("epoch_us(ts)", "toUnixTimestamp64Micro(ts)")
        .replace(
            "CAST(DATE '1970-01-01' + CAST(_dn AS INTEGER) AS DATE)",
            "toDate32(addDays(toDate32('1970-01-01'), toInt32(_dn)))",
        )
        .replace(") // (", ") DIV (")
    )


def ensure(led: ClickHouseLedger) -> None:
    """Create the roll-up tables (idempotent). Per-day tables of an older layout (partitioned
    by month, or the two levels before ``rollup_task`` and ``rollup_calls`` existed) are
    dropped with the record of what was built: the next refresh rebuilds every day."""
    from tailguard.ledger.clickhouse import _quote

    eng = led.engine()
    names = ", ".join(_quote(t) for t in DAY_TABLES)
    keys = eng.arrow(
        f"SELECT name, partition_key FROM system.tables WHERE database = "
        f"{_quote(led.spec.database)} AND name IN ({names})"
    ).to_pylist()
    old = any(k["partition_key"].replace(" ", "") != PARTITION_KEY for k in keys)
    if old or 0 < len(keys) < len(DAY_TABLES):
        for table in (*DAY_TABLES, STATE_TABLE, MONTH_STATE_TABLE):
            eng.command(f"DROP TABLE IF EXISTS {led.db}.{table}")
    for table, (schema, order_by) in DAY_TABLES.items():
        eng.command(_ddl(led.db, table, schema, order_by))
    eng.command(
        f"CREATE TABLE IF NOT EXISTS {led.db}.{STATE_TABLE} (\n"
        "  `day` Date32, `raw_rows` UInt64, `max_inserted` DateTime64(6, 'UTC'),\n"
        "  `built` DateTime64(6, 'UTC') DEFAULT now64(6)\n"
        ") ENGINE = ReplacingMergeTree(built) ORDER BY day"
    )
    eng.command(_month_ddl(led.db))
    eng.command(
        f"CREATE TABLE IF NOT EXISTS {led.db}.{MONTH_STATE_TABLE} (\n"
        "  `raw_rows` UInt64, `max_inserted` DateTime64(6, 'UTC'),\n"
        "  `built` DateTime64(6, 'UTC') DEFAULT now64(6)\n"
        ") ENGINE = MergeTree ORDER BY built"
    )


def _recorded(led: ClickHouseLedger) -> dict[str, Any]:
    """{n, m}: the events' signature the per-day roll-ups were built from (summed over days)."""
    return (
        led.engine()
        .arrow(
            f"SELECT sum(raw_rows) AS n, max(max_inserted) AS m FROM {led.db}.{STATE_TABLE} FINAL"
        )
        .to_pylist()[0]
    )


def stale_days(led: ClickHouseLedger) -> dict[int, list[tuple[Any, int, Any]]]:
    """{month as YYYYMM: [(day, rows stored, latest insert)]} of every UTC day whose roll-up is
    missing or older than its events (one scan of ``ts`` and ``_inserted``)."""
    from tailguard.ledger.clickhouse import EVENTS_TABLE

    eng = led.engine()
    total = eng.arrow(
        f"SELECT count() AS n, max(_inserted) AS m FROM {led.db}.{EVENTS_TABLE}"
    ).to_pylist()[0]
    recorded = _recorded(led)
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
    one UTC day, and the tables are partitioned by day: the unchanged days are not touched).
    The full, task and call-size levels each read the days' events; the daily level is summed
    from the full level's staged rows (as the DuckDB ledger derives it)."""
    from tailguard.analytics.clickhouse import SETTINGS, literal

    eng = led.engine()
    db = led.db
    tag = uuid.uuid4().hex[:12]
    stages = {t: f"{db}.`_{t}_{tag}`" for t in DAY_TABLES}
    in_days = ", ".join(literal(d) for d, _, _ in days)
    source = _days_source(led, in_days, len(days))
    sources = {
        FULL_TABLE: to_clickhouse(aggregate_sql(source, has_requests=True)),
        DAILY_TABLE: daily_sql(stages[FULL_TABLE]),  # after the full level's rows are staged
        TASK_TABLE: to_clickhouse(task_sql(source, has_requests=True)),
        CALLS_TABLE: to_clickhouse(calls_sql(source, has_requests=True)),
    }
    try:
        for table, stage in stages.items():
            eng.command(f"CREATE TABLE {stage} AS {db}.{table}")
        for table, sql in sources.items():
            cols = ", ".join(f"`{n}`" for n in DAY_TABLES[table][0].names)
            eng.command(
                f"INSERT INTO {stages[table]} ({cols}) SELECT {cols} FROM ({sql}) {SETTINGS}"
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
                else:  # no row of this level that day (no LLM call nor outcome: no task row)
                    eng.command(f"ALTER TABLE {db}.{table} DROP PARTITION {part}")
        values = ", ".join(f"({literal(d)}, {int(n)}, {literal(m)})" for d, n, m in days)
        eng.command(f"INSERT INTO {db}.{STATE_TABLE} (day, raw_rows, max_inserted) VALUES {values}")
    finally:
        for stage in stages.values():
            eng.command(f"DROP TABLE IF EXISTS {stage}")


# --- the month level -------------------------------------------------------------------------

_MONTH_OF = "toDate32(toStartOfMonth(day))"


def _month_measures() -> str:
    """``merged.month_sql``'s measures: every daily measure combined as ``DAILY_MERGE`` says
    (sums exact: Decimal money, integer counts cast to BIGINT as DuckDB's are)."""
    out = []
    for col, typ, _ in DAILY_MEASURES:
        fn = DAILY_MERGE[col]
        out.append(
            f"CAST({fn}({col}) AS BIGINT) AS {col}"
            if pa.types.is_integer(typ)
            else f"{fn}({col}) AS {col}"
        )
    return ", ".join(out)


def month_sql(daily: str, tasks: str) -> str:
    """The month rows of the month level in ClickHouse's SQL: ``merged.month_sql``'s definition
    over the daily rows in ``daily`` and the per-(customer, task, month) rows in ``tasks``
    (``task_month_sql``, staged once: two parts read it)."""
    measures = _month_measures()
    d_cols = ", ".join(f"d.{c} AS {c}" for c, _, _ in DAILY_MEASURES)
    return f"""
SELECT d.customer_id AS customer_id, d.month AS month, {d_cols},
  d.first_day AS first_day, d.last_day AS last_day,
  toInt64(coalesce(km.tasks, 0)) AS tasks,
  toInt64(coalesce(km.successful_tasks, 0)) AS successful_tasks,
  toInt64(coalesce(fm.first_tasks, 0)) AS first_tasks,
  toInt64(coalesce(fm.first_successful_tasks, 0)) AS first_successful_tasks
FROM (
  SELECT customer_id, {_MONTH_OF} AS month, {measures},
    min(day) AS first_day, max(day) AS last_day
  FROM {daily} GROUP BY customer_id, month
) d
LEFT JOIN (
  SELECT customer_id, month, count() AS tasks, sum(won) AS successful_tasks
  FROM {tasks} GROUP BY customer_id, month
) km ON km.customer_id = d.customer_id AND km.month = d.month
LEFT JOIN (
  SELECT customer_id, month, count() AS first_tasks, sum(won) AS first_successful_tasks
  FROM (
    SELECT customer_id, task_id, min(month) AS month, max(won) AS won
    FROM {tasks} GROUP BY customer_id, task_id
  ) GROUP BY customer_id, month
) fm ON fm.customer_id = d.customer_id AND fm.month = d.month
"""


def totals_sql(months: str) -> str:
    """Each customer's whole-ledger row from the month rows in ``months``: the measures
    combined again, and the tasks counted in their first month summed (each task once)."""
    return f"""
SELECT customer_id, CAST(NULL AS Nullable(Date32)) AS month, {_month_measures()},
  min(first_day) AS first_day, max(last_day) AS last_day,
  toInt64(sum(first_tasks)) AS tasks, toInt64(sum(first_successful_tasks)) AS successful_tasks,
  toInt64(sum(first_tasks)) AS first_tasks,
  toInt64(sum(first_successful_tasks)) AS first_successful_tasks
FROM {months} WHERE month IS NOT NULL GROUP BY customer_id
"""


def task_month_sql(task: str) -> str:
    """Each task's months with an outcome, and whether one of the month's was accepted."""
    return (
        f"SELECT customer_id, task_id, {_MONTH_OF} AS month, "
        "toUInt8(max(accepted > 0)) AS won "
        f"FROM {task} WHERE outcomes > 0 AND task_id IS NOT NULL "
        "GROUP BY customer_id, task_id, month"
    )


def month_stale(led: ClickHouseLedger) -> dict[str, Any] | None:
    """The days' recorded signature when the month level was built from another one (or never
    built); None when it is of the current per-day rows."""
    eng = led.engine()
    days = _recorded(led)
    built = eng.arrow(
        f"SELECT raw_rows AS n, max_inserted AS m FROM {led.db}.{MONTH_STATE_TABLE} "
        "ORDER BY built DESC LIMIT 1"
    ).to_pylist()
    if built and (built[0]["n"], built[0]["m"]) == (days["n"], days["m"]):
        return None
    return days


def rebuild_month(led: ClickHouseLedger, signature: dict[str, Any]) -> int:
    """Recompute the month level from the daily and task tables into a staging table and swap
    it in whole; record ``signature`` (the days' one, read before); the rows written."""
    from tailguard.analytics.clickhouse import SETTINGS, literal

    eng = led.engine()
    db = led.db
    tag = uuid.uuid4().hex[:12]
    stage = f"{db}.`_{MONTH_TABLE}_{tag}`"
    tasks = f"{db}.`_{MONTH_TABLE}_tasks_{tag}`"
    months = month_sql(f"{db}.{DAILY_TABLE}", tasks)
    cols = ", ".join(f"`{n}`" for n in MONTH_SCHEMA.names)
    try:
        eng.command(f"CREATE TABLE {stage} AS {db}.{MONTH_TABLE}")
        eng.command(
            f"CREATE TABLE {tasks} ENGINE = Memory AS "
            f"{task_month_sql(f'{db}.{TASK_TABLE}')} {SETTINGS}"
        )
        eng.command(f"INSERT INTO {stage} ({cols}) SELECT {cols} FROM ({months}) {SETTINGS}")
        eng.command(
            f"INSERT INTO {stage} ({cols}) SELECT {cols} FROM ({totals_sql(stage)}) {SETTINGS}"
        )
        n = int(eng.arrow(f"SELECT count() AS n FROM {stage}").column("n")[0].as_py())
        if n:
            eng.command(f"ALTER TABLE {db}.{MONTH_TABLE} REPLACE PARTITION tuple() FROM {stage}")
        else:  # no events: ClickHouse refuses to replace a partition from an empty one
            eng.command(f"ALTER TABLE {db}.{MONTH_TABLE} DROP PARTITION tuple()")
        eng.command(
            f"INSERT INTO {db}.{MONTH_STATE_TABLE} (raw_rows, max_inserted) VALUES "
            f"({int(signature['n'] or 0)}, {literal(signature['m'])})"
        )
    finally:
        for t in (stage, tasks):
            eng.command(f"DROP TABLE IF EXISTS {t}")
    return n


def refresh(led: ClickHouseLedger, *, rebuild: bool = False) -> list[int]:
    """Rebuild the roll-ups of every day that changed (``rebuild``: of every day, after a
    change to the roll-up's definition), then the month level if they changed since it was
    built; the months (YYYYMM) whose days were swapped in."""
    led.init()
    if not getattr(led, "_rollups_ready", False):  # once per ledger object, as ``init``
        ensure(led)
        led._rollups_ready = True  # type: ignore[attr-defined]
    with led._lock():
        if rebuild:
            for table in (STATE_TABLE, MONTH_STATE_TABLE):
                led.engine().command(f"TRUNCATE TABLE {led.db}.{table}")
        months = stale_days(led)
        for month, days in months.items():
            rebuild_days(led, month, days)
        signature = month_stale(led)
        if signature is not None:
            rebuild_month(led, signature)
    return sorted(months)


def month_views(led: ClickHouseLedger) -> dict[str, str]:
    """{view: SELECT} of the month level as the DuckDB ledger shows it (``merged.create_view``):
    ``rollup_month`` the month rows, ``rollup_customer`` the whole-ledger rows without
    ``month`` and the first-outcome counts."""
    src = f"{led.db}.{MONTH_TABLE}"
    return {
        MONTH_VIEW: f"SELECT * FROM {src} WHERE month IS NOT NULL",
        MONTH_TOTAL_VIEW: (
            "SELECT * EXCEPT (month, first_tasks, first_successful_tasks) "
            f"FROM {src} WHERE month IS NULL"
        ),
    }


__all__ = [
    "CALLS_TABLE",
    "DAILY_TABLE",
    "DAY_TABLES",
    "FULL_TABLE",
    "MONTH_TABLE",
    "TASK_TABLE",
    "VIEWS",
    "ensure",
    "month_sql",
    "month_stale",
    "month_views",
    "rebuild_month",
    "refresh",
    "stale_days",
    "totals_sql",
]
