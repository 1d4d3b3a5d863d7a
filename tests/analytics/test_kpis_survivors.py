"""The eight-KPI panel on a mid-month ledger built so that each band edge and filter the other
kpis tests leave untouched changes a figure (the mutation survivors of ``analytics/kpis.py``).

Ledger (February 2026, judged as of the 14th: 14 of 28 days, pools prorated by 1/2; revenue
for 14 / 30.436875 months, ``m`` below). Policy ``SOFT_HALF``: every tier's soft threshold 0.5,
so the per-user soft caps are binary-exact (free $1 -> 0.5; pro $32 -> 16; team $10 a seat;
enterprise $5000 -> 2500 / 50 seats = 50 a user, hard 100 a user).

    customer  tier        segment     MRR   seats pool  signup      spend (all on Feb 1 unless said)
    T1        team        mid_market  1000  10    -     2025-02-14  $40 chat
    T2        team        mid_market  1000  10    200   2025-06-01  $95 chat; overage Feb 12
    T3        team        mid_market  1000  10    100   2025-06-01  $10 chat; overage Feb 13
    E1..E4    enterprise  enterprise  5000  50    -     2020-01-01  $50 chat each; E1 overage Feb 1
    F0        free        smb         10    1     -     2020-01-01  $0.10 search; denied (hard
                                                                     limit) Feb 13
    F1        free        smb         0     1     -     2020-01-01  $0.10 search; denied Feb 10
    F2, F3    free        smb         0     1     -     2020-01-01  $0.10 search
    F4        free        smb         0     1     -     2020-01-01  $0.10 search on Feb 13
    P0        pro         smb         50    0     -     2020-01-01  $9.60 chat
    P1        pro         smb         0     1     -     2020-01-01  $9.60 chat
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tailguard.analytics.kpis import kpis, panel_period
from tailguard.guard.policy import parse_policy
from tests.analytics.helpers import Events, day, make_ledger
from tests.analytics.helpers import metric as _metric

SOFT_HALF = {
    "guard": {"default_tier": "free"},
    "tiers": {
        "free": {
            "period": "month",
            "hard_limit_usd": 1,
            "soft_threshold": 0.5,
            "overage": "hard_cap",
        },
        "pro": {
            "period": "month",
            "hard_limit_usd": 32,
            "soft_threshold": 0.5,
            "overage": "soft_cap_degrade",
            "degrade_to": {"big": "small"},
        },
        "team": {
            "period": "month",
            "pool_per_seat_usd": 10,
            "soft_threshold": 0.5,
            "overage": "payg",
        },
        "enterprise": {
            "period": "month",
            "hard_limit_usd": 5000,
            "soft_threshold": 0.5,
            "overage": "payg",
        },
    },
}

CSV = (
    "T1,T1,team,mid_market,1000,10,,2025-02-14\n"
    "T2,T2,team,mid_market,1000,10,200,2025-06-01\n"
    "T3,T3,team,mid_market,1000,10,100,2025-06-01\n"
    + "".join(f"E{i},E{i},enterprise,enterprise,5000,50,,2020-01-01\n" for i in range(1, 5))
    + "F0,F0,free,smb,10,1,,2020-01-01\n"
    + "".join(f"F{i},F{i},free,smb,0,1,,2020-01-01\n" for i in range(1, 5))
    + "P0,P0,pro,smb,50,0,,2020-01-01\n"
    + "P1,P1,pro,smb,0,1,,2020-01-01\n"
)

#: months of revenue in Feb 1..14 (the average month, as ``customer_rows`` counts it)
M = 14 / 30.436875


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path: Path = tmp_path_factory.mktemp("kpis_survivors")
    e = Events()
    e.llm("T1", "t1u", day(1), "40.00")
    e.llm("T2", "t2u", day(1), "95.00")
    e.llm("T3", "t3u", day(1), "10.00")
    for i in range(1, 5):
        e.llm(f"E{i}", f"e{i}u", day(1), "50.00")
    for i in range(4):
        e.llm(f"F{i}", f"f{i}u", day(1), "0.10", feature="search")
    e.llm("F4", "f4u", day(13), "0.10", feature="search")
    e.llm("P0", "p0u", day(1), "9.60")
    e.llm("P1", "p1u", day(1), "9.60")
    e.guard("T2", "t2u", day(12), "overage", "payg")
    e.guard("T3", "t3u", day(13), "overage", "payg")
    e.guard("E1", "e1u", day(1), "overage", "payg")
    e.guard("F1", "f1u", day(10), "deny", "hard_limit")
    e.guard("F0", "f0u", day(13), "deny", "hard_limit")
    con = make_ledger(tmp_path, e.rows, CSV).connect()
    try:
        return kpis(
            con, period="2026-02", as_of=dt.date(2026, 2, 14), policy=parse_policy(SOFT_HALF)
        )
    finally:
        con.close()


def test_p90_soft_cap_edges(report: dict[str, Any]) -> None:
    """p90 user as % of the soft cap, per tier (every user of a tier spends the same, so the
    p90 is that user's figure):

    - enterprise: $50 / $50 = 100%: not above 100 (so not act), outside 60-80: watch;
    - pro: $9.60 / $16 = 60%: the band's lower edge, ok;
    - free: $0.10 / $0.50 = 20%: watch;
    - team: T3 10 / (100 × 0.5 / 10 = 5) = 200%, T1 40 / 5 = 800%, T2 95 / (200 × 0.5 / 10 = 10)
      = 950%: sorted 200, 800, 950, p90 at position 1.8 = 800 + 0.8 × 150 = 920%: act.
    The band is [60, 80].
    """
    soft = _metric(report, "per_user_cost", "top_decile_vs_soft_cap")
    assert soft["band"] == [60, 80]
    assert soft["value"] == {
        "enterprise": pytest.approx(100, rel=1e-12),
        "free": pytest.approx(20, rel=1e-12),
        "pro": pytest.approx(60, rel=1e-12),
        "team": pytest.approx(920, rel=1e-12),
    }
    status = {t["tier"]: t["status"] for t in soft["tiers"]}
    assert status == {"enterprise": "watch", "free": "watch", "pro": "ok", "team": "act"}
    assert {t["tier"]: t["users"] for t in soft["tiers"]} == {
        "enterprise": 4,
        "free": 5,
        "pro": 2,
        "team": 3,
    }


def test_paid_seat_filters(report: dict[str, Any]) -> None:
    """Median paid user's cost as % of the seat price: only paying customers (tier not free,
    MRR > 0, seats > 0), so F0 (free, MRR 10), P0 (0 seats) and P1 (MRR 0) are out: 7 users,
    T1..T3 and E1..E4, each seat priced 100 (1000 / 10 and 5000 / 50) a month.
    Costs 10, 40, 50, 50, 50, 50, 95: median 50 -> 50 / (100 × m) × 100 = 50 / m
    = 50 × 30.436875 / 14 = 108.70% > 3%: act."""
    seat = _metric(report, "per_user_cost", "median_paid_user_seat_pct")
    assert seat["users"] == 7
    assert seat["value"] == pytest.approx(50 / M, rel=1e-9)
    assert seat["status"] == "act"


def test_cohort_boundary_is_strict(report: dict[str, Any]) -> None:
    """New = signed up after as_of - 365 days = 2025-02-14 (strictly): T2, T3 (new, $105 for 2
    users = 52.5); T1, signed up exactly on 2025-02-14, is the year-old cohort (after as_of -
    730 days = 2024-02-15, by 2025-02-14): $40 for 1 user. E1..E4, F0..F4, P0, P1 (2020) are
    older: 11 users counted apart. Drift (52.5 / 40 - 1) × 100 = 31.25% (ok). With ``>=`` at the
    first edge T1 would be new and no year-old cohort would be left (no data)."""
    coh = _metric(report, "per_user_cost", "cohort_drift")
    assert (coh["new_users"], coh["returning_users"], coh["older_users"]) == (2, 1, 11)
    assert coh["value"] == 31.25
    assert coh["status"] == "ok"


def test_pool_utilization_is_prorated(report: dict[str, Any]) -> None:
    """Pools prorated to half the month: T1 (no contracted pool: the policy's 10 seats × $10 =
    $100) 40 / 50 = 80% (neither); T2 95 / 100 = 95% > 90 (upgrade); T3 10 / 50 = 20% (right
    size); E1..E4 (the policy's $5000) 50 / 2500 = 2% each (right size). Seven pooled."""
    pool = _metric(report, "per_tenant_cost", "pool_utilization")
    assert [(x["customer_id"], x["utilization_pct"]) for x in pool["upgrade"]] == [
        ("T2", pytest.approx(95, rel=1e-12))
    ]
    assert [(x["customer_id"], x["utilization_pct"]) for x in pool["right_size"]] == [
        ("T3", pytest.approx(20, rel=1e-12)),
        *((f"E{i}", pytest.approx(2, rel=1e-12)) for i in range(1, 5)),
    ]
    assert pool["value"] == {
        "upgrade_candidates": 1,
        "right_size_candidates": 5,
        "pooled_customers": 7,
    }
    assert pool["status"] == "watch"


def test_routing_day_edges(report: dict[str, Any]) -> None:
    """Month to date on Feb 12, 13, 14 (a customer counts from the day it is first active, a
    cap or an overage from its day):

    - free (hard_cap): active F0..F3 from Feb 1, F4 from Feb 13; denied F1 Feb 10, F0 Feb 13:
      Feb 12 1 / 4 = 25%, Feb 13 2 / 5 = 40%, Feb 14 40%; not all three above 25: no alert;
      the period 2 / 5 = 40% > 25: act.
    - enterprise (payg): E1 of four with an overage from Feb 1: 25% each day, never above the
      25% alarm: no alert; 25% is outside 5-15 and not above 25: watch.
    - team (payg): overage T2 Feb 12, T3 Feb 13 of three: 33.33, 66.67, 66.67%: alert.
    """
    ov = _metric(report, "overage_routing_rate", "overage_routing_rate")
    tiers = {t["tier"]: t for t in ov["tiers"]}
    assert [d["rate_pct"] for d in tiers["free"]["last_3_days"]] == [
        pytest.approx(25, rel=1e-12),
        pytest.approx(40, rel=1e-12),
        pytest.approx(40, rel=1e-12),
    ]
    assert [d["day"] for d in tiers["free"]["last_3_days"]] == [
        dt.date(2026, 2, 12),
        dt.date(2026, 2, 13),
        dt.date(2026, 2, 14),
    ]
    assert [d["rate_pct"] for d in tiers["enterprise"]["last_3_days"]] == [25.0, 25.0, 25.0]
    assert [d["rate_pct"] for d in tiers["team"]["last_3_days"]] == [
        pytest.approx(100 / 3, rel=1e-12),
        pytest.approx(200 / 3, rel=1e-12),
        pytest.approx(200 / 3, rel=1e-12),
    ]
    assert ov["alerts"] == ["team"]
    assert {t: r["status"] for t, r in tiers.items()} == {
        "enterprise": "watch",
        "free": "act",
        "team": "act",
    }
    assert {t: r["active_customers"] for t, r in tiers.items()} == {
        "enterprise": 4,
        "free": 5,
        "team": 3,
    }


def test_feature_share_watch(report: dict[str, Any]) -> None:
    """chat: 40 + 95 + 10 + 200 + 19.2 = 364.2 of 364.7 (search 5 × 0.10) = 99.86% of spend,
    9 of 14 calls = 64.29% of usage: above 50% but below 3 × 64.29: watch."""
    f = _metric(report, "top_feature_concentration", "top_feature_spend_share")
    assert f["top_feature"] == "chat"
    assert f["value"] == pytest.approx(364200 / 3647, rel=1e-12)
    assert f["features"][0]["usage_share_pct"] == pytest.approx(900 / 14, rel=1e-12)
    assert f["status"] == "watch"


def test_cost_to_revenue_weighted_levels(report: dict[str, Any]) -> None:
    """Target and alert of the cost-allocation guide, weighted by each segment's revenue (every
    customer's revenue is MRR × m, so m cancels): mid_market 3000 (18 / 30), enterprise 20000
    (15 / 25), smb 60 (20 / 35; F0 10 + P0 50):
    target (3000 × 18 + 20000 × 15 + 60 × 20) / 23060 = 355200 / 23060 = 15.40%;
    alert (3000 × 30 + 20000 × 25 + 60 × 35) / 23060 = 592100 / 23060 = 25.68%.
    Cost 364.7 / (23060 × m) = 3.44% < target: ok."""
    c = _metric(report, "cost_to_revenue", "cost_pct_of_revenue")
    assert c["band"] == [0, pytest.approx(355200 / 23060, rel=1e-6)]
    assert c["alert_above"] == pytest.approx(592100 / 23060, rel=1e-6)
    assert c["value"] == pytest.approx(364.7 / (23060 * M) * 100, rel=1e-6)
    assert c["status"] == "ok"


# --- the band edges of the p90 soft cap and the paid-seat filters' constants ------------------

EDGE_CSV = (
    "F1,F1,free,smb,0,1,,2020-01-01\n"
    "P1,P1,pro,smb,1,1,,2020-01-01\n"
    "E1,E1,enterprise,enterprise,5000,50,,2020-01-01\n"
    "T1,T1,team,mid_market,1000,10,100,2020-01-01\n"
)


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """February 2026, one user per customer, one call each on Feb 1 (policy ``SOFT_HALF``)."""
    tmp_path: Path = tmp_path_factory.mktemp("kpis_edges")
    e = Events()
    e.llm("F1", "f1u", day(1), "0.40")
    e.llm("P1", "p1u", day(1), "16.08")
    e.llm("E1", "e1u", day(1), "40.25")
    e.llm("T1", "t1u", day(1), "2.975")
    con = make_ledger(tmp_path, e.rows, EDGE_CSV).connect()
    yield con
    con.close()


def test_p90_soft_cap_band_edges_from_both_sides(edges: Any) -> None:
    """Whole month (as of Feb 28). p90 of one user = that user, as % of the per-user soft cap:

    - free F1 0.40 / 0.50 = 80%: the band's upper edge, ok;
    - pro P1 16.08 / 16 = 100.5%: just above 100, act;
    - enterprise E1 40.25 / 50 = 80.5%: just above the band, watch;
    - team T1 2.975 / (100 × 0.5 / 10 = 5) = 59.5%: just below the band, watch.
    Paid seats (tier not free, MRR > 0, seats > 0): P1 (MRR 1, 1 seat), E1, T1: 3 users, each
    cost / seat price (1, 100, 100) × 100: 1608, 40.25, 2.975 -> median 40.25%."""
    rep = kpis(edges, period="2026-02", as_of=dt.date(2026, 2, 28), policy=parse_policy(SOFT_HALF))
    soft = _metric(rep, "per_user_cost", "top_decile_vs_soft_cap")
    assert soft["value"] == {
        "enterprise": pytest.approx(80.5, rel=1e-12),
        "free": pytest.approx(80, rel=1e-12),
        "pro": pytest.approx(100.5, rel=1e-12),
        "team": pytest.approx(59.5, rel=1e-12),
    }
    status = {t["tier"]: t["status"] for t in soft["tiers"]}
    assert status == {"enterprise": "watch", "free": "ok", "pro": "act", "team": "watch"}
    seat = _metric(rep, "per_user_cost", "median_paid_user_seat_pct")
    assert seat["users"] == 3
    assert seat["value"] == pytest.approx(40.25, rel=1e-9)


def test_panel_as_of_the_first_of_the_month(edges: Any) -> None:
    """As of Feb 1 (the month's first day, inside the month): one day of 28 elapsed."""
    p = panel_period(edges, "2026-02", dt.date(2026, 2, 1))
    assert (p.as_of, p.elapsed_days, p.month_days) == (dt.date(2026, 2, 1), 1, 28)
    assert p.start == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


def test_tier_budget_watch_and_order(report: dict[str, Any]) -> None:
    """Spend so far × 28 / 14 against each customer's cap (soft threshold 50%), no cap hit and
    none projected to hit within the month (T2: ceil(200 / (95 / 14)) = 30 > 28):

    - team: T1 80 / 100 = 80%, T2 190 / 200 = 95%, T3 20 / 100 = 20%: median 80% >= 50: watch;
    - pro: P0, P1 19.2 / 32 = 60% each: watch;
    - free: F0..F4 0.2 / 1 = 20%: ok; enterprise: 100 / 5000 = 2%: ok.
    At risk (not ok), highest projection first: T2 95, T1 80, P0 60, P1 60. The cost-to-ARR
    band is the healthy 3-8%."""
    m = _metric(report, "tier_budget_utilization", "median_projected_pct")
    tiers = {t["tier"]: t for t in m["tiers"]}
    assert {t: r["median_projected_pct"] for t, r in tiers.items()} == {
        "enterprise": pytest.approx(2, rel=1e-12),
        "free": pytest.approx(20, rel=1e-12),
        "pro": pytest.approx(60, rel=1e-12),
        "team": pytest.approx(80, rel=1e-12),
    }
    assert {t: r["status"] for t, r in tiers.items()} == {
        "enterprise": "ok",
        "free": "ok",
        "pro": "watch",
        "team": "watch",
    }
    assert {(r["hit"], r["projected_to_hit"]) for r in tiers.values()} == {(0, 0)}
    assert [r["customer_id"] for r in m["at_risk"]] == ["T2", "T1", "P0", "P1"]
    assert m["at_risk_count"] == 4 and m["status"] == "watch"
    assert _metric(report, "per_tenant_cost", "cost_to_arr")["band"] == [3, 8]
