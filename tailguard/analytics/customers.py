"""The per-customer table: who costs what, per task, against what they pay (the per-customer
economics essay).

One engine query aggregates the ledger by customer (portable SQL: CASE inside aggregates rather
than DuckDB-only FILTER, so the same text runs on ClickHouse): from the ledger's month level
when it is fresh and the window is open or one whole UTC month (one row per customer, tasks
included: ``month_where``), else the sums from the per-segment roll-ups when the window is whole
UTC days (else from the events) and the distinct tasks from ``rollup_task`` (else the
``task_outcome`` events); Python then derives the ratios over the small aggregated result with
Decimal arithmetic. With a limit and an exact sort field (``ENGINE_SORT``) the engine sorts and
cuts, and only those rows are built (``top_customer_rows``).

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
from decimal import Decimal
from typing import Any

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


def _ratio(num: Any, den: Any) -> float | None:
    """``num / den`` unrounded (null without a denominator)."""
    if not den:
        return None
    return float(num or 0) / float(den)


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


def _int(v: Any) -> int:
    return int(v or 0)


#: the fields an engine sort can order by exactly as ``sort_rows`` does (value descending, then
#: customer id descending; nulls last, by customer id ascending): the aggregate's own columns
#: that are row fields (a row shows the column, or 0 when the customer has no events) and the
#: customers' ``mrr_usd`` (null without one)
ENGINE_SORT = (
    (frozenset(OTHER_COLUMNS + INT_SUMS) & frozenset(CUSTOMER_FIELDS)) - {"customer_id"}
) | {"mrr_usd"}

#: the temp table ``top_customer_rows`` keeps the aggregate in
_AGG = "_tg_customer_agg"


def customer_rows(con: Any, win: Window) -> list[dict[str, Any]]:
    """The per-customer table, unsorted. ``con`` has the ledger's ``events`` and ``customers``.
    Built from the aggregate's tuples by column position (no dict per aggregate row)."""
    cols, got = aggregate(con, win)
    ix = {c: i for i, c in enumerate(cols)}
    i_first, i_last = ix["first_day"], ix["last_day"]
    dims, *frame = _frame(con, win, [(r[i_first], r[i_last]) for r in got])
    agg = {r[0]: r for r in got}
    return _build(cols, agg, dims, sorted(agg.keys() | dims.keys()), *frame)


def top_customer_rows(con: Any, win: Window, sort: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows of ``sort_rows(customer_rows(con, win), sort)``, in that order,
    with ``sort`` one of ``ENGINE_SORT``: the engine sorts the aggregate (kept in a temp table)
    with the customers that have no events, and only ``limit`` rows are built in Python: the
    same rows, field for field (tests/analytics/test_month_reads.py). ``NoDataError`` when
    the window holds no events (``period.require_events``), as ``customer_report``."""
    from tailguard.analytics.context import as_context

    if sort not in ENGINE_SORT:
        from tailguard.errors import ArgumentError

        raise ArgumentError("sort", f"{sort!r} is not sorted in the engine")
    ctx = as_context(con)
    sql, params = aggregate_query(ctx, win)
    ctx.temp_table(_AGG, sql, params)
    try:
        lo, hi = ctx.fetch(f"SELECT min(first_day), max(last_day) FROM {_AGG}")[0]
        if lo is None:  # no aggregate row: the window holds no event
            from tailguard.analytics.period import require_events

            require_events(ctx, win)  # NoDataError, naming the last event there is
        mrr = sort == "mrr_usd"
        key = "c.mrr_usd" if mrr else f"coalesce(a.{sort}, 0)"
        join = "LEFT JOIN customers c ON c.customer_id = i.customer_id" if mrr else ""
        ids = [
            r[0]
            for r in ctx.fetch(
                f"SELECT i.customer_id FROM "
                f"(SELECT customer_id FROM (SELECT customer_id FROM {_AGG} UNION ALL "
                f"SELECT customer_id FROM customers) u GROUP BY customer_id) i "
                f"LEFT JOIN {_AGG} a ON a.customer_id = i.customer_id {join} "
                # sort_rows' order: values descending, ties by id descending; the nulls
                # last, in id order ascending (as customer_rows builds them)
                f"ORDER BY {key} DESC NULLS LAST, "
                f"CASE WHEN {key} IS NULL THEN i.customer_id END ASC NULLS LAST, "
                f"i.customer_id DESC LIMIT {int(limit)}"
            )
        ]
        marks = ", ".join("?" for _ in ids) or "NULL"
        res = ctx.execute(f"SELECT * FROM {_AGG} WHERE customer_id IN ({marks})", ids)
    finally:
        ctx.drop(_AGG)
    frame = _coverage(con, win, [(lo, hi)])
    # built in the engine's order, which is sort_rows' (no second sort)
    return _build(res.columns, {r[0]: r for r in res.rows}, _dims(con, ids), ids, *frame)


def _build(
    cols: list[str],
    agg: dict[Any, tuple[Any, ...]],
    dims: dict[Any, tuple[Any, ...]],
    ids: Any,
    months: Any,
    first_day: Any,
    last_day: Any,
    allocated: dict[Any, Decimal],
) -> list[dict[str, Any]]:
    """The rows of customers ``ids`` from their aggregate tuples (``agg``, by ``cols``
    position; none: no events) and dimensions."""
    ix = {c: i for i, c in enumerate(cols)}
    empty = (None,) * len(cols)
    (
        i_cost,
        i_llm,
        i_tool,
        i_retr,
        i_esc,
        i_calls,
        i_in,
        i_out,
        i_cr,
        i_cw,
        i_reas,
        i_tasks,
        i_wins,
        i_read,
        i_write,
        i_queries,
        i_reranks,
        i_retries,
        i_escs,
        i_unpriced,
    ) = (
        ix[c]
        for c in (
            "cost_usd",
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
            "read_tool_calls",
            "write_tool_calls",
            "retrieval_queries",
            "reranks",
            "retries",
            "escalations",
            "unpriced_calls",
        )
    )
    rows = []
    for cid in ids:
        a = agg.get(cid, empty)
        name, tier, segment, mrr = dims.get(cid, _NO_DIMS)
        cost = a[i_cost] or _ZERO
        tasks = a[i_tasks] or 0
        wins = a[i_wins] or 0
        retries = a[i_retries]
        escalations = a[i_escs]
        rows.append(
            {
                "customer_id": cid,
                "name": name,
                "tier": tier,
                "segment": segment,
                "cost_usd": cost,
                "allocated_usd": allocated.get(cid, _ZERO),
                "llm_cost_usd": a[i_llm] or _ZERO,
                "tool_cost_usd": a[i_tool] or _ZERO,
                "retrieval_cost_usd": a[i_retr] or _ZERO,
                "escalation_cost_usd": a[i_esc] or _ZERO,
                "llm_calls": _int(a[i_calls]),
                "input_tokens": _int(a[i_in]),
                "output_tokens": _int(a[i_out]),
                "cache_read_tokens": _int(a[i_cr]),
                "cache_write_tokens": _int(a[i_cw]),
                "reasoning_tokens": _int(a[i_reas]),
                "tasks": int(tasks),
                "successful_tasks": int(wins),
                "cost_per_successful_task": cost / wins if wins else None,
                "read_tool_calls_per_task": _ratio(a[i_read], tasks),
                "write_tool_calls_per_task": _ratio(a[i_write], tasks),
                "retrieval_queries_per_task": _ratio(a[i_queries], tasks),
                "reranks_per_task": _ratio(a[i_reranks], tasks),
                "retries": _int(retries),
                "retries_per_win": _ratio(retries, wins),
                "escalations": _int(escalations),
                "escalation_rate": _ratio(escalations, tasks),
                "unpriced_calls": _int(a[i_unpriced]),
                "mrr_usd": mrr,
                **margin_figures(cost, mrr, months),
                "window_start": first_day,
                "window_end": last_day,
            }
        )
    return rows


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
