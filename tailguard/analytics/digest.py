"""The three review rhythms of the eight-KPI framework (§07) as markdown ready to post.

- ``daily`` (on-call engineering, fifteen minutes): the anomaly scan of
  ``tailguard.analytics.anomalies`` — anomalies by deviation from the trailing-7-day median,
  the top 10 users and top 5 features by 24-hour spend, tiers with a routing rate out of band.
- ``weekly`` (product + finance): the last 7 days against the 7 before them — spend by tier,
  feature attribution shifts (share of spend, week over week), the p90 and p99 user's weekly
  spend, per-tier budget utilization month to date (with a policy: ``kpis``' tier-budget KPI),
  and the tenant cost-to-ARR rollup (customers above 12% and 20% of their revenue for
  the week).
- ``quarterly`` (leadership, tier redesign): the last 3 calendar months against the 3 before —
  spend and customers by tier, feature attribution shifts, and the effective price paid per
  million tokens by model (cost / (input + output tokens)): the current rate cards as the ledger
  saw them, the input to recalibrating tier ceilings.

Each digest is ``{rhythm, window, period, markdown, data}`` (``window``: the days it is about,
``{start, end}`` with the end included; ``period`` kept for older readers). A day, week or
quarter with no events is refused (``NoDataError``): a digest of zeros would read as a quiet
period, when nothing was measured; ``post(url, digest)`` sends
``{"text": markdown}`` (the Slack / Mattermost / Teams incoming-webhook shape) with the standard
library. All aggregation is in the engine; Python formats.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.analytics.context import QueryContext, using
from tailguard.analytics.period import Window, add_months, day_window, ledger_span, require_events
from tailguard.errors import ArgumentError, ConfigError

if TYPE_CHECKING:
    from tailguard.guard.policy import Policy

RHYTHMS: tuple[str, ...] = ("daily", "weekly", "quarterly")


def _money(v: Any) -> str:
    """Dollars by the one rule (tailguard.money): cents from $1 up, 4 places below."""
    from tailguard.money import format_usd

    return format_usd(None if v is None else Decimal(v))


def _pct(a: Any, b: Any) -> float | None:
    """``a`` as a percentage of ``b``, unrounded: ``data`` (JSON, CSV) carries every digit;
    the markdown rounds with ``_places``."""
    return float(a) / float(b) * 100 if b else None


def _places(v: float | None, places: int) -> str | None:
    """A figure as the markdown shows it, to ``places`` decimals (display only)."""
    return None if v is None else f"{v:.{places}f}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "_none_\n"
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("—" if c is None else str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _last_day(con: QueryContext, day: dt.date | None) -> dt.date:
    """``day``, default the ledger's last event's day (``NoDataError`` on an empty ledger)."""
    if day is not None:
        return day
    last = ledger_span(con).last_day
    assert last is not None
    return last


def _at(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def daily(ledger: Any, day: dt.date | None = None, policy: Policy | None = None) -> dict[str, Any]:
    """The daily digest ending ``day`` (default: the last event's day); module docstring."""
    with using(ledger) as ctx:
        return _daily(ctx, day, policy)


def _daily(con: QueryContext, day: dt.date | None, policy: Policy | None) -> dict[str, Any]:
    from tailguard.analytics.anomalies import anomalies

    rep = anomalies(con, day=day, policy=policy)
    md = [f"## Daily cost scan — {rep['day']}\n"]
    md.append(f"**Anomalies** (24h spend ≥ {rep['threshold']:g}× trailing-7-day median):\n")
    md.append(
        _table(
            ["type", "id", "customer", "24h", "median", "ratio"],
            [
                [
                    a["entity_type"],
                    a["entity_id"],
                    a["customer_id"],
                    _money(a["spend_24h_usd"]),
                    _money(a["trailing_median_usd"]),
                    f"{a['ratio']:.1f}×",
                ]
                for a in rep["anomalies"][:15]
            ],
        )
    )
    md.append("\n**Top users by 24h spend**\n")
    md.append(
        _table(
            ["user", "customer", "24h", "Δ vs yesterday"],
            [
                [
                    u["entity_id"],
                    u["customer_id"],
                    _money(u["spend_24h_usd"]),
                    _money(u["delta_usd"]),
                ]
                for u in rep["top_users"]
            ],
        )
    )
    md.append("\n**Top features by 24h spend**\n")
    md.append(
        _table(
            ["feature", "24h", "Δ vs yesterday"],
            [
                [f["entity_id"], _money(f["spend_24h_usd"]), _money(f["delta_usd"])]
                for f in rep["top_features"]
            ],
        )
    )
    md.append("\n**Tiers with an overage-routing rate out of band**\n")
    md.append(
        _table(
            ["tier", "pattern", "rate %", "band %", "3 days out"],
            [
                [
                    t["tier"],
                    t["pattern"],
                    _places(t["rate_pct"], 2),
                    f"{t['band'][0]}–{t['band'][1]}",
                    "ALERT" if t["alert_3_days"] else "",
                ]
                for t in rep["tiers_out_of_band"]
            ],
        )
    )
    return {
        "rhythm": "daily",
        "window": rep["window"],
        "period": [rep["day"], rep["day"]],
        "markdown": "\n".join(md),
        "data": rep,
    }


#: spend by ``{key}`` this period and the one before. ``{src}`` / ``{t}``: the roll-up and its
#: ``day``, or the events and their ``ts`` (``_source``: the bounds are UTC midnights)
WEEK_SQL = """
SELECT {key} AS k,
  coalesce(sum(CASE WHEN e.{t} >= ? THEN e.cost_usd END), 0) AS this_period,
  coalesce(sum(CASE WHEN e.{t} < ? THEN e.cost_usd END), 0) AS prev_period
FROM {src} e LEFT JOIN customers c ON e.customer_id = c.customer_id
WHERE e.{t} >= ? AND e.{t} < ?
GROUP BY 1
"""

#: the p90 and p99 user's spend per week (``{p90}``, ``{p99}``: the dialect's exact quantile),
#: ordered so that the dict built from it, and the JSON, list the weeks in one order
USER_Q_SQL = """
SELECT period, {p90}, {p99}, count(*)
FROM (
  SELECT CASE WHEN {t} >= ? THEN 'this' ELSE 'prev' END AS period, customer_id, user_id,
    CAST(sum(cost_usd) AS DOUBLE) AS cost
  FROM {src}
  WHERE {t} >= ? AND {t} < ? AND user_id IS NOT NULL AND cost_usd IS NOT NULL
  GROUP BY 1, 2, 3
) t
GROUP BY 1
ORDER BY 1
"""


def _split(
    con: QueryContext, key: str, lo: dt.datetime, mid: dt.datetime, hi: dt.datetime
) -> list[dict[str, Any]]:
    sql = WEEK_SQL.replace("{key}", key)
    rows = con.execute(*_source(con, sql, lo, hi, [mid, mid, lo, hi])).fetchall()
    this_total = sum((r[1] for r in rows), Decimal(0))
    prev_total = sum((r[2] for r in rows), Decimal(0))
    out = [
        {
            "key": k if k is not None else "(none)",
            "this_usd": t,
            "prev_usd": p,
            "this_share_pct": _pct(t, this_total),
            "prev_share_pct": _pct(p, prev_total),
        }
        for k, t, p in rows
    ]
    out.sort(key=lambda r: (-r["this_usd"], r["key"]))
    return out


def _shift(r: dict[str, Any]) -> str:
    if r["this_share_pct"] is None or r["prev_share_pct"] is None:
        return "—"
    return f"{r['this_share_pct'] - r['prev_share_pct']:+.1f} pts"


def _utilization(
    con: QueryContext, last: dt.date, policy: Policy | None
) -> list[dict[str, Any]] | None:
    """Per-tier budget utilization, month to date at ``last`` (None without a policy)."""
    if policy is None:
        return None
    from tailguard.analytics import kpis as k

    p = k.panel_period(con, last.strftime("%Y-%m"), last)
    # the policy resolved by ``build`` with the month's customers: those without a customers
    # row get the budget the guard gives them, as in the panel (kpis), never dropped
    t = k.build(con, p, policy=policy, parts=["caps", "days"])
    tiers: list[dict[str, Any]] = k.kpi_tier_budget(t)["metrics"][0].get("tiers", [])
    return tiers


def weekly(ledger: Any, day: dt.date | None = None, policy: Policy | None = None) -> dict[str, Any]:
    """The weekly digest ending ``day`` (default: the last event's day); module docstring."""
    with using(ledger) as ctx:
        return _weekly(ctx, day, policy)


def _weekly(con: QueryContext, day: dt.date | None, policy: Policy | None) -> dict[str, Any]:
    from tailguard.analytics.customers import customer_rows

    last = _last_day(con, day)
    hi = _at(last) + dt.timedelta(days=1)
    mid, lo = hi - dt.timedelta(days=7), hi - dt.timedelta(days=14)
    week = Window(mid, hi)
    require_events(con, week)  # a week with no events is not a week of zero spend
    tiers = _split(con, "c.tier", lo, mid, hi)
    feats = _split(con, "e.feature", lo, mid, hi)
    user_q = USER_Q_SQL.replace("{p90}", con.quantile("cost", 0.9))
    user_q = user_q.replace("{p99}", con.quantile("cost", 0.99))
    got = con.execute(*_source(con, user_q, lo, hi, [mid, lo, hi])).fetchall()
    q = {p: (p90, p99, n) for p, p90, p99, n in got}
    rows = customer_rows(con, Window(mid, hi))
    arr = [r for r in rows if r["cost_pct_of_mrr"] is not None]
    over12 = sorted(
        (r for r in arr if r["cost_pct_of_mrr"] > 12), key=lambda r: -r["cost_pct_of_mrr"]
    )
    over20 = [r for r in over12 if r["cost_pct_of_mrr"] > 20]
    md = [f"## Weekly cost review — {mid.date()} .. {last} (vs the 7 days before)\n"]
    md.append("**Spend by tier**\n")
    md.append(
        _table(
            ["tier", "this week", "last week", "share shift"],
            [[t["key"], _money(t["this_usd"]), _money(t["prev_usd"]), _shift(t)] for t in tiers],
        )
    )
    md.append("\n**Feature attribution shifts**\n")
    md.append(
        _table(
            ["feature", "this week", "share %", "shift"],
            [
                [f["key"], _money(f["this_usd"]), _places(f["this_share_pct"], 1), _shift(f)]
                for f in feats[:10]
            ],
        )
    )
    md.append("\n**Top-decile and top-percentile users (weekly spend)**\n")
    md.append(
        _table(
            ["week", "p90 user", "p99 user", "active users"],
            [
                [
                    p,
                    _money(v[0]),
                    _money(v[1]),
                    v[2],
                ]
                for p, v in sorted(q.items(), reverse=True)
            ],
        )
    )
    util = _utilization(con, last, policy)
    md.append("\n**Tier-budget utilization, month to date** (median customer)\n")
    if util is None:
        md.append("_unknown: no policy (a policy file, or TAILGUARD_POLICY)_\n")
    else:
        md.append(
            _table(
                ["tier", "customers", "actual %", "projected %", "hit", "projected to hit"],
                [
                    [
                        t["tier"],
                        t["customers"],
                        _places(t["median_actual_pct"], 2),
                        _places(t["median_projected_pct"], 2),
                        t["hit"],
                        t["projected_to_hit"],
                    ]
                    for t in util
                ],
            )
        )
    md.append(
        f"\n**Tenant cost-to-ARR**: {len(arr)} paying customers; {len(over12)} above 12% "
        f"(funding the feature off margin), {len(over20)} above 20% (revisit at renewal).\n"
    )
    md.append(
        _table(
            ["customer", "tier", "cost % of revenue"],
            [[r["customer_id"], r["tier"], _places(r["cost_pct_of_mrr"], 1)] for r in over12[:10]],
        )
    )
    return {
        "rhythm": "weekly",
        "window": week.stated(),
        "period": [mid.date(), last],
        "markdown": "\n".join(md),
        "data": {
            "tiers": tiers,
            "features": feats,
            "user_quantiles": q,
            "cost_to_arr_over_12": len(over12),
            "cost_to_arr_over_20": len(over20),
            "tier_utilization": util,
        },
    }


#: the price paid per model this quarter and the one before (``{src}`` / ``{t}``: as WEEK_SQL)
MODEL_SQL = """
SELECT model,
  coalesce(sum(CASE WHEN {t} >= ? THEN cost_usd END), 0) AS this_cost,
  sum(CASE WHEN {t} >= ? THEN input_tokens + output_tokens ELSE 0 END) AS this_tok,
  coalesce(sum(CASE WHEN {t} < ? THEN cost_usd END), 0) AS prev_cost,
  sum(CASE WHEN {t} < ? THEN input_tokens + output_tokens ELSE 0 END) AS prev_tok
FROM {src}
WHERE kind = 'llm_call' AND {t} >= ? AND {t} < ?
GROUP BY 1
"""


def _source(
    con: QueryContext, sql: str, lo: dt.datetime, hi: dt.datetime, params: list[dt.datetime]
) -> tuple[str, list[Any]]:
    """``sql`` over the roll-up (its ``day`` compared with dates) when it can answer for
    ``lo`` .. ``hi`` and every bound is a UTC midnight, else over the events (``ts``)."""
    on_days = con.rollup_where(Window(lo, hi)) is not None
    if on_days and all(p.astimezone(dt.UTC).time() == dt.time(0) for p in params):
        return sql.replace("{src}", "rollup").replace("{t}", "day"), [
            p.astimezone(dt.UTC).date() for p in params
        ]
    return sql.replace("{src}", "events").replace("{t}", "ts"), list(params)


def quarterly(ledger: Any, day: dt.date | None = None) -> dict[str, Any]:
    """The quarterly digest: the 3 calendar months ending ``day``'s month against the 3 before."""
    with using(ledger) as ctx:
        return _quarterly(ctx, day)


def _quarterly(con: QueryContext, day: dt.date | None = None) -> dict[str, Any]:
    last = _last_day(con, day)
    end_m = add_months(last, 1)
    mid_m, lo_m = add_months(end_m, -3), add_months(end_m, -6)
    lo, mid, hi = _at(lo_m), _at(mid_m), _at(end_m)
    quarter = day_window(mid_m, end_m - dt.timedelta(days=1))
    require_events(con, quarter)  # a quarter with no events is not a quarter of zero spend
    tiers = _split(con, "c.tier", lo, mid, hi)
    feats = _split(con, "e.feature", lo, mid, hi)
    models = []
    model_sql = _source(con, MODEL_SQL, lo, hi, [mid, mid, mid, mid, lo, hi])
    for m, tc, tt, pc, pt in con.execute(*model_sql).fetchall():
        models.append(
            {
                "model": m,
                "this_usd": tc,
                "this_usd_per_mtok": float(tc) / tt * 1e6 if tt else None,
                "prev_usd_per_mtok": float(pc) / pt * 1e6 if pt else None,
            }
        )
    models.sort(key=lambda r: (-r["this_usd"], r["model"]))
    md = [
        f"## Quarterly tier review — {mid_m:%Y-%m} .. {add_months(end_m, -1):%Y-%m} "
        f"(vs {lo_m:%Y-%m} .. {add_months(mid_m, -1):%Y-%m})\n"
    ]
    md.append("**Spend by tier**\n")
    md.append(
        _table(
            ["tier", "this quarter", "last quarter", "share shift"],
            [[t["key"], _money(t["this_usd"]), _money(t["prev_usd"]), _shift(t)] for t in tiers],
        )
    )
    md.append("\n**Attribution shifts by feature**\n")
    md.append(
        _table(
            ["feature", "this quarter", "share %", "shift"],
            [
                [f["key"], _money(f["this_usd"]), _places(f["this_share_pct"], 1), _shift(f)]
                for f in feats[:10]
            ],
        )
    )
    md.append(
        "\n**Effective price by model ($ per million input + output tokens)** — "
        "recalibrate tier ceilings against these\n"
    )
    md.append(
        _table(
            ["model", "spend", "$/Mtok now", "$/Mtok last quarter"],
            [
                [
                    r["model"],
                    _money(r["this_usd"]),
                    _places(r["this_usd_per_mtok"], 4),
                    _places(r["prev_usd_per_mtok"], 4),
                ]
                for r in models[:10]
            ],
        )
    )
    return {
        "rhythm": "quarterly",
        "window": quarter.stated(),
        "period": [mid_m, add_months(end_m, -1)],
        "markdown": "\n".join(md),
        "data": {"tiers": tiers, "features": feats, "models": models},
    }


def digest(
    ledger: Any,
    rhythm: str,
    *,
    window: Window | None = None,
    day: dt.date | None = None,
    policy: Policy | None = None,
) -> dict[str, Any]:
    """The ``daily`` | ``weekly`` | ``quarterly`` digest ending ``day`` (default: last event;
    ``window``: ending its last day). ``ledger``: a ``QueryContext``, a ``Ledger`` or its
    directory, or an open connection."""
    if rhythm not in RHYTHMS:
        raise ConfigError(f"rhythm must be one of {', '.join(RHYTHMS)}, not {rhythm!r}")
    if day is None and window is not None:
        day = window.last_day
    with using(ledger) as ctx:
        if rhythm == "daily":
            return _daily(ctx, day, policy)
        if rhythm == "weekly":
            return _weekly(ctx, day, policy)
        return _quarterly(ctx, day)


#: the columns of ``csv_rows``: one flat table for every rhythm (``section`` says which part)
CSV_COLUMNS: tuple[str, ...] = (
    "rhythm",
    "window_start",
    "window_end",
    "section",
    "key",
    "customer_id",
    "this_usd",
    "prev_usd",
    "baseline_usd",
    "ratio",
    "this_share_pct",
    "prev_share_pct",
    "rate_pct",
    "usd_per_mtok",
    "prev_usd_per_mtok",
)


def csv_rows(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """The digest's tables as one flat list of rows (``CSV_COLUMNS``), each stating its window.

    daily: ``anomaly_{user,feature,customer}`` (this = 24h spend, baseline = trailing median),
    ``top_user``, ``top_feature`` (prev = the day before), ``tier_routing`` (out of band);
    weekly and quarterly: ``tier``, ``feature`` (this / prev period, shares), weekly also
    ``user_p90`` / ``user_p99`` (key this | prev), quarterly ``model`` ($ per Mtok).
    """
    data = rep["data"]
    out: list[dict[str, Any]] = []

    def add(section: str, key: Any, **kw: Any) -> None:
        out.append({"section": section, "key": key, **kw})

    if rep["rhythm"] == "daily":
        for a in data["anomalies"]:
            add(
                f"anomaly_{a['entity_type']}",
                a["entity_id"],
                customer_id=a["customer_id"],
                this_usd=a["spend_24h_usd"],
                baseline_usd=a["trailing_median_usd"],
                ratio=a["ratio"],
            )
        for u in data["top_users"]:
            add(
                "top_user",
                u["entity_id"],
                customer_id=u["customer_id"],
                this_usd=u["spend_24h_usd"],
                prev_usd=u["prev_day_usd"],
            )
        for f in data["top_features"]:
            add(
                "top_feature",
                f["entity_id"],
                this_usd=f["spend_24h_usd"],
                prev_usd=f["prev_day_usd"],
            )
        for t in data["tiers_out_of_band"]:
            add("tier_routing", t["tier"], rate_pct=t["rate_pct"])
    else:
        for section in ("tiers", "features"):
            for r in data[section]:
                add(
                    section[:-1],
                    r["key"],
                    this_usd=r["this_usd"],
                    prev_usd=r["prev_usd"],
                    this_share_pct=r["this_share_pct"],
                    prev_share_pct=r["prev_share_pct"],
                )
        for period, (p90, p99, _n) in sorted(data.get("user_quantiles", {}).items()):
            add("user_p90", period, this_usd=p90)
            add("user_p99", period, this_usd=p99)
        for m in data.get("models", []):
            add(
                "model",
                m["model"],
                this_usd=m["this_usd"],
                usd_per_mtok=m["this_usd_per_mtok"],
                prev_usd_per_mtok=m["prev_usd_per_mtok"],
            )
    w = rep["window"]
    for r in out:
        r.update(rhythm=rep["rhythm"], window_start=w["start"], window_end=w["end"])
    return out


def post(url: str, rep: dict[str, Any], *, timeout: float = 10.0) -> int:
    """POST ``{"text": markdown}`` to an incoming webhook; returns the HTTP status."""
    if not url.startswith(("https://", "http://")):
        raise ArgumentError("webhook", f"{url!r} is not an http(s) URL")
    body = json.dumps({"text": rep["markdown"]}).encode()
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # the scheme is checked above
            return int(resp.status)
    except OSError as exc:
        # the URL is a secret (it posts to a channel): the reason only
        raise ConfigError(f"the webhook could not be reached: {exc}") from None
