"""The per-customer table: who costs what, per task, against what they pay (the per-customer
economics essay).

One engine query aggregates the ledger by customer (portable SQL: CASE inside aggregates rather
than DuckDB-only FILTER, so the same text runs on ClickHouse): from the ledger's month level
when it is fresh and the window is open or one whole UTC month (one row per customer, tasks
included: ``month_where``), else the sums from the per-segment roll-ups when the window is whole
UTC days (else from the events) and the distinct tasks from ``rollup_task`` (else the
``task_outcome`` events). A second query joins it with the customers table, divides the ratios,
sorts (``TABLE_SORT``; the other fields in Python) and cuts (``customer_table``); its result
stays by column (Arrow from DuckDB) in a ``CustomerRows``, whose rows are dicts built when asked
and whose Decimal quotients are computed in Python, per column, when a row or the column is
asked for: at 110M events and 358,400 customers the table is 1.0 CPU s with its connection,
building every dict another 2.8 (BENCHMARKS.md, issue 13).

Definitions (docs/reports.md):
- ``cost_usd`` is fully loaded: LLM + tools + retrieval + escalation (guard, outcome rows: 0).
  Unpriced calls add nothing to it and are counted in ``unpriced_calls``: never a silent zero.
- ``allocated_usd``: the customer's share of the invoice's unattributed remainder over the
  window's days, as ``tailguard reconcile --allocate`` stored it (0 when nothing was
  allocated); never part of ``cost_usd``: cost_usd + allocated_usd is the customer's share of
  the bill.
- a task is a distinct ``task_id`` with a ``task_outcome`` event; a successful task ended
  ``accepted``; ``retries_per_win`` = llm calls with attempt > 1 / successful tasks.
- ``escalation_rate`` = escalation events / tasks.
- ``revenue_usd`` = MRR × the months the window covers (exactly MRR for ``--period YYYY-MM``;
  for an open window, the span of the data); ``cost_pct_of_mrr`` = cost / revenue × 100;
  ``gross_margin_usd`` = revenue − cost (``margin_figures``, the one formula of every report).
- ``window_start`` / ``window_end``: the UTC days the row is about (end included); an open
  window is stated as the days its data spans. The table stays a list (``jq '.[0]'``), so each
  row states its window.
Money is never rounded: sums are the engine's exact Decimals, a quotient (cost per successful
task, revenue over a fraction of a month) is taken at Decimal's 28 significant digits (the default
context, half-even), so $0.0000004 stays $0.0000004. Percentages and per-task ratios are not
rounded (a float's 17 digits: 2/3 is 0.6666666666666666, not 0.6667): JSON and CSV carry every
digit, and only a table rounds, for display (``tailguard.cli.output.fmt_cell``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, overload

from tailguard.analytics.period import Window, add_months, close

CUSTOMER_FIELDS = (
    "customer_id",
    "name",
    "tier",
    "segment",
    "cost_usd",
    "allocated_usd",
    "llm_cost_usd",
    "tool_cost_usd",
    "retrieval_cost_usd",
    "escalation_cost_usd",
    "llm_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "tasks",
    "successful_tasks",
    "cost_per_successful_task",
    "read_tool_calls_per_task",
    "write_tool_calls_per_task",
    "retrieval_queries_per_task",
    "reranks_per_task",
    "retries",
    "retries_per_win",
    "escalations",
    "escalation_rate",
    "unpriced_calls",
    "mrr_usd",
    "revenue_usd",
    "cost_pct_of_mrr",
    "gross_margin_usd",
    "window_start",
    "window_end",
)

#: the tasks of each customer: distinct task ids with a ``task_outcome`` event (a task id can
#: repeat, so a count of outcome rows would not do). A distinct count as a GROUP BY per
#: (customer, task) then a count of those groups: the same integers as ``count(DISTINCT)``,
#: twice as fast in the engine. From the events: their outcome rows
TASKS_SQL = """
  SELECT customer_id, count(*) AS tasks, sum(won) AS successful_tasks
  FROM (
    SELECT customer_id, task_id,
      max(CASE WHEN outcome = 'accepted' THEN 1 ELSE 0 END) AS won
    FROM events
    WHERE kind = 'task_outcome' AND task_id IS NOT NULL AND {where}
    GROUP BY customer_id, task_id
  ) k
  GROUP BY customer_id
"""

#: the same from the task roll-up (``rollup_task``: one row per customer x task x workload x
#: UTC day; ``outcomes`` / ``accepted`` count its outcome events), about one row per outcome
#: event instead of a scan of every event's kind
TASK_ROLLUP_TASKS_SQL = """
  SELECT customer_id, count(*) AS tasks, sum(won) AS successful_tasks
  FROM (
    SELECT customer_id, task_id,
      max(CASE WHEN accepted > 0 THEN 1 ELSE 0 END) AS won
    FROM rollup_task
    WHERE outcomes > 0 AND task_id IS NOT NULL AND {where}
    GROUP BY customer_id, task_id
  ) k
  GROUP BY customer_id
"""

#: the engine half, from events: one GROUP BY over the events in the window, and the tasks
AGGREGATE_SQL = """
WITH m AS (
  SELECT
    customer_id,
    sum(cost_usd) AS cost_usd,
    sum(CASE WHEN kind = 'llm_call' THEN cost_usd END) AS llm_cost_usd,
    sum(CASE WHEN kind = 'tool_call' THEN cost_usd END) AS tool_cost_usd,
    sum(CASE WHEN kind = 'retrieval' THEN cost_usd END) AS retrieval_cost_usd,
    sum(CASE WHEN kind = 'escalation' THEN cost_usd END) AS escalation_cost_usd,
    sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END) AS llm_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(CASE WHEN kind = 'tool_call' AND tool_kind = 'read' THEN 1 ELSE 0 END) AS read_tool_calls,
    sum(CASE WHEN kind = 'tool_call' AND tool_kind = 'write' THEN 1 ELSE 0 END)
      AS write_tool_calls,
    sum(queries) AS retrieval_queries,
    sum(reranks) AS reranks,
    sum(CASE WHEN kind = 'llm_call' AND attempt > 1 THEN 1 ELSE 0 END) AS retries,
    sum(CASE WHEN kind = 'escalation' THEN 1 ELSE 0 END) AS escalations,
    sum(CASE WHEN kind = 'llm_call' AND unpriced THEN coalesce(requests, 1) ELSE 0 END)
      AS unpriced_calls,
    {first_day} AS first_day,
    {last_day} AS last_day
  FROM events
  WHERE {where}
  GROUP BY customer_id
), t AS ({tasks})
SELECT m.*, coalesce(t.tasks, 0) AS tasks, coalesce(t.successful_tasks, 0) AS successful_tasks
FROM m LEFT JOIN t ON m.customer_id = t.customer_id
"""

#: the same columns from the roll-up (``tailguard.ledger.rollup``): sums of the per-day sums,
#: equal to the sums over the events (money: the same exact DECIMAL), far fewer rows to read
ROLLUP_AGGREGATE_SQL = """
WITH m AS (
  SELECT
    customer_id,
    sum(cost_usd) AS cost_usd,
    sum(CASE WHEN kind = 'llm_call' THEN cost_usd END) AS llm_cost_usd,
    sum(CASE WHEN kind = 'tool_call' THEN cost_usd END) AS tool_cost_usd,
    sum(CASE WHEN kind = 'retrieval' THEN cost_usd END) AS retrieval_cost_usd,
    sum(CASE WHEN kind = 'escalation' THEN cost_usd END) AS escalation_cost_usd,
    sum(CASE WHEN kind = 'llm_call' THEN requests ELSE 0 END) AS llm_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(CASE WHEN kind = 'tool_call' AND tool_kind = 'read' THEN events ELSE 0 END)
      AS read_tool_calls,
    sum(CASE WHEN kind = 'tool_call' AND tool_kind = 'write' THEN events ELSE 0 END)
      AS write_tool_calls,
    sum(queries) AS retrieval_queries,
    sum(reranks) AS reranks,
    sum(retries) AS retries,
    sum(CASE WHEN kind = 'escalation' THEN events ELSE 0 END) AS escalations,
    sum(unpriced) AS unpriced_calls,
    min(day) AS first_day,
    max(day) AS last_day
  FROM rollup
  WHERE {where}
  GROUP BY customer_id
), t AS ({tasks})
SELECT m.*, coalesce(t.tasks, 0) AS tasks, coalesce(t.successful_tasks, 0) AS successful_tasks
FROM m LEFT JOIN t ON m.customer_id = t.customer_id
"""


#: the same columns from the daily roll-up (one row per customer × day: about 1 per 50 events),
#: whose measures are these very sums per day (``tailguard.ledger.rollup.DAILY_MEASURES``)
DAILY_AGGREGATE_SQL = """
WITH m AS (
  SELECT
    customer_id,
    sum(cost_usd) AS cost_usd,
    sum(llm_cost_usd) AS llm_cost_usd,
    sum(tool_cost_usd) AS tool_cost_usd,
    sum(retrieval_cost_usd) AS retrieval_cost_usd,
    sum(escalation_cost_usd) AS escalation_cost_usd,
    sum(requests) AS llm_calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(read_tool_calls) AS read_tool_calls,
    sum(write_tool_calls) AS write_tool_calls,
    sum(queries) AS retrieval_queries,
    sum(reranks) AS reranks,
    sum(retries) AS retries,
    sum(escalations) AS escalations,
    sum(unpriced) AS unpriced_calls,
    min(day) AS first_day,
    max(day) AS last_day
  FROM rollup_daily
  WHERE {where}
  GROUP BY customer_id
), t AS ({tasks})
SELECT m.*, coalesce(t.tasks, 0) AS tasks, coalesce(t.successful_tasks, 0) AS successful_tasks
FROM m LEFT JOIN t ON m.customer_id = t.customer_id
"""


#: the same columns from the ledger-wide month level (``tailguard.ledger.merged``, merged across
#: segments), read when it is fresh: one row per customer already (``rollup_customer``, the
#: whole ledger, for an open window; ``rollup_month`` of one UTC month for that month), so a
#: plain scan, no GROUP BY and no per-task grouping (its tasks are the distinct ones)
MONTH_AGGREGATE_SQL = """
SELECT
  customer_id, cost_usd, llm_cost_usd, tool_cost_usd, retrieval_cost_usd, escalation_cost_usd,
  requests AS llm_calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
  reasoning_tokens, read_tool_calls, write_tool_calls, queries AS retrieval_queries, reranks,
  retries, escalations, unpriced AS unpriced_calls, first_day, last_day, tasks, successful_tasks
FROM {src}
WHERE {where}
"""


def month_where(ctx: Any, win: Window) -> tuple[str, str, list[Any]] | None:
    """(relation, WHERE, parameters) of the month level for ``win``, or None when it cannot
    answer: no fresh month level on the connection (``Ledger.connect`` makes its views only
    when it is of exactly the listed segments), or a window other than open (the customers'
    whole-ledger rows, ``rollup_customer``) or one whole UTC month (``rollup_month``)."""
    from tailguard.ledger.merged import TOTAL_VIEW, VIEW

    if not (ctx.has_rollup(VIEW) and ctx.has_rollup(TOTAL_VIEW)):
        return None
    if win.start is None and win.end is None:
        return TOTAL_VIEW, "TRUE", []
    if win.start is None or win.end is None:
        return None
    start, end = win.start.astimezone(dt.UTC), win.end.astimezone(dt.UTC)
    if start.time() != dt.time(0) or start.day != 1 or end.time() != dt.time(0):
        return None
    if end.date() != add_months(start.date(), 1):
        return None
    return VIEW, "month = ?", [start.date()]


#: the aggregate's integer sums: the engine sums BIGINT into a 128-bit integer (DuckDB's HUGEINT),
#: which costs ten times as much to hand to Python as a BIGINT (2.0 against 0.2 CPU s for 358,400
#: customers x 14 sums at the 110M-event bench); narrowed to BIGINT (``_narrow``), exactly: a sum
#: out of BIGINT's range fails the cast with an error, never a wrong number
INT_SUMS = (
    "llm_calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "read_tool_calls",
    "write_tool_calls",
    "retrieval_queries",
    "reranks",
    "retries",
    "escalations",
    "unpriced_calls",
    "successful_tasks",
)
#: the aggregate's other columns (money, days, the task count: kept as the engine gives them)
OTHER_COLUMNS = (
    "customer_id",
    "cost_usd",
    "llm_cost_usd",
    "tool_cost_usd",
    "retrieval_cost_usd",
    "escalation_cost_usd",
    "first_day",
    "last_day",
    "tasks",
)


def _narrow(sql: str) -> str:
    """``sql`` (one of the aggregate queries) with its integer sums cast to BIGINT."""
    cols = [*OTHER_COLUMNS, *(f"CAST({c} AS BIGINT) AS {c}" for c in INT_SUMS)]
    return f"SELECT {', '.join(cols)} FROM ({sql}) a"


def aggregate_query(ctx: Any, win: Window) -> tuple[str, list[Any]]:
    """The SQL (integer sums narrowed) and parameters of the per-customer sums over ``win``, from
    the first source that can answer: the month level (``month_where``), the daily roll-up,
    the roll-up (whole UTC days: ``QueryContext.rollup_where``), the events. All give the same
    figures (tests/analytics/test_rollup_reads.py, tests/analytics/test_month_reads.py)."""
    from tailguard.analytics.context import DAILY, TASK

    on_month = month_where(ctx, win)
    if on_month is not None:
        src, mwhere, mparams = on_month
        return MONTH_AGGREGATE_SQL.format(src=src, where=mwhere), list(mparams)
    where, params = win.sql()
    on_task = ctx.rollup_where(win, TASK)
    if on_task is not None:  # the same window on the task roll-up's days
        tasks = TASK_ROLLUP_TASKS_SQL.format(where=on_task[0])
        params = on_task[1]
    else:
        tasks = TASKS_SQL.format(where=where)
    daily = ctx.rollup_where(win, DAILY)
    if daily is not None:
        sql = DAILY_AGGREGATE_SQL.format(where=daily[0], tasks=tasks)
        return _narrow(sql), [*daily[1], *params]
    on_days = ctx.rollup_where(win)
    if on_days is not None:
        rwhere, rparams = on_days
        sql = ROLLUP_AGGREGATE_SQL.format(where=rwhere, tasks=tasks)
        return _narrow(sql), [*rparams, *params]
    sql = AGGREGATE_SQL.format(
        where=where,
        tasks=tasks,
        first_day=ctx.to_date("min(ts)"),
        last_day=ctx.to_date("max(ts)"),
    )
    return _narrow(sql), [*win.sql()[1], *params]


def aggregate(con: Any, win: Window) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(columns, rows) of the per-customer sums over ``win`` (``aggregate_query``)."""
    from tailguard.analytics.context import as_context

    ctx = as_context(con)
    sql, params = aggregate_query(ctx, win)
    return _columns_rows(ctx.execute(sql, params))


def _columns_rows(cur: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    return cur.columns, cur.rows


def margin_figures(cost: Decimal, mrr: Decimal | None, months: Decimal | None) -> dict[str, Any]:
    """Revenue, cost % of MRR and gross margin of ``cost`` against ``mrr`` over ``months``: the
    one formula every report uses (report customers, margins, diagnose, decide, renewal), so the
    same window gives the same figures everywhere. Revenue = MRR × months (a Decimal, unrounded);
    cost % = cost / revenue × 100, unrounded (null without revenue); margin =
    revenue − cost (exact)."""
    revenue = mrr * months if (mrr is not None and months is not None) else None
    return {
        "revenue_usd": revenue,
        "cost_pct_of_mrr": float(cost / revenue * 100) if revenue else None,
        "gross_margin_usd": (revenue - cost) if revenue is not None else None,
    }


#: the margin reports' half of the aggregate: each customer's whole cost and its first and last
#: day over ``{src}`` (the daily roll-up, the roll-up or the events: the same sums as the
#: aggregate's ``cost_usd``, ``first_day``, ``last_day``), without the tasks and the other sums
COSTS_SQL = """
SELECT customer_id, sum(cost_usd) AS cost_usd, {first_day} AS first_day, {last_day} AS last_day
FROM {src}
WHERE {where}
GROUP BY customer_id
"""


def costs(con: Any, win: Window) -> list[tuple[Any, ...]]:
    """(customer_id, cost_usd, first_day, last_day) of every customer with rows in ``win``:
    ``aggregate``'s columns of those names from the same source, one GROUP BY."""
    from tailguard.analytics.context import DAILY, as_context

    ctx = as_context(con)
    on_month = month_where(ctx, win)
    if on_month is not None:  # one row per customer already
        src, mwhere, mparams = on_month
        sql = f"SELECT customer_id, cost_usd, first_day, last_day FROM {src} WHERE {mwhere}"
        return ctx.execute(sql, mparams).rows
    daily = ctx.rollup_where(win, DAILY)
    if daily is not None:
        sql = COSTS_SQL.format(src=DAILY, where=daily[0], first_day="min(day)", last_day="max(day)")
        return ctx.execute(sql, daily[1]).rows
    on_days = ctx.rollup_where(win)
    if on_days is not None:
        sql = COSTS_SQL.format(
            src="rollup", where=on_days[0], first_day="min(day)", last_day="max(day)"
        )
        return ctx.execute(sql, on_days[1]).rows
    where, params = win.sql()
    sql = COSTS_SQL.format(
        src="events",
        where=where,
        first_day=ctx.to_date("min(ts)"),
        last_day=ctx.to_date("max(ts)"),
    )
    return ctx.execute(sql, params).rows


def _dims(con: Any, ids: list[Any] | None = None) -> dict[Any, tuple[Any, ...]]:
    """The customers' dimensions (id -> name, tier, segment, mrr): all, or those of ``ids``."""
    sql = "SELECT customer_id, name, tier, segment, mrr_usd FROM customers"
    if ids is None:
        return {r[0]: r[1:] for r in con.execute(sql).fetchall()}
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    got = con.execute(f"{sql} WHERE customer_id IN ({marks})", list(ids)).fetchall()
    return {r[0]: r[1:] for r in got}


def _coverage(con: Any, win: Window, days: Any) -> tuple[Any, Any, Any, dict[Any, Decimal]]:
    """The window's months and stated days from the first and last days of the aggregate
    (``days``: (first, last) pairs; an open window earns revenue for the days its data
    covers), and the allocated share of the bill per customer."""
    firsts = [f for f, _ in days if f is not None]
    lasts = [last for f, last in days if f is not None]
    cov = close(win, min(firsts, default=None), max(lasts, default=None))
    months = cov.months() if cov is not None else None
    first_day, last_day = (cov.first_day, cov.last_day) if cov is not None else (None, None)
    # reconcile --allocate's share of the bill (tailguard.finops.allocation), per day: beside
    # the measured cost, never in it; the window's days, as the allocation rows are per day
    from tailguard.finops.allocation import allocated_by_customer

    allocated = allocated_by_customer(_raw(con), win.first_day, win.last_day)
    return months, first_day, last_day, allocated


def _frame(
    con: Any, win: Window, days: Any
) -> tuple[dict[Any, tuple[Any, ...]], Any, Any, Any, dict[Any, Decimal]]:
    """What every per-customer row shares: the customers' dimensions (``_dims``), and the
    window's months, stated days and allocated shares (``_coverage``)."""
    return (_dims(con), *_coverage(con, win, days))


_NO_DIMS = (None, None, None, None)
_ZERO = Decimal(0)


def customer_costs(con: Any, win: Window) -> list[dict[str, Any]]:
    """``customer_rows`` cut to the margin figures (``customer_id``, ``name``, ``tier``,
    ``segment``, ``cost_usd``, ``allocated_usd``, ``mrr_usd``, ``revenue_usd``,
    ``cost_pct_of_mrr``, ``gross_margin_usd``, ``window_start``, ``window_end``: the same
    values), from one GROUP BY of the costs (``costs``), without the tasks: what ``margins``
    reads."""
    got = costs(con, win)
    dims, months, first_day, last_day, allocated = _frame(con, win, [(r[2], r[3]) for r in got])
    cost_of = {r[0]: r[1] for r in got}
    rows = []
    for cid in sorted(cost_of.keys() | dims.keys()):
        name, tier, segment, mrr = dims.get(cid, _NO_DIMS)
        cost = cost_of.get(cid) or _ZERO
        rows.append(
            {
                "customer_id": cid,
                "name": name,
                "tier": tier,
                "segment": segment,
                "cost_usd": cost,
                "allocated_usd": allocated.get(cid, _ZERO),
                "mrr_usd": mrr,
                **margin_figures(cost, mrr, months),
                "window_start": first_day,
                "window_end": last_day,
            }
        )
    return rows


#: the per-task and per-win ratios: field -> (numerator, denominator), both aggregate columns
#: (0 when the customer has none): num / den as floats, unrounded, null without a denominator.
#: The engine divides them (``_ratio_sql``): two integers cast to DOUBLE and divided, the same
#: IEEE quotient as Python's ``float(num) / float(den)``
RATIOS = {
    "read_tool_calls_per_task": ("read_tool_calls", "tasks"),
    "write_tool_calls_per_task": ("write_tool_calls", "tasks"),
    "retrieval_queries_per_task": ("retrieval_queries", "tasks"),
    "reranks_per_task": ("reranks", "tasks"),
    "retries_per_win": ("retries", "successful_tasks"),
    "escalation_rate": ("escalations", "tasks"),
}

#: the money sums of a row: the aggregate's exact Decimal, 0 (``Decimal(0)``) when the
#: customer has no events in the window or the sum is zero
MONEY_SUMS = (
    "cost_usd",
    "llm_cost_usd",
    "tool_cost_usd",
    "retrieval_cost_usd",
    "escalation_cost_usd",
)

#: the integer fields of a row, from the aggregate (0 when the customer has no events)
COUNTS = tuple(c for c in (*INT_SUMS, "tasks") if c in CUSTOMER_FIELDS)

#: the customers table's fields of a row (null when the customer has no customers row)
DIMS = ("name", "tier", "segment", "mrr_usd")

#: the fields an engine sort can order by exactly as ``sort_rows`` does (value descending, then
#: customer id descending; nulls last, by customer id ascending): the aggregate's own columns
#: that are row fields (a row shows the column, or 0 when the customer has no events) and the
#: customers' ``mrr_usd`` (null without one)
ENGINE_SORT = (
    (frozenset(OTHER_COLUMNS + INT_SUMS) & frozenset(CUSTOMER_FIELDS)) - {"customer_id"}
) | {"mrr_usd"}

#: every field the whole table's query orders in the engine: ``ENGINE_SORT``, the dimensions
#: (text compares by code point, in both), the ratios (computed in the query), the customer id
#: and the window's days (the same for every row: the order is by customer id). The rest
#: (the Decimal quotients and the allocated share, computed in Python) are sorted in Python
TABLE_SORT = (
    ENGINE_SORT
    | frozenset(DIMS)
    | frozenset(RATIOS)
    | {
        "customer_id",
        "window_start",
        "window_end",
    }
)

#: the temp table the per-customer table's query keeps the aggregate in
_AGG = "_tg_customer_agg"


def _ratio_sql(num: str, den: str) -> str:
    return (
        f"CASE WHEN coalesce(a.{den}, 0) <> 0 "
        f"THEN CAST(coalesce(a.{num}, 0) AS DOUBLE) / CAST(a.{den} AS DOUBLE) END"
    )


def _sort_key_sql(sort: str) -> str | None:
    """The SQL value ``sort`` orders by in the table's query (None: by customer id only)."""
    if sort in ("customer_id", "window_start", "window_end"):
        return None
    if sort in DIMS:
        return f"c.{sort}"
    if sort in RATIOS:
        return _ratio_sql(*RATIOS[sort])
    return f"coalesce(a.{sort}, 0)"


def _table_sql(sort: str | None, limit: int | None) -> str:
    """Every customer (in the aggregate ``_AGG``, the customers table or both: one FULL JOIN)
    with its dimensions, the aggregate's sums (counts coalesced to 0; money as the engine gives
    it, null without events) and the ratios, in ``sort_rows``' order of ``sort`` (None:
    customer id ascending, ``customer_rows``' order)."""
    cid = "coalesce(a.customer_id, c.customer_id)"
    cols = [
        f"{cid} AS customer_id",
        *(f"c.{d} AS {d}" for d in DIMS),
        *(f"a.{m} AS {m}" for m in MONEY_SUMS),
        *(f"coalesce(a.{n}, 0) AS {n}" for n in COUNTS),
        *(f"{_ratio_sql(*RATIOS[r])} AS {r}" for r in RATIOS),
    ]
    if sort is None:
        order = f"{cid} ASC"
    elif (key := _sort_key_sql(sort)) is None:
        order = f"{cid} DESC"  # every row has the same value: ties, by id descending
    elif key.startswith("coalesce("):  # never null: value descending, ties by id descending
        order = f"{key} DESC, {cid} DESC"
    else:
        # sort_rows' order: values descending, ties by id descending; the nulls last, in id
        # order ascending (as customer_rows builds them)
        order = (
            f"{key} DESC NULLS LAST, CASE WHEN {key} IS NULL THEN {cid} END ASC NULLS LAST, "
            f"{cid} DESC"
        )
    cut = f" LIMIT {int(limit)}" if limit else ""
    return (
        f"SELECT {', '.join(cols)} "
        f"FROM {_AGG} a FULL JOIN customers c ON a.customer_id = c.customer_id "
        f"ORDER BY {order}{cut}"
    )


def customer_table(
    con: Any,
    win: Window,
    sort: str | None = None,
    limit: int | None = None,
    *,
    need_events: bool = True,
) -> CustomerRows:
    """The per-customer table over ``win`` (every customer with events in it or a customers
    row), sorted as ``sort_rows(rows, sort)`` (None: customer id ascending) and cut to the
    first ``limit`` rows: a ``CustomerRows``, whose rows are built when asked. The aggregate
    (``aggregate_query``) in a temp table, then one query joins it with the customers, sorts
    and cuts (the fields it cannot order, ``TABLE_SORT``'s complement, are sorted in Python).
    ``NoDataError`` when the window holds no events (``period.require_events``), unless not
    ``need_events`` (then the customers table's rows, with zeros)."""
    from tailguard.analytics.context import as_context

    if sort is not None:
        check_sort(sort)
    ctx = as_context(con)
    sql, params = aggregate_query(ctx, win)
    in_engine = sort is None or sort in TABLE_SORT
    order, cut = (sort, limit) if in_engine else (None, None)
    ctx.temp_table(_AGG, sql, params)  # the aggregate, kept for its span and the table
    try:
        lo, hi = ctx.fetch(f"SELECT min(first_day), max(last_day) FROM {_AGG}")[0]
        if ctx.dialect.name == "duckdb":  # Arrow columns: no Python object per value
            raw = ctx.con.sql(_table_sql(order, cut)).to_arrow_table()
        else:  # another engine's rows, as lists by column
            res = ctx.execute(_table_sql(order, cut))
            cols = list(zip(*res.rows, strict=True)) if res.rows else [()] * len(res.columns)
            raw = {c: list(v) for c, v in zip(res.columns, cols, strict=True)}
    finally:
        ctx.drop(_AGG)
    if lo is None and need_events:  # no aggregate row: the window holds no event
        from tailguard.analytics.period import require_events

        require_events(ctx, win)  # NoDataError, naming the last event there is
    rows = CustomerRows(raw, *_coverage(con, win, [(lo, hi)]))
    if not in_engine:
        rows = rows.sorted_by(sort)  # type: ignore[arg-type]
        if limit:
            rows = rows[:limit]
    return rows


def _pylist(col: Any) -> list[Any]:
    """An Arrow column's values as Python objects. A decimal goes through its text (Arrow's
    decimal to string, then ``Decimal(text)``: the same coefficient and exponent as the
    column's ``as_py``, three times faster than pyarrow's own conversion)."""
    if isinstance(col, list):
        return col
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_decimal(col.type):
        return [None if s is None else Decimal(s) for s in pc.cast(col, pa.string()).to_pylist()]
    return col.to_pylist()


class CustomerRows(Sequence[dict[str, Any]]):
    """The per-customer table: a sequence of row dicts (the keys ``CUSTOMER_FIELDS``; Decimal
    money, int counts, float ratios, None where null), built when asked. It holds the engine's
    columns (``raw``: an Arrow table, or lists) and the window's months, stated days and
    allocated shares; ``len`` costs nothing, ``rows[i]`` builds one row, iterating builds
    every row once (kept: a row is the same dict each time it is asked, as in a list), and
    ``column(field)`` gives one field of every row without building the rows (what the CSV
    writer reads). Slices are ``CustomerRows`` too; equal to any sequence of equal rows."""

    def __init__(
        self,
        raw: Any,
        months: Decimal | None,
        first_day: dt.date | None,
        last_day: dt.date | None,
        allocated: dict[Any, Decimal],
    ):
        self._raw_cols = raw
        self._n = raw.num_rows if hasattr(raw, "num_rows") else len(raw["customer_id"])
        self._frame = (months, first_day, last_day, allocated)
        self._cache: dict[str, list[Any]] = {}
        self._rows: list[dict[str, Any]] | None = None
        self._one: dict[int, dict[str, Any]] = {}

    # --- the sequence ----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> CustomerRows: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | CustomerRows:
        if isinstance(i, slice):
            return self._take(range(self._n)[i])
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("row index out of range")
        if self._rows is not None:
            return self._rows[i]
        row = self._one.get(i)
        if row is None:
            row = self._one[i] = self._take(range(i, i + 1)).row_dicts()[0]
        return row

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.row_dicts())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable rows, as a list's

    def __repr__(self) -> str:
        return f"CustomerRows({self.row_dicts()!r})"

    def row_dicts(self) -> list[dict[str, Any]]:
        """Every row as a dict (built once, from the columns; then kept)."""
        if self._rows is None:
            cols = [self.column(f) for f in CUSTOMER_FIELDS]
            rows = [
                dict(zip(CUSTOMER_FIELDS, vals, strict=True)) for vals in zip(*cols, strict=True)
            ]
            for i, row in self._one.items():  # a row already handed out stays that dict
                rows[i] = row
            self._rows = rows
        return self._rows

    # --- by column -------------------------------------------------------------------------

    def _raw(self, name: str) -> list[Any]:
        got = self._cache.get("\0" + name)
        if got is None:
            raw = self._raw_cols
            got = self._cache["\0" + name] = _pylist(
                raw[name] if isinstance(raw, dict) else raw.column(name)
            )
        return got

    def column(self, field: str) -> list[Any]:
        """The values of ``field`` in every row, in order (the rows' values, not copies to
        change: a row changed after it was built is not reflected here)."""
        got = self._cache.get(field)
        if got is None:
            got = self._cache[field] = self._compute(field)
        return got

    def _compute(self, f: str) -> list[Any]:
        """One field of every row, from the engine's columns: the one place the row formulas
        are written (definitions: the module docstring)."""
        months, first_day, last_day, allocated = self._frame
        n = self._n
        if f in MONEY_SUMS:
            return [v or _ZERO for v in self._raw(f)]
        if f == "customer_id" or f in DIMS or f in COUNTS or f in RATIOS:
            return self._raw(f)
        if f == "allocated_usd":
            if not allocated:
                return [_ZERO] * n
            return [allocated.get(c, _ZERO) for c in self._raw("customer_id")]
        if f == "cost_per_successful_task":
            wins = self._raw("successful_tasks")
            return [
                c / w if w else None for c, w in zip(self.column("cost_usd"), wins, strict=True)
            ]
        if f == "revenue_usd":  # margin_figures' revenue: MRR x months
            if months is None:
                return [None] * n
            return [None if m is None else m * months for m in self._raw("mrr_usd")]
        if f == "cost_pct_of_mrr":  # margin_figures': cost / revenue x 100, null without revenue
            rev = self.column("revenue_usd")
            cost = self.column("cost_usd")
            return [float(c / r * 100) if r else None for c, r in zip(cost, rev, strict=True)]
        if f == "gross_margin_usd":  # margin_figures': revenue - cost
            rev = self.column("revenue_usd")
            cost = self.column("cost_usd")
            return [None if r is None else r - c for c, r in zip(cost, rev, strict=True)]
        if f == "window_start":
            return [first_day] * n
        if f == "window_end":
            return [last_day] * n
        return [None] * n  # not a field of the rows (a row's .get would say None)

    # --- reordering ------------------------------------------------------------------------

    def _take(self, idx: range | list[int]) -> CustomerRows:
        """The rows at positions ``idx``, as a table of their own (no row built)."""
        raw = self._raw_cols
        if isinstance(raw, dict):
            cut = {k: [v[i] for i in idx] for k, v in raw.items()}
        elif isinstance(idx, range) and idx.step == 1:
            cut = raw.slice(idx.start, len(idx))
        else:
            import pyarrow as pa

            cut = raw.take(pa.array(idx, pa.int64()))
        return CustomerRows(cut, *self._frame)

    def sorted_by(self, field: str) -> CustomerRows:
        """``sort_rows(self, field)`` as a table: values descending, ties by customer id
        descending, the nulls last in their present order."""
        values = self.column(field)
        ids = self._raw("customer_id")
        present = [i for i, v in enumerate(values) if v is not None]
        missing = [i for i, v in enumerate(values) if v is None]
        present.sort(key=lambda i: (values[i], ids[i]), reverse=True)
        return self._take(present + missing)


def customer_rows(con: Any, win: Window) -> list[dict[str, Any]]:
    """The per-customer table as a list, in customer id order (``customer_table``); a window
    without events gives the customers table's rows, with zeros."""
    return list(customer_table(con, win, need_events=False))


def top_customer_rows(con: Any, win: Window, sort: str, limit: int) -> CustomerRows:
    """The first ``limit`` rows of ``sort_rows(customer_rows(con, win), sort)``, in that order
    (``customer_table``: sorted and cut in the engine for ``TABLE_SORT`` fields)."""
    return customer_table(con, win, sort, limit)


def _raw(con: Any) -> Any:
    """The engine connection under ``con`` (a QueryContext or the connection itself)."""
    return getattr(con, "con", con)


def check_sort(field: str) -> None:
    """``ArgumentError`` (``sort``) unless ``field`` is a field of the per-customer rows."""
    if field not in CUSTOMER_FIELDS:
        from tailguard.errors import ArgumentError

        raise ArgumentError("sort", f"unknown field {field!r}; one of {', '.join(CUSTOMER_FIELDS)}")


def sort_rows(
    rows: list[dict[str, Any]], field: str = "cost_usd", *, descending: bool = True
) -> list[dict[str, Any]]:
    """Sort by ``field``; rows whose value is null go last either way."""
    if rows and field not in rows[0]:
        check_sort(field)
    present = [r for r in rows if r.get(field) is not None]
    missing = [r for r in rows if r.get(field) is None]
    present.sort(key=lambda r: (r[field], r["customer_id"]), reverse=descending)
    return present + missing
