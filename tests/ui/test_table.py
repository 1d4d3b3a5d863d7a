"""The customers table in SQL (tailguard.ui.table) against the rows filtered, sorted and sliced
in Python: the library's ``sort_rows`` (the CLI's order: descending, ties by customer id, null
values last in customer id order) and list slicing, on rows drawn by Hypothesis with ties and
nulls in every column."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.analytics.customers import sort_rows
from tailguard.ui.table import CustomerTable

TIERS = [None, "free", "pro", "team"]
STATUSES = ["ok", "watch", "alert", "no_revenue", "unknown"]
SHAPES = ["long_sessions", "oversized_prompts"]

row = st.fixed_dictionaries(
    {
        "tier": st.sampled_from(TIERS),
        "segment": st.sampled_from([None, "smb", "enterprise"]),
        # few distinct values: many ties, and nulls
        "cost_usd": st.sampled_from([Decimal("0"), Decimal("1.5"), Decimal("0.0000004")]),
        "cost_per_successful_task": st.sampled_from([None, Decimal("2") / 3, Decimal("0.25")]),
        "tasks": st.integers(0, 3),
        "escalation_rate": st.sampled_from([None, 0.5, 1 / 3]),
        "status": st.sampled_from(STATUSES),
        "shapes": st.lists(st.sampled_from(SHAPES), unique=True, max_size=2),
    }
)


def _rows(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # ids out of order (the table must not depend on the order it is given)
    return [{"customer_id": f"c{(i * 7) % 97:02d}", **r} for i, r in enumerate(drawn)]


def _expected(
    rows: list[dict[str, Any]], sort: str, desc: bool, where: dict[str, Any], shape: Any
) -> list[str]:
    by_id = sorted(rows, key=lambda r: r["customer_id"])  # customer_rows' order
    ordered = sort_rows(by_id, sort)
    if not desc:
        present = [r for r in ordered if r[sort] is not None]
        ordered = present[::-1] + [r for r in ordered if r[sort] is None]
    kept = [
        r
        for r in ordered
        if all(v is None or r[k] == v for k, v in where.items())
        and (shape is None or shape in r["shapes"])
    ]
    return [r["customer_id"] for r in kept]


@settings(max_examples=40, deadline=None)
@given(
    drawn=st.lists(row, max_size=40),
    sort=st.sampled_from(["cost_usd", "cost_per_successful_task", "tasks", "escalation_rate"]),
    desc=st.booleans(),
    tier=st.sampled_from(TIERS),
    status=st.sampled_from([None, *STATUSES]),
    shape=st.sampled_from([None, *SHAPES]),
    limit=st.sampled_from([None, 1, 5]),
    per=st.sampled_from([None, 1, 3, 50]),
    page=st.integers(1, 4),
)
def test_select_is_the_python_filter_sort_and_slice(
    drawn: list[dict[str, Any]],
    sort: str,
    desc: bool,
    tier: Any,
    status: Any,
    shape: Any,
    limit: Any,
    per: Any,
    page: int,
) -> None:
    rows = _rows(drawn)
    with duckdb.connect(":memory:") as db:
        table = CustomerTable(db, rows, {r["customer_id"]: r["status"] for r in rows})
        shapes = table.shapes(
            lambda: [{"customer_id": r["customer_id"], "shapes": r["shapes"]} for r in rows]
        )
        where = {"tier": tier, "status": status}
        want = _expected(rows, sort, desc, where, shape)
        if limit:
            want = want[:limit]
        offset = (page - 1) * per if per else 0
        got, total = table.select(
            sort,
            descending=desc,
            where=where,
            shape=shape,
            shapes_table=shapes,
            limit=limit,
            offset=offset,
            count=per,
        )
        assert total == len(want)
        assert [r["customer_id"] for r in got] == (
            want[offset : offset + per] if per else want[offset:]
        )
        # the rows are the dicts given, not copies rebuilt from SQL
        assert all(any(g is r for r in rows) for g in got)
        table.drop()
        left = db.execute("SELECT count(*) FROM duckdb_tables()").fetchone()
        assert left == (0,)


def test_worked_example() -> None:
    """Four customers by tasks, descending: B 3, then A and D tie at 1 (by id, descending: D,
    A), C has none; ascending: A, D, B, then C (null last either way)."""
    rows = [
        {"customer_id": "A", "tier": "pro", "segment": None, "tasks": 1},
        {"customer_id": "B", "tier": "free", "segment": None, "tasks": 3},
        {"customer_id": "C", "tier": "pro", "segment": None, "tasks": None},
        {"customer_id": "D", "tier": "pro", "segment": None, "tasks": 1},
    ]
    with duckdb.connect(":memory:") as db:
        t = CustomerTable(db, rows, dict.fromkeys("ABCD", "ok"))
        assert [r["customer_id"] for r in t.select("tasks")[0]] == ["B", "D", "A", "C"]
        asc = t.select("tasks", descending=False)[0]
        assert [r["customer_id"] for r in asc] == ["A", "D", "B", "C"]
        pro, n = t.select("tasks", where={"tier": "pro"}, offset=1, count=1)
        assert ([r["customer_id"] for r in pro], n) == (["A"], 3)
        assert t.tiers == ["free", "pro"] and t.segments == []
