"""examples/policy.toml fits the simulated product: the same budgets, and a panel mostly in band.

The cost panel (``tailguard kpis``) judges each metric against the healthy bands of the tier-budget
practice; a panel that is always red teaches people to ignore it. On the demo's product (density
0.25, a month after a month of history) the example policy puts the panel mostly in band, and
the metrics that say "act" do so because of the planted tail customers.
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
    """The demo's product over October and November 2026 (600 customers, density 0.25)."""
    out = tmp_path_factory.mktemp("fit")
    res = simulate(
        customers=600,
        days=61,
        seed=7,
        out=out / "sim",
        fmt="parquet",
        density=0.25,
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
    example states: free 400,000 tokens, pro $1.25 a seat, team $1.50 a seat (written as the
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
            "free": ("tok", Decimal(400_000)),
            "pro": ("usd", Decimal("1.25") * seats),
            "team": ("usd", Decimal("1.50") * seats),
            "enterprise": ("usd", pool or Decimal(0)),
            "custom": ("usd", pool or Decimal(0)),
        }[r["tier"]]
        micro = Decimal(a.hard_limit) / (Decimal(10) ** 6 if a.budget_unit == "usd" else 1)
        assert (a.budget_unit, micro) == expected, r
        if r["tier"] == "team":
            assert pool == Decimal("1.50") * seats  # the pool a team plan pays for
        tiers_seen.add(r["tier"])
    assert tiers_seen == {"free", "pro", "team", "enterprise", "custom"}


def _panel(ledger: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run(["kpis", "--ledger", str(ledger), "--policy", str(EXAMPLE), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_panel_is_mostly_in_band_with_the_tail_as_exceptions(
    demo_like: tuple[SimulationResult, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Of the panel's 16 metrics at most three say "act" (ten did before the simulated product
    and the example policy were fitted to each other), and each for a reason the demo plants:

    - ``top_percentile_vs_hard_cap``: pro degrades past its cap instead of denying, so the
      planted heavy users keep spending past it (the pattern the metric is there to show);
    - ``cost_to_arr``: every customer above 20% of its ARR is a planted one;
    - ``overage_routing_rate``: contracted pools are sized with headroom, so fewer than 5% of
      workspaces pay overage (below the band, three days running).
    """
    res, ledger = demo_like
    panel = _panel(ledger, capsys)
    assert panel["period"] == "2026-11" and panel["days_elapsed"] == 30  # a whole month
    metrics = {m["id"]: m for k in panel["kpis"] for m in k["metrics"]}
    assert len(metrics) == 16
    act = {i for i, m in metrics.items() if m["status"] == "act"}
    assert len(act) <= 3, act
    assert act <= {"top_percentile_vs_hard_cap", "cost_to_arr", "overage_routing_rate"}, act
    planted = set(json.loads(res.truth_path.read_text())["shapes"])
    over20 = metrics["cost_to_arr"]["revisit_at_renewal"]
    assert over20 and {x["customer_id"] for x in over20} <= planted
    # the anchors of the panel sit in their bands
    assert 0.5 <= metrics["median_paid_user_seat_pct"]["value"] <= 1.5
    assert 5 <= metrics["overage_routing_rate"]["value"]["free"] <= 15
    assert all(v <= 100 for v in metrics["top_decile_vs_soft_cap"]["value"].values())


def test_diagnosis_finds_the_planted_shapes_on_the_demos_product(
    demo_like: tuple[SimulationResult, Path],
) -> None:
    """On the demo's product, fully priced (tools, retrieval, escalations) and under its
    budgets (degraded calls, denied sessions), the diagnosis names the planted shapes with
    precision and recall >= 0.9 among the tail customers it judges, and most planted customers
    are big enough to reach that tail with the 20 tasks it needs to judge one: here, on two
    months at a quarter of the activity, 11 of 14 pairs (asserted: three quarters); on the
    demo's year, 14 of 14."""
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
