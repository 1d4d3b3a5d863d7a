"""8. ``cost_to_revenue``: product-level cost / revenue, against the cost-allocation guide's segment
thresholds weighted by each segment's revenue (``tailguard.analytics.margins``)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.common import kpi, metric, pct
from tailguard.analytics.margins import THRESHOLDS

if TYPE_CHECKING:
    from tailguard.analytics.kpis.tables import PanelTables


def kpi_cost_to_revenue(t: PanelTables) -> dict[str, Any]:
    """Product-level cost / revenue against the segments' revenue-weighted thresholds."""
    rows: list[dict[str, Any]] = t.require("customers")
    cost = sum((r["cost_usd"] for r in rows), Decimal(0))
    rev = sum((r["revenue_usd"] or Decimal(0) for r in rows), Decimal(0))
    by_seg: dict[str, Decimal] = {}
    for r in rows:
        if r["segment"] in THRESHOLDS and r["revenue_usd"]:
            by_seg[r["segment"]] = by_seg.get(r["segment"], Decimal(0)) + r["revenue_usd"]
    seg_rev = sum(by_seg.values(), Decimal(0))
    v = pct(cost, rev)
    if v is None or not seg_rev:
        return kpi(
            "cost_to_revenue",
            "Cost-to-revenue at product level",
            [metric("cost_pct_of_revenue", "Cost as % of revenue", v, "%", None, "no_data")],
        )
    target = float(sum(by_seg[s] * THRESHOLDS[s][0] for s in by_seg) / seg_rev)
    alert = float(sum(by_seg[s] * THRESHOLDS[s][1] for s in by_seg) / seg_rev)
    st = "ok" if v < target else ("act" if v > alert else "watch")
    return kpi(
        "cost_to_revenue",
        "Cost-to-revenue at product level",
        [
            metric(
                "cost_pct_of_revenue",
                "Cost as % of revenue (target: the cost-allocation guide, revenue-weighted)",
                v,
                "%",
                [0, target],
                st,
                alert_above=alert,
                cost_usd=cost,
                revenue_usd=rev,
            )
        ],
    )
