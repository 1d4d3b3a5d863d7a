"""The routing rates' three-day alert: three consecutive days above the alarm level, as the
eight-KPI framework states it ("a free-tier hard-cap rate above 25% for three consecutive days
is a tier-design problem"); a rate below the band reads as an over-sized pool ("below 3% ...
usually means the pool is over-sized"): ``watch``, never an alert.

Ledger (February 2026, judged as of the 28th: the whole month; policy ``POLICY`` of test_kpis:
free hard_cap, team payg), worked out by hand:
    free F1..F4 one call each on Feb 2; F1, F2 denied at the hard limit on Feb 3:
        month to date on Feb 26, 27, 28: 2 / 4 = 50% > 25% each day  -> act, alert
    team T1, T2 one call each on Feb 2, no overage event:
        0% on each of the three days, below the 5-15% band          -> watch, no alert
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tailguard.analytics.kpis import kpis
from tailguard.guard.policy import parse_policy
from tests.analytics.helpers import POLICY, Events, day, make_ledger

CSV = "".join(f"F{i},F{i},free,smb,0,1,,2025-01-01\n" for i in range(1, 5)) + (
    "T1,T1,team,mid_market,500,5,100,2025-01-01\nT2,T2,team,mid_market,500,5,100,2025-01-01\n"
)


def _overage(tmp_path: Any, customers: list[str], denied: list[str]) -> dict[str, Any]:
    e = Events()
    for c in customers:
        e.llm(c, f"{c.lower()}u", day(2), "0.10")
    for c in denied:
        e.guard(c, f"{c.lower()}u", day(3), "deny", "hard_limit")
    led = make_ledger(tmp_path, e.rows, CSV)
    con = led.connect()
    try:
        rep = kpis(con, period="2026-02", as_of=dt.date(2026, 2, 28), policy=parse_policy(POLICY))
    finally:
        con.close()
    return next(k for k in rep["kpis"] if k["id"] == "overage_routing_rate")


def test_three_days_above_the_alarm_alert(tmp_path: Any) -> None:
    k = _overage(tmp_path, ["F1", "F2", "F3", "F4", "T1", "T2"], ["F1", "F2"])
    m = k["metrics"][0]
    tiers = {t["tier"]: t for t in m["tiers"]}
    assert [d["rate_pct"] for d in tiers["free"]["last_3_days"]] == [50.0, 50.0, 50.0]
    assert tiers["free"]["alert_3_days"] is True
    assert [d["rate_pct"] for d in tiers["team"]["last_3_days"]] == [0.0, 0.0, 0.0]
    assert tiers["team"]["alert_3_days"] is False  # below the band is not a tier-design alarm
    assert m["alerts"] == ["free"] and k["status"] == "act"


def test_below_the_band_three_days_is_watch_not_act(tmp_path: Any) -> None:
    """Fails on the rule "three days out of band -> act": team at 0% for three days."""
    k = _overage(tmp_path, ["T1", "T2"], [])
    m = k["metrics"][0]
    assert m["value"] == {"team": 0.0}
    assert m["alerts"] == [] and m["status"] == "watch" and k["status"] == "watch"


@pytest.mark.parametrize("denied", [[], ["F1"], ["F1", "F2"], ["F1", "F2", "F3"]])
def test_alert_only_above_the_alarm(tmp_path: Any, denied: list[str]) -> None:
    """0%, 25%, 50%, 75% of four free customers: the alert exactly when above 25% (25% is at the
    alarm, not above it)."""
    k = _overage(tmp_path, ["F1", "F2", "F3", "F4"], denied)
    free = k["metrics"][0]["tiers"][0]
    assert free["rate_pct"] == 25.0 * len(denied)
    assert free["alert_3_days"] is (25.0 * len(denied) > 25)


def _unknown_panel(tmp_path: Any, policy: Any) -> dict[str, Any]:
    """F1..F4 free (customers rows), X1, X2 with events but no customers row: one call each on
    Feb 2; F1 and X1 denied at the hard limit on Feb 3; X2 degraded once on Feb 3."""
    e = Events()
    for c in ("F1", "F2", "F3", "F4", "X1", "X2"):
        e.llm(c, f"{c.lower()}u", day(2), "0.10")
    e.guard("F1", "f1u", day(3), "deny", "hard_limit")
    e.guard("X1", "x1u", day(3), "deny", "hard_limit")
    e.guard("X2", "x2u", day(3), "degrade", "soft_threshold")
    csv = "".join(f"F{i},F{i},free,smb,0,1,,2025-01-01\n" for i in range(1, 5))
    led = make_ledger(tmp_path, e.rows, csv)
    con = led.connect()
    try:
        pol = parse_policy(policy) if policy is not None else None
        return kpis(con, period="2026-02", as_of=dt.date(2026, 2, 28), policy=pol)
    finally:
        con.close()


def test_customers_without_a_row_are_counted_under_the_policy_default_tier(tmp_path: Any) -> None:
    """With POLICY (default_tier free: hard_cap), X1 and X2 are what the guard treats as free:
    the row ``unknown`` is judged as hard_cap: 1 of 2 active customers denied = 50% > 25% (act).
    Free itself: 1 of 4 = 25% (watch: above the 5-15% band, at the alarm, not above it). They
    were dropped: the KPI listed free alone and said watch."""
    rep = _unknown_panel(tmp_path, POLICY)
    k = next(k for k in rep["kpis"] if k["id"] == "overage_routing_rate")
    m = k["metrics"][0]
    assert m["value"] == {"free": 25.0, "unknown": 50.0}
    unk = next(t for t in m["tiers"] if t["tier"] == "unknown")
    assert (unk["pattern"], unk["pattern_source"]) == ("hard_cap", "policy default_tier")
    assert (unk["active_customers"], unk["llm_calls"], unk["status"]) == (2, 2, "act")
    assert unk["spend_usd"] == Decimal("0.20")
    assert k["status"] == "act"


def test_customers_without_a_row_have_the_default_tiers_budget(tmp_path: Any) -> None:
    """The same ledger: the guard budgets X1 and X2 as free ($1 a month), so the budget KPI and
    the per-user cap metrics count six free customers (F1..F4, X1, X2), each at $0.10 of $1 =
    10% used and projected (the whole month elapsed); they had no cap and were left out (4)."""
    rep = _unknown_panel(tmp_path, POLICY)
    tb = next(k for k in rep["kpis"] if k["id"] == "tier_budget_utilization")["metrics"][0]
    (free,) = tb["tiers"]
    assert (free["tier"], free["customers"]) == ("free", 6)
    assert free["median_projected_pct"] == pytest.approx(10.0, rel=1e-12)
    pu = next(k for k in rep["kpis"] if k["id"] == "per_user_cost")["metrics"]
    soft = next(m for m in pu if m["id"] == "top_decile_vs_soft_cap")
    assert [(t["tier"], t["users"]) for t in soft["tiers"]] == [("free", 6)]


def test_customers_without_a_row_and_no_policy_are_shown_not_judged(tmp_path: Any) -> None:
    """No policy: no pattern for X1, X2. Their row counts them (2 active customers, 2 calls,
    1 denied, 0 with an overage, 1 degraded call) and says ``unknown``; free is judged by the
    framework's default (hard_cap, 1 of 4 = 25%: watch), and the KPI's status is free's."""
    rep = _unknown_panel(tmp_path, None)
    k = next(k for k in rep["kpis"] if k["id"] == "overage_routing_rate")
    m = k["metrics"][0]
    assert m["value"] == {"free": 25.0, "unknown": None}
    unk = next(t for t in m["tiers"] if t["tier"] == "unknown")
    assert unk["pattern"] is None and unk["status"] == "unknown"
    got = (
        unk["active_customers"],
        unk["llm_calls"],
        unk["denied_customers"],
        unk["overage_customers"],
        unk["degraded_calls"],
    )
    assert got == (2, 2, 1, 0, 1)
    assert k["status"] == "watch"
