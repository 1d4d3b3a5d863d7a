"""2. ``per_user_cost``: the median paid user against the seat price, the p90 / p99 user against
the soft and hard caps, and the new cohort's drift (the package docstring has the bands)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.common import NO_POLICY, kpi, metric, worst

if TYPE_CHECKING:
    from tailguard.analytics.kpis.tables import PanelTables


#: the median paid user's cost as % of the seat price (``{median}``: the dialect's quantile)
SEAT_SQL = """
SELECT {median}, count(*)
FROM {users} u JOIN customers c ON u.customer_id = c.customer_id
WHERE c.tier <> 'free' AND c.mrr_usd > 0 AND c.seats > 0
"""

#: per tier, the p90 user against the soft cap and the p99 user against the hard cap
CAPS_SQL = """
SELECT k.tier, count(*) AS users, {p90} AS p90_soft, {p99} AS p99_hard
FROM {users} u JOIN {caps} k ON u.customer_id = k.customer_id
GROUP BY k.tier ORDER BY k.tier
"""

#: active users and their spend by their customer's signup cohort (``cohort_drift``): new
#: (signed up after the first cut-off), year-old (after the second, up to the first), older, or
#: no signup date (a customer without one, or without a customers row: counted, not compared)
COHORT_SQL = """
SELECT CASE WHEN c.signup_date IS NULL THEN 'no_signup'
    WHEN c.signup_date > ? THEN 'new'
    WHEN c.signup_date > ? THEN 'year_old'
    ELSE 'older' END AS cohort,
  count(*), sum(u.cost)
FROM {users} u LEFT JOIN customers c ON u.customer_id = c.customer_id
GROUP BY 1
"""


def _seat_status(v: float | None) -> str:
    if v is None:
        return "no_data"
    if v > 3:
        return "act"
    return "ok" if 0.5 <= v <= 1.5 else "watch"


def kpi_per_user(t: PanelTables) -> dict[str, Any]:
    """Seat price, the p90 / p99 user against the caps, the new cohort's drift (package doc)."""
    con, caps = t.ctx, t.caps
    utab = t.require("users")
    seat_pct = "CAST(u.cost AS DOUBLE) / (CAST(c.mrr_usd AS DOUBLE) / c.seats * ?) * 100"
    seat = con.execute(
        SEAT_SQL.format(median=con.quantile(seat_pct, 0.5), users=utab), [float(t.months)]
    ).fetchall()[0]
    seat_v = seat[0] if seat and seat[0] is not None else None
    metrics = [
        metric(
            "median_paid_user_seat_pct",
            "Median paid user: cost as % of seat price",
            seat_v,
            "%",
            [0.5, 1.5],
            _seat_status(seat_v),
            users=seat[1] if seat else 0,
        )
    ]
    if caps:
        used = (
            "CASE WHEN k.unit = 'usd' THEN CAST(u.cost AS DOUBLE) ELSE CAST(u.tokens AS DOUBLE) END"
        )
        sql = CAPS_SQL.format(
            p90=con.quantile(f"{used} / k.user_soft * 100", 0.9),
            p99=con.quantile(f"{used} / k.user_hard * 100", 0.99),
            users=utab,
            caps=t.require("caps"),
        )
        per_tier = con.execute(sql).fetchall()
        pattern = {c.tier: c.overage for c in caps.values()}
        soft_rows, hard_rows = [], []
        for tier, users, p90, p99 in per_tier:
            s90 = "act" if p90 > 100 else ("ok" if 60 <= p90 <= 80 else "watch")
            s99 = "ok" if p99 <= 100 or pattern[tier] == "payg" else "act"
            soft_rows.append(
                {"tier": tier, "users": users, "p90_pct_of_soft_cap": p90, "status": s90}
            )
            hard_rows.append(
                {
                    "tier": tier,
                    "users": users,
                    "p99_pct_of_hard_cap": p99,
                    "overage": pattern[tier],
                    "status": s99,
                }
            )
        metrics.append(
            metric(
                "top_decile_vs_soft_cap",
                "p90 user as % of the soft cap (per tier)",
                {r["tier"]: r["p90_pct_of_soft_cap"] for r in soft_rows},
                "%",
                [60, 80],
                worst([r["status"] for r in soft_rows]),
                tiers=soft_rows,
            )
        )
        metrics.append(
            metric(
                "top_percentile_vs_hard_cap",
                "p99 user as % of the hard cap (is the cap working?)",
                {r["tier"]: r["p99_pct_of_hard_cap"] for r in hard_rows},
                "%",
                [0, 100],
                worst([r["status"] for r in hard_rows]),
                tiers=hard_rows,
            )
        )
    else:
        for id_, title, band in (
            ("top_decile_vs_soft_cap", "p90 user as % of the soft cap", [60, 80]),
            ("top_percentile_vs_hard_cap", "p99 user as % of the hard cap", [0, 100]),
        ):
            metrics.append(metric(id_, title, None, "%", band, "unknown", note=NO_POLICY))
    metrics.append(cohort_drift(t))
    return kpi("per_user_cost", "Per-user cost", metrics)


def cohort_drift(t: PanelTables) -> dict[str, Any]:
    """``cohort_drift``: the new cohort's cost per active user against the year-old cohort's, as
    % more (the eight-KPI framework: "newer cohorts typically run 20 to 40% higher per-user cost
    than year-old cohorts"; band 20-40%, else ``watch``).

    Cohorts by the customer's ``signup_date``, counted back from ``as_of``: **new** = signed up
    in the 365 days up to ``as_of`` (after ``as_of`` - 365 days), **year-old** = in the 365 days
    before those (after ``as_of`` - 730 days, up to ``as_of`` - 365 days). Cost per user = the
    cohort's month spend / its active users (users with any event but a guard decision in the
    month). Customers
    who signed up earlier (``older_users``) and users of a customer without a signup date or
    without a customers row (``no_signup_users``) are counted, never compared: the framework
    compares against year-old cohorts, not against every older customer (the code did).

    No year-old cohort (no active user of a customer who signed up in that year), or no new
    one: value None, status ``no_data``, and ``note`` says which cohort is missing; never a
    figure made from nothing. ``returning_users`` / ``returning_cost_per_user_usd`` are the
    year-old cohort's (the keys of the old "every older customer" comparison)."""
    p = t.period
    new_after = p.as_of - dt.timedelta(days=365)
    old_after = p.as_of - dt.timedelta(days=730)
    cohorts = {
        k: (int(n), s or Decimal(0))
        for k, n, s in t.ctx.execute(
            COHORT_SQL.format(users=t.require("users")), [new_after, old_after]
        ).fetchall()
    }
    per = {k: (s / n if n else None) for k, (n, s) in cohorts.items()}
    new, ret = per.get("new"), per.get("year_old")
    drift = float((new / ret - 1) * 100) if new is not None and ret else None
    missing = [
        f"no {name} cohort (no active user of a customer who signed up {span})"
        for name, span, got in (
            ("new", f"after {new_after}", new),
            ("year-old", f"after {old_after} and by {new_after}", ret),
        )
        if got is None
    ]
    if not missing and drift is None:  # a year-old cohort whose users spent nothing
        missing = ["the year-old cohort spent nothing: no % more to take"]

    def users(k: str) -> int:
        return cohorts.get(k, (0, 0))[0]

    return metric(
        "cohort_drift",
        "New cohort (signed up < 365 days) vs the year-old cohort (365-730 days): cost per "
        "user, % more",
        drift,
        "%",
        [20, 40],
        "no_data" if drift is None else ("ok" if 20 <= drift <= 40 else "watch"),
        new_users=users("new"),
        returning_users=users("year_old"),
        new_cost_per_user_usd=new,
        returning_cost_per_user_usd=ret,
        new_cohort_signed_up_after=new_after,
        year_old_cohort_signed_up_after=old_after,
        older_users=users("older"),
        no_signup_users=users("no_signup"),
        **({"note": "; ".join(missing)} if missing else {}),
    )
