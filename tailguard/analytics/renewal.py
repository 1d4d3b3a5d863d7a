"""The renewal one-pager of the eight-KPI framework: what a workspace used, what it will use, what
pool to sell.

For one customer and the 12 calendar months ending with ``as_of``'s month (default: the month of
**that customer's** last event, ``tailguard.analytics.period.customer_year``: never the ledger's
last event, so newer traffic from others cannot push the year past this customer's data). A
customer with no events in those months is refused (``NoDataError``): a year with no data is not
a year of zero consumption, and a projection from it would sell a pool of $0.

- **the window**: the 12 months clipped to the days the ledger holds events (``window``), with
  its ``cost_usd``, ``revenue_usd`` (MRR × the window's months + the pay-as-you-go overage
  billed in it, ``overage_usd``), ``cost_pct_of_mrr`` and ``gross_margin_usd`` from
  ``margins.billed_figures``: ``customers.margin_figures`` (the formula of every report) with
  the overage counted as revenue;
- **the invoice-reconciled cost**: in a month ``tailguard reconcile --allocate`` allocated
  (``allocations``: the invoice's unattributed remainder spread over the customers), a month's
  ``cost_usd`` is the measured cost plus this customer's allocation (``measured_cost_usd``,
  ``allocated_usd``; 0 allocated is still reconciled), so the months, the projection, the pool
  and the margin figures follow the invoice; ``cost_basis`` says which: ``invoice-reconciled``
  (every month with data allocated), ``partly invoice-reconciled`` (``reconciled_months``
  names them) or ``measured`` (no allocation: the ledger's own prices, as before);

- **actual consumption by month**: cost, LLM calls and active users (one engine query grouped
  by month); a month before the first event of the ledger is ``null`` (no data), a month with
  data but no spend is 0;
- **next-year projection** from the two drivers the eight-KPI framework names, each fitted by least
  squares over the whole months with data (a partly covered month is shown, marked ``partial``, but
  not fitted): *seat growth* (active users per month) and *adoption* (cost per active user per
  month). Projected month k = users(k) × cost per user(k), both lines clipped at 0, for the 12
  months after the last; with a single month of data both are flat;
- **recommended pool** (monthly, like ``contracted_pool_usd``) = the mean projected month ×
  (1 + ``headroom``, default 20%), rounded up to whole dollars: expected utilization 1 / 1.2 =
  83%, inside the 30-90% band of the pool-utilization KPI;
- ``html()`` renders a printable page with an inline SVG bar chart of the twelve months (no
  external assets: it prints and mails as one file).

Money is Decimal from the engine; the fitted lines are floats (a projection, not an invoice), and
a projected month's cost is the shortest decimal of its float, unrounded: JSON and CSV carry every
digit, the table, the note and the HTML page round for display. Only the recommended pool is
rounded (up, to whole dollars: a price to sell).
"""

from __future__ import annotations

import datetime as dt
import html as _html
import math
from decimal import Decimal
from typing import Any

from tailguard.analytics.context import QueryContext, using
from tailguard.analytics.margins import billed_figures, overage_billed
from tailguard.analytics.period import Window, add_months, customer_year

CENT = Decimal("0.01")

#: one customer's months: cost, LLM calls, active users. From the roll-up (or the events:
#: ``QueryContext.source``): the roll-up keeps ``user_id``, so its distinct users are the events'
MONTHLY_SQL = """
SELECT {month} AS month, coalesce(sum(cost_usd), 0) AS cost,
  sum(CASE WHEN kind = 'llm_call' THEN {requests} ELSE 0 END) AS llm_calls,
  count(DISTINCT user_id) AS users
FROM {src}
WHERE customer_id = ? AND {where} AND kind <> 'guard'
GROUP BY 1
"""


def _monthly(
    con: QueryContext, customer: str, start: dt.datetime, end: dt.datetime
) -> tuple[str, list[Any]]:
    src = con.source(Window(start, end))
    month = con.trunc("month", "day" if src.rollup else "ts")
    sql = MONTHLY_SQL.format(month=month, requests=src.requests, src=src.table, where=src.where)
    return sql, [customer, *src.params]


def allocations(
    con: Any, customer: str, first_day: dt.date, last_day: dt.date
) -> dict[dt.date, Decimal]:
    """``reconcile --allocate``'s rows over the days ``[first_day, last_day]``: each month (its
    first day) that holds an allocation, with ``customer``'s share of it over those days (0 when
    the month was allocated but not to this customer). A connection without the ``allocations``
    view (an engine whose ledger keeps none) has no month."""
    raw = getattr(con, "con", con)
    has_view = raw.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'allocations'"
    ).fetchone()
    if not has_view or not has_view[0]:
        return {}
    span = [first_day, last_day]
    days = raw.execute(
        "SELECT DISTINCT day FROM allocations WHERE day >= ? AND day <= ?", span
    ).fetchall()
    out = {d.replace(day=1): Decimal(0) for (d,) in days}
    for d, v in raw.execute(
        "SELECT day, sum(allocated_usd) FROM allocations "
        "WHERE customer_id = ? AND day >= ? AND day <= ? GROUP BY day",
        [customer, *span],
    ).fetchall():
        out[d.replace(day=1)] += Decimal(v)
    return out


def cost_basis(reconciled: int, with_data: int) -> str:
    """``invoice-reconciled`` when every one of ``with_data`` months is reconciled, ``measured``
    when none is, else ``partly invoice-reconciled``."""
    if reconciled == 0:
        return "measured"
    return "invoice-reconciled" if reconciled >= with_data else "partly invoice-reconciled"


def _fit(xs: list[int], ys: list[float]) -> tuple[float, float]:
    """Least-squares line (intercept, slope); flat through the point for a single one."""
    n = len(ys)
    if n == 1:
        return ys[0], 0.0
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - slope * mx, slope


def renewal(
    ledger: Any,
    customer: str,
    *,
    window: Window | None = None,
    as_of: dt.date | None = None,
    headroom: float = 0.2,
) -> dict[str, Any]:
    """The one-pager's figures for ``customer`` (module docstring): the 12 months ending
    ``as_of``'s month (``window``: ending its last day's month). ``ledger``: a
    ``QueryContext``, a ``Ledger`` or its directory, or an open connection."""
    if as_of is None and window is not None:
        as_of = window.last_day
    with using(ledger) as ctx:
        return _renewal(ctx, customer, as_of=as_of, headroom=headroom)


def _renewal(
    con: QueryContext,
    customer: str,
    *,
    as_of: dt.date | None = None,
    headroom: float = 0.2,
) -> dict[str, Any]:
    win = customer_year(con, customer, as_of)  # NoDataError: no events of this customer in it
    dim = con.execute(
        "SELECT name, tier, segment, mrr_usd, seats, contracted_pool_usd, signup_date "
        "FROM customers WHERE customer_id = ?",
        [customer],
    ).fetchall()
    name, tier, segment, mrr, seats, pool, signup = dim[0] if dim else (None,) * 7
    first_ev, last_ev = con.span()
    assert win.last_day is not None  # customer_year is bounded
    last_m = (as_of or win.last_day).replace(day=1)
    first_m = add_months(last_m, -11)
    utc = dt.UTC
    start = dt.datetime(first_m.year, first_m.month, 1, tzinfo=utc)
    nxt = add_months(last_m, 1)
    end = dt.datetime(nxt.year, nxt.month, 1, tzinfo=utc)
    got = {
        m: (c, int(n), int(u))
        for m, c, n, u in con.execute(*_monthly(con, customer, start, end)).fetchall()
    }
    data_from = first_ev.astimezone(utc).date().replace(day=1) if first_ev else last_m
    # the invoice's share (reconcile --allocate) of each allocated month, beside the measured cost
    alloc = allocations(con, customer, first_m, add_months(last_m, 1) - dt.timedelta(days=1))
    months = []
    for i in range(12):
        m = add_months(first_m, i)
        if m < data_from:
            months.append(
                {
                    "month": m.strftime("%Y-%m"),
                    "cost_usd": None,
                    "measured_cost_usd": None,
                    "allocated_usd": None,
                    "llm_calls": None,
                    "active_users": None,
                    "partial": None,
                }
            )
            continue
        measured, n, u = got.get(m, (Decimal(0), 0, 0))
        a = alloc.get(m)  # None: the month was not reconciled to an invoice
        c = measured if a is None else measured + a
        # a month the ledger covers only in part (its first month, or the current one)
        partial = first_ev.astimezone(utc).date() > m or last_ev.astimezone(
            utc
        ).date() < add_months(m, 1) - dt.timedelta(days=1)
        months.append(
            {
                "month": m.strftime("%Y-%m"),
                "cost_usd": c,
                "measured_cost_usd": measured,
                "allocated_usd": a,
                "llm_calls": n,
                "active_users": u,
                "partial": partial,
            }
        )
    idx = [i for i, r in enumerate(months) if r["cost_usd"] is not None]
    # fit on whole months: a 1-day current month is not a collapse in usage
    idx = [i for i in idx if not months[i]["partial"]] or idx
    seen = [months[i] for i in idx]
    users = [float(r["active_users"]) for r in seen]
    cpu = [float(r["cost_usd"]) / r["active_users"] if r["active_users"] else 0.0 for r in seen]
    projection = []
    if seen:
        (ua, ub), (ca, cb) = _fit(idx, users), _fit(idx, cpu)
        for k in range(12):
            x = 12 + k  # month positions: 0..11 are the twelve shown
            u = max(0.0, ua + ub * x)
            c = max(0.0, ca + cb * x)
            projection.append(
                {
                    "month": add_months(last_m, k + 1).strftime("%Y-%m"),
                    "active_users": u,
                    "cost_per_user_usd": c,
                    # the float's shortest decimal, unrounded (every digit in JSON and CSV)
                    "cost_usd": Decimal(repr(u * c)),
                }
            )
        trend = {"users_per_month": ub, "cost_per_user_per_month": cb}
    else:
        trend = {"users_per_month": 0.0, "cost_per_user_per_month": 0.0}
    actual_12 = sum((r["cost_usd"] for r in months if r["cost_usd"] is not None), Decimal(0))
    with_data = [r for r in months if r["cost_usd"] is not None]
    reconciled = [r["month"] for r in with_data if r["allocated_usd"] is not None]
    allocated = sum((r["allocated_usd"] or Decimal(0) for r in with_data), Decimal(0))
    next_12 = sum((p["cost_usd"] for p in projection), Decimal(0))
    mean_next = next_12 / 12 if projection else Decimal(0)
    rec = Decimal(math.ceil(mean_next * Decimal(str(1 + headroom))))
    months_in_window = win.months()
    return {
        "customer_id": customer,
        "window": win.stated(),
        "cost_usd": actual_12,
        **billed_figures(actual_12, mrr, months_in_window, overage_billed(con, win).get(customer)),
        "cost_basis": cost_basis(len(reconciled), len(with_data)),
        "measured_cost_usd": actual_12 - allocated,
        "allocated_usd": allocated,
        "reconciled_months": reconciled,
        "name": name,
        "tier": tier,
        "segment": segment,
        "mrr_usd": mrr,
        "seats": seats,
        "signup_date": signup,
        "contracted_pool_usd": pool,
        "months": months,
        "actual_12_months_usd": actual_12,
        "months_fitted": len(seen),
        "trend": trend,
        "projection": projection,
        "projected_next_12_months_usd": next_12,
        "headroom": headroom,
        "recommended_pool_usd": rec,
        "recommended_pool_note": (
            f"mean projected month {mean_next.quantize(CENT)} × {1 + headroom:g}, rounded up"
            + (
                f"; costs {cost_basis(len(reconciled), len(with_data))}: measured + the "
                f"invoice's share (reconcile --allocate) in {', '.join(reconciled)}"
                if reconciled
                else ""
            )
        ),
    }


def _basis_note(rep: dict[str, Any]) -> str:
    """What the costs on the page are: the ledger's prices, or reconciled to the invoice."""
    from tailguard.money import format_usd

    basis = rep.get("cost_basis", "measured")
    if basis == "measured":
        return "Costs: measured (the ledger's prices; no invoice allocation in these months)."
    months = ", ".join(rep["reconciled_months"])
    return (
        f"Costs: {basis} — measured {format_usd(rep['measured_cost_usd'])} + "
        f"{format_usd(rep['allocated_usd'])} of the invoice's unattributed remainder "
        f"(reconcile --allocate; months {months})."
    )


def html(rep: dict[str, Any]) -> str:
    """A printable one-page HTML renewal brief with an inline SVG chart of the twelve months."""
    e = _html.escape
    vals = [float(r["cost_usd"] or 0) for r in rep["months"]]
    top = max([*vals, float(rep["contracted_pool_usd"] or 0), 1e-9])
    w, h, bw = 600, 200, 600 / 12
    bars = []
    for i, (r, v) in enumerate(zip(rep["months"], vals, strict=True)):
        bh = v / top * (h - 30)
        fill = "#bbb" if r["cost_usd"] is None else "#2b6cb0"
        bars.append(
            f'<rect x="{i * bw + 4:.1f}" y="{h - 20 - bh:.1f}" width="{bw - 8:.1f}" '
            f'height="{bh:.1f}" fill="{fill}"><title>{e(r["month"])}: ${v:,.2f}</title></rect>'
            f'<text x="{i * bw + bw / 2:.1f}" y="{h - 5}" font-size="10" '
            f'text-anchor="middle">{e(r["month"][2:])}</text>'
        )
    if rep["contracted_pool_usd"]:
        y = h - 20 - float(rep["contracted_pool_usd"]) / top * (h - 30)
        bars.append(
            f'<line x1="0" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c53030" '
            f'stroke-dasharray="4"/><text x="{w - 4}" y="{y - 3:.1f}" font-size="10" '
            f'text-anchor="end" fill="#c53030">contracted pool</text>'
        )

    def money(v: Any) -> str:
        from tailguard.money import format_usd

        return format_usd(v)

    rows = "".join(
        f"<tr><td>{e(r['month'])}</td><td>{money(r['cost_usd'])}</td>"
        f"<td>{'—' if r['active_users'] is None else r['active_users']}</td></tr>"
        for r in rep["months"]
    )

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Renewal brief: {e(str(rep["name"] or rep["customer_id"]))}</title>
<style>
body {{ font: 13px/1.4 system-ui, sans-serif; max-width: 720px; margin: 24px auto; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} .sub {{ color: #666; margin-bottom: 16px; }}
.kpi {{ display: inline-block; margin: 0 24px 12px 0; }}
.kpi b {{ display: block; font-size: 18px; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd;
padding: 2px 6px; text-align: right; }} td:first-child, th:first-child {{ text-align: left; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>Renewal brief: {e(str(rep["name"] or rep["customer_id"]))}</h1>
<div class="sub">{e(rep["customer_id"])} · tier {e(str(rep["tier"]))} · segment
{e(str(rep["segment"]))} · {rep["seats"] or "—"} seats · MRR {money(rep["mrr_usd"])} ·
window {rep["window"]["start"]} .. {rep["window"]["end"]}</div>
<div class="kpi">Contracted pool (month)<b>{money(rep["contracted_pool_usd"])}</b></div>
<div class="kpi">Actual, last 12 months<b>{money(rep["actual_12_months_usd"])}</b></div>
<div class="kpi">Projected, next 12 months<b>{money(rep["projected_next_12_months_usd"])}</b></div>
<div class="kpi">Recommended pool (month)<b>{money(rep["recommended_pool_usd"])}</b></div>
<svg width="{w}" height="{h}" role="img" aria-label="monthly consumption">{"".join(bars)}</svg>
<p>{e(_basis_note(rep))}</p>
<p>Projection: active users {rep["trend"]["users_per_month"]:+g} a month (seat growth) ×
cost per user {rep["trend"]["cost_per_user_per_month"]:+g} $ a month (adoption), least squares over
{rep["months_fitted"]} whole months. Recommended pool: {e(rep["recommended_pool_note"])}.</p>
<table><tr><th>month</th><th>consumption</th><th>active users</th></tr>{rows}</table>
</body></html>
"""
