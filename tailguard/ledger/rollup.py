"""Roll-ups: exact per-day sums the reports read instead of scanning every event.

Layout: one roll-up file per committed segment, named after it::

    segments/<stem>.parquet         the events (LEDGER_SCHEMA)
    rollups/<stem>.parquet          their sums (ROLLUP_SCHEMA), grouped by ROLLUP_KEYS
    rollups/<stem>.daily.parquet    per customer and day (DAILY_SCHEMA)
    rollups/<stem>.task.parquet     per customer, task, workload and day (TASK_SCHEMA)
    rollups/<stem>.calls.parquet    LLM requests per workload, day and call size (CALLS_SCHEMA)

Why one file per segment: idempotence is then structural. The set of live roll-ups is the set
of roll-ups of the live segments, and the segment listing (``SegmentDir.segment_files``, with
its compaction manifests) already decides which segments are live. An event dropped by the
commit's dedupe is in no segment, so it is in no roll-up; a segment replaced by a compacted one
stops counting at the same instant as its roll-up; nothing keeps a second set of books that
could drift from the first. The alternative, one roll-up table updated in place per commit,
needs its own record of which segments it has absorbed and a merge on every commit, and a
crash between the two writes would count a segment twice or never.

Order of writes: a writer writes the roll-up (tmp + rename) BEFORE it renames the segment into
place, under the commit lock. So a reader never lists a live segment whose roll-up is missing,
except after a crash between the two renames *in the other order* (an older tailguard, a roll-up
deleted by hand): ``Ledger.connect`` finds those and computes them (``repair``); if it cannot
write (a read-only ledger) the view aggregates the segment inline, so the view is right either
way. A crash after the roll-up and before the segment leaves an orphan roll-up whose segment
does not exist: no listing names it, and the next compaction (or ``rebuild``) removes it.

Money: ``cost_usd``, ``reported_cost_usd`` and ``amount_usd`` are the engine's sums of the
ledger's DECIMAL(18, 9) column, DECIMAL(38, 9): exact, and a sum of roll-up rows is exactly the
sum of the events (no rounding happens anywhere: every event was rounded half-even to a
nano-dollar once, when priced). NULL stays NULL: a group whose events all lack a cost has a
NULL sum, as ``sum(cost_usd)`` over those events would.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tailguard.events.batch import engine as _engine
from tailguard.events.batch import sql_literal
from tailguard.events.schema import COMPONENT_COLUMNS
from tailguard.ledger.segments import SegmentDir, fsync_dir, fsync_file
from tailguard.vocabulary import GUARD_ACTIONS, OUTCOMES

ROLLUPS = "rollups"
VIEW = "rollup"
DAILY_VIEW = "rollup_daily"
TASK_VIEW = "rollup_task"
CALLS_VIEW = "rollup_calls"

#: a sum of DECIMAL(18, 9) in the engine: 38 digits, the same 9 decimals (exact)
MONEY_SUM = pa.decimal128(38, 9)

#: the group: every roll-up row is one combination of these (NULL where the column does not
#: apply to the kind, e.g. ``outcome`` outside task_outcome; NULL is a group of its own)
ROLLUP_KEYS: tuple[str, ...] = (
    "customer_id",
    "user_id",
    "day",
    "kind",
    "provider",
    "model",
    "feature",
    "workload",
    "outcome",
    "action",
    "rule",
    "tool_kind",
)

ROLLUP_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("user_id", pa.string()),
        ("day", pa.date32()),
        ("kind", pa.string()),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("feature", pa.string()),
        ("workload", pa.string()),
        ("outcome", pa.string()),
        ("action", pa.string()),
        ("rule", pa.string()),
        ("tool_kind", pa.string()),
        # measures
        ("events", pa.int64()),
        ("requests", pa.int64()),
        ("cost_usd", MONEY_SUM),
        ("reported_cost_usd", MONEY_SUM),
        ("amount_usd", MONEY_SUM),
        # a priced llm call's cost per token type (NULL for reported costs and old segments)
        ("input_cost_usd", MONEY_SUM),
        ("cache_read_cost_usd", MONEY_SUM),
        ("cache_write_cost_usd", MONEY_SUM),
        ("output_cost_usd", MONEY_SUM),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("retries", pa.int64()),
        ("unpriced", pa.int64()),
        ("errors", pa.int64()),
        ("queries", pa.int64()),
        ("reranks", pa.int64()),
        ("minutes", pa.float64()),
        ("latency_ms_sum", pa.float64()),
        ("latency_n", pa.int64()),
        ("first_ts", pa.timestamp("us", tz="UTC")),
        ("last_ts", pa.timestamp("us", tz="UTC")),
    ]
)

#: the measures and how roll-up rows combine (every one is a sum, a min or a max, so a roll-up
#: of roll-ups is the roll-up of their events)
MERGE: dict[str, str] = {
    f.name: ("min" if f.name == "first_ts" else "max" if f.name == "last_ts" else "sum")
    for f in ROLLUP_SCHEMA
    if f.name not in ROLLUP_KEYS
}

_US_PER_DAY = 86_400_000_000


#: the second level: one row per customer and UTC day, the kinds' measures side by side
#: (``rollup_daily``). The full roll-up holds ~0.26 rows per event on the simulator (a user's
#: day spreads over kinds, models, features and outcomes); a report that asks per customer and
#: day (customers, margins, the panel's customer-days, anomalies per customer) reads ~0.02.
DAILY_KEYS: tuple[str, ...] = ("customer_id", "day")

#: (column, SQL over roll-up rows) of the daily level; every one a sum, min or max of roll-up
#: rows, so it is exactly what the same expression over the events gives
_OUTCOME_COLS = [(f"outcome_{o}", o) for o in OUTCOMES]
_ACTION_COLS = [(f"guard_{a}", a) for a in GUARD_ACTIONS]


def _kind_sum(col: str, kind: str) -> str:
    return f"sum(CASE WHEN kind = '{kind}' THEN {col} END)"


def _kind_count(kind: str, cond: str = "TRUE") -> str:
    return f"CAST(coalesce(sum(CASE WHEN kind = '{kind}' AND {cond} THEN events END), 0) AS BIGINT)"


DAILY_MEASURES: list[tuple[str, pa.DataType, str]] = [
    ("events", pa.int64(), "CAST(sum(events) AS BIGINT)"),
    ("cost_usd", MONEY_SUM, "sum(cost_usd)"),
    ("llm_cost_usd", MONEY_SUM, _kind_sum("cost_usd", "llm_call")),
    ("tool_cost_usd", MONEY_SUM, _kind_sum("cost_usd", "tool_call")),
    ("retrieval_cost_usd", MONEY_SUM, _kind_sum("cost_usd", "retrieval")),
    ("escalation_cost_usd", MONEY_SUM, _kind_sum("cost_usd", "escalation")),
    ("reported_cost_usd", MONEY_SUM, "sum(reported_cost_usd)"),
    ("amount_usd", MONEY_SUM, "sum(amount_usd)"),
    ("llm_calls", pa.int64(), _kind_count("llm_call")),
    ("requests", pa.int64(), "CAST(sum(requests) AS BIGINT)"),
    *(
        (c, pa.int64(), f"CAST(sum({c}) AS BIGINT)")
        for c in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        )
    ),
    ("retries", pa.int64(), "CAST(sum(retries) AS BIGINT)"),
    ("unpriced", pa.int64(), "CAST(sum(unpriced) AS BIGINT)"),
    ("errors", pa.int64(), "CAST(sum(errors) AS BIGINT)"),
    ("tool_calls", pa.int64(), _kind_count("tool_call")),
    ("read_tool_calls", pa.int64(), _kind_count("tool_call", "tool_kind = 'read'")),
    ("write_tool_calls", pa.int64(), _kind_count("tool_call", "tool_kind = 'write'")),
    ("retrievals", pa.int64(), _kind_count("retrieval")),
    ("queries", pa.int64(), "CAST(sum(queries) AS BIGINT)"),
    ("reranks", pa.int64(), "CAST(sum(reranks) AS BIGINT)"),
    ("escalations", pa.int64(), _kind_count("escalation")),
    ("minutes", pa.float64(), "sum(minutes)"),
    ("task_outcomes", pa.int64(), _kind_count("task_outcome")),
    *((c, pa.int64(), _kind_count("task_outcome", f"outcome = '{o}'")) for c, o in _OUTCOME_COLS),
    ("guard_events", pa.int64(), _kind_count("guard")),
    *((c, pa.int64(), _kind_count("guard", f"action = '{a}'")) for c, a in _ACTION_COLS),
    ("first_ts", pa.timestamp("us", tz="UTC"), "min(first_ts)"),
    ("last_ts", pa.timestamp("us", tz="UTC"), "max(last_ts)"),
]

DAILY_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("day", pa.date32())] + [(c, t) for c, t, _ in DAILY_MEASURES]
)

#: how daily rows combine (a daily roll-up of several segments is their rows summed per key)
DAILY_MERGE: dict[str, str] = {
    c: ("min" if c == "first_ts" else "max" if c == "last_ts" else "sum")
    for c, _, _ in DAILY_MEASURES
}


#: the third level: one row per customer x task x workload x UTC day, over the LLM calls and the
#: task outcomes (``rollup_task``). What it answers that the other two cannot: a task's own sums
#: (its calls, tokens and cost over all its days, re-grouped by task at read time) and the
#: distinct tasks of a customer (a task is a group of its own, so a distinct count is a count
#: of groups of a GROUP BY over far fewer rows than the events: ~0.09 rows per event on the
#: simulator, one per task and day, the task-less calls of a customer's day in one row).
#: ``task_id`` and ``workload`` are NULL where the events' are.
TASK_KEYS: tuple[str, ...] = ("customer_id", "task_id", "workload", "day")

TASK_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("task_id", pa.string()),
        ("workload", pa.string()),
        ("day", pa.date32()),
        ("outcomes", pa.int64()),  # task_outcome events
        ("accepted", pa.int64()),  # ... whose outcome is ``accepted``
        ("calls", pa.int64()),  # LLM requests (an aggregate row counts as its requests)
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        # sum(input_tokens - cache_read_tokens): the uncached input, as the events give it row
        # by row (``tailguard.analytics.workload`` weighs it apart from the cache reads)
        ("uncached_tokens", pa.int64()),
        ("cost_usd", MONEY_SUM),  # the LLM calls' cost
    ]
)


def task_sql(source: str, *, has_requests: bool) -> str:
    """The task level of the events in relation ``source`` (see ``TASK_KEYS``)."""
    req = "coalesce(requests, 1)" if has_requests else "1"
    llm = "kind = 'llm_call'"
    big = "CAST({} AS BIGINT)"
    measures = [
        big.format("sum(CASE WHEN kind = 'task_outcome' THEN 1 ELSE 0 END)") + " AS outcomes",
        big.format(
            "sum(CASE WHEN kind = 'task_outcome' AND outcome = 'accepted' THEN 1 ELSE 0 END)"
        )
        + " AS accepted",
        big.format(f"sum(CASE WHEN {llm} THEN {req} ELSE 0 END)") + " AS calls",
        *(
            big.format(f"sum(CASE WHEN {llm} THEN {c} END)") + f" AS {c}"
            for c in ("input_tokens", "output_tokens", "cache_read_tokens")
        ),
        big.format(f"sum(CASE WHEN {llm} THEN input_tokens - cache_read_tokens END)")
        + " AS uncached_tokens",
        f"sum(CASE WHEN {llm} THEN cost_usd END) AS cost_usd",
    ]
    return (
        "SELECT customer_id, task_id, workload, "
        "CAST(DATE '1970-01-01' + CAST(_dn AS INTEGER) AS DATE) AS day, "
        f"{', '.join(measures)} FROM ("
        "SELECT customer_id, task_id, workload, kind, outcome, "
        f"{'requests, ' if has_requests else ''}"
        "input_tokens, output_tokens, cache_read_tokens, cost_usd, "
        f"CAST(floor(epoch_us(ts) / {_US_PER_DAY}) AS BIGINT) AS _dn FROM {source} "
        "WHERE kind IN ('llm_call', 'task_outcome')"
        ") GROUP BY customer_id, task_id, workload, _dn"
    )


#: the fourth level: LLM requests per workload x UTC day x call size (``rollup_calls``), what the
#: per-call alarm of ``tailguard.analytics.workload`` counts ("calls above 5,000 effective
#: tokens"): a test of each call on its own, which no sum of tokens answers. A call's size is its
#: effective tokens per request ``E`` at the default weights (``CALL_SIZE_WEIGHTS``: uncached
#: input x 1, cache reads x 1/10, output x 4) rounded down to two significant digits, tens below
#: 1,000 (``size_edge``): ``size`` is the largest such edge that ``E`` exceeds (``E`` in
#: (``size``, next edge]). So "over an alarm ``A``" is "``size >= A``" exactly when ``A`` is
#: itself an edge (5,000, 25,000, 15,000, 40,000, any alarm of two significant digits) and the
#: weights are those; any other alarm or weights read the events. A few hundred sizes per
#: workload and day: 23,296 keys for 13.7M events on the simulator, 388,546 rows over its 26
#: segments (each spans the month's days), 0.03 per event.
#: ``size`` is NULL where a call lacks a token count (the event test is NULL too: never over);
#: ``workload`` NULL where the events' is.
CALLS_KEYS: tuple[str, ...] = ("workload", "day", "size")
#: (cache-read weight, output multiplier) the sizes are computed with, exact fractions
CALL_SIZE_WEIGHTS: tuple[Fraction, Fraction] = (Fraction(1, 10), Fraction(4))

CALLS_SCHEMA = pa.schema(
    [
        ("workload", pa.string()),
        ("day", pa.date32()),
        ("size", pa.int64()),  # effective tokens per request, rounded down to an edge
        ("calls", pa.int64()),  # LLM requests (an aggregate row counts as its requests)
    ]
)


def _size_width(q: int) -> int:
    """The edge spacing at ``q``: 10 below 1,000, then a tenth of ``q``'s power of ten (two
    significant digits: 1,000, 1,100, ..., 9,900, 10,000, 11,000, ...)."""
    return 10 if q < 1000 else 10 ** (len(str(q)) - 2)


def size_edge(q: int) -> int:
    """``q`` rounded down to an edge of the call sizes (Python's mirror of ``call_size_sql``'s
    outer step). ``size_edge(a) == a`` says ``a`` is an edge: an alarm the level answers."""
    w = _size_width(q)
    return w * (q // w)


def _floordiv(a: str, b: str) -> str:
    """``floor(a / b)`` for integers, ``b > 0``: the engine's ``//`` truncates toward zero, so a
    negative ``a`` is divided as ``-ceil(-a / b)``."""
    return f"(CASE WHEN {a} >= 0 THEN ({a}) // ({b}) ELSE -((({b}) - 1 - ({a})) // ({b})) END)"


def call_size_sql(req: str) -> tuple[str, str]:
    """(``q``, ``size``) of one LLM call event, in integers: with ``X`` its effective tokens
    scaled by the weights' common denominator ``d`` (``d x uncached + (w d) x cache_read +
    (m d) x output``), ``q = floor((X - 1) / (d x requests))``, so that for an integer ``A``
    the call is over ``A`` (``X > A d requests``) exactly when ``q >= A``; ``size`` (an
    expression of the column ``_q``) is ``q`` rounded down to an edge (``size_edge``), which
    keeps ``size >= A`` equal to ``q >= A`` for an edge ``A`` (``size <= q``, and rounding down
    is monotone)."""
    w, m = CALL_SIZE_WEIGHTS
    d = math.lcm(w.denominator, m.denominator)
    x = (
        f"{d} * (input_tokens - cache_read_tokens) + {int(w * d)} * cache_read_tokens"
        f" + {int(m * d)} * output_tokens"
    )
    q = _floordiv(f"{x} - 1", f"{d} * {req}")
    width = (
        "(CASE "
        + " ".join(f"WHEN _q < {10**k} THEN {10 ** (k - 2)}" for k in range(3, 19))
        + f" ELSE {10**17} END)"
    )
    return q, f"{width} * {_floordiv('_q', width)}"


def calls_sql(source: str, *, has_requests: bool) -> str:
    """The call-size level of the events in relation ``source`` (see ``CALLS_KEYS``)."""
    req = "coalesce(requests, 1)" if has_requests else "CAST(1 AS BIGINT)"
    q, size = call_size_sql(req)
    return (
        "SELECT workload, CAST(DATE '1970-01-01' + CAST(_dn AS INTEGER) AS DATE) AS day, "
        f"{size} AS size, CAST(sum(_req) AS BIGINT) AS calls FROM ("
        f"SELECT workload, {q} AS _q, {req} AS _req, "
        f"CAST(floor(epoch_us(ts) / {_US_PER_DAY}) AS BIGINT) AS _dn FROM {source} "
        "WHERE kind = 'llm_call'"
        ") GROUP BY workload, _dn, size"
    )


def daily_sql(source: str) -> str:
    """The daily level from the roll-up rows in relation ``source``."""
    measures = ", ".join(f"{sql} AS {c}" for c, _, sql in DAILY_MEASURES)
    return f"SELECT customer_id, day, {measures} FROM {source} GROUP BY customer_id, day"


def aggregate_sql(source: str, *, has_requests: bool, has_components: bool = True) -> str:
    """The roll-up of the events in relation ``source`` (any engine relation with the ledger's
    columns). ``has_requests``: whether ``source`` has the ``requests`` column (segments written
    before it existed do not: each of their llm calls is one request); ``has_components``:
    whether it has the cost-per-token-type columns (older segments: NULL sums).

    The day is grouped as a day number (an integer division of the epoch microseconds) and
    turned into a DATE only on the grouped rows: a TIMESTAMPTZ -> DATE cast per event costs
    three times as much, and the day is the UTC one whatever the session's time zone.
    """
    req = "coalesce(requests, 1)" if has_requests else "1"
    keys = ", ".join("_dn" if k == "day" else k for k in ROLLUP_KEYS)
    select_keys = ", ".join(
        "CAST(DATE '1970-01-01' + CAST(_dn AS INTEGER) AS DATE) AS day" if k == "day" else k
        for k in ROLLUP_KEYS
    )
    big = "CAST({} AS BIGINT)"
    measures = [
        f"{big.format('count(*)')} AS events",
        # conditional sums as FILTERs: the same values (0, never NULL, where no row passes),
        # ~10% less CPU for this GROUP BY than a CASE per row
        big.format(f"coalesce(sum({req}) FILTER (WHERE kind = 'llm_call'), 0)") + " AS requests",
        "sum(cost_usd) AS cost_usd",
        "sum(reported_cost_usd) AS reported_cost_usd",
        "sum(amount_usd) AS amount_usd",
        *(
            f"sum({c}) AS {c}" if has_components else f"CAST(NULL AS DECIMAL(38, 9)) AS {c}"
            for c in COMPONENT_COLUMNS
        ),
        *(
            f"{big.format(f'sum({c})')} AS {c}"
            for c in (
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
            )
        ),
        big.format("count(*) FILTER (WHERE kind = 'llm_call' AND attempt > 1)") + " AS retries",
        # an aggregate row (``requests`` > 1) is that many unpriced or failed calls
        big.format(f"coalesce(sum({req}) FILTER (WHERE kind = 'llm_call' AND unpriced), 0)")
        + " AS unpriced",
        big.format(
            f"coalesce(sum(CASE WHEN kind = 'llm_call' THEN {req} ELSE 1 END) "
            "FILTER (WHERE status <> 'ok'), 0)"
        )
        + " AS errors",
        f"{big.format('sum(queries)')} AS queries",
        f"{big.format('sum(reranks)')} AS reranks",
        "sum(minutes) AS minutes",
        "sum(latency_ms) AS latency_ms_sum",
        f"{big.format('count(latency_ms)')} AS latency_n",
        "min(ts) AS first_ts",
        "max(ts) AS last_ts",
    ]
    return (
        f"SELECT {select_keys}, {', '.join(measures)} FROM ("
        f"SELECT *, CAST(floor(epoch_us(ts) / {_US_PER_DAY}) AS BIGINT) AS _dn FROM {source}"
        f") GROUP BY {keys}"
    )


def merge_sql(source: str) -> str:
    """Roll-up rows of ``source`` combined per key (a roll-up of roll-ups)."""
    keys = ", ".join(ROLLUP_KEYS)
    measures = ", ".join(f"{fn}({m}) AS {m}" for m, fn in MERGE.items())
    return f"SELECT {keys}, {measures} FROM {source} GROUP BY {keys}"


@dataclass
class Rollups:
    """The four levels of one segment's roll-up."""

    full: pa.Table  # ROLLUP_SCHEMA
    daily: pa.Table  # DAILY_SCHEMA
    task: pa.Table  # TASK_SCHEMA
    calls: pa.Table  # CALLS_SCHEMA

    @property
    def rows(self) -> int:
        return self.full.num_rows + self.daily.num_rows + self.task.num_rows + self.calls.num_rows


def _levels(con: Any, full: pa.Table, task: pa.Table, calls: pa.Table) -> Rollups:
    full = full.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)
    con.register("_tg_rollup_full", full)
    try:
        daily = con.sql(daily_sql("_tg_rollup_full")).to_arrow_table()
    finally:
        con.unregister("_tg_rollup_full")
    return Rollups(
        full,
        daily.select(DAILY_SCHEMA.names).cast(DAILY_SCHEMA),
        task.select(TASK_SCHEMA.names).cast(TASK_SCHEMA),
        calls.select(CALLS_SCHEMA.names).cast(CALLS_SCHEMA),
    )


def of_table(table: pa.Table, con: Any = None) -> Rollups:
    """The roll-ups of an Arrow table of ledger rows (a segment about to be committed)."""
    own = con is None
    con = _engine() if own else con
    try:
        names = table.schema.names
        con.register("_tg_rollup_src", table)
        try:
            sql = aggregate_sql(
                "_tg_rollup_src",
                has_requests="requests" in names,
                has_components=all(c in names for c in COMPONENT_COLUMNS),
            )
            full = con.sql(sql).to_arrow_table()
            has_requests = "requests" in names
            task = con.sql(task_sql("_tg_rollup_src", has_requests=has_requests)).to_arrow_table()
            calls = con.sql(calls_sql("_tg_rollup_src", has_requests=has_requests)).to_arrow_table()
        finally:
            con.unregister("_tg_rollup_src")
        return _levels(con, full, task, calls)
    finally:
        if own:
            con.close()


def _scan(files: Sequence[Path]) -> str:
    lst = ", ".join(sql_literal(str(p)) for p in files)
    return f"read_parquet([{lst}], union_by_name = true)"


def _scan_sql(con: Any, files: Sequence[Path]) -> tuple[str, str, str]:
    """The full, the task and the call-size level of segment ``files``, as SQL (columns the
    files lack read as absent)."""
    scan = _scan(files)
    cols = set(con.sql(f"SELECT * FROM {scan} LIMIT 0").columns)
    full = aggregate_sql(
        scan,
        has_requests="requests" in cols,
        has_components=all(c in cols for c in COMPONENT_COLUMNS),
    )
    has_requests = "requests" in cols
    return (
        full,
        task_sql(scan, has_requests=has_requests),
        calls_sql(scan, has_requests=has_requests),
    )


def of_files(files: Sequence[Path], con: Any = None) -> Rollups:
    """The roll-ups of the events in segment ``files`` (read by the engine, in parallel)."""
    own = con is None
    con = _engine() if own else con
    try:
        return _levels(con, *(con.sql(q).to_arrow_table() for q in _scan_sql(con, files)))
    finally:
        if own:
            con.close()


#: file name suffix of each level, after the segment's stem
_SUFFIX = {
    VIEW: ".parquet",
    DAILY_VIEW: ".daily.parquet",
    TASK_VIEW: ".task.parquet",
    CALLS_VIEW: ".calls.parquet",
}


def path_for(ledger: SegmentDir, segment: Path | str, level: str = VIEW) -> Path:
    """Where the roll-up (``level``: ``rollup``, ``rollup_daily``, ``rollup_task`` or
    ``rollup_calls``) of
    ``segment`` (a path or a file name) lives."""
    name = Path(segment).name
    stem = name[: -len(".parquet")] if name.endswith(".parquet") else name
    return ledger.path / ROLLUPS / f"{stem}{_SUFFIX[level]}"


def _parquet_options(table: pa.Table) -> dict[str, Any]:
    """How a roll-up file is written: zstd, with dictionaries on the keys (the string and date
    columns, which repeat) and min/max on the day and the first/last timestamps (a window's
    filter skips a file of other days); none on the measures, which rarely repeat and are
    never pruned on, nor on the string keys: a roll-up file is one row group holding every
    customer, model and kind of its segment, so their min/max would skip nothing (they cost
    12% of the write CPU: 2.47 -> 2.16 CPU s per 10M events). Trying a dictionary and keeping
    min/max on every measure cost a third more write CPU, for a 20% larger file
    (BENCHMARKS.md, roll-ups)."""
    keys = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_date(f.type)]
    stats = [
        f.name for f in table.schema if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type)
    ]
    return {"compression": "zstd", "use_dictionary": keys, "write_statistics": stats}


def _stage_file(table: pa.Table, tmp_dir: Path) -> Path:
    """``table`` written and synced under ``tmp_dir``, invisible to readers (a writer that
    dies leaves it to ``SegmentDir.clean_orphans``: the name starts with its pid)."""
    tmp = tmp_dir / f"{os.getpid()}-{os.urandom(8).hex()}.rollup.tmp"
    try:
        pq.write_table(table, tmp, **_parquet_options(table))
        fsync_file(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_file(table: pa.Table, dest: Path, tmp_dir: Path) -> None:
    os.replace(_stage_file(table, tmp_dir), dest)


def stage(rollups: Rollups, tmp_dir: Path) -> list[tuple[str, Path]]:
    """Write every level of a segment's roll-up to synced files under ``tmp_dir`` (a ledger's
    ``tmp/``), before the segment's name is known: (level, file) in the order ``install``
    renames them, the full level last (``missing`` checks every level)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for level, table in (
            (DAILY_VIEW, rollups.daily),
            (TASK_VIEW, rollups.task),
            (CALLS_VIEW, rollups.calls),
            (VIEW, rollups.full),
        ):
            staged.append((level, _stage_file(table, tmp_dir)))
    except BaseException:
        discard(staged)
        raise
    return staged


def install(staged: Sequence[tuple[str, Path]], ledger: SegmentDir, segment_name: str) -> None:
    """Rename the files ``stage`` wrote into place as the roll-ups of ``segment_name``, then
    sync the directory: call before the segment itself is renamed in (under the commit lock)."""
    d = ledger.path / ROLLUPS
    d.mkdir(parents=True, exist_ok=True)
    for level, tmp in staged:
        os.replace(tmp, path_for(ledger, segment_name, level))
    fsync_dir(d)


def discard(staged: Sequence[tuple[str, Path]]) -> None:
    """Remove staged roll-up files that were not installed."""
    for _, tmp in staged:
        tmp.unlink(missing_ok=True)


def write(rollups: Rollups, ledger: SegmentDir, segment_name: str) -> None:
    """Write every level of a segment's roll-up, each whole or not at all (tmp, fsync,
    rename, then the directory synced). The full level last: ``missing`` checks all four."""
    install(stage(rollups, ledger.tmp_dir), ledger, segment_name)


def write_for(ledger: SegmentDir, segment_name: str, rows: pa.Table) -> None:
    """Write the roll-ups of the segment about to be committed as ``segment_name``, from its
    rows (an Arrow table), before the segment itself is renamed into place."""
    write(of_table(rows), ledger, segment_name)


def missing(ledger: SegmentDir, segments: Sequence[Path]) -> list[Path]:
    """The live ``segments`` lacking a roll-up file of any level (one directory listing): a
    ledger written before a level existed gets it on the next ``Ledger.connect``."""
    d = ledger.path / ROLLUPS
    have = {p.name for p in d.iterdir()} if d.is_dir() else set()
    return [s for s in segments if any(path_for(ledger, s, lv).name not in have for lv in _SUFFIX)]


def remove(ledger: SegmentDir, segment_name: str) -> None:
    """Delete every level of a segment's roll-up (after the segment itself)."""
    for lv in _SUFFIX:
        path_for(ledger, segment_name, lv).unlink(missing_ok=True)


@dataclass
class RollupResult:
    """What a repair or a rebuild did."""

    segments: int = 0  # live segments
    written: int = 0  # segments whose roll-ups were computed and written
    removed: int = 0  # orphan roll-up files (no segment) removed
    rows: int = 0  # roll-up rows written (every level)

    def as_dict(self) -> dict[str, int]:
        return {
            "segments": self.segments,
            "written": self.written,
            "removed": self.removed,
            "rows": self.rows,
        }


def _level_table(con: Any, level: str, scan: str, *, has_requests: bool) -> pa.Table:
    """The task or the call-size level alone of the events in ``scan``."""
    sql, schema = (task_sql, TASK_SCHEMA) if level == TASK_VIEW else (calls_sql, CALLS_SCHEMA)
    table = con.sql(sql(scan, has_requests=has_requests)).to_arrow_table()
    return table.select(schema.names).cast(schema)


def repair(
    ledger: SegmentDir, segments: Sequence[Path] | None = None, *, everything: bool = False
) -> RollupResult:
    """Compute and write the roll-ups the live segments lack (all of them with
    ``everything``: ``tailguard rollup --rebuild``).

    Takes no lock: a roll-up is a function of an immutable segment, so two processes writing
    the same one write the same rows, and the rename makes either whole. A segment removed
    meanwhile (compaction's grace has passed) is skipped.
    """
    files = list(ledger.segment_files() if segments is None else segments)
    todo = files if everything else missing(ledger, files)
    d = ledger.path / ROLLUPS
    have = {p.name for p in d.iterdir()} if d.is_dir() and not everything else set()
    result = RollupResult(segments=len(files))
    con = _engine()
    try:
        for seg in todo:
            # a ledger written before the task or the call-size level existed lacks only those
            # files: compute them alone (one aggregation of the segment each, not four)
            alone = (
                [lv for lv in (TASK_VIEW, CALLS_VIEW) if path_for(ledger, seg, lv).name not in have]
                if have and all(path_for(ledger, seg, lv).name in have for lv in (VIEW, DAILY_VIEW))
                else []
            )
            try:
                if alone:
                    scan = _scan([seg])
                    cols = set(con.sql(f"SELECT * FROM {scan} LIMIT 0").columns)
                    tables = {
                        lv: _level_table(con, lv, scan, has_requests="requests" in cols)
                        for lv in alone
                    }
                else:
                    r = of_files([seg], con)
            except Exception:
                if seg.exists():
                    raise
                continue  # deleted after its grace period: no longer live
            if alone:
                d.mkdir(parents=True, exist_ok=True)
                ledger.tmp_dir.mkdir(parents=True, exist_ok=True)
                for lv, table in tables.items():
                    _write_file(table, path_for(ledger, seg, lv), ledger.tmp_dir)
                    result.rows += table.num_rows
                fsync_dir(d)
            else:
                write(r, ledger, seg.name)
                result.rows += r.rows
            result.written += 1
    finally:
        con.close()
    return result


def remove_orphans(ledger: SegmentDir) -> int:
    """Remove roll-ups whose segment does not exist. Call under the commit lock: a writer
    writes its roll-up before renaming its segment, and holds the lock in between."""
    d = ledger.path / ROLLUPS
    if not d.is_dir():
        return 0
    segs = ledger.segments_dir
    stems = {p.name[: -len(".parquet")] for p in segs.iterdir()} if segs.is_dir() else set()
    removed = 0
    for p in d.iterdir():
        if p.name.endswith(".parquet") and p.name.split(".", 1)[0] not in stems:
            p.unlink(missing_ok=True)
            removed += 1
    if removed:
        fsync_dir(d)
    return removed


def rebuild(ledger: SegmentDir) -> RollupResult:
    """Recompute every live segment's roll-ups from its events; remove orphans."""
    result = repair(ledger, everything=True)
    if ledger.segments_dir.exists():
        with ledger.lock():
            result.removed = remove_orphans(ledger)
    return result


def create_view(
    con: Any, ledger: SegmentDir, segments: Sequence[Path], *, fix: bool = True
) -> None:
    """Create views ``rollup``, ``rollup_daily``, ``rollup_task`` and ``rollup_calls`` over the
    roll-ups of ``segments`` (the live listing the ``events`` view was made from, so all see the
    same events).

    A segment without its roll-ups is repaired first (``fix``); one that still has none (the
    ledger is read-only) is aggregated inline, so the views are right in every case.
    """
    lacking = missing(ledger, segments)
    if lacking and fix:
        with contextlib.suppress(OSError):  # read-only: the views aggregate them instead
            repair(ledger, lacking)
        lacking = missing(ledger, segments)
    gone = set(lacking)
    inline = _scan_sql(con, lacking) if lacking else None
    for level, schema, derive in (
        (VIEW, ROLLUP_SCHEMA, lambda sql: sql[0]),
        (DAILY_VIEW, DAILY_SCHEMA, lambda sql: daily_sql(f"({sql[0]})")),
        (TASK_VIEW, TASK_SCHEMA, lambda sql: sql[1]),
        (CALLS_VIEW, CALLS_SCHEMA, lambda sql: sql[2]),
    ):
        parts: list[str] = []
        have = [path_for(ledger, s, level) for s in segments if s not in gone]
        if have:
            lst = ", ".join(sql_literal(str(p)) for p in have)
            parts.append(f"SELECT * FROM read_parquet([{lst}])")
        if inline is not None:
            parts.append(f"SELECT * FROM ({derive(inline)})")
        if not parts:
            con.register(f"_empty_{level}", schema.empty_table())
            parts.append(f"SELECT * FROM _empty_{level}")
        cols = ", ".join(schema.names)
        union = " UNION ALL ".join(f"SELECT {cols} FROM ({p})" for p in parts)
        con.execute(f"CREATE VIEW {level} AS {union}")


__all__ = [
    "CALLS_KEYS",
    "CALLS_SCHEMA",
    "CALLS_VIEW",
    "CALL_SIZE_WEIGHTS",
    "DAILY_KEYS",
    "DAILY_MERGE",
    "DAILY_SCHEMA",
    "DAILY_VIEW",
    "MERGE",
    "ROLLUPS",
    "ROLLUP_KEYS",
    "ROLLUP_SCHEMA",
    "TASK_KEYS",
    "TASK_SCHEMA",
    "TASK_VIEW",
    "VIEW",
    "RollupResult",
    "Rollups",
    "aggregate_sql",
    "call_size_sql",
    "calls_sql",
    "create_view",
    "daily_sql",
    "discard",
    "install",
    "merge_sql",
    "of_files",
    "of_table",
    "path_for",
    "rebuild",
    "remove",
    "remove_orphans",
    "repair",
    "size_edge",
    "stage",
    "task_sql",
]
