"""Margins on the asymmetric ledger (tests/fixtures_asymmetric.py) and on a two-event ledger.

Thresholds are the seed's per-segment targets and alert levels (docs: smb 20% / 35%,
mid_market 18% / 30%, enterprise 15% / 25%). June 2025 figures from the fixture's docstring:

    WIN   smb          cost 1.8877 of MRR 30: 6.29%   ok
    LLM   mid_market   cost 0.625 of MRR 20: 3.125%   ok
    LEAN  smb          cost 0.0006 of MRR 10: 0.006%  ok
    NONE  enterprise   cost 0 of MRR 40: 0%           ok
    GHOST no customers row, no segment                unknown (no thresholds)
The data runs from Jun 1 00:00 to Jul 1 00:00 UTC: June is covered whole, July only its first
day (partial).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.analytics.margins import bands_by_month, margins
from tailguard.analytics.period import window
from tailguard.ledger import Ledger, ingest, read_customers_csv
from tailguard.pricing import PriceBook
from tests.fixtures_asymmetric import PRICES_TOML, asymmetric_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return asymmetric_ledger(tmp_path_factory.mktemp("asym-margins"))


def test_each_row_carries_its_segments_thresholds(ledger: Ledger) -> None:
    con = ledger.connect()
    report = margins(con, window("2025-06"))
    rows = {r["customer_id"]: r for r in report["customers"]}
    expect = {
        "WIN": ("ok", Decimal(20), Decimal(35)),
        "LLM": ("ok", Decimal(18), Decimal(30)),
        "LEAN": ("ok", Decimal(20), Decimal(35)),
        "NONE": ("ok", Decimal(15), Decimal(25)),
        "GHOST": ("unknown", None, None),
    }
    for cid, (status, target, alert) in expect.items():
        r = rows[cid]
        assert (r["status"], r["target_pct"], r["alert_pct"]) == (status, target, alert), cid
    assert report["counts"]["ok"] == 4 and report["counts"]["unknown"] == 1
    assert report["underwater"] == []


def test_bands_mark_the_partly_covered_month(ledger: Ledger) -> None:
    """June: the 4 customers with a customers row are ok, none underwater, June whole; July:
    WIN's 0.003 of 30 is ok, everyone else 0: ok 4, and July is partial (data ends Jul 1)."""
    con = ledger.connect()
    bands = bands_by_month(con, last_month=dt.date(2025, 7, 1), months=2)
    assert [(b["month"], b["ok"], b["underwater"], b["partial"]) for b in bands] == [
        ("2025-06", 4, 0, False),
        ("2025-07", 4, 0, True),
    ]


def test_twelve_months_by_default(ledger: Ledger) -> None:
    """Twelve months ending June 2026 start in July 2025: June 2025 (13 months back) is not
    listed, and months without data (Aug 2025 .. Jun 2026) say nothing."""
    con = ledger.connect()
    bands = bands_by_month(con, last_month=dt.date(2026, 6, 1))
    assert [b["month"] for b in bands] == ["2025-07"]


def _tiny(tmp_path: Path, events: list[dict[str, Any]]) -> Ledger:
    ev = tmp_path / "e.jsonl"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events))
    (tmp_path / "prices.toml").write_text(PRICES_TOML)
    (tmp_path / "customers.csv").write_text(
        "customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date\n"
        "M,Many Calls,pro,smb,10,1,,2025-01-01\n"
    )
    led = Ledger(tmp_path / "ledger")
    ingest([ev], led, prices=PriceBook.load(tmp_path / "prices.toml"))
    led.write_customers(read_customers_csv(tmp_path / "customers.csv"))
    return led


def test_monthly_band_sums_every_event(tmp_path: Path) -> None:
    """M (smb, MRR 10) has two tool calls of 1.5 in June: 3.0 = 30% of MRR, between the 20%
    target and the 35% alert: watch (one call alone, 15%, would read ok)."""
    evs = [
        {
            "event_id": f"m{i}",
            "kind": "tool_call",
            "ts": f"2025-06-1{i}T10:00:00Z",
            "customer_id": "M",
            "tool": "lookup",
            "tool_kind": "read",
            "cost_usd": 1.5,
        }
        for i in (1, 2)
    ]
    con = _tiny(tmp_path, evs).connect()
    bands = bands_by_month(con, last_month=dt.date(2025, 6, 1), months=1)
    assert [(b["month"], b["ok"], b["watch"]) for b in bands] == [("2025-06", 0, 1)]
