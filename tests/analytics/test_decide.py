"""The per-customer economics essay's decision arithmetic, by hand.

Config for the hand cases: hourly rate 100, lifetime 20 months (engineering = 5 a month per
hour), max price increase 50%; three levers, in this order:

    A  fix  uplift 0.5  probability 0.8  2 h   on 100: saving 40 > engineering 10  applied
    B  cap  uplift 0.5  probability 0.5  1 h   on 60:  saving 15 > 5              applied
    C  fix  uplift 0.1  probability 0.5  4 h   on 60:  saving 3  < 20             not applied

Monthly cost 100. After the fix levers the cost is 60 (engineering 10 a month); after fix + cap
45 (engineering 15).

    price 80: margin -20; after fix 80 - 60 - 10 = 10 >= 0                 keep
              after cap 80 - 45 - 15 = 20; lifetime -400 / 200 / 400
    price 50: after fix 50 - 70 = -20 -> +40% <= 50%                        reprice
    price 40: after fix -30 -> +75% > 50%; after cap 40 - 60 = -20          offboard
              (with max 80%: reprice)
    price 62: after fix -8 -> +12.90%; max 10% -> after cap 62 - 60 = 2 >= 0  cap
    price 0:  pays nothing                                                 cap
    price 120: margin +20                                                  keep
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.analytics.decide import DecideConfig, LeverCost, decide, plan
from tailguard.analytics.period import window
from tailguard.cli import run
from tailguard.errors import NoDataError
from tests.analytics.helpers import Events, make_ledger

D = Decimal
CFG = DecideConfig(
    lifetime_months=D(20),
    hourly_rate_usd=D(100),
    levers={
        "A": LeverCost("fix", D("0.5"), D("0.8"), D(2)),
        "B": LeverCost("cap", D("0.5"), D("0.5"), D(1)),
        "C": LeverCost("fix", D("0.1"), D("0.5"), D(4)),
    },
)
KEYS = ["A", "B", "C"]


def test_keep_when_fixes_close_the_gap() -> None:
    r = plan(D(100), D(80), KEYS, CFG)
    assert r["recommendation"] == "keep" and r["reason"] == "the fix levers close the gap"
    assert r["monthly_margin_usd"] == D("-20.00")
    assert r["monthly_margin_after_fix_usd"] == D("10.00")
    assert r["monthly_margin_after_cap_usd"] == D("20.00")
    assert r["lifetime_value_usd"] == {
        "as_is": D("-400.00"),
        "after_fix": D("200.00"),
        "after_fix_and_cap": D("400.00"),
    }
    got = [(lv["lever"], lv["expected_monthly_saving_usd"], lv["applied"]) for lv in r["levers"]]
    assert got == [("A", D("40.00"), True), ("B", D("15.00"), True), ("C", D("3.00"), False)]
    assert r["engineering_hours"] == {"fix": D(2), "cap": D(1), "price": D(0)}
    assert any("not worth it" in s for s in r["arithmetic"])


@pytest.mark.parametrize(
    ("price", "max_pct", "rec", "need"),
    [
        (D(50), D(50), "reprice", D("40.00")),
        (D(40), D(50), "offboard", D("75.00")),
        (D(40), D(80), "reprice", D("75.00")),
        # 8 / 62 x 100 = 400/31 = 12.9032258064516129032258064516... (every digit, not 12.90)
        (D(62), D(10), "cap", D("12.90322580645161290322580645")),
        (D(0), D(50), "cap", None),
        (D(120), D(50), "keep", None),
    ],
)
def test_recommendation_by_hand(price: Decimal, max_pct: Decimal, rec: str, need: Decimal) -> None:
    r = plan(D(100), price, KEYS, replace(CFG, max_price_increase_pct=max_pct))
    assert r["recommendation"] == rec
    assert r["price_increase_needed_pct"] == need


def test_keep_anyway_is_a_stated_reason() -> None:
    cfg = replace(CFG, keep_anyway={"X": "logo we need for sales"})
    r = plan(D(100), D(40), KEYS, cfg, customer="X")
    assert r["recommendation"] == "keep" and "logo" in r["reason"]


def test_decide_on_a_ledger(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One smb customer, MRR 100, $150 over Feb 1 .. 28 (too few tasks to diagnose: no lever).
    Over the calendar month February (``--period 2026-02``: exactly 1 month of MRR): margin
    100 - 150 = -50, +50% <= 50%: reprice. D2 has a customers row but no events: it is not
    "costing nothing", it is refused."""
    import tailguard.cli.panel  # noqa: F401

    e = Events()
    e.llm("D1", "u", "2026-02-01T00:00:00Z", "100.00")
    e.llm("D1", "u", "2026-02-28T12:00:00Z", "50.00")
    csv = "D1,D1,pro,smb,100,1,,2025-01-01\nD2,D2,pro,smb,100,1,,2025-01-01\n"
    led = make_ledger(tmp_path, e.rows, csv)
    con = led.connect()
    try:
        r = decide(con, "D1", window=window("2026-02"))
        with pytest.raises(NoDataError, match="'D2' has no events in the ledger"):
            decide(con, "D2")
    finally:
        con.close()
    assert r["months"] == 1 and r["window"] == {
        "start": dt.date(2026, 2, 1),
        "end": dt.date(2026, 2, 28),
    }
    assert (r["monthly_cost_usd"], r["price_paid_usd"]) == (D("150.00"), D("100.00"))
    assert r["recommendation"] == "reprice" and r["price_increase_needed_pct"] == D("50.00")
    args = ["--ledger", str(led.path)]
    assert run(["decide", "D1", *args, "--period", "2026-02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recommendation"] == "reprice"
    assert run(["decide", "nobody", *args]) == 1
    assert run(["decide", "--help"]) == 0
    assert "Example" in capsys.readouterr().out
