"""The demo's headline: what the aggregate hides (the per-customer economics essay, the
cost-concentration article).

Computed from the per-customer rows (already aggregated, one per customer), so it is cheap.
Quantiles use linear interpolation between order statistics (numpy's default, the same as
DuckDB's ``quantile_cont``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np


def top_share(costs: list[Decimal], pct: float) -> float | None:
    """Share of the total held by the top ``pct``% of customers (at least one customer).

    The top k% of n customers is ceil(n × k / 100) customers.
    """
    total = sum(costs, Decimal(0))
    if not costs or total <= 0:
        return None
    k = max(1, math.ceil(len(costs) * pct / 100))
    top = sum(sorted(costs, reverse=True)[:k], Decimal(0))
    return float(top / total)


def headline(
    rows: Sequence[dict[str, Any]],
    *,
    underwater: int = 10,
    overage: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """The demo's "what the average hides" figures over ``customer_rows`` output.

    ``overage``: each customer's pay-as-you-go overage billed in the rows' window
    (``margins.overage_billed``). A customer who pays for what it uses past its budget is
    judged on its plan fee plus that overage, as ``margins`` judges it (``billed_rows``):
    without it the headline called a payg customer underwater that ``margins`` shows in profit.
    """
    from tailguard.analytics.margins import billed_rows

    if overage:
        rows = billed_rows(rows, overage)
    costs = [r["cost_usd"] for r in rows]
    total = sum(costs, Decimal(0))
    wins = sum(r["successful_tasks"] for r in rows)
    cpst = [
        float(r["cost_per_successful_task"])
        for r in rows
        if r["cost_per_successful_task"] is not None
    ]
    dist = {}
    if cpst:
        arr = np.asarray(cpst)
        for name, q in (("median", 50), ("p95", 95), ("p99", 99)):
            dist[name] = float(np.percentile(arr, q))
    # "who pays us $40 and costs us $4,000": underwater means a paying customer whose cost
    # exceeds its revenue; a free customer always has revenue 0, so it is reported apart
    paying = [r for r in rows if r["revenue_usd"] is not None and r["revenue_usd"] > 0]
    free = [r for r in rows if r["mrr_usd"] is not None and r["mrr_usd"] == 0]
    under_all = [r for r in paying if r["gross_margin_usd"] < 0]
    under = sorted(under_all, key=lambda r: (r["gross_margin_usd"], r["customer_id"]))[:underwater]
    # the window the rows are about (every row of customer_rows carries the same one)
    first = rows[0] if rows else {}
    return {
        "window": {"start": first.get("window_start"), "end": first.get("window_end")},
        "customers": len(rows),
        "total_cost_usd": total,
        "successful_tasks": wins,
        # every digit (Decimal's 28 significant digits): only display rounds
        "aggregate_cost_per_successful_task": total / wins if wins else None,
        "per_customer_cost_per_successful_task": dist,
        "top_1pct_share": top_share(costs, 1),
        "top_0_1pct_share": top_share(costs, 0.1),
        "unpriced_calls": sum(r["unpriced_calls"] for r in rows),
        "paying_customers": len(paying),
        "underwater_customers": len(under_all),
        "free_customers": len(free),
        "free_customers_cost_usd": sum((r["cost_usd"] for r in free), Decimal(0)),
        "most_underwater": [
            {
                "customer_id": r["customer_id"],
                "tier": r["tier"],
                "cost_usd": r["cost_usd"],
                "revenue_usd": r["revenue_usd"],
                "overage_usd": r.get("overage_usd", Decimal(0)),
                "gross_margin_usd": r["gross_margin_usd"],
                "cost_pct_of_mrr": r["cost_pct_of_mrr"],
            }
            for r in under
        ],
    }
