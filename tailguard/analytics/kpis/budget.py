"""4. ``tier_budget_utilization``: per budgeted customer, spend so far against the hard cap, the
projection at month end, and the day the cap was (or is projected to be) hit."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.common import NO_POLICY, kpi, metric, ordinal, worst
from tailguard.analytics.kpis.tables import EPOCH

if TYPE_CHECKING:
    from tailguard.analytics.kpis.tables import PanelTables


#: per budgeted customer: spend (or tokens) so far and the first day the running sum reached
#: the cap. The running sum (a window function, in the engine) is taken only for the customers
#: whose month so far reached their cap: spend is never negative, so a customer below it at
#: the end never reached it on a day before
BUDGET_SQL = """
WITH j AS (
  SELECT d.customer_id, d.dn, k.hard,
    CASE WHEN k.unit = 'usd' THEN d.cost ELSE d.tokens END AS v
  FROM {days} d JOIN {caps} k ON d.customer_id = k.customer_id
), tot AS (
  SELECT customer_id, sum(v) AS used, max(hard) AS hard FROM j GROUP BY customer_id
), hit AS (
  SELECT customer_id, min(CASE WHEN cum >= hard THEN dn END) AS hit_dn
  FROM (
    SELECT j.customer_id, j.dn, j.hard,
      sum(j.v) OVER (PARTITION BY j.customer_id ORDER BY j.dn) AS cum
    FROM j JOIN tot ON j.customer_id = tot.customer_id
    WHERE tot.used >= tot.hard
  ) r
  GROUP BY customer_id
)
SELECT tot.customer_id, tot.used, hit.hit_dn
FROM tot LEFT JOIN hit ON tot.customer_id = hit.customer_id
"""


#: one budgeted customer's figures (``_figures``): customer id, cap, used, actual %, projected
#: %, projected amount, the hit day, the projected hit day (of the month), the status
_Fig = tuple[str, Any, Decimal, float, float, Decimal, "dt.date | None", "int | None", str]


def _figures(t: PanelTables) -> list[_Fig]:
    """Per budgeted customer (by id), the figures ``budget_rows`` shows, without the row dict
    and its message (the KPI shows 20 rows of 44,800 at the bench: ``_row`` makes those)."""
    p, caps = t.period, t.caps
    sql = BUDGET_SQL.format(days=t.require("days"), caps=t.require("caps"))
    got = {cid: (used, hit) for cid, used, hit in t.ctx.execute(sql).fetchall()}
    elapsed, month_days = p.elapsed_days, p.month_days
    none = (Decimal(0), None)
    out: list[_Fig] = []
    for cid, cap in sorted(caps.items()):
        used, hit_dn = got.get(cid, none)
        used = Decimal(used or 0)
        hit = EPOCH + dt.timedelta(days=int(hit_dn)) if hit_dn is not None else None
        pace = used / elapsed
        projected = pace * month_days
        proj_day = None
        if hit is None and pace > 0:
            k = math.ceil(cap.hard / pace)
            if k <= month_days:
                proj_day = max(k, elapsed + 1)
        # ``pct``: the hard cap is > 0 (``resolve_caps`` leaves out a tier without one)
        hard = float(cap.hard)
        actual_pct = float(used) / hard * 100
        projected_pct = float(projected) / hard * 100
        if hit is not None or proj_day is not None:
            status = "act"
        else:
            status = "watch" if projected >= cap.soft else "ok"
        out.append((cid, cap, used, actual_pct, projected_pct, projected, hit, proj_day, status))
    return out


def _row(f: _Fig, p: Any) -> dict[str, Any]:
    """One customer's row of ``budget_rows`` from its figures."""
    cid, cap, used, actual_pct, projected_pct, _, hit, proj_day, status = f
    if hit is not None:
        msg = f"hit cap on the {ordinal(hit.day)}"
    elif proj_day is not None:
        msg = f"projected to hit cap on the {ordinal(proj_day)}"
    else:
        msg = f"projected at {projected_pct:.0f}% of cap at month end"
    month = p.start.date()
    return {
        "customer_id": cid,
        "tier": cap.tier,
        "unit": cap.unit,
        "cap": cap.hard,
        "used": used,
        "actual_pct": actual_pct,
        "projected_pct": projected_pct,
        "hit_date": hit,
        "projected_hit_date": month.replace(day=proj_day) if proj_day else None,
        "message": msg,
        "status": status,
    }


def budget_rows(t: PanelTables) -> list[dict[str, Any]]:
    """Per budgeted customer: used, actual and projected %, the hit or projected-hit date.
    Reads the customer × day table and the caps."""
    return [_row(f, t.period) for f in _figures(t)]


def kpi_tier_budget(t: PanelTables) -> dict[str, Any]:
    """Per tier, the median customer's actual and projected use of its cap (package doc)."""
    p, caps = t.period, t.caps
    if not caps:
        return kpi(
            "tier_budget_utilization",
            "Tier-budget utilization",
            [
                metric(
                    "median_projected_pct",
                    "Median customer: projected % of cap at month end",
                    None,
                    "%",
                    None,
                    "unknown",
                    note=NO_POLICY,
                )
            ],
        )
    figs = _figures(t)
    by_tier: dict[str, list[_Fig]] = {}
    for f in figs:
        by_tier.setdefault(f[1].tier, []).append(f)
    tiers = []
    for tier in sorted(by_tier):
        tr = by_tier[tier]
        soft = min(c.soft_threshold for c in caps.values() if c.tier == tier) * 100
        med_a = _median([f[3] for f in tr])
        med_p = _median([f[4] for f in tr])
        st = "act" if med_p >= 100 else ("watch" if med_p >= float(soft) else "ok")
        tiers.append(
            {
                "tier": tier,
                "customers": len(tr),
                "median_actual_pct": med_a,
                "median_projected_pct": med_p,
                "soft_threshold_pct": float(soft),
                "hit": sum(1 for f in tr if f[6]),
                "projected_to_hit": sum(1 for f in tr if f[7]),
                "status": st,
            }
        )
    risky = [f for f in figs if f[8] != "ok"]
    risky.sort(key=lambda f: (-f[4], f[0]))
    at_risk = [_row(f, p) for f in risky[:20]]
    return kpi(
        "tier_budget_utilization",
        "Tier-budget utilization, actual and projected",
        [
            metric(
                "median_projected_pct",
                "Median customer: projected % of cap at month end (per tier)",
                {t["tier"]: t["median_projected_pct"] for t in tiers},
                "%",
                "< soft threshold",
                worst([t["status"] for t in tiers]),
                tiers=tiers,
                days_elapsed=p.elapsed_days,
                days_in_month=p.month_days,
                at_risk=at_risk,
                at_risk_count=len(risky),
            )
        ],
    )


def _median(v: list[float]) -> float:
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
