"""``cohort_drift``: the new cohort against the year-old cohort (the eight-KPI framework: "newer
cohorts typically run 20 to 40% higher per-user cost than year-old cohorts"), not against every
older customer.

February 2026 judged as of the 28th: new = signed up after 2025-02-28 (365 days before),
year-old = after 2024-02-29 (730 days before) and by 2025-02-28. One LLM call per user on Feb 10:

    N1  signed up 2025-10-01 (new)        users n1a $12, n1b $12   new: 24 / 2 = $12 a user
    Y1  signed up 2025-01-15 (year-old)   user y1a $10             year-old: $10 a user
    O1  signed up 2023-06-01 (older)      user o1a $2              counted apart, not compared
    S1  no signup date                    user s1a $5              no_signup
    X1  no customers row                  user x1a $7              no_signup

    drift = 12 / 10 - 1 = 20%: ok (the band is 20-40%, inclusive).
    Against every older customer (Y1 and O1: (10 + 2) / 2 = $6 a user), as the code compared,
    it was 12 / 6 - 1 = 100%: watch.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.analytics.kpis import kpis
from tests.analytics.helpers import Events, make_ledger
from tests.analytics.helpers import metric as _metric

CSV = (
    "N1,N1,pro,smb,100,2,,2025-10-01\n"
    "Y1,Y1,pro,smb,100,1,,2025-01-15\n"
    "O1,O1,pro,smb,100,1,,2023-06-01\n"
    "S1,S1,pro,smb,100,1,,\n"
)


def _drift(tmp_path: Path, users: list[tuple[str, str, str]], csv: str = CSV) -> dict[str, Any]:
    e = Events()
    for cust, user, cost in users:
        e.llm(cust, user, "2026-02-10T12:00:00Z", cost)
    con = make_ledger(tmp_path, e.rows, csv).connect()
    try:
        rep = kpis(con, period="2026-02", as_of=dt.date(2026, 2, 28))
    finally:
        con.close()
    return _metric(rep, "per_user_cost", "cohort_drift")


ALL = [
    ("N1", "n1a", "12"),
    ("N1", "n1b", "12"),
    ("Y1", "y1a", "10"),
    ("O1", "o1a", "2"),
    ("S1", "s1a", "5"),
    ("X1", "x1a", "7"),
]


def test_new_against_the_year_old_cohort(tmp_path: Path) -> None:
    m = _drift(tmp_path, ALL)
    assert m["value"] == pytest.approx(20.0, rel=1e-12)
    assert m["status"] == "ok"
    assert m["new_cost_per_user_usd"] == Decimal(12)
    assert m["returning_cost_per_user_usd"] == Decimal(10)
    counts = (m["new_users"], m["returning_users"], m["older_users"], m["no_signup_users"])
    assert counts == (2, 1, 1, 2)
    assert m["new_cohort_signed_up_after"] == dt.date(2025, 2, 28)
    assert m["year_old_cohort_signed_up_after"] == dt.date(2024, 2, 29)
    assert "note" not in m


def test_no_year_old_cohort_is_no_data_not_a_number(tmp_path: Path) -> None:
    """Without Y1 only older customers remain: no year-old cohort, so no figure (the old rule
    compared against O1 alone: 12 / 2 - 1 = 500%)."""
    m = _drift(tmp_path, [u for u in ALL if u[0] != "Y1"])
    assert m["value"] is None and m["status"] == "no_data"
    assert m["note"].startswith("no year-old cohort")
    assert (m["new_users"], m["returning_users"], m["older_users"]) == (2, 0, 1)


def test_no_new_cohort_is_no_data(tmp_path: Path) -> None:
    m = _drift(tmp_path, [u for u in ALL if u[0] != "N1"])
    assert m["value"] is None and m["status"] == "no_data"
    assert m["note"].startswith("no new cohort")


def test_cohort_edges(tmp_path: Path) -> None:
    """Signed up exactly 365 days before as_of (2025-02-28) is year-old, not new; exactly 730
    days before (2024-02-29) is older, not year-old. A: 2025-03-01 (new, $15), B: 2025-02-28
    (year-old, $10), C: 2024-02-29 (older, $1): 15 / 10 - 1 = 50% (watch, above 40%)."""
    csv = "A,A,pro,smb,1,1,,2025-03-01\nB,B,pro,smb,1,1,,2025-02-28\nC,C,pro,smb,1,1,,2024-02-29\n"
    m = _drift(tmp_path, [("A", "a", "15"), ("B", "b", "10"), ("C", "c", "1")], csv)
    assert m["value"] == pytest.approx(50.0, rel=1e-12) and m["status"] == "watch"
    assert (m["new_users"], m["returning_users"], m["older_users"]) == (1, 1, 1)
