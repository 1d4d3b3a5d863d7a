"""examples/policy.toml fits the simulated product: the same budgets, and a panel mostly in band.

The cost panel (``tailguard kpis``) judges each metric against the healthy bands of the tier-budget
practice; a panel that is always red teaches people to ignore it. On the demo's product (a
month after a month of history) every metric that says "act" does so for a stated reason: the
heavy tail the product is built to show, or a band of the framework that describes a cheaper
chat product than this agentic one.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.cli import run
from tailguard.guard import CustomerInfo, parse_policy
from tailguard.ledger import Ledger
from tailguard.simulate import SimulationResult, simulate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, Path]:
    """The demo's product over October and November 2026 (400 customers)."""
    out = tmp_path_factory.mktemp("fit")
    res = simulate(
        customers=400,
        days=61,
        seed=7,
        out=out / "sim",
        fmt="parquet",
        start=dt.date(2026, 10, 1),
    )
    led = Ledger(out / "ledger")
    res.load_into(led)
    return res, led.path


def test_example_policy_gives_every_customer_the_simulated_budget(
    demo_like: tuple[SimulationResult, Path],
) -> None:
    """Customer by customer, the guard's limits under examples/policy.toml equal those under the
    policy the simulation wrote, and both equal the budget worked out here from the rules the
    example states: free 3,000,000 tokens, pro $12 a seat, team $20 a seat (written as the
    contracted pool), enterprise and usage-based their contracted pool."""
    res, _ = demo_like
    example = parse_policy(tomllib.loads(EXAMPLE.read_text()))
    written = parse_policy(tomllib.loads(res.policy_path.read_text()))
    with open(res.customers_path, newline="") as f:
        rows = list(csv.DictReader(f))
    tiers_seen = set()
    for r in rows:
        pool = Decimal(r["contracted_pool_usd"]) if r["contracted_pool_usd"] else None
        info = CustomerInfo(r["tier"], int(r["seats"]), pool)
        a = example.limits_for(r["customer_id"], info=info)
        b = written.limits_for(r["customer_id"], info=info)
        assert (a.tier, a.budget_unit, a.hard_limit, a.soft_limit, a.overage) == (
            b.tier,
            b.budget_unit,
            b.hard_limit,
            b.soft_limit,
            b.overage,
        ), r
        seats = int(r["seats"])
        expected: tuple[str, Decimal] = {
            "free": ("tok", Decimal(3_000_000)),
            "pro": ("usd", Decimal(12) * seats),
            "team": ("usd", Decimal(20) * seats),
            "enterprise": ("usd", pool or Decimal(0)),
            "custom": ("usd", pool or Decimal(0)),
        }[r["tier"]]
        micro = Decimal(a.hard_limit) / (Decimal(10) ** 6 if a.budget_unit == "usd" else 1)
        assert (a.budget_unit, micro) == expected, r
        if r["tier"] == "team":
            assert pool == Decimal(20) * seats  # the pool a team plan pays for
        tiers_seen.add(r["tier"])
    assert tiers_seen == {"free", "pro", "team", "enterprise", "custom"}
    # the panel's per-task bands for this product, as the example states them (by hand)
    assert (
        example.workload_bands
        == written.workload_bands
        == {
            "chat": (1_000, 4_000, 10_000),
            "agent": (80_000, 250_000, 500_000),
            "rag": (4_000, 16_000, 32_000),
        }
    )


def _panel(ledger: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run(["kpis", "--ledger", str(ledger), "--policy", str(EXAMPLE), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_panel_says_act_only_for_stated_reasons(
    demo_like: tuple[SimulationResult, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each metric at "act" is one of these, for the reason given:

    - ``median_paid_user_seat_pct`` (0.5-1.5% of a seat): the eight-KPI framework's band for a
      chat-first product; this one runs 2026 agents and its median paying customer spends
      several percent of its MRR (the cost-allocation guide's world);
    - ``top_decile_vs_soft_cap``, ``top_percentile_vs_hard_cap``: budgets follow the
      cost-allocation guide's rule (a cap near 150-200% of the median customer's usage), not the
      framework's 90th percentile, so the heavy tail (the planted customers among it) crosses
      them: the pattern these metrics are there to show;
    - ``cost_to_arr``: customers above 20% of their ARR, every one of them planted or paying
      for a pro or team plan.
    The per-task bands are the product's own (``[kpis.workload]`` in the policy), and the routing
    rates alert only above their alarm for three days (the framework's rule), so neither is at
    "act". Asserted besides: the anchors that do not depend on that choice stay in band, at most
    two of the eight KPIs are at "act", and at most four of the sixteen metrics.
    """
    _res, ledger = demo_like
    panel = _panel(ledger, capsys)
    assert panel["period"] == "2026-11" and panel["days_elapsed"] == 30  # a whole month
    metrics = {m["id"]: m for k in panel["kpis"] for m in k["metrics"]}
    assert len(metrics) == 16
    act = {i for i, m in metrics.items() if m["status"] == "act"}
    explained = {
        "median_paid_user_seat_pct",
        "top_decile_vs_soft_cap",
        "top_percentile_vs_hard_cap",
        "cost_to_arr",
    }
    assert act <= explained, act - explained
    assert len(act) <= 4, act
    kpi_act = [k["id"] for k in panel["kpis"] if k["status"] == "act"]
    assert set(kpi_act) <= {"per_user_cost", "per_tenant_cost"}, kpi_act
    assert metrics["agent_effective_tokens"]["band_source"] == "policy"
    # the median customer stays under every soft threshold; the free cap catches 5-20%
    assert metrics["median_projected_pct"]["status"] != "act"
    assert 5 <= metrics["overage_routing_rate"]["value"]["free"] <= 20
    assert metrics["median_paid_user_seat_pct"]["value"] <= 20  # the guide's SMB target


def test_diagnosis_finds_the_planted_shapes_on_the_demos_product(
    demo_like: tuple[SimulationResult, Path],
) -> None:
    """On the demo's product, fully priced (tools, retrieval, escalations) and under its
    budgets (degraded calls, denied sessions), the diagnosis names the planted shapes with
    precision and recall >= 0.9 among the tail customers it judges, and most planted customers
    are big enough to reach that tail with the 20 tasks it needs to judge one (asserted: three
    quarters of the planted pairs on these two months)."""
    from tailguard.analytics.diagnose import diagnose
    from tailguard.analytics.period import Window

    res, ledger = demo_like
    truth = json.loads(res.truth_path.read_text())
    con = Ledger(ledger).connect()
    try:
        diag = diagnose(con, Window())
    finally:
        con.close()
    judged = {r["customer_id"] for r in diag if r["judged"]}
    pred = {(r["customer_id"], s) for r in diag for s in r["shapes"]}
    actual = {(c, s) for c, ss in truth["shapes"].items() if c in judged for s in ss}
    hit = len(pred & actual)
    assert hit / len(pred) >= 0.9 and hit / len(actual) >= 0.9, (pred - actual, actual - pred)
    planted = sum(len(ss) for ss in truth["shapes"].values())
    assert len(actual) >= 0.75 * planted
