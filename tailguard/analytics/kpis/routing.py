"""5. ``overage_routing_rate`` and 6. ``soft_cap_degradation_rate``: per tier, how often the guard
routed traffic at the cap (the package docstring has the bands and the three-day alert).

A customer with events but no row in the customers table is in the tier ``unknown`` (never left
out): with a policy it is judged by the pattern the guard applied to it (the policy's
``default_tier``'s); without one its row counts its customers, calls, spend, denials, overages and
degraded calls, and says ``unknown`` (no pattern, no rate, no band)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.common import kpi, metric, pct, worst
from tailguard.analytics.kpis.tables import day_number

if TYPE_CHECKING:
    from tailguard.analytics.kpis.tables import PanelTables
    from tailguard.guard.policy import Policy

DEFAULT_PATTERN = {
    "free": "hard_cap",
    "pro": "soft_cap_degrade",
    "team": "payg",
    "enterprise": "payg",
    "custom": "payg",
}


@dataclass(frozen=True)
class RateBand:
    """The eight-KPI framework §06's healthy band for one overage pattern, in %."""

    low: float
    high: float
    alarm: float
    measures: str


RATE_BANDS: dict[str, RateBand] = {
    "hard_cap": RateBand(5, 15, 25, "active customers denied at the hard limit"),
    "soft_cap_degrade": RateBand(10, 20, 30, "LLM calls degraded to the budget model"),
    "payg": RateBand(5, 15, 25, "active customers with a pay-as-you-go overage"),
}


FIRSTS_SQL = """
SELECT coalesce(c.tier, 'unknown') AS tier, f.customer_id, f.first_active, f.first_capped,
  f.first_overage
FROM (
  SELECT customer_id,
    min(CASE WHEN routed > 0 THEN dn END) AS first_active,
    min(CASE WHEN capped > 0 THEN dn END) AS first_capped,
    min(CASE WHEN overage > 0 THEN dn END) AS first_overage
  FROM {days} GROUP BY 1
) f LEFT JOIN customers c ON f.customer_id = c.customer_id
WHERE f.first_active IS NOT NULL
"""

TRAFFIC_SQL = """
SELECT coalesce(c.tier, 'unknown') AS tier, d.dn, sum(d.calls), sum(d.degraded), sum(d.cost)
FROM {days} d LEFT JOIN customers c ON d.customer_id = c.customer_id
GROUP BY 1, 2
"""


def tier_pattern(tier: str, policy: Policy | None) -> tuple[str | None, str]:
    """The overage pattern of ``tier`` and where it comes from: ``policy`` (the tier's
    ``overage``), ``policy default_tier`` (a tier the policy does not name, and the customers
    without a customers row: the guard resolves both to the policy's ``default_tier``,
    ``Policy.limits_for``), ``framework`` (no policy: the eight-KPI framework's default for a
    known tier), or ``unknown`` (no policy and no customers row: no pattern, None)."""
    if policy is not None:
        if tier in policy.tiers:
            return policy.tiers[tier].get("overage", "hard_cap"), "policy"
        default = policy.tiers[policy.settings.default_tier]
        return default.get("overage", "hard_cap"), "policy default_tier"
    if tier in DEFAULT_PATTERN:
        return DEFAULT_PATTERN[tier], "framework"
    return None, "unknown"


def _rate_status(pattern: str, v: float | None) -> str:
    if v is None:
        return "no_data"
    b = RATE_BANDS[pattern]
    if v > b.alarm:
        return "act"
    return "ok" if b.low <= v <= b.high else "watch"


def routing_rows(t: PanelTables, policy: Policy | None) -> list[dict[str, Any]]:
    """Per tier: its overage pattern, the routing rate for the period, and the last three days.

    The customer-share rates (hard_cap, payg) are month-to-date on each of the three days (a
    customer capped on the 3rd stays capped: a per-day share would fall to ~0 by design); the
    degraded-traffic share is that day's calls. Reads the customer × day table.
    """
    con, p = t.ctx, t.period
    days = t.require("days")
    firsts: dict[str, list[tuple[Any, Any, Any]]] = {}
    for tier, _cid, fa, fc, fo in con.execute(FIRSTS_SQL.format(days=days)).fetchall():
        firsts.setdefault(tier, []).append((fa, fc, fo))
    traffic: dict[str, dict[int, tuple[int, int, Decimal]]] = {}
    for tier, dn, calls, deg, spend in con.execute(TRAFFIC_SQL.format(days=days)).fetchall():
        traffic.setdefault(tier, {})[int(dn)] = (int(calls), int(deg), spend or Decimal(0))

    def rate(pattern: str, tier: str, day: dt.date | None) -> float | None:
        """The period's rate (``day`` None), or that day's (month to date for customer shares)."""
        if pattern == "soft_cap_degrade":
            tr = traffic.get(tier, {})
            keys = [day_number(day)] if day is not None else list(tr)
            calls = sum(tr[d][0] for d in keys if d in tr)
            return pct(sum(tr[d][1] for d in keys if d in tr), calls)
        col = 1 if pattern == "hard_cap" else 2
        upto = day_number(day) + 1 if day is not None else day_number(p.as_of) + 1
        fs = firsts.get(tier, [])
        active = sum(1 for f in fs if f[0] < upto)
        return pct(sum(1 for f in fs if f[col] is not None and f[col] < upto), active)

    out = []
    for tier in sorted(firsts):
        pattern, source = tier_pattern(tier, policy)
        tr = traffic.get(tier, {})
        counts = {
            "spend_usd": sum((x[2] for x in tr.values()), Decimal(0)),
            "active_customers": len(firsts.get(tier, [])),
            "llm_calls": sum(x[0] for x in tr.values()),
        }
        if pattern is None:
            # customers without a customers row and no policy to say what the guard applied to
            # them: counted and shown, never dropped; no pattern, so no rate and no band
            fs = firsts[tier]
            out.append(
                {
                    "tier": tier,
                    "pattern": None,
                    "pattern_source": source,
                    "measures": "customers without a customers row (no policy: pattern unknown)",
                    "rate_pct": None,
                    "band": None,
                    "alarm_above": None,
                    "status": "unknown",
                    **counts,
                    "denied_customers": sum(1 for f in fs if f[1] is not None),
                    "overage_customers": sum(1 for f in fs if f[2] is not None),
                    "degraded_calls": sum(x[1] for x in tr.values()),
                    "last_3_days": [],
                    "alert_3_days": False,
                }
            )
            continue
        v = rate(pattern, tier, None)
        last3 = []
        for i in (2, 1, 0):
            day = p.as_of - dt.timedelta(days=i)
            if day < p.start.date():
                continue
            dv = rate(pattern, tier, day)
            last3.append({"day": day, "rate_pct": dv, "status": _rate_status(pattern, dv)})
        b = RATE_BANDS[pattern]
        out.append(
            {
                "tier": tier,
                "pattern": pattern,
                "pattern_source": source,
                "measures": b.measures,
                "rate_pct": v,
                "band": [b.low, b.high],
                "alarm_above": b.alarm,
                "status": _rate_status(pattern, v),
                **counts,
                "last_3_days": last3,
                # the eight-KPI framework's alert: "a free-tier hard-cap rate above 25% for three
                # consecutive days is a tier-design problem"; a rate below the band (an
                # over-sized pool, a soft cap doing no work) is a sizing note: watch, never act
                "alert_3_days": len(last3) == 3
                and all(x["rate_pct"] is not None and x["rate_pct"] > b.alarm for x in last3),
            }
        )
    return out


def kpi_routing(rows: list[dict[str, Any]], degrade: bool) -> dict[str, Any]:
    sel = [r for r in rows if (r["pattern"] == "soft_cap_degrade") == degrade]
    if degrade:
        id_, title = "soft_cap_degradation_rate", "Soft-cap degradation rate"
        b = RATE_BANDS["soft_cap_degrade"]
        band: Any = [b.low, b.high]
    else:
        id_, title = "overage_routing_rate", "Overage routing rate by tier"
        band = {r["tier"]: r["band"] for r in sel}
    st = worst([r["status"] for r in sel]) if sel else "no_data"
    if any(r["alert_3_days"] for r in sel):
        st = "act"
    m = metric(
        id_,
        title,
        {r["tier"]: r["rate_pct"] for r in sel},
        "%",
        band,
        st,
        tiers=sel,
        alerts=[r["tier"] for r in sel if r["alert_3_days"]],
    )
    return kpi(id_, title, [m])
