"""The query context: one shape for every report, one dialect, the month arithmetic.

The ledger (February 2026, two customers, MRR 100 each, ``--period 2026-02``):

    A  pro  smb  a1: 10.00 on the 3rd, 2.00 on the 10th; a2: 3.00 on the 10th   cost 15.00
    B  pro  smb  b1: 40.00 on the 10th                                          cost 40.00

so cost % of MRR is 15% and 40%, margins 85.00 and 60.00, and every report gives one answer
whichever form the ledger is handed in (a directory, a ``Ledger``, a connection, a context).
"""

from __future__ import annotations

import datetime as dt
import inspect
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import tailguard
from tailguard.analytics.context import DUCKDB, QueryContext, using
from tailguard.analytics.customers import customer_rows
from tailguard.analytics.kpis import build, kpi_tier_budget, panel_period, resolve_caps
from tailguard.analytics.period import add_months, month_last, month_start, quarter_start, window
from tailguard.guard.policy import load_policy
from tailguard.ledger import Ledger
from tests.analytics.helpers import POLICY_TOML, Events, day, make_ledger

FEB = window("2026-02")
TO_10TH = window(date_from="2026-02-01", date_to="2026-02-10")  # a scan's day: the 10th

#: every report of the public API, and how to call it on this ledger
REPORTS: dict[str, Any] = {
    "customer_report": lambda s: tailguard.customer_report(s, window=FEB),
    "kpis": lambda s: tailguard.kpis(s, window=FEB),
    "margins": lambda s: tailguard.margins(s, window=FEB, history_months=1),
    "anomalies": lambda s: tailguard.anomalies(s, window=TO_10TH),
    "decide": lambda s: tailguard.decide(s, "B", window=FEB),
    "renewal": lambda s: tailguard.renewal(s, "A", window=FEB),
    "digest": lambda s: tailguard.digest(s, "weekly", window=TO_10TH),
    "diagnose": lambda s: tailguard.diagnose(s, window=FEB),
    "outcomes": lambda s: tailguard.outcomes(s, window=FEB),
    "workload": lambda s: tailguard.workload(s, window=FEB),
}


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    e = Events()
    e.llm("A", "a1", day(3), "10.00")
    e.llm("A", "a1", day(10), "2.00")
    e.llm("A", "a2", day(10), "3.00")
    e.llm("B", "b1", day(10), "40.00")
    csv = "A,A,pro,smb,100,2,,2025-01-01\nB,B,pro,smb,100,1,,2025-01-01\n"
    return make_ledger(tmp_path_factory.mktemp("context"), e.rows, csv)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_form_of_the_ledger_gives_one_answer(led: Ledger, name: str) -> None:
    by_dir = REPORTS[name](led.path)
    by_ledger = REPORTS[name](led)
    con = led.connect()
    try:
        by_connection = REPORTS[name](con)
    finally:
        con.close()
    with QueryContext.open(led) as ctx:
        by_context = REPORTS[name](ctx)
    assert by_dir == by_ledger == by_connection == by_context


def test_the_figures_by_hand(led: Ledger) -> None:
    with QueryContext.open(led) as ctx:
        rows = {r["customer_id"]: r for r in tailguard.customer_report(ctx, window=FEB)}
        rep = tailguard.margins(ctx, window=FEB, history_months=1)
    assert rows["A"]["cost_usd"] == Decimal("15.00") and rows["B"]["cost_usd"] == Decimal("40")
    assert rows["A"]["gross_margin_usd"] == Decimal("85.00")
    assert rows["A"]["cost_pct_of_mrr"] == 15.0 and rows["B"]["cost_pct_of_mrr"] == 40.0
    assert rep["window"] == {"start": dt.date(2026, 2, 1), "end": dt.date(2026, 2, 28)}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_has_one_shape(name: str) -> None:
    """``report(ledger_or_context, ..., *, window=...)``: the ledger first, the window by name."""
    fn = getattr(tailguard, name)
    params = list(inspect.signature(fn).parameters.values())
    assert params[0].name == "ledger" or params[0].name == "ledger_dir"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert "window" in inspect.signature(fn).parameters
    assert inspect.signature(fn).parameters["window"].kind is inspect.Parameter.KEYWORD_ONLY


def test_a_shared_context_stays_open_and_an_opened_one_closes(led: Ledger) -> None:
    with QueryContext.open(led) as ctx:
        tailguard.kpis(ctx)
        tailguard.margins(ctx)  # the same connection, still open
        assert ctx.fetch("SELECT count(*) FROM events") == [(4,)]
    with pytest.raises(Exception, match="closed"):
        ctx.fetch("SELECT 1")
    with using(led.path) as opened:
        assert opened.owned
    with pytest.raises(Exception, match="closed"):
        opened.fetch("SELECT 1")


def test_the_ledger_span_is_its_first_and_last_event(led: Ledger) -> None:
    with QueryContext.open(led) as ctx:
        assert ctx.first_day() == dt.date(2026, 2, 3)
        assert ctx.last_day() == dt.date(2026, 2, 10)
        assert ctx.ledger_window().stated() == {
            "start": dt.date(2026, 2, 3),
            "end": dt.date(2026, 2, 10),
        }


def test_the_duckdb_dialect_by_hand() -> None:
    with QueryContext.wrap(_con()) as ctx:
        ctx.register("v", pa.table({"x": [1.0, 2.0, 3.0, 4.0]}))
        # linear interpolation: position 0.9 * 3 = 2.7 -> 3 + 0.7 * (4 - 3)
        got = ctx.fetch(f"SELECT {ctx.quantile('x', 0.9)} FROM v")[0][0]
        assert got == pytest.approx(3.7, abs=1e-12)
        assert got == pytest.approx(float(np.quantile([1, 2, 3, 4], 0.9)), abs=1e-12)
        ts = [
            dt.datetime(1970, 1, 2, tzinfo=dt.UTC),  # day 1
            dt.datetime(1969, 12, 31, 23, 59, tzinfo=dt.UTC),  # day -1: floored, not truncated
            dt.datetime(2026, 2, 4, 23, 30, tzinfo=dt.UTC),  # a Wednesday
        ]
        ctx.register("t", pa.table({"ts": pa.array(ts, pa.timestamp("us", tz="UTC"))}))
        rows = ctx.fetch(
            f"SELECT {ctx.day_number('ts')}, {ctx.to_date('ts')}, {ctx.trunc('week', 'ts')}, "
            f"{ctx.trunc('month', 'ts')}, {ctx.trunc('quarter', 'ts')}, {ctx.epoch_seconds('ts')} "
            "FROM t"
        )
        assert [r[0] for r in rows] == [1, -1, 20488]  # 2026-02-04 - 1970-01-01 = 20488 days
        assert rows[2][1:5] == (
            dt.date(2026, 2, 4),
            dt.date(2026, 2, 2),  # the Monday
            dt.date(2026, 2, 1),
            dt.date(2026, 1, 1),
        )
        assert rows[0][5] == 86400
        ctx.temp_table("w", "SELECT x FROM v WHERE x > ?", [2.5])
        assert ctx.fetch("SELECT sum(x) FROM w") == [(7.0,)]
        ctx.drop("w")
        ctx.drop("v")
        ctx.drop("never_made")  # no error
        with pytest.raises(Exception, match="w"):
            ctx.fetch("SELECT * FROM w")
        with pytest.raises(ValueError, match="day"):
            DUCKDB.trunc("day", "ts")


def test_month_arithmetic() -> None:
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 1)
    assert add_months(dt.date(2026, 1, 15), -1) == dt.date(2025, 12, 1)
    assert add_months(dt.date(2025, 12, 15), 13) == dt.date(2027, 1, 1)
    assert month_start(dt.date(2026, 3, 31), 2) == dt.date(2026, 1, 1)
    assert month_last(dt.date(2024, 2, 10)) == dt.date(2024, 2, 29)
    assert month_last(dt.date(2026, 12, 1)) == dt.date(2026, 12, 31)
    assert quarter_start(dt.date(2026, 5, 17)) == dt.date(2026, 4, 1)
    assert quarter_start(dt.date(2026, 12, 31)) == dt.date(2026, 10, 1)


def test_panel_tables_name_what_they_hold(led: Ledger, tmp_path: Any) -> None:
    pol_file = tmp_path / "policy.toml"
    pol_file.write_text(POLICY_TOML)
    policy = load_policy(str(pol_file))
    with QueryContext.open(led) as ctx:
        p = panel_period(ctx, "2026-02")
        caps = resolve_caps(ctx, policy)
        days_only = build(ctx, p, caps, parts=["caps", "days"])
        full = build(ctx, p, caps)
        assert days_only.users is None and days_only.customers is None
        with pytest.raises(ValueError, match="'users'"):
            days_only.require("users")
        assert days_only.days != full.days  # two panels on one connection never share a table
        assert kpi_tier_budget(days_only) == kpi_tier_budget(full)
        with pytest.raises(ValueError, match="unknown parts"):
            build(ctx, p, caps, parts=["nope"])
        with pytest.raises(ValueError, match="days"):
            build(ctx, p, caps, parts=["customers"])
        # the panel's customer rows (from its days) carry report customers' figures
        report = {r["customer_id"]: r for r in customer_rows(ctx, p.window)}
        fields = ("name", "tier", "segment", "cost_usd", "mrr_usd", "revenue_usd")
        fields += ("cost_pct_of_mrr", "gross_margin_usd")
        assert [{k: r[k] for k in ("customer_id", *fields)} for r in full.customers or []] == [
            {k: report[c][k] for k in ("customer_id", *fields)} for c in sorted(report)
        ]
        assert [r["cost_usd"] for r in full.customers or []] == [Decimal("15.00"), Decimal(40)]


def _con() -> Any:
    import duckdb

    return duckdb.connect()


def test_engine_specific_sql_lives_in_the_dialect() -> None:
    """The reports' SQL names no DuckDB-only function and sets no session option: those are the
    dialect's (``context.DuckDBDialect``), so a second engine plugs in at one place. Scans the
    string constants of tailguard/analytics (docstrings and comments may name them)."""
    import ast
    import re
    from pathlib import Path

    root = Path(tailguard.__file__).parent / "analytics"
    banned = re.compile(
        r"\bepoch\s*\(|extract\s*\(\s*epoch|epoch_us|quantile_cont|date_trunc|TEMP TABLE"
        r"|SET TimeZone",
        re.I,
    )
    found = []
    for f in sorted(root.rglob("*.py")):
        if f.name in ("context.py", "clickhouse.py"):
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"))
        docs = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and banned.search(node.value)
            ):
                found.append(f"{f.relative_to(root)}:{node.lineno}")
    assert found == []
    # the scan sees SQL: it finds what the DuckDB dialect itself writes
    assert banned.search(DUCKDB.quantile("x", 0.5)) and banned.search(DUCKDB.trunc("month", "ts"))


def test_beside_runs_on_a_second_connection_and_falls_back(led: Ledger) -> None:
    """``beside`` runs a report on a sibling connection of the same database (the ledger's
    views, its own connection) while the caller goes on; a report its connection cannot run (a
    table registered on the caller's connection only) is run again on the caller's context
    when asked for, with the same answer as there."""
    import threading

    from tailguard.analytics.context import beside

    def spend(ctx: QueryContext) -> tuple[Any, bool, str]:
        (total,) = ctx.execute("SELECT sum(cost_usd) FROM events").fetchall()[0]
        return total, ctx.con is main.con, threading.current_thread().name

    def registered(ctx: QueryContext) -> int:
        return ctx.execute("SELECT count(*) FROM only_here").fetchall()[0][0]

    with using(led) as main:
        alone = spend(main)[0]
        with beside(main, spend) as got:
            total, same_con, thread = got()
        assert (total, same_con, thread) == (alone, False, "tailguard-beside")
        main.register("only_here", pa.table({"x": [1, 2, 3]}))
        with beside(main, registered) as got:
            assert got() == 3  # failed on the sibling, run on main
