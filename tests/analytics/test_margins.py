"""Margins against the cost-allocation guide's segment thresholds, by hand.

February 2026 (``--period 2026-02``: revenue = MRR), every customer MRR 100 unless said:

    S1  smb          cost 19.99  19.99%  < 20 target                  ok
    S2  smb          cost 20.00  20%     at the target: left it       watch
    S3  smb          cost 35.00  35%     at the alert level           watch
    S4  smb          cost 35.01  35.01%  > 35                         alert
    M1  mid_market   cost 18.00  18%     at the 18 target             watch
    M2  mid_market   cost 30.01  30.01%  > 30                         alert
    E1  enterprise   cost 14.99  14.99%  < 15                         ok
    E2  enterprise   cost 25.50  25.5%   > 25                         alert
    U1  usage_based  cost 29.00  29%     < 30                         ok
    U2  usage_based  cost 50.00  50%     at the alert level           watch
    X1  smb, MRR 50  cost 60.00  120%    alert, underwater by -10 (signed up 2026-02-01)
    F1  free, MRR 0  cost 5.00   no %    no_revenue, not on the underwater list
Counts: ok 3, watch 4, alert 4, no_revenue 1.

January: S1 costs 40 (alert), F1 nothing; everyone else nothing (ok); X1 had not signed up.
Bands by month (2 months to February): Jan ok 9, alert 1, no_revenue 1, underwater 0;
Feb as above, underwater 1. Data runs Jan 1 .. Feb 28, so neither month is partial.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tailguard.analytics.margins import margin_status, margins
from tailguard.analytics.period import window
from tailguard.cli import run
from tailguard.ledger import Ledger
from tests.analytics.helpers import Events, make_ledger

FEB = {
    "S1": ("smb", "19.99"),
    "S2": ("smb", "20.00"),
    "S3": ("smb", "35.00"),
    "S4": ("smb", "35.01"),
    "M1": ("mid_market", "18.00"),
    "M2": ("mid_market", "30.01"),
    "E1": ("enterprise", "14.99"),
    "E2": ("enterprise", "25.50"),
    "U1": ("usage_based", "29.00"),
    "U2": ("usage_based", "50.00"),
}
EXPECTED = {
    "S1": "ok",
    "S2": "watch",
    "S3": "watch",
    "S4": "alert",
    "M1": "watch",
    "M2": "alert",
    "E1": "ok",
    "E2": "alert",
    "U1": "ok",
    "U2": "watch",
    "X1": "alert",
    "F1": "no_revenue",
}


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    e = Events()
    for cid, (_seg, cost) in FEB.items():
        e.llm(cid, f"{cid}u", "2026-02-10T12:00:00Z", cost)
    e.llm("X1", "x1u", "2026-02-11T12:00:00Z", "60.00")
    e.llm("F1", "f1u", "2026-02-12T12:00:00Z", "5.00")
    e.llm("S1", "s1u", "2026-01-01T00:00:00Z", "40.00")
    e.llm("U1", "u1u", "2026-02-28T23:00:00Z", "0")
    csv = "".join(f"{c},{c},pro,{s},100,1,,2025-01-01\n" for c, (s, _) in FEB.items())
    csv += "X1,X1,pro,smb,50,1,,2026-02-01\nF1,F1,free,smb,0,1,,2025-01-01\n"
    return make_ledger(tmp_path_factory.mktemp("margins"), e.rows, csv)


def _report(led: Ledger, months: int = 2) -> dict[str, Any]:
    con = led.connect()
    try:
        return margins(con, window("2026-02"), history_months=months)
    finally:
        con.close()


def test_status_by_segment_by_hand(led: Ledger) -> None:
    rep = _report(led)
    got = {r["customer_id"]: r["status"] for r in rep["customers"]}
    assert got == EXPECTED
    pct = {r["customer_id"]: r["cost_pct_of_mrr"] for r in rep["customers"]}
    assert pct["S4"] == 35.01 and pct["X1"] == 120.0 and pct["F1"] is None
    assert rep["counts"] == {"ok": 3, "watch": 4, "alert": 4, "no_revenue": 1, "unknown": 0}
    assert rep["customers"][0]["customer_id"] == "X1"  # highest cost % first
    assert set(rep["customers"][0]) >= {"customer_id", "segment", "cost_pct_of_mrr", "status"}


def test_underwater_excludes_free(led: Ledger) -> None:
    rep = _report(led)
    assert [(u["customer_id"], u["gross_margin_usd"]) for u in rep["underwater"]] == [
        ("X1", Decimal("-10"))
    ]


def test_bands_by_month_by_hand(led: Ledger) -> None:
    rep = _report(led)
    jan, feb = rep["bands_by_month"]
    assert jan == {
        "month": "2026-01",
        "ok": 9,
        "watch": 0,
        "alert": 1,
        "no_revenue": 1,
        "unknown": 0,
        "underwater": 0,
        "partial": False,
    }
    assert (feb["ok"], feb["watch"], feb["alert"], feb["no_revenue"]) == (3, 4, 4, 1)
    assert feb["underwater"] == 1 and feb["partial"] is False
    # months before the first event are left out, not counted as "ok"
    assert [b["month"] for b in _report(led, months=6)["bands_by_month"]] == [
        "2026-01",
        "2026-02",
    ]


def test_thresholds() -> None:
    assert margin_status("smb", 19.9999) == "ok"
    assert margin_status("enterprise", Decimal("25")) == "watch"
    assert margin_status("usage_based", 50.0001) == "alert"
    assert margin_status("consumer", 10) == "unknown"
    assert margin_status("smb", None) == "no_revenue"


def test_cli(led: Ledger, capsys: pytest.CaptureFixture) -> None:
    import tailguard.cli.panel  # noqa: F401

    argv = ["margins", "--ledger", str(led.path), "--period", "2026-02", "--months", "2"]
    assert run([*argv, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert {r["customer_id"]: r["status"] for r in rep["customers"]} == EXPECTED
    assert run(argv) == 0
    assert "Underwater: 1" in capsys.readouterr().out
    assert run([*argv, "--csv"]) == 0
    assert capsys.readouterr().out.startswith("customer_id,tier,segment")
    assert run(["margins", "--help"]) == 0
    assert "Example" in capsys.readouterr().out
