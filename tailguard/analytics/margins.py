"""Per-customer inference margin against the cost-allocation guide's segment thresholds.

The cost-allocation guide ("Benchmark: per-customer inference cost targets") gives, per segment, a
target and an alert level for inference cost as a percentage of MRR:

============  ======  =======
segment       target  alert
============  ======  =======
smb           < 20%   > 35%
mid_market    < 18%   > 30%
enterprise    < 15%   > 25%
usage_based   < 30%   > 50%   (of consumed revenue: ``mrr_usd`` the commit, + overage billed)
============  ======  =======

Status of a paying customer: ``ok`` below the target, ``alert`` above the alert level, ``watch``
in between (both ends inclusive in ``watch``: at exactly 20% an smb customer has left its
target). A customer with no revenue (free tier, MRR 0) has no percentage: ``no_revenue``; an
unknown segment: ``unknown``. **Underwater** = a paying customer whose cost exceeds the revenue
of the window (gross margin < 0); free customers are counted apart (``no_revenue``), because an
acquisition tier is not a pricing failure and would drown the list.

``cost_pct_of_mrr`` comes from ``customer_costs`` (``customer_rows`` cut to its cost and margin
figures, the same values from one GROUP BY of the costs, without the tasks: cost / (MRR × months
in the window) × 100, unrounded until shown), with the **pay-as-you-go overage** billed in the
window added to the revenue (``overage_billed``, ``with_overage``): a payg customer pays its plan
fee and the overage the guard metered past its budget (``overage`` events' ``amount_usd``), and
counting the plan fee alone showed a customer who pays for all it uses as underwater. When
``customer_costs`` rows carry ``overage_usd`` themselves (report customers counting it), they are
taken as they are. The month-by-month
band counts ("track the number of customers in each cost band over time", the cost-allocation
guide) come from one engine query grouped by customer and calendar month; a month the data
covers only in part is marked ``partial`` (its revenue is a whole month's MRR, its cost only the
covered days').
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from tailguard.analytics.context import QueryContext, as_context, using
from tailguard.analytics.customers import customer_costs, margin_figures
from tailguard.analytics.period import Window, add_months, bounded

#: the cost-allocation guide: segment -> (target %, alert %)
THRESHOLDS: dict[str, tuple[Decimal, Decimal]] = {
    "smb": (Decimal(20), Decimal(35)),
    "mid_market": (Decimal(18), Decimal(30)),
    "enterprise": (Decimal(15), Decimal(25)),
    "usage_based": (Decimal(30), Decimal(50)),
}
STATUSES: tuple[str, ...] = ("ok", "watch", "alert", "no_revenue", "unknown")

#: each customer's pay-as-you-go overage billed in the window: the guard's ``overage`` events'
#: ``amount_usd`` (the dollars metered past the budget; ``{src}``: the roll-up, which keeps
#: ``action`` and sums ``amount_usd``, or the events)
OVERAGE_SQL = """
SELECT customer_id, sum(amount_usd) AS overage_usd
FROM {src}
WHERE {where} AND kind = 'guard' AND action = 'overage' AND amount_usd IS NOT NULL
GROUP BY 1
"""


def overage_billed(con: Any, win: Window) -> dict[str, Decimal]:
    """``{customer_id: overage billed}`` in ``win``: the pay-as-you-go overage a customer on a
    payg plan is billed past its included budget (the eight-KPI framework: "pay-as-you-go meters
    above the ceiling"; the cost-allocation guide: "included credits + overage ... use beyond
    that incurs a per-unit overage charge"). The guard meters it as ``overage`` events whose
    ``amount_usd`` is the dollars past the budget (docs/guard.md); customers without one are
    absent (no overage, not an unknown one)."""
    ctx = as_context(con)
    src = ctx.source(win)
    sql = OVERAGE_SQL.format(src=src.table, where=src.where)
    return {c: v for c, v in ctx.execute(sql, src.params).fetchall() if v}


def billed_figures(
    cost: Decimal, mrr: Decimal | None, months: Decimal | None, overage: Decimal | None
) -> dict[str, Any]:
    """``customers.margin_figures`` with the payg overage billed in the window counted as
    revenue: revenue = MRR × months + overage (``overage_usd``, 0 without any); cost % and
    margin against that revenue (``with_overage``)."""
    return with_overage(margin_figures(cost, mrr, months), cost, overage)


def with_overage(fig: dict[str, Any], cost: Decimal, overage: Decimal | None) -> dict[str, Any]:
    """``revenue_usd``, ``cost_pct_of_mrr``, ``gross_margin_usd`` of ``fig`` (the figures of
    ``customers.margin_figures``, revenue = MRR × months) with ``overage`` added to the revenue,
    and ``overage_usd``. A customer without MRR (no customers row) keeps no revenue: its plan
    fee is unknown, and a revenue of the overage alone would be half a bill."""
    over = overage or Decimal(0)
    revenue = fig["revenue_usd"]
    if revenue is None or not over:
        return {
            "revenue_usd": revenue,
            "cost_pct_of_mrr": fig["cost_pct_of_mrr"],
            "gross_margin_usd": fig["gross_margin_usd"],
            "overage_usd": over,
        }
    revenue = revenue + over
    return {
        "revenue_usd": revenue,
        "cost_pct_of_mrr": float(cost / revenue * 100) if revenue else None,
        "gross_margin_usd": revenue - cost,
        "overage_usd": over,
    }


def margin_status(segment: str | None, cost_pct: float | Decimal | None) -> str:
    """``ok`` | ``watch`` | ``alert`` | ``no_revenue`` | ``unknown`` (module docstring)."""
    th = THRESHOLDS.get(segment or "")
    if th is None:
        return "unknown"
    if cost_pct is None:
        return "no_revenue"
    # a float against the Decimal bounds compares exactly (Python compares the two values,
    # not a rounding of either), as its shortest repr would: the bounds are whole numbers
    target, alert = th
    if cost_pct < target:
        return "ok"
    if cost_pct > alert:
        return "alert"
    return "watch"


def margin_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Margin view of ``customer_rows`` output, sorted by cost % of MRR descending."""
    out = []
    for r in rows:
        th = THRESHOLDS.get(r.get("segment") or "")
        out.append(
            {
                "customer_id": r["customer_id"],
                "name": r.get("name"),
                "tier": r.get("tier"),
                "segment": r.get("segment"),
                "cost_usd": r["cost_usd"],
                # reconcile --allocate's share of the bill, beside the measured cost
                "allocated_usd": r.get("allocated_usd", Decimal(0)),
                "revenue_usd": r.get("revenue_usd"),
                "overage_usd": r.get("overage_usd", Decimal(0)),
                "gross_margin_usd": r.get("gross_margin_usd"),
                "cost_pct_of_mrr": r.get("cost_pct_of_mrr"),
                "target_pct": th[0] if th else None,
                "alert_pct": th[1] if th else None,
                "status": margin_status(r.get("segment"), r.get("cost_pct_of_mrr")),
                "window_start": r.get("window_start"),
                "window_end": r.get("window_end"),
            }
        )
    out.sort(
        key=lambda m: (m["cost_pct_of_mrr"] is None, -(m["cost_pct_of_mrr"] or 0), m["customer_id"])
    )
    return out


#: cost per customer and calendar month (``{src}``: the roll-up or the events, ``{month}``: the
#: dialect's month of the row's day or timestamp)
def billed_rows(
    rows: Sequence[dict[str, Any]], overage: Mapping[str, Decimal]
) -> list[dict[str, Any]]:
    """``customer_rows`` output with each customer's ``overage`` billed (``overage_billed``)
    counted as revenue (``with_overage``): a new row for each of the few customers billed one,
    the others as they are; the caller's rows are left unchanged (``margins``, the demo's
    headline)."""
    return [
        {**r, **with_overage(r, r["cost_usd"], amount)}
        if (amount := overage.get(r["customer_id"]))
        else r
        for r in rows
    ]


MONTHLY_SQL = """
SELECT customer_id, {month} AS month, sum(cost_usd) AS cost_usd
FROM {src}
WHERE {where}
GROUP BY 1, 2
"""


def _monthly(con: Any, lo: dt.datetime, hi: dt.datetime) -> tuple[str, list[Any]]:
    """The query of the cost per customer and month: from the daily roll-up (one row per
    customer and day, ``cost_usd`` its whole spend) when the context has it, else the roll-up,
    else the events: the same sums."""
    from tailguard.analytics.context import DAILY

    ctx = as_context(con)
    win = Window(lo, hi)
    daily = ctx.rollup_where(win, DAILY)
    if daily is not None:
        sql = MONTHLY_SQL.format(src=DAILY, where=daily[0], month=ctx.trunc("month", "day"))
        return sql, daily[1]
    src = ctx.source(win)
    month = ctx.trunc("month", "day" if src.rollup else "ts")
    return MONTHLY_SQL.format(src=src.table, where=src.where, month=month), src.params


#: the payg overage billed per customer and calendar month (``OVERAGE_SQL`` by month; the daily
#: roll-up has no guard action, so the roll-up or the events)
OVERAGE_MONTHLY_SQL = """
SELECT customer_id, {month} AS month, sum(amount_usd) AS overage_usd
FROM {src}
WHERE {where} AND kind = 'guard' AND action = 'overage' AND amount_usd IS NOT NULL
GROUP BY 1, 2
"""


def _overage_monthly(con: Any, lo: dt.datetime, hi: dt.datetime) -> tuple[str, list[Any]]:
    ctx = as_context(con)
    src = ctx.source(Window(lo, hi))
    month = ctx.trunc("month", "day" if src.rollup else "ts")
    return OVERAGE_MONTHLY_SQL.format(src=src.table, where=src.where, month=month), src.params


def _status_sql(segment: str, cost: str, revenue: str) -> str:
    """``margin_status`` of ``cost`` against ``revenue`` as SQL, without dividing: for a
    positive revenue, cost / revenue x 100 < target exactly when cost x 100 < target x revenue
    (exact DECIMAL arithmetic, where the quotient would be rounded)."""
    known = ", ".join(f"'{k}'" for k in THRESHOLDS)

    def bound(i: int) -> str:
        whens = " ".join(f"WHEN '{k}' THEN {int(v[i])}" for k, v in THRESHOLDS.items())
        return f"(CASE {segment} {whens} END)"

    return (
        f"CASE WHEN {segment} IS NULL OR {segment} NOT IN ({known}) THEN 'unknown' "
        f"WHEN {revenue} IS NULL OR {revenue} = 0 THEN 'no_revenue' "
        f"WHEN {cost} * 100 < {bound(0)} * {revenue} THEN 'ok' "
        f"WHEN {cost} * 100 > {bound(1)} * {revenue} THEN 'alert' "
        "ELSE 'watch' END"
    )


def bands_by_month(con: Any, *, last_month: dt.date, months: int = 12) -> list[dict[str, Any]]:
    """How many customers sit in each band, for ``months`` calendar months ending ``last_month``.

    A customer counts in a month when it had signed up by the month's end (unknown signup:
    always). Its cost that month is the sum of its events (0 without any); its revenue that
    month is its MRR plus the payg overage billed that month (``overage_billed``). One engine
    query: the months with data x the customers, joined with the monthly costs and overage,
    judged (``_status_sql``) and counted (a Python loop over 44,800 customers a month was a
    third of the report).
    """
    first = add_months(last_month, -(months - 1))
    end = add_months(last_month, 1)
    utc = dt.UTC
    lo = dt.datetime(first.year, first.month, 1, tzinfo=utc)
    hi = dt.datetime(end.year, end.month, 1, tzinfo=utc)
    data_lo, data_hi = as_context(con).span()
    shown: list[dt.date] = []
    for i in range(months):
        m = add_months(first, i)
        if data_lo is None or data_lo.date() >= add_months(m, 1) or data_hi.date() < m:
            continue  # a month without any data says nothing about bands
        shown.append(m)
    if not shown:
        return []
    cost_sql, cost_params = _monthly(con, lo, hi)
    over_sql, over_params = _overage_monthly(con, lo, hi)
    month_rows = " UNION ALL ".join(
        f"SELECT CAST('{m.isoformat()}' AS DATE) AS m, "
        f"CAST('{add_months(m, 1).isoformat()}' AS DATE) AS m_end"
        for m in shown
    )
    revenue = (
        "(CASE WHEN c.mrr_usd IS NULL THEN NULL ELSE c.mrr_usd + coalesce(o.overage_usd, 0) END)"
    )
    cost = "coalesce(k.cost_usd, 0)"
    sql = f"""
        WITH k AS ({cost_sql}), o AS ({over_sql}), mo AS ({month_rows}),
        j AS (
            SELECT mo.m AS m, {_status_sql("c.segment", cost, revenue)} AS status,
                CASE WHEN {revenue} <> 0 AND {cost} > {revenue} THEN 1 ELSE 0 END AS under
            FROM mo CROSS JOIN customers c
            LEFT JOIN k ON k.customer_id = c.customer_id AND k.month = mo.m
            LEFT JOIN o ON o.customer_id = c.customer_id AND o.month = mo.m
            WHERE c.signup_date IS NULL OR c.signup_date < mo.m_end
        )
        SELECT m, status, count(*) AS n, sum(under) AS under FROM j GROUP BY m, status
    """
    got: dict[dt.date, dict[str, int]] = {m: dict.fromkeys(STATUSES, 0) for m in shown}
    underwater = dict.fromkeys(shown, 0)
    for m, status, n, under in con.execute(sql, [*cost_params, *over_params]).fetchall():
        m = m if type(m) is dt.date else dt.date.fromisoformat(str(m)[:10])
        got[m][status] += int(n)
        underwater[m] += int(under or 0)
    assert data_lo is not None and data_hi is not None  # a month was shown
    return [
        {
            "month": m.strftime("%Y-%m"),
            **got[m],
            "underwater": underwater[m],
            "partial": data_lo.date() > m
            or data_hi.date() < add_months(m, 1) - dt.timedelta(days=1),
        }
        for m in shown
    ]


def margins(
    ledger: Any,
    win: Window | None = None,
    *,
    window: Window | None = None,
    history_months: int = 12,
) -> dict[str, Any]:
    """The margin report (``_margins`` has the fields).

    ``ledger``: a ``QueryContext``, a ``Ledger`` or its directory, or an open connection (the
    old form); the window is ``window=`` (or the second argument, the old form), default every
    day the ledger holds events.
    """
    with using(ledger) as ctx:
        return _margins(ctx, window or win or Window(), history_months=history_months)


def _margins(
    con: QueryContext,
    win: Window,
    *,
    history_months: int = 12,
) -> dict[str, Any]:
    """The margin report: per-customer status, the underwater list, band counts by month, and
    the ``window`` it is about (an open window: the days its data spans). ``NoDataError`` when
    the window holds no events: every customer would read ``ok`` at a cost of zero."""
    stated = bounded(con, win)
    costs = customer_costs(con, win)
    if costs and "overage_usd" not in costs[0]:  # report customers' rows without the overage
        costs = billed_rows(costs, overage_billed(con, win))
    rows = margin_rows(costs)
    under = sorted(
        (r for r in rows if r["revenue_usd"] and r["cost_usd"] > r["revenue_usd"]),
        key=lambda r: (r["gross_margin_usd"], r["customer_id"]),
    )
    last = stated.last_day
    assert last is not None  # bounded
    counts = dict.fromkeys(STATUSES, 0)
    for r in rows:
        counts[r["status"]] += 1
    return {
        "window": stated.stated(),
        "thresholds": {s: {"target_pct": t, "alert_pct": a} for s, (t, a) in THRESHOLDS.items()},
        "counts": counts,
        "customers": rows,
        "underwater": under,
        "bands_by_month": bands_by_month(con, last_month=last, months=history_months),
    }
