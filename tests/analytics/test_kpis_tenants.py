"""Per-tenant KPIs with more tenants than the lists show, so a cut-off at 20 is visible.

February 2026 as of Feb 28 (the whole calendar month: revenue = MRR), 24 team customers
T01..T24, MRR 100 each; Tk spends k dollars in one LLM call on Feb 10 (k = 1..24), so its cost
is k% of its MRR.

- Top-20 share of team + enterprise spend: the top 20 are T24..T05, 24 + 23 + ... + 5 =
  (24 + 5) x 20 / 2 = 290 of 1 + ... + 24 = 300: 290 / 300 = 96.67% (above the 60-80% band:
  watch). The listed top customers are those 20, dearest first.
- Cost-to-ARR: over 8% are T09..T24 (16), over 12% T13..T24 (12 customers), over 20% T21..T24
  (4), dearest first; the value is the dearest's, T24's 24% (act: the status it shows, the worst
  customer's); the median of 1..24 is (12 + 13) / 2 = 12.5 (watch).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tailguard.analytics.kpis import kpis
from tests.analytics.helpers import Events, make_ledger
from tests.analytics.helpers import metric as _metric

N = 24


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path: Path = tmp_path_factory.mktemp("tenants24")
    e = Events()
    for k in range(1, N + 1):
        e.llm(f"T{k:02d}", f"t{k:02d}u", "2026-02-10T12:00:00Z", f"{k}.00")
    csv = "".join(f"T{k:02d},T{k:02d},team,smb,100,1,,2025-12-01\n" for k in range(1, N + 1))
    con = make_ledger(tmp_path, e.rows, csv).connect()
    try:
        return kpis(con, period="2026-02", as_of=dt.date(2026, 2, 28))
    finally:
        con.close()


def test_top_twenty_share_and_list(report: dict[str, Any]) -> None:
    top = _metric(report, "per_tenant_cost", "top20_share")
    assert top["value"] == pytest.approx(290 / 300 * 100, rel=1e-12)
    assert top["status"] == "watch"
    assert [t["customer_id"] for t in top["top_customers"]] == [
        f"T{k:02d}" for k in range(24, 4, -1)
    ]
    assert top["customers"] == N


def test_cost_to_arr_lists_dearest_first(report: dict[str, Any]) -> None:
    arr = _metric(report, "per_tenant_cost", "cost_to_arr")
    assert arr["value"] == pytest.approx(24.0, rel=1e-12) and arr["dearest_customer"] == "T24"
    assert arr["median_pct"] == pytest.approx(12.5, rel=1e-12) and arr["median_status"] == "watch"
    assert (arr["customers"], arr["over_8"], arr["over_12"], arr["over_20"]) == (24, 16, 12, 4)
    assert [a["customer_id"] for a in arr["revisit_at_renewal"]] == ["T24", "T23", "T22", "T21"]
    assert [a["customer_id"] for a in arr["funding_off_margin"]] == [
        f"T{k:02d}" for k in range(24, 12, -1)
    ]
    assert arr["status"] == "act"
