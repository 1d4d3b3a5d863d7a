"""Tables read in a normal terminal (issue 17): at 80 and 120 columns no header is cut, no value
wraps, the columns that do not fit are named; --wide and --columns show them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.cli import run
from tailguard.cli.output import HEADERS, fit_columns, fmt_cell, header
from tailguard.cli.report import TABLE_COLUMNS
from tests.conftest import REPO

POLICY = REPO / "examples" / "policy.toml"


def _table(out: str) -> tuple[list[str], list[list[str]]]:
    """(headers, body rows) of the Rich table in ``out``: header cells sit between ``┃``, body
    cells between ``│``; one text line per body row (a wrapped value would add lines)."""
    lines = out.splitlines()
    head = next(ln for ln in lines if ln.startswith("┃"))
    body = [ln for ln in lines if ln.startswith("│")]
    cells = [[c.strip() for c in ln.split("│")[1:-1]] for ln in body]
    return [c.strip() for c in head.split("┃")[1:-1]], cells


def _run(argv: list[str], width: int, capsys: pytest.CaptureFixture[str], mp) -> str:
    mp.setenv("COLUMNS", str(width))
    assert run(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("width", [80, 120])
def test_report_customers_fits(width: int, small_ledger: Path, capsys, monkeypatch) -> None:
    out = _run(["report", "customers", "--ledger", str(small_ledger)], width, capsys, monkeypatch)
    heads, rows = _table(out)
    assert max(len(ln) for ln in out.splitlines()) <= width
    # every header whole: one of the known short headers, in the order of TABLE_COLUMNS
    fields = [c for c in TABLE_COLUMNS if header(c) in heads]
    assert [header(c) for c in fields] == heads
    assert not any("…" in h for h in heads)
    # three customers (A, B, C), one line each: no value wrapped
    assert [r[0] for r in rows] == ["A", "B", "C"]
    # what is left out is named under the table, by field name
    left = [c for c in TABLE_COLUMNS if c not in fields]
    assert (f"{len(left)} more column(s): {', '.join(left)}." in " ".join(out.split())) == bool(
        left
    )
    # the most telling columns come first and always fit at 80
    assert heads[:4] == ["customer", "cost $", "% of MRR", "$/win"]


def test_more_columns_at_120_than_at_80(small_ledger: Path, capsys, monkeypatch) -> None:
    argv = ["report", "customers", "--ledger", str(small_ledger)]
    at80, _ = _table(_run(argv, 80, capsys, monkeypatch))
    at120, _ = _table(_run(argv, 120, capsys, monkeypatch))
    assert len(at80) < len(TABLE_COLUMNS) and len(at80) < len(at120)


def test_wide_shows_every_column_whole(small_ledger: Path, capsys, monkeypatch) -> None:
    argv = ["report", "customers", "--ledger", str(small_ledger), "--wide"]
    heads, rows = _table(_run(argv, 80, capsys, monkeypatch))
    assert heads == [header(c) for c in TABLE_COLUMNS]
    assert len(rows) == 3


def test_columns_picks_fields_in_the_given_order(small_ledger: Path, capsys, monkeypatch) -> None:
    """A (pro, 1 win of 2 tasks): hand-checked in tests/analytics/test_report_customers.py."""
    argv = ["report", "customers", "--ledger", str(small_ledger)]
    heads, rows = _table(
        _run([*argv, "--columns", "tier,customer_id,tasks"], 80, capsys, monkeypatch)
    )
    assert heads == ["tier", "customer", "tasks"]
    assert rows[0] == ["pro", "A", "2"]
    out = _run([*argv, "--csv", "--columns", "customer_id,tier"], 80, capsys, monkeypatch)
    assert out.splitlines() == ["customer_id,tier", "A,pro", "B,free", "C,team"]


def test_unknown_column_is_a_usage_error(small_ledger: Path, capsys) -> None:
    argv = ["report", "customers", "--ledger", str(small_ledger), "--columns", "customer,cost"]
    assert run(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no column 'customer', 'cost'; columns: customer_id," in err


def test_csv_and_json_keep_every_field(small_ledger: Path, capsys, monkeypatch) -> None:
    from tailguard.analytics.customers import CUSTOMER_FIELDS

    argv = ["report", "customers", "--ledger", str(small_ledger)]
    out = _run([*argv, "--csv"], 80, capsys, monkeypatch)
    assert out.splitlines()[0] == ",".join(CUSTOMER_FIELDS)


@pytest.mark.parametrize("width", [80, 120])
def test_kpis_reads_at_80_columns(width: int, small_ledger: Path, capsys, monkeypatch) -> None:
    """The panel keeps metric, value, band and status at 80 columns, one line per metric."""
    argv = ["kpis", "--ledger", str(small_ledger), "--policy", str(POLICY)]
    out = _run(argv, width, capsys, monkeypatch)
    heads, rows = _table(out)
    assert heads == ["metric", "value", "band", "status"]
    assert max(len(ln) for ln in out.splitlines()) <= width
    assert "…" not in out
    # one line per KPI, per metric and per tier of a per-tier metric: the JSON has as many
    assert run([*argv, "--json"]) == 0
    import json

    rep = json.loads(capsys.readouterr().out)
    expected = sum(
        1 + sum(1 + (len(m["value"]) if isinstance(m["value"], dict) else 0) for m in k["metrics"])
        for k in rep["kpis"]
    )
    assert len(rows) == expected
    assert rows[0] == ["per task cost", "", "", rep["kpis"][0]["status"]]


def test_headers_are_short() -> None:
    """A header a person reads in a narrow column: at most 12 characters."""
    assert max(len(h) for h in HEADERS.values()) <= 12


_names = st.sampled_from([*sorted(HEADERS), "plain_field", "another_one", "x"])
_values = st.one_of(
    st.none(),
    st.integers(-(10**12), 10**12),
    st.decimals(-(10**9), 10**9, places=9, allow_nan=False),
    st.text(max_size=30),
)


@given(
    st.lists(_names, min_size=1, max_size=14, unique=True),
    st.lists(st.lists(_values, min_size=14, max_size=14), max_size=6),
    st.integers(20, 200),
)
def test_fit_columns_invariants(names: list[str], values: list[list[Any]], width: int) -> None:
    """Shown + left out = the columns, each in the given order; the first is always shown;
    the shown ones fit (Rich's `│ x │`: width + 3 each, plus one) unless only the first is."""
    from rich.cells import cell_len

    rows = [dict(zip(names, v, strict=False)) for v in values]
    shown, left = fit_columns(rows, names, width)
    assert shown[0] == names[0]
    assert sorted(shown + left, key=names.index) == names
    assert shown == [c for c in names if c in shown] and left == [c for c in names if c in left]
    used = 1 + sum(
        max([cell_len(header(c))] + [cell_len(fmt_cell(r.get(c), c)) for r in rows]) + 3
        for c in shown
    )
    assert used <= width or shown == names[:1]
