"""3. ``per_tenant_cost``: the top 20 customers' share, pool utilization, top-user
concentration within a customer, and cost to ARR (the package docstring has the bands)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.common import kpi, metric, pct

if TYPE_CHECKING:
    from tailguard.analytics.kpis.tables import PanelTables

MIN_USERS_CONCENTRATION = 20

#: per customer with at least ``?`` spending users, the share of its spend in its top 5% of
#: users. The customers are picked first (a GROUP BY), so the window functions rank only their
#: users: most customers have a handful of users and are never ranked
CONCENTRATION_SQL = """
WITH big AS (
  SELECT customer_id FROM {users} WHERE cost > 0 GROUP BY customer_id HAVING count(*) >= ?
)
SELECT customer_id, n, sum(CASE WHEN rn <= k THEN cost ELSE 0 END) / sum(cost) AS share
FROM (
  SELECT u.customer_id, u.cost,
    row_number() OVER (PARTITION BY u.customer_id ORDER BY u.cost DESC, u.user_id) AS rn,
    count(*) OVER (PARTITION BY u.customer_id) AS n,
    CAST(floor((count(*) OVER (PARTITION BY u.customer_id) + 19) / 20.0) AS INTEGER) AS k
  FROM {users} u JOIN big b ON u.customer_id = b.customer_id
  WHERE u.cost > 0
) t
GROUP BY customer_id, n
"""


def _arr_status(v: float) -> str:
    return "act" if v > 20 else ("watch" if v > 8 else "ok")


def kpi_per_tenant(t: PanelTables) -> dict[str, Any]:
    """Top-20 share, pool utilization, top-user concentration, cost to ARR (package doc)."""
    con, p, caps = t.ctx, t.period, t.caps
    rows: list[dict[str, Any]] = t.require("customers")
    # every list below is made in the rows' order (by customer id), so a stable sort on the
    # figure alone, descending, orders ties by id: the order of (-figure, id), without a key
    # tuple and a negated Decimal per row
    spending = [r for r in rows if r["cost_usd"] > 0]
    spending.sort(key=lambda r: r["cost_usd"], reverse=True)
    top = [
        {"customer_id": r["customer_id"], "tier": r["tier"], "cost_usd": r["cost_usd"]}
        for r in spending[:20]
    ]
    pooled = [r for r in spending if r["tier"] in ("team", "enterprise")]
    pooled_total = sum((r["cost_usd"] for r in pooled), Decimal(0))
    share = pct(sum((r["cost_usd"] for r in pooled[:20]), Decimal(0)), pooled_total)
    metrics = [
        metric(
            "top20_share",
            "Top 20 team + enterprise customers' share of those tiers' spend",
            share,
            "%",
            [60, 80],
            "no_data" if share is None else ("ok" if 60 <= share <= 80 else "watch"),
            top_customers=top,
            customers=len(pooled),
        )
    ]
    pools = {
        cid: pool
        for cid, pool in con.execute(
            "SELECT customer_id, contracted_pool_usd FROM customers "
            "WHERE tier IN ('team', 'enterprise')"
        ).fetchall()
    }
    util = []
    for r in rows:
        if r["customer_id"] not in pools:
            continue
        pool = pools[r["customer_id"]]
        cap = caps.get(r["customer_id"])
        if not pool and cap is not None and cap.unit == "usd":
            pool = cap.hard
        if not pool:
            continue
        u = pct(r["cost_usd"], pool * p.fraction)
        assert u is not None
        flag = "upgrade" if u > 90 else ("right_size" if u < 30 else None)
        util.append(
            {
                "customer_id": r["customer_id"],
                "tier": r["tier"],
                "pool_usd": pool,
                "utilization_pct": u,
                "candidate": flag,
            }
        )
    util.sort(key=lambda x: x["utilization_pct"], reverse=True)
    up = [x for x in util if x["candidate"] == "upgrade"]
    down = [x for x in util if x["candidate"] == "right_size"]
    metrics.append(
        metric(
            "pool_utilization",
            "Pool utilization (prorated): upgrade > 90%, right-size < 30%",
            {
                "upgrade_candidates": len(up),
                "right_size_candidates": len(down),
                "pooled_customers": len(util),
            },
            "customers",
            [30, 90],
            "no_data" if not util else ("watch" if up or down else "ok"),
            upgrade=up,
            right_size=down,
        )
    )
    conc = [
        {"customer_id": c, "users": int(n), "top5pct_share": float(s) * 100}
        for c, n, s in con.execute(
            CONCENTRATION_SQL.format(users=t.require("users")), [MIN_USERS_CONCENTRATION]
        ).fetchall()
    ]
    flagged = sorted(
        (c for c in conc if c["top5pct_share"] > 70),
        key=lambda c: (-c["top5pct_share"], c["customer_id"]),
    )
    metrics.append(
        metric(
            "top_user_concentration",
            "Customers whose top 5% of users hold > 70% of spend",
            len(flagged),
            "customers",
            [0, 70],
            "no_data" if not conc else ("watch" if flagged else "ok"),
            judged=len(conc),
            min_users=MIN_USERS_CONCENTRATION,
            flagged=flagged,
        )
    )
    arr = [
        {
            "customer_id": r["customer_id"],
            "tier": r["tier"],
            "cost_to_arr_pct": r["cost_pct_of_mrr"],
            "status": _arr_status(r["cost_pct_of_mrr"]),
        }
        for r in rows
        if r["cost_pct_of_mrr"] is not None
    ]
    arr.sort(key=lambda x: x["cost_to_arr_pct"], reverse=True)
    over8 = [a for a in arr if a["cost_to_arr_pct"] > 8]
    over12 = [a for a in arr if a["cost_to_arr_pct"] > 12]
    over20 = [a for a in arr if a["cost_to_arr_pct"] > 20]
    med = None
    if arr:
        vals = sorted(a["cost_to_arr_pct"] for a in arr)
        n = len(vals)
        med = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
    # the figure is the one the status judges: the dearest paying customer's (the status is the
    # worst customer's, and ``_arr_status`` only rises with the figure); the median beside it
    dearest = arr[0] if arr else None
    metrics.append(
        metric(
            "cost_to_arr",
            "Dearest customer's cost as % of its ARR: healthy 3-8%, > 12% off margin, "
            "> 20% revisit at renewal (median_pct: the median customer's)",
            dearest["cost_to_arr_pct"] if dearest else None,
            "%",
            [3, 8],
            dearest["status"] if dearest else "no_data",
            dearest_customer=dearest["customer_id"] if dearest else None,
            median_pct=med,
            median_status=_arr_status(med) if med is not None else "no_data",
            customers=len(arr),
            over_8=len(over8),
            over_12=len(over12),
            over_20=len(over20),
            revisit_at_renewal=over20[:20],
            funding_off_margin=over12[:20],
        )
    )
    return kpi("per_tenant_cost", "Per-tenant cost", metrics)
