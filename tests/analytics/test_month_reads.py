"""``report customers`` and ``costs`` on the month level (``rollup_month``) give exactly what the
per-segment roll-ups and the events give, and ``customer_report(limit=N)`` (sorted and cut in the
engine) gives exactly the first N rows of the full sorted table.

The ledger: tests/ledger/test_merged.py's hand-worked one (task t1's outcomes in January and
February, in two segments; t2 with two outcomes, one accepted; an aggregate row of 3 requests)
ingested through the real write path (which refreshes the month level), plus customers: C and
D with no event (a tie at zero on every sum), E with an event and no customer row (no MRR).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.analytics.context import QueryContext
from tailguard.analytics.customers import ENGINE_SORT, costs, month_where
from tailguard.analytics.period import Window, day_window, window
from tailguard.analytics.report import customer_report
from tailguard.customers import read_customers_csv
from tailguard.ledger import Ledger, ingest, merged
from tests.analytics.helpers import HEADER
from tests.ledger.helpers import SEG1, SEG2, _llm

CUSTOMERS = (
    "A,Alpha,pro,smb,100,2,,2025-12-01\n"
    "B,Beta,free,smb,0,1,,2024-01-01\n"
    "C,Gamma,team,mid_market,400,3,,2024-01-01\n"
    "D,Delta,team,mid_market,400,3,,2024-01-01\n"
)
#: E: no customer row; its cost equals B's (2.5): a tie broken by customer id
EXTRA = [_llm(20, "E", "2026-02-03T12:00:00Z", "2.5", 100, 20)]

WINDOWS: dict[str, Window] = {
    "open": Window(),
    "january": window("2026-01"),
    "february": window("2026-02"),
    "days": day_window(dt.date(2026, 1, 31), dt.date(2026, 2, 10)),
    "two months": day_window(dt.date(2026, 1, 1), dt.date(2026, 2, 28)),
    "mid-day": Window(dt.datetime(2026, 1, 31, 23, 15, tzinfo=dt.UTC), None),
}


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    d = tmp_path_factory.mktemp("month")
    led = Ledger(d / "L")
    for n, seg in enumerate((SEG1, SEG2, EXTRA)):  # three ingests: three segments
        src = d / f"e{n}.jsonl"
        src.write_text("".join(json.dumps(e) + "\n" for e in seg))
        ingest([src], led)
    cu = d / "customers.csv"
    cu.write_text(HEADER + CUSTOMERS)
    led.write_customers(read_customers_csv(cu))
    assert merged.is_fresh(led)
    return led


def _rows(led: Ledger, win: Window, use: Any = True, **kw: Any) -> list[dict[str, Any]]:
    with QueryContext.open(led) as ctx:
        ctx.use_rollup = use
        return customer_report(ctx, window=win, **kw)


def test_which_windows_the_month_level_answers(led: Ledger) -> None:
    with QueryContext.open(led) as ctx:
        got = {k: (w := month_where(ctx, v)) and (w[0], w[2]) for k, v in WINDOWS.items()}
    assert got == {
        "open": ("rollup_customer", []),
        "january": ("rollup_month", [dt.date(2026, 1, 1)]),
        "february": ("rollup_month", [dt.date(2026, 2, 1)]),
        "days": None,
        "two months": None,
        "mid-day": None,
    }


def test_hand_worked_tasks_per_window(led: Ledger) -> None:
    """A's tasks: open window {t1, t2}, both won (t1's February outcome); January {t1}, not
    won there; February {t1, t2}, both won. B: t3, not won. C, D: no events, zeros. Cost of A
    over the ledger: 0.000000001 + 1 + 0.002."""
    want = {
        "open": {"A": (2, 2), "B": (1, 0), "C": (0, 0), "E": (0, 0)},
        "january": {"A": (1, 0), "B": (1, 0), "C": (0, 0)},
        "february": {"A": (2, 2), "B": (0, 0), "E": (0, 0)},
    }
    for name, tasks in want.items():
        rows = {r["customer_id"]: r for r in _rows(led, WINDOWS[name])}
        for cid, pair in tasks.items():
            assert (rows[cid]["tasks"], rows[cid]["successful_tasks"]) == pair, (name, cid)
    open_rows = {r["customer_id"]: r for r in _rows(led, Window())}
    assert open_rows["A"]["cost_usd"] == Decimal("1.002000001")
    assert open_rows["A"]["llm_calls"] == 4  # 1 + an aggregate row of 3
    assert open_rows["E"]["mrr_usd"] is None and open_rows["D"]["cost_usd"] == 0


@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_month_level_equals_the_other_sources(led: Ledger, name: str) -> None:
    win = WINDOWS[name]
    on_month = _rows(led, win)
    assert on_month == _rows(led, win, use=("rollup", "rollup_daily", "rollup_task"))
    assert on_month == _rows(led, win, use=False)  # the events alone
    with QueryContext.open(led) as ctx:
        month_costs = costs(ctx, win)
    with QueryContext.open(led) as ctx:
        ctx.use_rollup = False
        assert sorted(month_costs) == sorted(costs(ctx, win))


def test_a_stale_month_level_is_not_read(led: Ledger, tmp_path: Path) -> None:
    """A segment committed after the refresh (``Ledger.append``: the SDK and gateway path, no
    refresh) leaves the month level of the old listing on disk, unread: the rows still count
    the new event."""
    import shutil

    copy = Ledger(tmp_path / "L")
    shutil.copytree(led.path, copy.path)
    copy.append([_llm(30, "A", "2026-02-20T00:00:00Z", "7", 1, 1)])
    assert not merged.is_fresh(copy)
    with QueryContext.open(copy) as ctx:
        assert month_where(ctx, Window()) is None
        rows = {r["customer_id"]: r for r in customer_report(ctx)}
    assert rows["A"]["cost_usd"] == Decimal("8.002000001")
    assert list(rows.values()) == _rows(copy, Window(), use=False)
    merged.refresh(copy)
    with QueryContext.open(copy) as ctx:
        assert month_where(ctx, Window()) is not None
        assert customer_report(ctx) == list(rows.values())


@pytest.mark.parametrize("name", ["open", "days"])
def test_limit_in_the_engine_is_the_full_table_cut(led: Ledger, name: str) -> None:
    """For every field the engine sorts: the first N rows of the full sorted table, the same
    dicts (ties: B and E at 2.5; C and D at zero on every sum, and at MRR 400)."""
    win = WINDOWS[name]
    with QueryContext.open(led) as ctx:
        for sort in sorted(ENGINE_SORT):
            full = customer_report(ctx, window=win, sort=sort)
            for n in (1, 3, len(full) + 2):
                assert customer_report(ctx, window=win, sort=sort, limit=n) == full[:n], (sort, n)
    # the tie at 2.5 goes to the greater id, as sort_rows does; D before C at zero
    top = [r["customer_id"] for r in _rows(led, Window(), sort="cost_usd", limit=5)]
    assert top == ["E", "B", "A", "D", "C"]
    mrr = [r["customer_id"] for r in _rows(led, Window(), sort="mrr_usd", limit=5)]
    assert mrr == ["D", "C", "A", "B", "E"]  # E has no MRR: last


def test_an_empty_window_is_no_data_with_or_without_limit(led: Ledger) -> None:
    """March holds no event: the engine path says so as the full one does, never a table of
    zeros (the customers without events would fill one)."""
    from tailguard.errors import NoDataError

    for kw in ({}, {"limit": 5}, {"limit": 5, "sort": "mrr_usd"}):
        with pytest.raises(NoDataError, match="last event is 2026-02-11"):
            _rows(led, window("2026-03"), **kw)


def test_limit_cutting_into_the_customers_without_mrr(tmp_path: Path) -> None:
    """Three customers without a customers row (no MRR: null, sorted last) and one with: the
    full table puts the nulls in customer id order, ascending (``sort_rows`` keeps them as
    ``customer_rows`` built them), so a cut after two rows is A (MRR 100) then F, the lowest
    id of the nulls F, G, H; the engine's cut must pick the same one, not H."""
    led = Ledger(tmp_path / "L")
    led.append([_llm(i, c, "2026-01-05T10:00:00Z", "1", 10, 1) for i, c in enumerate("AFGH")])
    cu = tmp_path / "customers.csv"
    cu.write_text(HEADER + "A,Alpha,pro,smb,100,2,,2025-12-01\n")
    led.write_customers(read_customers_csv(cu))
    full = customer_report(led, sort="mrr_usd")
    assert [r["customer_id"] for r in full] == ["A", "F", "G", "H"]
    for n in (1, 2, 3, 4):
        assert customer_report(led, sort="mrr_usd", limit=n) == full[:n], n
