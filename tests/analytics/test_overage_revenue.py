"""Pay-as-you-go overage is revenue: a customer on a plan with an included budget and overage
past it is billed the plan fee and the overage (the eight-KPI framework: "pay-as-you-go meters
above the ceiling"; the cost-allocation guide: "included credits + overage ... use beyond that
incurs a per-unit overage charge"). The guard meters it as an ``overage`` event whose
``amount_usd`` is the dollars past the budget (docs/guard.md).

Ledger (February 2026, the whole month: revenue = MRR × 1), through the real ingest:

    T1  team, mid_market, MRR 100, pool 50: one LLM call of $150 on Feb 10, past its $50 pool:
        the guard's overage event of $100 (payg) on Feb 10
    T2  team, mid_market, MRR 100: $10 on Feb 1 and $10 on Feb 28, no overage

    T1  revenue 100 + 100 = 200; cost % 150 / 200 = 75%; margin 200 - 150 = +50
        (counting the plan fee alone: revenue 100, 150%, margin -50: "underwater")
    T2  revenue 100; 20 / 100 = 20%; margin +80
    product: cost 170 / revenue 300 = 56.666...% (was 170 / 200 = 85%)
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.analytics.decide import decide
from tailguard.analytics.kpis import kpis
from tailguard.analytics.margins import margins
from tailguard.analytics.period import window
from tailguard.analytics.renewal import renewal
from tailguard.ledger import Ledger
from tests.analytics.helpers import Events, day, make_ledger
from tests.analytics.helpers import metric as _metric

CSV = "T1,T1,team,mid_market,100,1,50,2025-01-01\nT2,T2,team,mid_market,100,1,,2025-01-01\n"


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    tmp_path: Path = tmp_path_factory.mktemp("overage")
    e = Events()
    e.llm("T1", "t1u", day(10), "150.00")
    e.guard("T1", "t1u", day(10), "overage", "payg")
    e.rows[-1]["amount_usd"] = "100.00"
    e.llm("T2", "t2u", day(1), "10.00")
    e.llm("T2", "t2u", day(28), "10.00")
    return make_ledger(tmp_path, e.rows, CSV)


FEB = window("2026-02")


def test_margins_count_the_overage_as_revenue(led: Ledger) -> None:
    rep = margins(led, window=FEB)
    t1 = next(r for r in rep["customers"] if r["customer_id"] == "T1")
    assert (t1["revenue_usd"], t1["cost_pct_of_mrr"]) == (Decimal(200), 75.0)
    assert t1["gross_margin_usd"] == Decimal(50)
    assert rep["underwater"] == []  # it pays for what it uses: 150 of cost, 200 billed
    assert t1["overage_usd"] == Decimal(100)
    t2 = next(r for r in rep["customers"] if r["customer_id"] == "T2")
    assert (t2["revenue_usd"], t2["cost_pct_of_mrr"], t2["overage_usd"]) == (100, 20.0, 0)
    (feb,) = rep["bands_by_month"]
    # T1 75% > 30% (mid_market alert), T2 20% (watch: 18-30); nobody underwater that month
    assert (feb["month"], feb["alert"], feb["watch"], feb["underwater"]) == ("2026-02", 1, 1, 0)


def test_the_panel_counts_the_overage_as_revenue(led: Ledger) -> None:
    rep = kpis(led, period="2026-02", as_of=dt.date(2026, 2, 28))
    arr = _metric(rep, "per_tenant_cost", "cost_to_arr")
    assert (arr["dearest_customer"], arr["value"]) == ("T1", 75.0)
    rev = _metric(rep, "cost_to_revenue", "cost_pct_of_revenue")
    assert (rev["cost_usd"], rev["revenue_usd"]) == (Decimal(170), Decimal(300))
    assert rev["value"] == pytest.approx(17000 / 300, rel=1e-12)


def test_decide_counts_the_overage_in_the_price_paid(led: Ledger) -> None:
    d = decide(led, "T1", window=FEB)
    assert d["months"] == 1
    assert (d["price_paid_usd"], d["revenue_usd"], d["gross_margin_usd"]) == (200, 200, 50)
    assert d["monthly_price_usd"] == 200
    assert d["recommendation"] == "keep"  # the margin is not negative
    assert d["overage_usd"] == 100
    assert (
        "price paid: MRR 100.00 × 1.0000 + pay-as-you-go overage billed 100.00 = 200.00; "
        "monthly price 200.00 / 1.0000 = 200.00"
    ) in d["arithmetic"]


def test_renewal_counts_the_overage_as_revenue(led: Ledger) -> None:
    """The one-pager's window is Feb 1 .. 28 (the ledger's days), 28 / 30.436875 months of MRR
    (not flagged a calendar month): revenue 100 × 28 / 30.436875 + 100 = 191.99 (was 91.99:
    "underwater" by 58.01 when it paid 41.99 more than it cost)."""
    r = renewal(led, "T1", as_of=dt.date(2026, 2, 28))
    assert r["cost_usd"] == 150
    assert float(r["revenue_usd"]) == pytest.approx(100 * 28 / 30.436875 + 100, rel=1e-12)
    assert float(r["gross_margin_usd"]) == pytest.approx(100 * 28 / 30.436875 - 50, rel=1e-12)
    assert r["overage_usd"] == 100


def test_no_customers_row_keeps_no_revenue() -> None:
    """A customer without MRR (no customers row) billed $100 of overage: its plan fee is
    unknown, so its revenue stays unknown (not $100: half a bill)."""
    from tailguard.analytics.margins import billed_figures

    got: dict[str, Any] = billed_figures(Decimal(150), None, Decimal(1), Decimal(100))
    assert got == {
        "revenue_usd": None,
        "cost_pct_of_mrr": None,
        "gross_margin_usd": None,
        "overage_usd": Decimal(100),
    }


money = st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False, allow_infinity=False)


@given(
    cost=money,
    mrr=st.one_of(st.none(), money),
    months=st.sampled_from([Decimal(1), Decimal(3), Decimal(28) / Decimal("30.436875")]),
    overage=st.one_of(st.none(), money),
)
@settings(max_examples=200, deadline=None)
def test_billed_figures_invariants(
    cost: Decimal, mrr: Decimal | None, months: Decimal, overage: Decimal | None
) -> None:
    """Against ``margin_figures`` (the plan fee alone): the revenue grows by exactly the
    overage, the margin is revenue - cost, cost % x revenue / 100 is the cost; no MRR, no
    revenue whatever the overage; no overage, the plan-fee figures unchanged."""
    from tailguard.analytics.customers import margin_figures
    from tailguard.analytics.margins import billed_figures

    base = margin_figures(cost, mrr, months)
    got = billed_figures(cost, mrr, months, overage)
    assert got["overage_usd"] == (overage or 0)
    if mrr is None:
        assert got["revenue_usd"] is None and got["gross_margin_usd"] is None
        return
    assert got["revenue_usd"] == base["revenue_usd"] + (overage or 0)
    assert got["gross_margin_usd"] == got["revenue_usd"] - cost
    if not overage:
        assert {k: got[k] for k in base} == base
    if got["revenue_usd"]:
        assert got["cost_pct_of_mrr"] == pytest.approx(
            float(cost / got["revenue_usd"] * 100), rel=1e-12
        )
    else:
        assert got["cost_pct_of_mrr"] is None


def test_the_headline_counts_the_overage_as_revenue() -> None:
    """The demo's headline judges underwater as margins does. A (payg) costs $150 on a $100
    plan and was billed $100 of overage: revenue $200, margin +$50, not underwater (it read
    -$50). B costs $300 on a $100 plan, no overage: -$200, underwater."""
    from decimal import Decimal as D

    from tailguard.analytics.headline import headline

    def row(cid: str, cost: str) -> dict[str, Any]:
        c = D(cost)
        return {
            "customer_id": cid, "tier": "team", "cost_usd": c, "mrr_usd": D(100),
            "revenue_usd": D(100), "gross_margin_usd": D(100) - c,
            "cost_pct_of_mrr": float(c), "successful_tasks": 1,
            "cost_per_successful_task": c, "unpriced_calls": 0,
        }  # fmt: skip

    h = headline([row("A", "150"), row("B", "300")], overage={"A": D(100)})
    assert (h["paying_customers"], h["underwater_customers"]) == (2, 1)
    (b,) = h["most_underwater"]
    assert (b["customer_id"], b["revenue_usd"], b["overage_usd"], b["gross_margin_usd"]) == (
        "B", D(100), D(0), D(-200),
    )  # fmt: skip
    # without the overage, A is underwater too (the old reading)
    assert headline([row("A", "150"), row("B", "300")])["underwater_customers"] == 2
