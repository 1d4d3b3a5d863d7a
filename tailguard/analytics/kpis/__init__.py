"""The eight-KPI framework's cost panel: one value, its healthy band and a status for each.

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
     before ``as_of`` ("new") against the older ones ("returning"), as % more. Band 20-40%.
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

Heavy aggregation runs in the engine (portable SQL, CASE inside aggregates, quantile_cont);
Python only walks per-customer or per-day results. Money is Decimal from the engine; percentages
are floats (they are judged against bands, never summed), unrounded: JSON and CSV carry every
digit, a status judges the exact value, and only the terminal table rounds, for display.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.analytics.customers import customer_rows
from tailguard.analytics.margins import THRESHOLDS
from tailguard.analytics.period import Window, require_events
from tailguard.errors import ArgumentError, NoDataError

if TYPE_CHECKING:
    import duckdb

    from tailguard.guard.policy import Policy

RANK = {"act": 3, "watch": 2, "ok": 1}
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
NO_POLICY = "no policy: give --policy FILE or TAILGUARD_POLICY"
MIN_USERS_CONCENTRATION = 20


def worst(statuses: list[str]) -> str:
    """The most severe judged status; ``unknown`` when nothing could be judged."""
    judged = [s for s in statuses if s in RANK]
    if not judged:
        return "no_data" if statuses and all(s == "no_data" for s in statuses) else "unknown"
    return max(judged, key=RANK.__getitem__)


def _pct(num: Any, den: Any) -> float | None:
    """``num`` as a percentage of ``den``, unrounded (a float's digits): the panel's JSON and
    CSV carry every digit and statuses judge the exact value; only the table rounds."""
    if num is None or not den:
        return None
    return float(num) / float(den) * 100


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _metric(
    id_: str, title: str, value: Any, unit: str, band: Any, status: str, **extra: Any
) -> dict[str, Any]:
    return {
        "id": id_,
        "title": title,
        "value": value,
        "unit": unit,
        "band": band,
        "status": status,
        **extra,
    }


def _kpi(id_: str, title: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    lead = metrics[0]
    return {
        "id": id_,
        "title": title,
        "value": lead["value"],
        "unit": lead["unit"],
        "band": lead["band"],
        "status": worst([m["status"] for m in metrics]),
        "metrics": metrics,
    }


# --- the period and the caps ------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """The month judged and how much of it has elapsed at ``as_of``."""

    start: dt.datetime
    end: dt.datetime  # exclusive: the day after as_of (or the month's end)
    as_of: dt.date
    month_days: int
    elapsed_days: int

    @property
    def window(self) -> Window:
        full = self.elapsed_days == self.month_days
        return Window(self.start, self.end, calendar_month=full)

    @property
    def fraction(self) -> Decimal:
        """Share of the month elapsed (pools and budgets are prorated by it)."""
        return Decimal(self.elapsed_days) / Decimal(self.month_days)


def panel_period(
    con: duckdb.DuckDBPyConnection, period: str | None = None, as_of: dt.date | None = None
) -> Panel:
    """The month (``period``, default: the month of the last event) up to ``as_of`` (default:
    the last event's day, or the month's last day when the month is over)."""
    last = con.execute("SELECT max(ts) FROM events").fetchall()[0]
    last_day = last[0].astimezone(dt.UTC).date() if last and last[0] is not None else None
    if period:
        try:
            y, m = (int(x) for x in period.split("-"))
            first = dt.date(y, m, 1)
        except ValueError:
            raise ArgumentError("period", f"{period!r} is not a month (YYYY-MM)") from None
    else:
        ref = as_of or last_day
        if ref is None:  # the wall clock never dates a report
            raise NoDataError("the ledger has no events")
        first = ref.replace(day=1)
    month_days = calendar.monthrange(first.year, first.month)[1]
    month_last = first.replace(day=month_days)
    if as_of is None:
        as_of = month_last if last_day is None or last_day > month_last else max(last_day, first)
    if not first <= as_of <= month_last:
        raise ArgumentError("as_of", f"{as_of} is outside {first:%Y-%m}")
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return Panel(start, end, as_of, month_days, as_of.day)


@dataclass(frozen=True)
class Cap:
    """A customer's monthly budget from the policy (tokens or dollars)."""

    tier: str
    unit: str  # "usd" | "tok"
    hard: Decimal
    soft: Decimal
    soft_threshold: Decimal
    overage: str
    seats: int


def resolve_caps(con: duckdb.DuckDBPyConnection, policy: Policy | None) -> dict[str, Cap]:
    """Each customer's monthly budget under ``policy`` (empty without one). Tiers whose budget
    period is not a month, or which have no budget, are left out."""
    if policy is None:
        return {}
    from tailguard.customers import CustomerInfo
    from tailguard.guard.units import from_micro

    caps = {}
    for cid, tier, seats, pool in con.execute(
        "SELECT customer_id, tier, seats, contracted_pool_usd FROM customers"
    ).fetchall():
        lim = policy.limits_for(cid, info=CustomerInfo(tier, seats, pool))
        if lim.period != "month" or lim.hard_limit is None or lim.hard_limit <= 0:
            continue
        conv = from_micro if lim.budget_unit == "usd" else Decimal
        hard = conv(lim.hard_limit)
        caps[cid] = Cap(
            lim.tier,
            lim.budget_unit,
            hard,
            hard * lim.soft_threshold,
            lim.soft_threshold,
            lim.overage,
            max(1, int(seats or 1)),
        )
    return caps


def _register_caps(con: duckdb.DuckDBPyConnection, caps: dict[str, Cap]) -> None:
    ids = list(caps)
    con.register(
        "_tg_caps",
        pa.table(
            {
                "customer_id": pa.array(ids, pa.string()),
                "tier": pa.array([caps[c].tier for c in ids], pa.string()),
                "unit": pa.array([caps[c].unit for c in ids], pa.string()),
                # per-user shares as floats: they only feed quantiles of a ratio
                "user_soft": pa.array(
                    [float(caps[c].soft) / caps[c].seats for c in ids], pa.float64()
                ),
                "user_hard": pa.array(
                    [float(caps[c].hard) / caps[c].seats for c in ids], pa.float64()
                ),
                # the whole budget, exact: the cap-hit day compares running sums against it
                "hard": pa.array([caps[c].hard for c in ids], pa.decimal128(24, 6)),
            }
        ),
    )


# --- 1. per task ------------------------------------------------------------------------------


def workload_bands(policy: Policy | None) -> dict[str, Any]:
    """The policy's ``[kpis.workload.CLASS]`` bands as ``workload.Band`` (its unit and alarm
    meaning the framework's for that class); empty without a policy or without the table."""
    from dataclasses import replace

    from tailguard.analytics.workload import BANDS

    if policy is None:
        return {}
    return {
        cls: replace(BANDS[cls], low=low, high=high, alarm=alarm, under=None, under_means=None)
        for cls, (low, high, alarm) in policy.workload_bands.items()
    }


def kpi_per_task(
    con: duckdb.DuckDBPyConnection, p: Panel, policy: Policy | None = None
) -> dict[str, Any]:
    """Effective tokens per task (agents) or per invocation (chat, rag), judged by the policy's
    ``[kpis.workload]`` band of the class when it gives one (``band_source`` "policy"), else by
    the eight-KPI framework's (``band_source`` "framework")."""
    from tailguard.analytics.workload import workload

    own = workload_bands(policy)
    res = workload(con, p.window, bands=own)
    metrics = []
    for c in res["classes"]:
        if c["band"] is None:
            continue
        key = (
            "effective_tokens_per_task"
            if c["band_unit"] == "task"
            else ("effective_tokens_per_invocation")
        )
        metrics.append(
            _metric(
                f"{c['workload']}_effective_tokens",
                f"{c['workload']}: effective tokens per "
                f"{'task' if c['band_unit'] == 'task' else 'invocation'}",
                c[key],
                "tokens",
                c["band"],
                c["status"],
                alarm=c["alarm"],
                cost_per_task=c["cost_per_task"],
                invocations_per_task=c["invocations_per_task"],
                tasks=c["tasks"],
                band_source="policy" if c["workload"] in own else "framework",
            )
        )
    return _kpi("per_task_cost", "Per-task cost by workload class", metrics)


# --- 2. per user ------------------------------------------------------------------------------

USERS_SQL = """
CREATE OR REPLACE TEMP TABLE _tg_users AS
SELECT customer_id, user_id,
  coalesce(sum(cost_usd), 0) AS cost,
  sum(CASE WHEN kind = 'llm_call' THEN input_tokens + output_tokens ELSE 0 END) AS tokens
FROM events
WHERE {where} AND user_id IS NOT NULL AND kind <> 'guard'
GROUP BY 1, 2
"""


def _seat_status(v: float | None) -> str:
    if v is None:
        return "no_data"
    if v > 3:
        return "act"
    return "ok" if 0.5 <= v <= 1.5 else "watch"


def kpi_per_user(
    con: duckdb.DuckDBPyConnection, p: Panel, caps: dict[str, Cap], months: Decimal
) -> dict[str, Any]:
    seat = con.execute(
        """
        SELECT quantile_cont(CAST(u.cost AS DOUBLE)
                 / (CAST(c.mrr_usd AS DOUBLE) / c.seats * ?) * 100, 0.5), count(*)
        FROM _tg_users u JOIN customers c ON u.customer_id = c.customer_id
        WHERE c.tier <> 'free' AND c.mrr_usd > 0 AND c.seats > 0
        """,
        [float(months)],
    ).fetchall()[0]
    seat_v = seat[0] if seat and seat[0] is not None else None
    metrics = [
        _metric(
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
        per_tier = con.execute(
            """
            SELECT k.tier, count(*) AS users,
              quantile_cont(CASE WHEN k.unit = 'usd' THEN CAST(u.cost AS DOUBLE)
                ELSE CAST(u.tokens AS DOUBLE) END / k.user_soft * 100, 0.9) AS p90_soft,
              quantile_cont(CASE WHEN k.unit = 'usd' THEN CAST(u.cost AS DOUBLE)
                ELSE CAST(u.tokens AS DOUBLE) END / k.user_hard * 100, 0.99) AS p99_hard
            FROM _tg_users u JOIN _tg_caps k ON u.customer_id = k.customer_id
            GROUP BY k.tier ORDER BY k.tier
            """
        ).fetchall()
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
            _metric(
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
            _metric(
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
            metrics.append(_metric(id_, title, None, "%", band, "unknown", note=NO_POLICY))
    cutoff = p.as_of - dt.timedelta(days=365)
    cohorts = {
        k: (int(n), s or Decimal(0))
        for k, n, s in con.execute(
            """
            SELECT CASE WHEN c.signup_date > ? THEN 'new' ELSE 'returning' END,
              count(*), sum(u.cost)
            FROM _tg_users u JOIN customers c ON u.customer_id = c.customer_id
            WHERE c.signup_date IS NOT NULL GROUP BY 1
            """,
            [cutoff],
        ).fetchall()
    }
    per = {k: (s / n if n else None) for k, (n, s) in cohorts.items()}
    new, ret = per.get("new"), per.get("returning")
    drift = float((new / ret - 1) * 100) if new is not None and ret else None
    metrics.append(
        _metric(
            "cohort_drift",
            "New cohort (signed up < 365 days) vs returning: cost per user, % more",
            drift,
            "%",
            [20, 40],
            "no_data" if drift is None else ("ok" if 20 <= drift <= 40 else "watch"),
            new_users=cohorts.get("new", (0, 0))[0],
            returning_users=cohorts.get("returning", (0, 0))[0],
            new_cost_per_user_usd=new,
            returning_cost_per_user_usd=ret,
        )
    )
    return _kpi("per_user_cost", "Per-user cost", metrics)


# --- 3. per tenant ----------------------------------------------------------------------------

CONCENTRATION_SQL = """
SELECT customer_id, n, sum(CASE WHEN rn <= k THEN cost ELSE 0 END) / sum(cost) AS share
FROM (
  SELECT customer_id, cost,
    row_number() OVER (PARTITION BY customer_id ORDER BY cost DESC, user_id) AS rn,
    count(*) OVER (PARTITION BY customer_id) AS n,
    CAST(floor((count(*) OVER (PARTITION BY customer_id) + 19) / 20.0) AS INTEGER) AS k
  FROM _tg_users WHERE cost > 0
) t
WHERE n >= ?
GROUP BY customer_id, n
"""


def _arr_status(v: float) -> str:
    return "act" if v > 20 else ("watch" if v > 8 else "ok")


def kpi_per_tenant(
    con: duckdb.DuckDBPyConnection, p: Panel, rows: list[dict[str, Any]], caps: dict[str, Cap]
) -> dict[str, Any]:
    spending = sorted(
        (r for r in rows if r["cost_usd"] > 0), key=lambda r: (-r["cost_usd"], r["customer_id"])
    )
    top = [
        {"customer_id": r["customer_id"], "tier": r["tier"], "cost_usd": r["cost_usd"]}
        for r in spending[:20]
    ]
    pooled = [r for r in spending if r["tier"] in ("team", "enterprise")]
    pooled_total = sum((r["cost_usd"] for r in pooled), Decimal(0))
    share = _pct(sum((r["cost_usd"] for r in pooled[:20]), Decimal(0)), pooled_total)
    metrics = [
        _metric(
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
        u = _pct(r["cost_usd"], pool * p.fraction)
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
    util.sort(key=lambda x: (-x["utilization_pct"], x["customer_id"]))
    up = [x for x in util if x["candidate"] == "upgrade"]
    down = [x for x in util if x["candidate"] == "right_size"]
    metrics.append(
        _metric(
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
        for c, n, s in con.execute(CONCENTRATION_SQL, [MIN_USERS_CONCENTRATION]).fetchall()
    ]
    flagged = sorted(
        (c for c in conc if c["top5pct_share"] > 70),
        key=lambda c: (-c["top5pct_share"], c["customer_id"]),
    )
    metrics.append(
        _metric(
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
    arr.sort(key=lambda x: (-x["cost_to_arr_pct"], x["customer_id"]))
    over12 = [a for a in arr if a["cost_to_arr_pct"] > 12]
    over20 = [a for a in arr if a["cost_to_arr_pct"] > 20]
    med = None
    if arr:
        vals = sorted(a["cost_to_arr_pct"] for a in arr)
        n = len(vals)
        med = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
    metrics.append(
        _metric(
            "cost_to_arr",
            "Customer cost as % of ARR: healthy 3-8%, > 12% off margin, > 20% revisit",
            med,
            "%",
            [3, 8],
            worst([a["status"] for a in arr]) if arr else "no_data",
            customers=len(arr),
            over_12=len(over12),
            over_20=len(over20),
            revisit_at_renewal=over20[:20],
            funding_off_margin=over12[:20],
        )
    )
    return _kpi("per_tenant_cost", "Per-tenant cost", metrics)


# --- 4. tier-budget utilization ---------------------------------------------------------------

#: one row per customer and UTC day (day number since 1970-01-01: ``epoch`` is time-zone free
#: and three times cheaper than a TIMESTAMPTZ -> DATE cast); the budget and routing KPIs and
#: the anomaly scan's tier check all read it, so the month is scanned once for them
CUSTOMER_DAYS_SQL = """
CREATE OR REPLACE TEMP TABLE _tg_cd AS
SELECT customer_id, CAST(floor(epoch(ts) / 86400) AS BIGINT) AS dn,
  coalesce(sum(CASE WHEN kind <> 'guard' THEN cost_usd END), 0) AS cost,
  sum(CASE WHEN kind = 'llm_call' THEN input_tokens + output_tokens ELSE 0 END) AS tokens,
  sum(CASE WHEN kind = 'llm_call' THEN 1 ELSE 0 END) AS calls,
  sum(CASE WHEN kind = 'guard' AND action = 'degrade'
    AND rule <> 'fail_open:store_unavailable' THEN 1 ELSE 0 END) AS degraded,
  sum(CASE WHEN kind = 'guard' AND action = 'deny'
    AND rule = 'hard_limit' THEN 1 ELSE 0 END) AS capped,
  sum(CASE WHEN kind = 'guard' AND action = 'overage' THEN 1 ELSE 0 END) AS overage,
  sum(CASE WHEN kind IN ('llm_call', 'guard') THEN 1 ELSE 0 END) AS routed
FROM events
WHERE {where}
GROUP BY 1, 2
"""
EPOCH = dt.date(1970, 1, 1)


def customer_days(con: duckdb.DuckDBPyConnection, p: Panel) -> None:
    """Build the ``_tg_cd`` temp table (customer x day) for the panel's window."""
    where, params = p.window.sql()
    con.execute(CUSTOMER_DAYS_SQL.format(where=where), params)


def _dn(d: dt.date) -> int:
    return (d - EPOCH).days


#: per budgeted customer: spend (or tokens) so far and the first day the running sum reached
#: the cap (a window function: the running sum stays in the engine)
BUDGET_SQL = """
SELECT customer_id, max(cum) AS used, min(CASE WHEN cum >= hard THEN dn END) AS hit_dn
FROM (
  SELECT d.customer_id, d.dn, k.hard,
    sum(CASE WHEN k.unit = 'usd' THEN d.cost ELSE d.tokens END)
      OVER (PARTITION BY d.customer_id ORDER BY d.dn) AS cum
  FROM _tg_cd d JOIN _tg_caps k ON d.customer_id = k.customer_id
) t
GROUP BY customer_id
"""


def budget_rows(
    con: duckdb.DuckDBPyConnection, p: Panel, caps: dict[str, Cap]
) -> list[dict[str, Any]]:
    """Per budgeted customer: used, actual and projected %, the hit or projected-hit date.
    Reads ``_tg_cd`` (``customer_days``)."""
    got = {cid: (used, hit) for cid, used, hit in con.execute(BUDGET_SQL).fetchall()}
    out = []
    for cid, cap in sorted(caps.items()):
        used, hit_dn = got.get(cid, (Decimal(0), None))
        used = Decimal(used or 0)
        hit = EPOCH + dt.timedelta(days=int(hit_dn)) if hit_dn is not None else None
        pace = used / p.elapsed_days
        projected = pace * p.month_days
        proj_day = None
        if hit is None and pace > 0:
            k = math.ceil(cap.hard / pace)
            if k <= p.month_days:
                proj_day = max(k, p.elapsed_days + 1)
        actual_pct = _pct(used, cap.hard)
        projected_pct = _pct(projected, cap.hard)
        assert actual_pct is not None and projected_pct is not None
        if hit is not None:
            status, msg = "act", f"hit cap on the {ordinal(hit.day)}"
        elif proj_day is not None:
            status, msg = "act", f"projected to hit cap on the {ordinal(proj_day)}"
        elif projected >= cap.soft:
            status, msg = "watch", f"projected at {projected_pct:.0f}% of cap at month end"
        else:
            status, msg = "ok", f"projected at {projected_pct:.0f}% of cap at month end"
        month = p.start.date()
        out.append(
            {
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
        )
    return out


def kpi_tier_budget(
    con: duckdb.DuckDBPyConnection, p: Panel, caps: dict[str, Cap]
) -> dict[str, Any]:
    if not caps:
        return _kpi(
            "tier_budget_utilization",
            "Tier-budget utilization",
            [
                _metric(
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
    rows = budget_rows(con, p, caps)
    tiers = []
    for tier in sorted({r["tier"] for r in rows}):
        tr = [r for r in rows if r["tier"] == tier]
        soft = min(c.soft_threshold for c in caps.values() if c.tier == tier) * 100
        med_a = _median([r["actual_pct"] for r in tr])
        med_p = _median([r["projected_pct"] for r in tr])
        st = "act" if med_p >= 100 else ("watch" if med_p >= float(soft) else "ok")
        tiers.append(
            {
                "tier": tier,
                "customers": len(tr),
                "median_actual_pct": med_a,
                "median_projected_pct": med_p,
                "soft_threshold_pct": float(soft),
                "hit": sum(1 for r in tr if r["hit_date"]),
                "projected_to_hit": sum(1 for r in tr if r["projected_hit_date"]),
                "status": st,
            }
        )
    at_risk = sorted(
        (r for r in rows if r["status"] != "ok"),
        key=lambda r: (-r["projected_pct"], r["customer_id"]),
    )
    return _kpi(
        "tier_budget_utilization",
        "Tier-budget utilization, actual and projected",
        [
            _metric(
                "median_projected_pct",
                "Median customer: projected % of cap at month end (per tier)",
                {t["tier"]: t["median_projected_pct"] for t in tiers},
                "%",
                "< soft threshold",
                worst([t["status"] for t in tiers]),
                tiers=tiers,
                days_elapsed=p.elapsed_days,
                days_in_month=p.month_days,
                at_risk=at_risk[:20],
                at_risk_count=len(at_risk),
            )
        ],
    )


def _median(v: list[float]) -> float:
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# --- 5, 6. overage routing and degradation ----------------------------------------------------

FIRSTS_SQL = """
SELECT coalesce(c.tier, 'unknown') AS tier, f.customer_id, f.first_active, f.first_capped,
  f.first_overage
FROM (
  SELECT customer_id,
    min(CASE WHEN routed > 0 THEN dn END) AS first_active,
    min(CASE WHEN capped > 0 THEN dn END) AS first_capped,
    min(CASE WHEN overage > 0 THEN dn END) AS first_overage
  FROM _tg_cd GROUP BY 1
) f LEFT JOIN customers c ON f.customer_id = c.customer_id
WHERE f.first_active IS NOT NULL
"""

TRAFFIC_SQL = """
SELECT coalesce(c.tier, 'unknown') AS tier, d.dn, sum(d.calls), sum(d.degraded), sum(d.cost)
FROM _tg_cd d LEFT JOIN customers c ON d.customer_id = c.customer_id
GROUP BY 1, 2
"""


def _rate_status(pattern: str, v: float | None) -> str:
    if v is None:
        return "no_data"
    b = RATE_BANDS[pattern]
    if v > b.alarm:
        return "act"
    return "ok" if b.low <= v <= b.high else "watch"


def routing_rows(
    con: duckdb.DuckDBPyConnection, p: Panel, policy: Policy | None
) -> list[dict[str, Any]]:
    """Per tier: its overage pattern, the routing rate for the period, and the last three days.

    The customer-share rates (hard_cap, payg) are month-to-date on each of the three days (a
    customer capped on the 3rd stays capped: a per-day share would fall to ~0 by design); the
    degraded-traffic share is that day's calls. Reads ``_tg_cd`` (``customer_days``).
    """
    firsts: dict[str, list[tuple[Any, Any, Any]]] = {}
    for tier, _cid, fa, fc, fo in con.execute(FIRSTS_SQL).fetchall():
        firsts.setdefault(tier, []).append((fa, fc, fo))
    traffic: dict[str, dict[int, tuple[int, int, Decimal]]] = {}
    for tier, dn, calls, deg, spend in con.execute(TRAFFIC_SQL).fetchall():
        traffic.setdefault(tier, {})[int(dn)] = (int(calls), int(deg), spend or Decimal(0))

    def rate(pattern: str, tier: str, day: dt.date | None) -> float | None:
        """The period's rate (``day`` None), or that day's (month to date for customer shares)."""
        if pattern == "soft_cap_degrade":
            t = traffic.get(tier, {})
            days = [_dn(day)] if day is not None else list(t)
            calls = sum(t[d][0] for d in days if d in t)
            return _pct(sum(t[d][1] for d in days if d in t), calls)
        col = 1 if pattern == "hard_cap" else 2
        upto = _dn(day) + 1 if day is not None else _dn(p.as_of) + 1
        fs = firsts.get(tier, [])
        active = sum(1 for f in fs if f[0] < upto)
        return _pct(sum(1 for f in fs if f[col] is not None and f[col] < upto), active)

    out = []
    for tier in sorted(firsts):
        if policy is not None and tier in policy.tiers:
            pattern = policy.tiers[tier].get("overage", "hard_cap")
        else:
            pattern = DEFAULT_PATTERN.get(tier)
        if pattern is None:
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
        t = traffic.get(tier, {})
        out.append(
            {
                "tier": tier,
                "pattern": pattern,
                "measures": b.measures,
                "rate_pct": v,
                "band": [b.low, b.high],
                "alarm_above": b.alarm,
                "status": _rate_status(pattern, v),
                "spend_usd": sum((x[2] for x in t.values()), Decimal(0)),
                "active_customers": len(firsts.get(tier, [])),
                "llm_calls": sum(x[0] for x in t.values()),
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
    m = _metric(
        id_,
        title,
        {r["tier"]: r["rate_pct"] for r in sel},
        "%",
        band,
        st,
        tiers=sel,
        alerts=[r["tier"] for r in sel if r["alert_3_days"]],
    )
    return _kpi(id_, title, [m])


# --- 7, 8. feature concentration, cost to revenue ---------------------------------------------

FEATURE_SQL = """
SELECT coalesce(feature, '(none)') AS feature, coalesce(sum(cost_usd), 0) AS cost,
  sum(CASE WHEN kind = 'llm_call' THEN 1 ELSE 0 END) AS calls
FROM events WHERE {where} AND kind <> 'guard'
GROUP BY 1
"""


def kpi_feature(con: duckdb.DuckDBPyConnection, p: Panel) -> dict[str, Any]:
    where, params = p.window.sql()
    feats = con.execute(FEATURE_SQL.format(where=where), params).fetchall()
    total = sum((f[1] for f in feats), Decimal(0))
    calls = sum(int(f[2]) for f in feats)
    rows = sorted(
        (
            {
                "feature": f,
                "cost_usd": c,
                "spend_share_pct": _pct(c, total),
                "usage_share_pct": _pct(n, calls),
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
    return _kpi(
        "top_feature_concentration",
        "Top-feature concentration",
        [
            _metric(
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


def kpi_cost_to_revenue(rows: list[dict[str, Any]]) -> dict[str, Any]:
    cost = sum((r["cost_usd"] for r in rows), Decimal(0))
    rev = sum((r["revenue_usd"] or Decimal(0) for r in rows), Decimal(0))
    by_seg: dict[str, Decimal] = {}
    for r in rows:
        if r["segment"] in THRESHOLDS and r["revenue_usd"]:
            by_seg[r["segment"]] = by_seg.get(r["segment"], Decimal(0)) + r["revenue_usd"]
    seg_rev = sum(by_seg.values(), Decimal(0))
    v = _pct(cost, rev)
    if v is None or not seg_rev:
        return _kpi(
            "cost_to_revenue",
            "Cost-to-revenue at product level",
            [_metric("cost_pct_of_revenue", "Cost as % of revenue", v, "%", None, "no_data")],
        )
    target = float(sum(by_seg[s] * THRESHOLDS[s][0] for s in by_seg) / seg_rev)
    alert = float(sum(by_seg[s] * THRESHOLDS[s][1] for s in by_seg) / seg_rev)
    st = "ok" if v < target else ("act" if v > alert else "watch")
    return _kpi(
        "cost_to_revenue",
        "Cost-to-revenue at product level",
        [
            _metric(
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


# --- the panel --------------------------------------------------------------------------------


def kpis(
    con: duckdb.DuckDBPyConnection,
    *,
    period: str | None = None,
    as_of: dt.date | None = None,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """The eight-KPI panel for ``period`` (YYYY-MM) as of ``as_of`` (see the module docstring)."""
    con.execute("SET TimeZone = 'UTC'")
    p = panel_period(con, period, as_of)
    require_events(con, p.window)  # an empty month is not a month of zero spend
    caps = resolve_caps(con, policy)
    _register_caps(con, caps)
    where, params = p.window.sql()
    con.execute(USERS_SQL.format(where=where), params)
    months = p.window.months()
    assert months is not None
    customer_days(con, p)
    rows = customer_rows(con, p.window)
    routing = routing_rows(con, p, policy)
    panel = [
        kpi_per_task(con, p, policy),
        kpi_per_user(con, p, caps, months),
        kpi_per_tenant(con, p, rows, caps),
        kpi_tier_budget(con, p, caps),
        kpi_routing(routing, degrade=False),
        kpi_routing(routing, degrade=True),
        kpi_feature(con, p),
        kpi_cost_to_revenue(rows),
    ]
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
