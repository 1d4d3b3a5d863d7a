"""The renewal one-pager against a ledger worked out by hand.

Customer R1 (pool 100 a month), data Nov 1 2025 .. Feb 28 2026, as of the last event:

    month     users  cost  cost/user   position x (Mar 2025 = 0 .. Feb 2026 = 11)
    2025-11   2      20    10          8
    2025-12   3      36    12          9
    2026-01   4      56    14          10
    2026-02   5      80    16          11
Mar .. Oct 2025 precede the ledger: null (no data), not 0.
Least squares: users = x - 6 (slope +1 a month), cost per user = 2x - 6 (slope +2).
Next 12 months, x = 12 .. 23, y = x - 6 = 6 .. 17: cost = y × (2y + 6) = 2y² + 6y;
sum = 2 × 1730 + 6 × 138 = 4288 (sum y² over 6..17 = 1785 - 55 = 1730, sum y = 138);
first month (Mar 2026) 6 × 18 = 108. Actual 12 months 20 + 36 + 56 + 80 = 192.
Recommended pool: 4288 / 12 = 357.33 × 1.2 = 428.8 -> 429.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.analytics.renewal import html, renewal
from tailguard.cli import run
from tailguard.ledger import Ledger
from tests.analytics.helpers import Events, make_ledger

PLAN = {"2025-11": (2, "10"), "2025-12": (3, "12"), "2026-01": (4, "14"), "2026-02": (5, "16")}


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    e = Events()
    for month, (users, per_user) in PLAN.items():
        day = "01" if month == "2025-11" else "28"
        for i in range(users):
            e.llm("R1", f"u{i}", f"{month}-{day}T12:00:00Z", per_user)
    csv = "R1,Rocket,team,mid_market,2000,10,100,2024-06-01\n"
    return make_ledger(tmp_path_factory.mktemp("renewal"), e.rows, csv)


def test_by_hand(led: Ledger) -> None:
    con = led.connect()
    try:
        r = renewal(con, "R1")
    finally:
        con.close()
    assert [m["month"] for m in r["months"]][::11] == ["2025-03", "2026-02"]
    assert all(m["cost_usd"] is None for m in r["months"][:8])
    got = [(m["month"], m["active_users"], m["cost_usd"]) for m in r["months"][8:]]
    assert got == [
        ("2025-11", 2, Decimal("20")),
        ("2025-12", 3, Decimal("36")),
        ("2026-01", 4, Decimal("56")),
        ("2026-02", 5, Decimal("80")),
    ]
    assert not any(m["partial"] for m in r["months"][8:])
    assert r["trend"] == {"users_per_month": 1.0, "cost_per_user_per_month": 2.0}
    assert r["projection"][0]["month"] == "2026-03"
    assert r["projection"][0]["cost_usd"] == Decimal("108.00")
    assert r["projected_next_12_months_usd"] == Decimal("4288.00")
    assert r["actual_12_months_usd"] == Decimal("192")
    assert r["recommended_pool_usd"] == Decimal("429")
    assert r["contracted_pool_usd"] == Decimal("100")
    # the twelve months Mar 2025 .. Feb 2026 clipped to the ledger's days: Nov 1 .. Feb 28
    assert r["window"] == {"start": dt.date(2025, 11, 1), "end": dt.date(2026, 2, 28)}
    page = html(r)
    assert page.startswith("<!doctype html>") and "<svg" in page and "Rocket" in page
    assert "window 2025-11-01 .. 2026-02-28" in page
    assert page.count("<rect") == 12


def test_cli(led: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import tailguard.cli.panel  # noqa: F401

    out = tmp_path / "r.html"
    assert run(["renewal", "R1", "--ledger", str(led.path), "--html", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recommended_pool_usd"] == 429
    assert "<svg" in out.read_text()
    assert run(["renewal", "nobody", "--ledger", str(led.path)]) == 1
    assert run(["renewal", "--help"]) == 0
    assert "Example" in capsys.readouterr().out
