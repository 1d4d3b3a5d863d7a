"""7. ``top_feature_concentration``: the top feature's share of spend next to its share of calls."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.common import kpi, metric, pct
from tailguard.analytics.kpis.tables import source_sql

if TYPE_CHECKING:
    from tailguard.analytics.kpis.tables import PanelTables


#: spend and LLM calls per feature (``tables.source_sql``: the roll-up or the events)
FEATURE_SQL = """
SELECT coalesce(feature, '(none)') AS feature, coalesce(sum(cost_usd), 0) AS cost,
  sum(CASE WHEN kind = 'llm_call' THEN {requests} ELSE 0 END) AS calls
FROM {src} WHERE {where} AND kind <> 'guard'
GROUP BY 1
"""


def kpi_feature(t: PanelTables) -> dict[str, Any]:
    """The top feature's share of spend next to its share of LLM calls."""
    feats = t.ctx.execute(*source_sql(FEATURE_SQL, t.ctx, t.period.window)).fetchall()
    total = sum((f[1] for f in feats), Decimal(0))
    calls = sum(int(f[2]) for f in feats)
    rows = sorted(
        (
            {
                "feature": f,
                "cost_usd": c,
                "spend_share_pct": pct(c, total),
                "usage_share_pct": pct(n, calls),
            }
            for f, c, n in feats
        ),
        key=lambda r: (-r["cost_usd"], r["feature"]),
    )
    if not rows or not total:
        st, v = "no_data", None
    else:
        top = rows[0]
        v = top["spend_share_pct"]
        usage = top["usage_share_pct"] or 0
        st = "ok" if v <= 50 else ("act" if v >= 3 * usage else "watch")
    return kpi(
        "top_feature_concentration",
        "Top-feature concentration",
        [
            metric(
                "top_feature_spend_share",
                "Top feature's share of spend (next to its share of calls)",
                v,
                "%",
                [0, 50],
                st,
                top_feature=rows[0]["feature"] if rows else None,
                features=rows[:10],
            )
        ],
    )
