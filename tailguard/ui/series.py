"""The dashboard's time series and breakdowns: the few figures no report already returns.

Every headline figure of the dashboard comes from a report of ``tailguard.analytics`` (the same
call as the CLI). What the reports do not return is the day-by-day picture: spend per UTC day by
cost component (event kind) or by model, one customer's cost per successful task week by week,
the users and features behind a customer's spend, and its guard events. Each is one GROUP BY in
the engine (portable SQL: CASE inside aggregates, no DuckDB-only syntax), returning a few hundred
rows at most; money stays the engine's exact Decimal sums and is converted to float only by the
chart that draws it.

Definitions match the reports': cost is ``cost_usd`` (fully loaded; unpriced calls add nothing),
an LLM call counts its ``requests`` (an imported usage bucket is many calls; null is 1), a
successful task is a distinct ``task_id`` with an ``accepted`` ``task_outcome`` (as in
``report customers``), weeks are ISO weeks starting Monday (UTC).

Each function takes a ``QueryContext`` (or an open connection, wrapped in one). Sums by day,
kind, model, user, feature and guard rule read the ledger's roll-ups (view
``rollup``, tailguard.ledger.rollup: exact sums per customer × user × day × model × feature ×
kind...) when the connection has them and the window is whole UTC days, which is what makes the
pages fast at 10M events; otherwise the same sums over ``events``. Distinct task counts (cost per
successful task by week) need the events.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.context import QueryContext, as_context
from tailguard.vocabulary import KINDS

if TYPE_CHECKING:
    from tailguard.analytics.period import Window

__all__ = [
    "COST_KINDS",
    "customer_breakdown",
    "customer_weekly",
    "daily_spend",
    "guard_events",
]

#: the kinds that carry cost, in the order they stack (the model's own cost at the bottom)
COST_KINDS: tuple[str, ...] = tuple(
    k for k in ("llm_call", "tool_call", "retrieval", "escalation") if k in KINDS
)


#: an LLM call's weight: its ``requests`` (null = 1), as every call count of the reports
CALLS = "sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END)"


def _where(win: Window, customer: str | None) -> tuple[str, list[Any]]:
    where, params = win.sql()
    if customer is not None:
        where += " AND customer_id = ?"
        params = [*params, customer]
    return where, params


def _rollup(ctx: QueryContext, win: Window, customer: str | None) -> tuple[str, list[Any]] | None:
    """The roll-up's WHERE for the window (and customer), or None when the events must be read
    (``QueryContext.rollup_where``: no roll-up, or a window not on UTC midnights)."""
    got = ctx.rollup_where(win)
    if got is None:
        return None
    where, params = got
    if customer is not None:
        where, params = f"{where} AND customer_id = ?", [*params, customer]
    return where, params


def daily_spend(
    source: Any,
    win: Window,
    *,
    by: str = "kind",
    customer: str | None = None,
    top: int = 6,
) -> dict[str, Any]:
    """Spend per UTC day split by ``by`` (``kind``: cost component; ``model``), for the window
    (and one ``customer``). Returns ``{"by", "days", "series": {name: [Decimal per day]},
    "total_usd"}``. Days without spend inside the data's span are present with zeros (a gap is a
    day of no spend, not a missing day). ``by="model"`` keeps the ``top`` models by spend and
    sums the rest as ``other``."""
    if by not in ("kind", "model"):
        from tailguard.errors import ArgumentError

        raise ArgumentError("by", f"{by!r} is not one of kind, model")
    key = "kind" if by == "kind" else "coalesce(model, '(none)')"
    extra = " AND kind = 'llm_call'" if by == "model" else ""
    ctx = as_context(source)
    ru = _rollup(ctx, win, customer)
    where, params = ru or _where(win, customer)
    table, day = ("rollup", "day") if ru else ("events", ctx.to_date("ts"))
    rows = ctx.execute(
        f"SELECT {day} AS day, {key} AS k, sum(cost_usd) AS cost FROM {table} "
        f"WHERE {where}{extra} GROUP BY 1, 2 HAVING sum(cost_usd) IS NOT NULL ORDER BY 1",
        params,
    ).fetchall()
    if not rows:
        return {"by": by, "days": [], "series": {}, "total_usd": Decimal(0)}
    first, last = rows[0][0], rows[-1][0]
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    totals: dict[str, Decimal] = {}
    for _, k, c in rows:
        totals[k] = totals.get(k, Decimal(0)) + (c or Decimal(0))
    if by == "kind":  # kinds that cost nothing (outcomes, guard events) draw no bar
        names = [k for k in COST_KINDS if totals.get(k)] + [
            k for k in totals if k not in COST_KINDS and totals[k]
        ]
    else:
        ranked = sorted(totals, key=lambda k: (-totals[k], k))
        names = ranked[:top] + (["other"] if len(ranked) > top else [])
    series = {n: [Decimal(0)] * len(days) for n in names}
    for d, k, c in rows:
        name = k if k in series else ("other" if "other" in series else None)
        if name is not None:
            series[name][index[d]] += c or Decimal(0)
    return {
        "by": by,
        "days": days,
        "series": series,
        "total_usd": sum(totals.values(), Decimal(0)),
    }


def customer_weekly(source: Any, win: Window, customer: str) -> list[dict[str, Any]]:
    """One customer's spend, successful tasks and cost per successful task per ISO week.

    A week's successful tasks are the distinct tasks whose ``accepted`` outcome falls in that
    week; its spend is every cost of the week (the report's definition, week by week)."""
    ctx = as_context(source)
    where, params = _where(win, customer)
    rows = ctx.execute(
        f"SELECT {ctx.trunc('week', 'ts')} AS week, sum(cost_usd) AS cost, "
        "count(DISTINCT CASE WHEN kind = 'task_outcome' AND outcome = 'accepted' THEN task_id "
        f"END) AS wins, {CALLS} AS calls "
        f"FROM events WHERE {where} GROUP BY 1 ORDER BY 1",
        params,
    ).fetchall()
    out = []
    for week, cost, wins, calls in rows:
        cost = cost or Decimal(0)
        out.append(
            {
                "week": week,
                "cost_usd": cost,
                "successful_tasks": int(wins or 0),
                "llm_calls": int(calls or 0),
                "cost_per_successful_task": cost / wins if wins else None,
            }
        )
    return out


def customer_breakdown(
    source: Any, win: Window, customer: str, *, by: str, top: int = 10
) -> list[dict[str, Any]]:
    """The ``top`` users (``by="user"``) or features (``by="feature"``) of one customer by
    spend, with their share of the customer's spend and their LLM calls."""
    col = {"user": "user_id", "feature": "feature"}[by]
    ctx = as_context(source)
    ru = _rollup(ctx, win, customer)
    where, params = ru or _where(win, customer)
    table, calls = ("rollup", "sum(requests)") if ru else ("events", CALLS)
    rows = ctx.execute(
        f"SELECT {col} AS k, sum(cost_usd) AS cost, {calls} AS calls "
        f"FROM {table} WHERE {where} GROUP BY 1 ORDER BY cost DESC NULLS LAST, k LIMIT ?",
        [*params, top],
    ).fetchall()
    total = ctx.execute(f"SELECT sum(cost_usd) FROM {table} WHERE {where}", params).fetchone()
    whole = (total[0] if total else None) or Decimal(0)
    return [
        {
            "id": k,
            "cost_usd": cost or Decimal(0),
            "share": float((cost or Decimal(0)) / whole) if whole else None,
            "llm_calls": int(calls or 0),
        }
        for k, cost, calls in rows
    ]


def guard_events(source: Any, win: Window, customer: str | None = None) -> list[dict[str, Any]]:
    """Guard events (caps hit, degradations, kills) by action and rule: how many, on how many
    days, the first and last, and the amount they concerned (the ``amount_usd`` of the events)."""
    ctx = as_context(source)
    ru = _rollup(ctx, win, customer)
    if ru:
        where, params = ru
        sql = (
            "SELECT action, rule, sum(events) AS n, count(DISTINCT day) AS days, "
            "min(first_ts), max(last_ts), sum(amount_usd) "
            f"FROM rollup WHERE {where} AND kind = 'guard' GROUP BY 1, 2 ORDER BY n DESC, 1, 2"
        )
    else:
        where, params = _where(win, customer)
        sql = (
            f"SELECT action, rule, count(*) AS n, count(DISTINCT {ctx.to_date('ts')}) AS days, "
            "min(ts), max(ts), sum(amount_usd) "
            f"FROM events WHERE {where} AND kind = 'guard' GROUP BY 1, 2 ORDER BY n DESC, 1, 2"
        )
    rows = ctx.execute(sql, params).fetchall()
    return [
        {
            "action": a,
            "rule": r,
            "events": int(n),
            "days": int(d),
            "first": f,
            "last": last,
            "amount_usd": amt,
        }
        for a, r, n, d, f, last, amt in rows
    ]
