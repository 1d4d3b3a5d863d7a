"""The eight-KPI framework's cost panel: one value, its healthy band and a status for each.

The package: ``tables`` (the month, the caps, and ``PanelTables``: the shared tables built once
and passed to every KPI), one module per KPI group (``per_task``, ``per_user``, ``per_tenant``,
``budget``, ``routing``, ``feature``, ``revenue``), ``common`` (statuses and shapes), and
``kpis()`` here, which builds the tables and assembles the panel.

The eight KPIs (ids in brackets), each a dict ``{id, title, value, unit, band, status, metrics}``
whose ``value``/``band`` are its lead metric's and whose ``status`` is the worst of its metrics'
(``act`` > ``watch`` > ``ok``; ``unknown`` / ``no_data`` only when no metric could be judged):

1. ``per_task_cost``: effective tokens per task / per invocation by workload class, from
   ``tailguard.analytics.workload`` (its bands and statuses, unchanged).
2. ``per_user_cost``:
   - ``median_paid_user_seat_pct``: the median active user of a paying customer (tier not free,
     MRR > 0, seats > 0), cost as % of the seat price (MRR / seats × the months elapsed). Band
     0.5-1.5%; ``act`` above 3% (the seat funds the feature off margin); ``watch`` above 1.5% or
     below 0.5%.
   - ``top_decile_vs_soft_cap`` (per tier): the p90 active user's spend as % of their soft cap.
     A user's cap is their customer's budget ÷ seats (a pooled budget shared evenly; one seat:
     the whole budget), in the budget's unit (dollars, or input+output tokens for a token
     budget). Band 60-80%; ``act`` above 100%; ``watch`` outside the band.
   - ``top_percentile_vs_hard_cap`` (per tier): the p99 user against the hard cap. ``ok`` at or
     below 100%; above it ``act`` for hard_cap / soft_cap_degrade tiers (the cap is not holding)
     and ``ok`` for payg tiers (spend past the cap is metered by design).
   - ``cohort_drift``: mean cost per active user of customers who signed up in the 365 days
     up to ``as_of`` ("new") against the year-old cohort (signed up 365-730 days before), as %
     more. Band 20-40%. Older customers and those without a signup date are counted apart;
     without a year-old (or new) cohort: ``no_data`` with a ``note``
     (``per_user.cohort_drift``).
3. ``per_tenant_cost``:
   - ``top20_share``: spend descending (the top 20 customers listed); the share of team +
     enterprise spend in the top 20 of those tiers. Band 60-80%.
   - ``pool_utilization``: team / enterprise customers, spend / (pool prorated to the days
     elapsed). Pool = ``contracted_pool_usd``, else the policy's budget. > 90%: upgrade
     candidate; < 30%: right-size candidate (both ``watch``).
   - ``top_user_concentration``: within each customer with >= 20 active users, the share of its
     spend in its top 5% of users (ceil(n / 20) users). > 70%: flagged (``watch``).
   - ``cost_to_arr``: a customer's cost / revenue (= annualised cost / ARR). Healthy 3-8%;
     ``watch`` > 8%, listed as funding off margin > 12%, ``act`` > 20% (revisit at renewal).
     The value is the dearest paying customer's, the one the status judges (the worst
     customer's status); ``median_pct`` is the median customer's. It was the median beside the
     worst status: "1.33 %, band 3-8, act" on the demo.
4. ``tier_budget_utilization`` (needs a policy; ``unknown`` without): per budgeted customer,
   spend so far / hard cap, the projection at period end from the pace so far (used / days
   elapsed × days in the month), and the date the cap was hit or is projected to be hit
   ("projected to hit cap on the 14th"). A tier's status follows its median customer's projection:
   ``act`` >= 100%, ``watch`` >= the soft threshold, else ``ok``.
5. ``overage_routing_rate`` (hard_cap and payg tiers) and 6. ``soft_cap_degradation_rate``
   (soft_cap_degrade tiers), from guard events: hard_cap = share of the tier's active customers
   denied at the hard limit (band 5-15%, ``act`` > 25%); payg = share with an ``overage`` event
   (band 5-15%, ``act`` > 25%); soft_cap_degrade = degraded calls / LLM calls (band 10-20%, ``act``
   > 30%). Below the band: ``watch``. The tier's pattern comes from the policy, else the eight-KPI
   framework's defaults (free hard_cap, pro soft_cap_degrade, team / enterprise / custom payg). The
   same rate is computed for each of the three days ending ``as_of``; ``alert_3_days`` (which makes
   the KPI ``act``) is true when all three are above the alarm level (the framework: "above 25%
   for three consecutive days is a tier-design problem"; below the band it reads as an over-sized
   pool, a ``watch``). Each tier row carries its spend (routing rates are read with it).
7. ``top_feature_concentration``: the top feature's share of spend next to its share of LLM calls.
   The eight-KPI framework names the pattern (60% of spend for 8% of usage) but no band: ``watch``
   above 50% of spend, ``act`` when also at least 3x its usage share.
8. ``cost_to_revenue``: product-level cost / revenue, against the cost-allocation guide's segment
   thresholds weighted by each segment's revenue (``tailguard.analytics.margins``).

Revenue (``cost_to_arr``, ``cost_to_revenue``) is MRR × the months elapsed plus the
pay-as-you-go overage billed in them (``margins.billed_figures``: the guard's ``overage``
events' ``amount_usd``, summed in the customer × day table as ``overage_usd``).

Heavy aggregation runs in the engine (portable SQL, CASE inside aggregates, the dialect's exact
quantile); Python only walks per-customer or per-day results. Money is Decimal from the engine;
percentages are floats (they are judged against bands, never summed), unrounded: JSON and CSV
carry every digit, a status judges the exact value, and only the terminal table rounds, for
display.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.budget import budget_rows, kpi_tier_budget
from tailguard.analytics.kpis.common import NO_POLICY, RANK, kpi, metric, ordinal, pct, worst
from tailguard.analytics.kpis.feature import kpi_feature
from tailguard.analytics.kpis.per_task import kpi_per_task, panel_workload, workload_bands
from tailguard.analytics.kpis.per_tenant import MIN_USERS_CONCENTRATION, kpi_per_tenant
from tailguard.analytics.kpis.per_user import kpi_per_user
from tailguard.analytics.kpis.revenue import kpi_cost_to_revenue
from tailguard.analytics.kpis.routing import (
    DEFAULT_PATTERN,
    RATE_BANDS,
    RateBand,
    kpi_routing,
    routing_rows,
)
from tailguard.analytics.kpis.tables import (
    Cap,
    Panel,
    PanelTables,
    build,
    caps_table,
    panel_period,
    resolve_caps,
)
from tailguard.analytics.period import Window, require_events

if TYPE_CHECKING:
    from tailguard.guard.policy import Policy

__all__ = [
    "DEFAULT_PATTERN",
    "MIN_USERS_CONCENTRATION",
    "NO_POLICY",
    "RANK",
    "RATE_BANDS",
    "Cap",
    "Panel",
    "PanelTables",
    "RateBand",
    "budget_rows",
    "build",
    "caps_table",
    "kpi",
    "kpi_cost_to_revenue",
    "kpi_feature",
    "kpi_per_task",
    "kpi_per_tenant",
    "kpi_per_user",
    "kpi_routing",
    "kpi_tier_budget",
    "kpis",
    "metric",
    "ordinal",
    "panel_period",
    "pct",
    "resolve_caps",
    "routing_rows",
    "workload_bands",
    "worst",
]


def kpis(
    ledger: Any,
    *,
    window: Window | None = None,
    period: str | None = None,
    as_of: dt.date | None = None,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """The eight-KPI panel for ``period`` (YYYY-MM) as of ``as_of`` (see the module docstring).

    ``ledger``: a ``QueryContext``, a ``Ledger`` or its directory, or an open connection.
    ``window``: another way to name the month: a window inside one calendar month judges that
    month as of the window's last day (``period`` / ``as_of`` win when given).
    """
    from tailguard.analytics.context import beside, using

    if window is not None and window.start is not None:
        period = period or window.start.strftime("%Y-%m")
        if as_of is None and window.end is not None:
            as_of = window.last_day
    with using(ledger) as ctx:
        p = panel_period(ctx, period, as_of)
        require_events(ctx, p.window)  # an empty month is not a month of zero spend
        with beside(ctx, panel_workload, p.window, policy) as workload_of:
            t = build(ctx, p, policy=policy)
            routing = routing_rows(t, policy)
            rest = [
                kpi_per_user(t),
                kpi_per_tenant(t),
                kpi_tier_budget(t),
                kpi_routing(routing, degrade=False),
                kpi_routing(routing, degrade=True),
                kpi_feature(t),
                kpi_cost_to_revenue(t),
            ]
            panel = [kpi_per_task(t, policy, workload_of()), *rest]
    return {
        "window": p.window.stated(),
        "period": p.start.strftime("%Y-%m"),
        "as_of": p.as_of,
        "days_elapsed": p.elapsed_days,
        "days_in_month": p.month_days,
        "policy": policy.source if policy is not None else None,
        "status": worst([k["status"] for k in panel]),
        "kpis": panel,
    }
