"""decide, renewal and diagnose with ``reconcile --allocate``'s rows: the invoice-reconciled cost.

The allocation rows are written by hand (``ALLOCATION_SCHEMA``, one file per month, as
``reconcile --allocate`` stores them), so the figures below do not depend on the allocation's
own arithmetic (tested in tests/finops).

decide, customer D1 (MRR $100, mid_market), March 2025 (one calendar month): measured cost
$150 (three calls of $50). The invoice's remainder gave D1 $20 on 03-10 and $10 on 03-20 (and
D2 $5: not D1's). Reconciled cost = 150 + 30 = $180.

    monthly margin = 100 - 180 = -80; no lever (no task: not judged), so after the fix levers
    still -80; the price increase that closes it: 80 / 100 = 80% > 50% (the default bound):
    not repriced; fix + cap: -80 < 0: offboard.

On the measured cost alone (no allocation): 100 - 150 = -50, an increase of 50% <= 50%:
reprice. The invoice turns the verdict.

renewal, customer R1 (the one-pager's ledger of test_renewal.py): measured 20, 36, 56, 80 in
Nov 2025 .. Feb 2026. January was reconciled with $4 to R1; February was reconciled too, but its
remainder went to another customer (0 to R1); Nov and Dec were not. Months: 20, 36, 60, 80;
``partly invoice-reconciled`` (2026-01, 2026-02); measured 192 + allocated 4 = 196.
Cost per user: 10, 12, 15, 16 at x = 8 .. 11 (users 2 .. 5 = x - 6): least squares slope
sum(dx dy) / sum(dx^2) = (1.5 x 3.25 + 0.5 x 1.25 + 0.5 x 1.75 + 1.5 x 2.75) / 5 = 10.5 / 5 = 2.1,
intercept 13.25 - 2.1 x 9.5 = -6.7. Next 12 months (y = x - 6 = 6 .. 17): cost = y (2.1 y + 5.9),
sum = 2.1 x 1730 + 5.9 x 138 = 3633 + 814.2 = 4447.2; pool = ceil(4447.2 / 12 x 1.2) =
ceil(444.72) = 445 (measured only: 429, test_renewal.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tailguard.analytics.decide import decide
from tailguard.analytics.diagnose import diagnose
from tailguard.analytics.period import window
from tailguard.analytics.renewal import html, renewal
from tailguard.finops.allocation import ALLOCATION_SCHEMA, allocation_file
from tailguard.ledger import Ledger
from tests.analytics.helpers import Events, make_ledger


def _allocate(led: Ledger, period: str, rows: list[tuple[str, str, str]]) -> None:
    """Store ``(day, customer, amount)`` rows as month ``period``'s allocation."""
    path = allocation_file(led.path, period)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(
        [
            {"day": dt.date.fromisoformat(d), "provider": "openai", "customer_id": c,
             "allocated_usd": Decimal(a), "method": "proportional"}
            for d, c, a in rows
        ],
        schema=ALLOCATION_SCHEMA,
    )  # fmt: skip
    pq.write_table(table, path)


@pytest.fixture
def d1(tmp_path: Path) -> Ledger:
    e = Events()
    for d in ("02", "10", "20"):
        e.llm("D1", "u1", f"2025-03-{d}T12:00:00Z", "50")
    e.llm("D2", "u2", "2025-03-05T12:00:00Z", "1")
    csv = "D1,Dune,team,mid_market,100,1,,2024-06-01\nD2,Dawn,team,mid_market,100,1,,2024-06-01\n"
    return make_ledger(tmp_path, e.rows, csv)


def test_decide_on_the_measured_cost_without_an_allocation(d1: Ledger) -> None:
    got = decide(d1, "D1", window=window("2025-03"))
    assert (got["cost_basis"], got["allocated_usd"]) == ("measured", Decimal(0))
    assert got["cost_to_serve_usd"] == got["measured_cost_usd"] == Decimal(150)
    assert got["monthly_margin_usd"] == Decimal(-50)
    assert got["recommendation"] == "reprice"
    assert not any("reconcile --allocate" in s for s in got["arithmetic"])


def test_decide_on_the_invoice_reconciled_cost(d1: Ledger) -> None:
    _allocate(
        d1, "2025-03", [("2025-03-10", "D1", "20"), ("2025-03-20", "D1", "10"),
                        ("2025-03-20", "D2", "5")]
    )  # fmt: skip
    got = decide(d1, "D1", window=window("2025-03"))
    assert got["cost_basis"] == "invoice-reconciled"
    assert got["reconciled_months"] == ["2025-03"]
    assert (got["measured_cost_usd"], got["allocated_usd"]) == (Decimal(150), Decimal(30))
    assert got["cost_to_serve_usd"] == Decimal(180)
    assert got["monthly_margin_usd"] == Decimal(-80)
    assert got["gross_margin_usd"] == Decimal(-80)  # one calendar month of $100 MRR
    assert got["cost_pct_of_mrr"] == pytest.approx(180.0)
    assert got["price_increase_needed_pct"] == Decimal(80)
    assert got["recommendation"] == "offboard"
    assert (
        "cost to serve (invoice-reconciled, months 2025-03): measured 150.00 + allocated 30.00 "
        "(the invoice's unattributed remainder, reconcile --allocate) = 180.00"
    ) in got["arithmetic"]


def test_diagnose_shows_the_allocation_beside_the_cost(d1: Ledger) -> None:
    _allocate(d1, "2025-03", [("2025-03-10", "D1", "20"), ("2025-03-20", "D1", "10")])
    (got,) = diagnose(d1, window("2025-03"), customer="D1")
    assert (got["cost_usd"], got["allocated_usd"]) == (Decimal(150), Decimal(30))
    # an allocation outside the window is not the window's
    (feb,) = diagnose(d1, window(None, "2025-03-01", "2025-03-09"), customer="D1")
    assert (feb["cost_usd"], feb["allocated_usd"]) == (Decimal(50), Decimal(0))


PLAN = {"2025-11": (2, "10"), "2025-12": (3, "12"), "2026-01": (4, "14"), "2026-02": (5, "16")}


def _r1(tmp_path: Path) -> Ledger:
    e = Events()
    for month, (users, per_user) in PLAN.items():
        d = "01" if month == "2025-11" else "28"
        for i in range(users):
            e.llm("R1", f"u{i}", f"{month}-{d}T12:00:00Z", per_user)
    return make_ledger(tmp_path, e.rows, "R1,Rocket,team,mid_market,2000,10,100,2024-06-01\n")


def test_renewal_on_the_invoice_reconciled_cost(tmp_path: Path) -> None:
    led = _r1(tmp_path)
    _allocate(led, "2026-01", [("2026-01-28", "R1", "4")])
    _allocate(led, "2026-02", [("2026-02-28", "other", "7")])
    r = renewal(led, "R1")
    got = [(m["month"], m["measured_cost_usd"], m["allocated_usd"], m["cost_usd"])
           for m in r["months"][8:]]  # fmt: skip
    assert got == [
        ("2025-11", Decimal(20), None, Decimal(20)),
        ("2025-12", Decimal(36), None, Decimal(36)),
        ("2026-01", Decimal(56), Decimal(4), Decimal(60)),
        ("2026-02", Decimal(80), Decimal(0), Decimal(80)),
    ]
    assert r["cost_basis"] == "partly invoice-reconciled"
    assert r["reconciled_months"] == ["2026-01", "2026-02"]
    assert (r["measured_cost_usd"], r["allocated_usd"]) == (Decimal(192), Decimal(4))
    assert r["actual_12_months_usd"] == r["cost_usd"] == Decimal(196)
    assert r["gross_margin_usd"] == r["revenue_usd"] - Decimal(196)
    assert r["trend"]["cost_per_user_per_month"] == pytest.approx(2.1)
    assert float(r["projected_next_12_months_usd"]) == pytest.approx(4447.2)
    assert r["recommended_pool_usd"] == Decimal(445)
    assert r["recommended_pool_note"] == (
        "mean projected month 370.60 × 1.2, rounded up; costs partly invoice-reconciled: "
        "measured + the invoice's share (reconcile --allocate) in 2026-01, 2026-02"
    )
    page = html(r)
    assert "partly invoice-reconciled" in page and "months 2026-01, 2026-02" in page


def test_renewal_without_an_allocation_is_measured(tmp_path: Path) -> None:
    r = renewal(_r1(tmp_path), "R1")
    assert (r["cost_basis"], r["allocated_usd"], r["reconciled_months"]) == (
        "measured",
        Decimal(0),
        [],
    )
    assert r["recommended_pool_usd"] == Decimal(429)  # test_renewal.py's figure
    assert "Costs: measured" in html(r)
    assert r["recommended_pool_note"] == "mean projected month 357.33 × 1.2, rounded up"
