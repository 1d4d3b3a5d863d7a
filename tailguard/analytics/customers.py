"""The per-customer table: who costs what, per task, against what they pay (the per-customer
economics essay).

One engine query aggregates the ledger by customer (portable SQL: CASE inside aggregates rather
than DuckDB-only FILTER, so the same text runs on ClickHouse): the sums from the ledger's
roll-up when the window is whole UTC days (else from the events), the distinct tasks from the
``task_outcome`` events; Python then derives the ratios over the small aggregated result with
Decimal arithmetic.

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

from decimal import Decimal
from typing import Any

from tailguard.analytics.period import Window, close

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


def aggregate(con: Any, win: Window) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(columns, rows) of the per-customer sums over ``win``: from the daily roll-up, else the
    roll-up, when the context has one and the window is whole days
    (``QueryContext.rollup_where``), else from the events. All give the same figures
    (tests/analytics/test_rollup_reads.py)."""
    from tailguard.analytics.context import DAILY, TASK, as_context

    ctx = as_context(con)
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
        return _columns_rows(ctx.execute(sql, [*daily[1], *params]))
    on_days = ctx.rollup_where(win)
    if on_days is not None:
        rwhere, rparams = on_days
        sql = ROLLUP_AGGREGATE_SQL.format(where=rwhere, tasks=tasks)
        cur = ctx.execute(sql, [*rparams, *params])
    else:
        sql = AGGREGATE_SQL.format(
            where=where,
            tasks=tasks,
            first_day=ctx.to_date("min(ts)"),
            last_day=ctx.to_date("max(ts)"),
        )
        cur = ctx.execute(sql, [*win.sql()[1], *params])
    return _columns_rows(cur)


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


def customer_rows(con: Any, win: Window) -> list[dict[str, Any]]:
    """The per-customer table, unsorted. ``con`` has the ledger's ``events`` and ``customers``."""
    cols, got = aggregate(con, win)
    agg = {r[0]: dict(zip(cols, r, strict=True)) for r in got}
    dims = {
        r[0]: {"name": r[1], "tier": r[2], "segment": r[3], "mrr_usd": r[4]}
        for r in con.execute(
            "SELECT customer_id, name, tier, segment, mrr_usd FROM customers"
        ).fetchall()
    }
    # an open window earns revenue for the days its data covers (the aggregate already has the
    # first and last day: no second pass); every row states that window
    days = [(a["first_day"], a["last_day"]) for a in agg.values() if a["first_day"] is not None]
    cov = close(
        win,
        min((f for f, _ in days), default=None),
        max((last for _, last in days), default=None),
    )
    months = cov.months() if cov is not None else None
    first_day, last_day = (cov.first_day, cov.last_day) if cov is not None else (None, None)
    # reconcile --allocate's share of the bill (tailguard.finops.allocation), per day: beside
    # the measured cost, never in it; the window's days, as the allocation rows are per day
    from tailguard.finops.allocation import allocated_by_customer

    allocated = allocated_by_customer(_raw(con), win.first_day, win.last_day)
    rows = []
    for cid in sorted(set(agg) | set(dims)):
        a = agg.get(cid, {})
        d = dims.get(cid, {})
        cost = a.get("cost_usd") or Decimal(0)
        tasks = a.get("tasks") or 0
        wins = a.get("successful_tasks") or 0
        mrr = d.get("mrr_usd")
        rows.append(
            {
                "customer_id": cid,
                "name": d.get("name"),
                "tier": d.get("tier"),
                "segment": d.get("segment"),
                "cost_usd": cost,
                "allocated_usd": allocated.get(cid, Decimal(0)),
                "llm_cost_usd": a.get("llm_cost_usd") or Decimal(0),
                "tool_cost_usd": a.get("tool_cost_usd") or Decimal(0),
                "retrieval_cost_usd": a.get("retrieval_cost_usd") or Decimal(0),
                "escalation_cost_usd": a.get("escalation_cost_usd") or Decimal(0),
                "llm_calls": int(a.get("llm_calls") or 0),
                "input_tokens": int(a.get("input_tokens") or 0),
                "output_tokens": int(a.get("output_tokens") or 0),
                "cache_read_tokens": int(a.get("cache_read_tokens") or 0),
                "cache_write_tokens": int(a.get("cache_write_tokens") or 0),
                "reasoning_tokens": int(a.get("reasoning_tokens") or 0),
                "tasks": int(tasks),
                "successful_tasks": int(wins),
                "cost_per_successful_task": cost / wins if wins else None,
                "read_tool_calls_per_task": _ratio(a.get("read_tool_calls"), tasks),
                "write_tool_calls_per_task": _ratio(a.get("write_tool_calls"), tasks),
                "retrieval_queries_per_task": _ratio(a.get("retrieval_queries"), tasks),
                "reranks_per_task": _ratio(a.get("reranks"), tasks),
                "retries": int(a.get("retries") or 0),
                "retries_per_win": _ratio(a.get("retries"), wins),
                "escalations": int(a.get("escalations") or 0),
                "escalation_rate": _ratio(a.get("escalations"), tasks),
                "unpriced_calls": int(a.get("unpriced_calls") or 0),
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


def sort_rows(
    rows: list[dict[str, Any]], field: str = "cost_usd", *, descending: bool = True
) -> list[dict[str, Any]]:
    """Sort by ``field``; rows whose value is null go last either way."""
    if rows and field not in rows[0]:
        from tailguard.errors import ArgumentError

        raise ArgumentError("sort", f"unknown field {field!r}; one of {', '.join(CUSTOMER_FIELDS)}")
    present = [r for r in rows if r.get(field) is not None]
    missing = [r for r in rows if r.get(field) is None]
    present.sort(key=lambda r: (r[field], r["customer_id"]), reverse=descending)
    return present + missing
