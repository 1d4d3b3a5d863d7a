"""The daily anomaly scan of the eight-KPI framework (§07): what spent far more in the last 24 hours
than usual.

**The rule.** For a day D (a UTC calendar day) and each user, feature and customer with any spend
in D-7 .. D:

- ``spend_24h_usd`` = its spend on D;
- ``trailing_median_usd`` = the median of its 7 daily totals on D-7 .. D-1, **days without spend
  counted as 0** (a user active 3 days in 7 has a median of 0: a sparse user has no baseline);
- ``ratio`` = spend_24h / trailing_median;
- anomalous when ``trailing_median > 0`` and ``spend_24h >= threshold × trailing_median`` (default
  threshold 5, the eight-KPI framework's "5× their trailing-7-day average"; the median, not the
  mean, so that one earlier spike does not hide the next one).

An entity whose trailing median is 0 has no ratio; those that spent on D are listed apart
(``no_baseline``, largest first), because a ratio over zero would flag every new user.
Users are keyed by (customer_id, user_id): user ids are only unique within a customer.

Also on the scan: the top 10 users by 24-hour spend with the day-over-day delta (D against
D-1), the top 5 features by 24-hour spend, and the tiers whose overage-routing rate is out of
its band (``tailguard.analytics.kpis.routing_rows``, as of D).

One pass over the 8 days of events builds a small daily table (entity × day); the zero-filled
median, the anomalies and the top lists are engine queries over it. Money is Decimal (spend is
summed exactly in the engine; the median of 7 values is one of them); ratios are floats, unrounded
(JSON and CSV carry every digit; only the table rounds).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.context import QueryContext, using
from tailguard.analytics.period import Window, scan_day
from tailguard.errors import ConfigError

if TYPE_CHECKING:
    from tailguard.guard.policy import Policy

ENTITY_TYPES: tuple[str, ...] = ("user", "feature", "customer")
EPOCH = dt.date(1970, 1, 1)

#: the ``_tg_daily`` table: spend per entity and UTC day number, from the roll-up (or the
#: events: ``QueryContext.source``; ``{dn}``: the row's day number)
DAILY_SQL = """
WITH ev AS (
  SELECT customer_id, user_id, coalesce(feature, '(none)') AS feature,
    {dn} AS day, cost_usd
  FROM {src}
  WHERE {where} AND cost_usd IS NOT NULL
)
SELECT 'user' AS entity_type, user_id AS entity_id, customer_id, day, sum(cost_usd) AS cost
FROM ev WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4
UNION ALL
SELECT 'feature', feature, NULL, day, sum(cost_usd) FROM ev GROUP BY 1, 2, 3, 4
UNION ALL
SELECT 'customer', customer_id, customer_id, day, sum(cost_usd) FROM ev GROUP BY 1, 2, 3, 4
"""

SCAN_SQL = """
WITH cal AS (SELECT d FROM (VALUES {cal}) AS t(d)),
ents AS (SELECT DISTINCT entity_type, entity_id, customer_id FROM _tg_daily),
filled AS (
  SELECT e.entity_type, e.entity_id, e.customer_id, cal.d, coalesce(x.cost, 0) AS cost
  FROM ents e CROSS JOIN cal
  LEFT JOIN _tg_daily x ON x.entity_type = e.entity_type AND x.entity_id = e.entity_id
    AND coalesce(x.customer_id, '') = coalesce(e.customer_id, '') AND x.day = cal.d
),
med AS (
  SELECT entity_type, entity_id, customer_id, median(cost) AS trailing_median
  FROM filled GROUP BY 1, 2, 3
),
today AS (
  SELECT entity_type, entity_id, customer_id,
    sum(CASE WHEN day = ? THEN cost ELSE 0 END) AS spend_24h,
    sum(CASE WHEN day = ? THEN cost ELSE 0 END) AS spend_prev
  FROM _tg_daily GROUP BY 1, 2, 3
)
SELECT t.entity_type, t.entity_id, t.customer_id, t.spend_24h, t.spend_prev, m.trailing_median
FROM today t JOIN med m ON m.entity_type = t.entity_type AND m.entity_id = t.entity_id
  AND coalesce(m.customer_id, '') = coalesce(t.customer_id, '')
WHERE t.spend_24h > 0
"""


def _ratio(spend: Decimal, median: Decimal) -> float | None:
    return float(spend / median) if median else None


def anomalies(
    ledger: Any,
    *,
    window: Window | None = None,
    day: dt.date | None = None,
    threshold: float = 5.0,
    top_users: int = 10,
    top_features: int = 5,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """The daily scan for ``day`` (default: the last day with events); module docstring.

    ``NoDataError`` when ``day`` holds no events: a scan of an empty day would report "no
    anomaly" about a day nothing was measured on (``period.scan_day``).
    """
    if threshold <= 0:
        raise ConfigError("threshold must be > 0")
    if day is None and window is not None:
        day = window.last_day
    with using(ledger) as ctx:
        return _scan(ctx, day, threshold, top_users, top_features, policy)


def _scan(
    con: QueryContext,
    day: dt.date | None,
    threshold: float,
    top_users: int,
    top_features: int,
    policy: Policy | None,
) -> dict[str, Any]:
    day = scan_day(con, day)
    lo = dt.datetime.combine(day - dt.timedelta(days=7), dt.time(), dt.UTC)
    hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    src = con.source(Window(lo, hi))
    daily = DAILY_SQL.format(src=src.table, where=src.where, dn=src.day_number)
    con.temp_table("_tg_daily", daily, src.params)
    trailing = [day - dt.timedelta(days=i) for i in range(7, 0, -1)]
    # days as day numbers since 1970-01-01 (UTC): ``epoch`` needs no time-zone conversion
    dn = [(d - EPOCH).days for d in (*trailing, day, day - dt.timedelta(days=1))]
    cal = ", ".join("(CAST(? AS BIGINT))" for _ in trailing)
    cur = con.execute(SCAN_SQL.format(cal=cal), dn)
    th = Decimal(str(threshold))
    found, no_base, users, feats = [], [], [], []
    for et, eid, cid, spend, prev, med in cur.fetchall():
        spend = spend or Decimal(0)
        med = med if med is not None else Decimal(0)
        row = {
            "entity_type": et,
            "entity_id": eid,
            "customer_id": cid if et == "user" else None,
            "spend_24h_usd": spend,
            "trailing_median_usd": med,
            "ratio": _ratio(spend, med),
        }
        if med > 0 and spend >= th * med:
            found.append(row)
        elif med == 0:
            no_base.append(row)
        if et == "user":
            users.append({**row, "prev_day_usd": prev, "delta_usd": spend - (prev or 0)})
        elif et == "feature":
            feats.append({**row, "prev_day_usd": prev, "delta_usd": spend - (prev or 0)})
    order = ENTITY_TYPES.index
    found.sort(key=lambda r: (-(r["ratio"] or 0), order(r["entity_type"]), r["entity_id"]))
    no_base.sort(key=lambda r: (-r["spend_24h_usd"], order(r["entity_type"]), r["entity_id"]))
    users.sort(key=lambda r: (-r["spend_24h_usd"], r["customer_id"] or "", r["entity_id"]))
    feats.sort(key=lambda r: (-r["spend_24h_usd"], r["entity_id"]))
    return {
        "window": {"start": day, "end": day},
        "day": day,
        "threshold": threshold,
        "trailing_days": [trailing[0], trailing[-1]],
        "anomalies": found,
        "no_baseline": no_base[:20],
        "no_baseline_count": len(no_base),
        "top_users": users[:top_users],
        "top_features": feats[:top_features],
        "tiers_out_of_band": _tiers_out_of_band(con, day, policy),
    }


def _tiers_out_of_band(
    con: QueryContext, day: dt.date, policy: Policy | None
) -> list[dict[str, Any]]:
    from tailguard.analytics.kpis import build, panel_period, routing_rows

    p = panel_period(con, day.strftime("%Y-%m"), day)
    t = build(con, p, parts=["days"])
    return [
        {
            "tier": r["tier"],
            "pattern": r["pattern"],
            "rate_pct": r["rate_pct"],
            "band": r["band"],
            "status": r["status"],
            "alert_3_days": r["alert_3_days"],
        }
        for r in routing_rows(t, policy)
        # "unknown": not judged (customers without a customers row and no policy to say what
        # the guard gives them): no rate, no band, so not out of one
        if r["status"] not in ("ok", "unknown") or r["alert_3_days"]
    ]
