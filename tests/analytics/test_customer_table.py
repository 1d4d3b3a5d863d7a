"""``customer_report``'s rows as a ``CustomerRows``: a sequence whose dicts are built when asked.

The table is kept by column (the engine's Arrow columns, or lists from another engine) and every
field of a row is computed from them in one place (``CustomerRows._compute``). What is checked
here: the sequence behaves as the list it replaces (length, indexing, slices, iteration, equality
both ways, a row is the same dict each time), every field has the type and the exact Decimal the
old rows had (zero money is ``Decimal(0)``, printed ``0``, not the engine's ``0E-9``), the
engine's order for every sort field equals ``sort_rows`` (a Python sort, the second method) on
random tables with ties and nulls, and the CSV and JSON writers print the same bytes from the
columns as from the dicts.

Hand table (``test_rows_from_columns_by_hand``), one month (``months`` = 1):
  X: cost 3 (llm 2, tool 1), 2 wins of 4 tasks, 1 retry, MRR 10:
     cost per win 3 / 2 = 1.5; retries per win 0.5; revenue 10; cost % 30.0; margin 7
  Y: no events (money null, counts 0), MRR 0: cost 0; no wins: cost per win null; revenue 0:
     cost % null (no revenue to divide by); margin 0 - 0 = 0
  Z: events, no customers row (name, MRR null): revenue, cost % and margin null
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.analytics.customers import (
    COUNTS,
    CUSTOMER_FIELDS,
    DIMS,
    MONEY_SUMS,
    RATIOS,
    CustomerRows,
    customer_rows,
    sort_rows,
)
from tailguard.analytics.period import Window, window
from tailguard.analytics.report import customer_report
from tailguard.cli.output import dumps, print_csv
from tailguard.ledger import Ledger, ingest, read_customers_csv
from tailguard.pricing import PriceBook
from tests.analytics.helpers import connect
from tests.ledger.fixtures import write_fixture

MONEY = {*MONEY_SUMS, "allocated_usd", "mrr_usd", "revenue_usd", "gross_margin_usd"}
MONEY |= {"cost_per_successful_task"}
FLOATS = {*RATIOS, "cost_pct_of_mrr"}


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """tests/ledger/fixtures.py's ledger (tests/analytics/test_report_customers.py works out
    its June figures by hand: A 7.8162, B 1.01, C no events)."""
    ev, prices, cust = write_fixture(tmp_path)
    led = Ledger(tmp_path / "ledger")
    ingest([ev], led, prices=PriceBook.load(prices))
    led.write_customers(read_customers_csv(cust))
    return led


def test_the_report_behaves_as_the_list_of_its_rows(ledger: Ledger) -> None:
    rows = customer_report(ledger, window=window("2025-06"))
    assert isinstance(rows, CustomerRows) and isinstance(rows, Sequence)
    assert len(rows) == 3
    first = rows[0]
    assert first["customer_id"] == "A" and rows[-1]["customer_id"] == "C"  # 7.8162, 1.01, 0
    assert list(first) == list(CUSTOMER_FIELDS)  # the keys, in the JSON's order
    as_list = list(rows)
    assert [r["customer_id"] for r in as_list] == ["A", "B", "C"]
    assert as_list[0] is first  # a row handed out before iterating is the same dict after
    assert rows == as_list and as_list == rows and rows != as_list[:2] and rows != "ABC"
    assert rows[1:] == as_list[1:] and rows[::-1] == as_list[::-1] and rows[5:] == []
    assert isinstance(rows[1:], CustomerRows) and len(rows[:2]) == 2
    with pytest.raises(IndexError):
        rows[3]
    with pytest.raises(IndexError):
        rows[-4]
    rows[2]["note"] = "kept"  # a row is a dict the caller may change, as a list's would be
    assert rows[2]["note"] == "kept" and list(rows)[2]["note"] == "kept"
    for f in CUSTOMER_FIELDS:
        assert rows.column(f) == [r[f] for r in as_list], f


def test_each_row_alone_equals_its_row_in_the_whole_table(ledger: Ledger) -> None:
    """``rows[i]`` before any iteration (built from a one-row cut of the columns) is the row
    the whole table builds."""
    whole = list(customer_report(ledger, window=window("2025-06")))
    for i in range(3):
        fresh = customer_report(ledger, window=window("2025-06"))
        assert fresh[i] == whole[i]


def test_every_field_has_the_type_of_the_old_rows(ledger: Ledger) -> None:
    """Money is Decimal (an absent sum is ``Decimal(0)``: printed ``0``), counts int, ratios
    float or null, the window's days dates; C has no events."""
    rows = {r["customer_id"]: r for r in customer_report(ledger, window=window("2025-06"))}
    for r in rows.values():
        for f in CUSTOMER_FIELDS:
            v = r[f]
            if f in MONEY:
                assert v is None or type(v) is Decimal, (f, v)
            elif f in FLOATS:
                assert v is None or type(v) is float, (f, v)
            elif f in COUNTS:
                assert type(v) is int, (f, v)
            elif f in ("window_start", "window_end"):
                assert type(v) is dt.date, (f, v)
            else:
                assert v is None or type(v) is str, (f, v)
    c = rows["C"]
    for f in (*MONEY_SUMS, "allocated_usd"):
        assert str(c[f]) == "0", f
    assert c["cost_per_successful_task"] is None and c["retries_per_win"] is None
    assert (c["window_start"], c["window_end"]) == (dt.date(2025, 6, 1), dt.date(2025, 6, 30))
    assert rows["A"]["cost_usd"] == Decimal("7.8162") and rows["A"]["retries_per_win"] == 1.0


def _raw() -> dict[str, list[Any]]:
    """The hand table of the module docstring as the engine's columns."""
    n = {"X": 0, "Y": 1, "Z": 2}
    raw: dict[str, list[Any]] = {
        "customer_id": list(n),
        "name": ["Ex", "Why", None],
        "tier": ["pro", "free", None],
        "segment": ["smb", "smb", None],
        "mrr_usd": [Decimal("10.000000000"), Decimal("0E-9"), None],
        "cost_usd": [Decimal("3.000000000"), None, Decimal("0.000000400")],
        "llm_cost_usd": [Decimal("2.000000000"), None, Decimal("0.000000400")],
        "tool_cost_usd": [Decimal("1.000000000"), None, Decimal("0E-9")],
        "retrieval_cost_usd": [None, None, None],
        "escalation_cost_usd": [None, None, None],
    }
    for c in COUNTS:
        raw[c] = [0, 0, 0]
    raw["tasks"] = [4, 0, 1]
    raw["successful_tasks"] = [2, 0, 0]
    raw["retries"] = [1, 0, 0]
    for r in RATIOS:
        raw[r] = [None, None, None]
    raw["retries_per_win"] = [0.5, None, None]
    return raw


def _arrow(raw: dict[str, list[Any]]) -> pa.Table:
    money = pa.decimal128(38, 9)
    types = {m: money for m in MONEY_SUMS} | {"mrr_usd": pa.decimal128(18, 9)}
    types |= {c: pa.int64() for c in COUNTS} | {r: pa.float64() for r in RATIOS}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in raw.items()})


@pytest.mark.parametrize("kind", ["arrow", "lists"])
def test_rows_from_columns_by_hand(kind: str) -> None:
    raw = _raw()
    cols = _arrow(raw) if kind == "arrow" else raw
    d1, d2 = dt.date(2026, 1, 1), dt.date(2026, 1, 31)
    rows = CustomerRows(cols, Decimal(1), d1, d2, {"Y": Decimal("2.50")})
    x, y, z = rows
    assert x["cost_usd"] == 3 and str(x["cost_usd"]) == "3.000000000"
    assert x["cost_per_successful_task"] == Decimal("1.5") and x["retries_per_win"] == 0.5
    assert x["revenue_usd"] == 10 and x["cost_pct_of_mrr"] == 30.0
    assert x["gross_margin_usd"] == 7 and x["allocated_usd"] == 0
    assert str(y["cost_usd"]) == "0" and str(y["llm_cost_usd"]) == "0"  # no events: Decimal(0)
    assert y["cost_per_successful_task"] is None and y["revenue_usd"] == 0
    assert y["cost_pct_of_mrr"] is None and y["gross_margin_usd"] == 0
    assert y["allocated_usd"] == Decimal("2.50") and y["tasks"] == 0
    assert str(y["mrr_usd"]) == "0E-9"  # as the customers table holds it
    assert z["name"] is None and z["mrr_usd"] is None and z["revenue_usd"] is None
    assert z["cost_pct_of_mrr"] is None and z["gross_margin_usd"] is None
    assert str(z["cost_usd"]) == "4.00E-7" and str(z["tool_cost_usd"]) == "0"
    assert z["cost_per_successful_task"] is None and z["tasks"] == 1
    assert {r["window_start"] for r in rows} == {d1} and {r["window_end"] for r in rows} == {d2}
    # a reordering: Python's sort of the Decimal quotient (nulls last, in their order)
    by_win = rows.sorted_by("cost_per_successful_task")
    assert [r["customer_id"] for r in by_win] == ["X", "Y", "Z"]
    by_margin = rows.sorted_by("gross_margin_usd")
    assert [r["customer_id"] for r in by_margin] == ["X", "Y", "Z"]
    assert [r["customer_id"] for r in rows.sorted_by("allocated_usd")] == ["Y", "Z", "X"]
    assert rows[::2] == [x, z] and rows[2:0:-1] == [z, y]


def test_the_arrow_and_the_list_columns_give_the_same_rows() -> None:
    """The engine's Arrow columns (DuckDB) and lists (another engine) hold the same values:
    the same rows, field for field, of the same exact Decimals."""
    raw = _raw()
    frame = (Decimal("0.5"), None, None, {})
    a, b = CustomerRows(_arrow(raw), *frame), CustomerRows(raw, *frame)
    assert a == b
    for f in CUSTOMER_FIELDS:
        assert [str(v) for v in a.column(f)] == [str(v) for v in b.column(f)], f


# --- the engine's order, against sort_rows -----------------------------------------------------

IDS = ["A", "B", "C", "D", "E"]
NAMES = [None, "alpha", "Zed", "Ärger", "zed"]  # code point order: Z < a < z < Ä


@st.composite
def tables(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events of some of five customers (costs and counts with ties, nulls where a customer
    has no events) and a customers table of some of them (null and tied MRR and names)."""
    events: list[dict[str, Any]] = []
    ts = "2026-01-05T10:00:00Z"
    with_events = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True))
    for c in with_events:
        for k in range(draw(st.integers(0, 3))):
            events.append(
                {
                    "event_id": f"{c}l{k}",
                    "kind": "llm_call",
                    "ts": ts,
                    "customer_id": c,
                    "cost_usd": draw(st.sampled_from(["0", "1", "2.5", "0.0000004"])),
                    "attempt": draw(st.sampled_from([1, 2])),
                    "input_tokens": draw(st.sampled_from([0, 10, 10**12])),
                }
            )
        for k in range(draw(st.integers(0, 3))):
            events.append(
                {
                    "event_id": f"{c}o{k}",
                    "kind": "task_outcome",
                    "ts": ts,
                    "customer_id": c,
                    "task_id": f"t{k}",
                    "outcome": draw(st.sampled_from(["accepted", "abandoned"])),
                }
            )
        for k in range(draw(st.integers(0, 2))):
            events.append(
                {
                    "event_id": f"{c}t{k}",
                    "kind": draw(st.sampled_from(["tool_call", "escalation"])),
                    "tool_kind": draw(st.sampled_from(["read", "write"])),
                    "ts": ts,
                    "customer_id": c,
                    "cost_usd": draw(st.sampled_from(["0", "1", "3"])),
                }
            )
    if not events:  # a window without events is NoDataError, not a table
        events.append({"event_id": "x", "kind": "llm_call", "ts": ts, "customer_id": "A"})
    customers = [
        {
            "customer_id": c,
            "name": draw(st.sampled_from(NAMES)),
            "tier": draw(st.sampled_from([None, "pro", "free"])),
            "segment": draw(st.sampled_from([None, "smb"])),
            "mrr_usd": draw(st.sampled_from([None, Decimal(0), Decimal(50), Decimal(100)])),
        }
        for c in draw(st.lists(st.sampled_from(IDS), max_size=5, unique=True))
    ]
    return events, customers


def _same_order(con: Any, fields: Any, limits: Any) -> None:
    by_id = customer_rows(con, Window())
    assert [r["customer_id"] for r in by_id] == sorted(r["customer_id"] for r in by_id)
    for f in fields:
        want = sort_rows(list(by_id), f)
        got = customer_report(con, sort=f)
        assert [r["customer_id"] for r in got] == [r["customer_id"] for r in want], f
        assert got == want, f
        for n in limits:
            assert customer_report(con, sort=f, limit=n) == want[:n], (f, n)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables(),
    st.lists(st.sampled_from(CUSTOMER_FIELDS), min_size=1, max_size=3, unique=True),
    st.integers(1, 4),
)
def test_any_sort_field_orders_as_sort_rows(
    table: tuple[list[Any], list[Any]], fields: list[str], limit: int
) -> None:
    """For any field (sorted in the engine or in Python): the report's order is
    ``sort_rows``' of the table in customer id order, and a limit cuts that order."""
    con = connect(*table)
    try:
        _same_order(con, fields, (limit,))
    finally:
        con.close()


def test_every_sort_field_orders_as_sort_rows_with_ties_and_nulls() -> None:
    """Every field once, on a table with a tie on every sum (A and B: the same events), a
    customer without events (C: zeros, null ratios), one without a customers row (D: null
    name and MRR) and names out of ASCII order (``NAMES``)."""
    ts = "2026-01-05T10:00:00Z"
    events = [
        {"event_id": f"{c}{k}", "kind": kind, "ts": ts, "customer_id": c, "cost_usd": cost,
         "task_id": task, "outcome": "accepted" if task else None, "tool_kind": "read"}
        for c in ("A", "B", "D")
        for k, (kind, cost, task) in enumerate(
            [("llm_call", "1.5", None), ("task_outcome", None, "t1"), ("tool_call", "0", None)]
        )
    ]  # fmt: skip
    customers = [
        {"customer_id": "A", "name": "zed", "mrr_usd": Decimal(50)},
        {"customer_id": "B", "name": "Ärger", "mrr_usd": Decimal(50)},
        {"customer_id": "C", "name": "Zed", "mrr_usd": Decimal(0)},
        {"customer_id": "E", "name": "alpha", "mrr_usd": None},
    ]
    con = connect(events, customers)
    try:
        _same_order(con, CUSTOMER_FIELDS, (2,))
        names = [r["name"] for r in customer_report(con, sort="name")]
        assert names == ["Ärger", "zed", "alpha", "Zed", None]
    finally:
        con.close()


# --- the writers --------------------------------------------------------------------------------


def _printed(fn: Any) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        fn()
    return buf.getvalue()


def test_csv_and_json_by_column_are_the_dicts_bytes(ledger: Ledger) -> None:
    """The CSV writer reads a ``CustomerRows`` by column (no dict per row), JSON encodes its
    rows: the same bytes as from the plain list of the same dicts. C's line by hand: no
    events, so every sum 0, the ratios empty, revenue = MRR 100 (one month), margin 100."""
    rows = customer_report(ledger, window=window("2025-06"))
    by_column = _printed(lambda: print_csv(rows, CUSTOMER_FIELDS))
    by_dict = _printed(lambda: print_csv(list(rows), CUSTOMER_FIELDS))
    assert by_column == by_dict
    lines = by_column.splitlines()
    assert lines[0] == ",".join(CUSTOMER_FIELDS) and len(lines) == 4
    c = dict(zip(CUSTOMER_FIELDS, lines[3].split(","), strict=True))
    assert c["customer_id"] == "C" and c["cost_usd"] == "0" and c["tasks"] == "0"
    assert c["cost_per_successful_task"] == "" and c["escalation_rate"] == ""
    assert c["gross_margin_usd"] == c["revenue_usd"] and Decimal(c["revenue_usd"]) == 100
    assert c["window_start"] == "2025-06-01" and c["window_end"] == "2025-06-30"
    assert dumps(rows) == dumps(list(rows))
    assert dumps(rows[:0]) == "[]"


def test_dimensions_and_sums_are_the_columns_the_rows_show() -> None:
    """The table's field groups cover every field once (a field in none would print empty)."""
    computed = {
        "allocated_usd",
        "cost_per_successful_task",
        "revenue_usd",
        "cost_pct_of_mrr",
        "gross_margin_usd",
        "window_start",
        "window_end",
    }
    groups = [{"customer_id"}, set(DIMS), set(MONEY_SUMS), set(COUNTS), set(RATIOS), computed]
    assert sum(len(g) for g in groups) == len(CUSTOMER_FIELDS)
    assert set().union(*groups) == set(CUSTOMER_FIELDS)
