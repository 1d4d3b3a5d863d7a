"""Parity: every report on the same events gives the same answer in DuckDB and in ClickHouse.

Each dataset is ingested twice through the real ingest (pricing, customers import): into a
DuckDB/Parquet ledger and into a chdb ledger. Every report then runs on a ``QueryContext`` of
each: DuckDB's SQL on the Parquet segments, and the same SQL run inside ClickHouse through the
ClickHouse dialect (``events`` read with FINAL). Money must be equal exactly (Decimal), ratios
to 1e-12, everything else equal. Datasets: the hand-checked ledgers (tests/ledger/fixtures.py,
tests/fixtures_asymmetric.py) and a small simulated one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tailguard.analytics import (
    anomalies,
    decide,
    diagnose,
    digest,
    kpis,
    margins,
    outcomes,
    renewal,
    workload,
)
from tailguard.analytics.clickhouse import CLICKHOUSE, bind, translate
from tailguard.analytics.context import QueryContext
from tailguard.analytics.customers import customer_rows
from tailguard.analytics.period import Window, window
from tailguard.analytics.report import customer_report
from tailguard.guard.policy import load_policy
from tailguard.ledger import Ledger
from tailguard.ledger.clickhouse import ClickHouseLedger

from .helpers import twin_ledgers

Report = Callable[[Any], Any]


def _same(a: Any, b: Any, where: str = "") -> None:
    """``a == b`` with floats to 1e-12 (relative or absolute); Decimals exactly. A dict's keys
    are compared as a set: a dict filled from an unordered GROUP BY has no order in either
    engine (digest's ``user_quantiles``)."""
    num = (int, float)
    if (
        isinstance(a, num)
        and isinstance(b, num)
        and float in (type(a), type(b))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        # a float sum depends on the order it is added in (workload's effective tokens sum to
        # 4934625 in one engine, 4934625.000000003 in the other, and the report prints the
        # former as an int): equal to 1e-12
        a, b = float(a), float(b)
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(
            a, b, rel_tol=1e-12, abs_tol=1e-12
        ), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        if isinstance(a, Decimal) or isinstance(b, Decimal):
            assert type(a) is type(b), f"{where}: {a!r} ({type(a)}) vs {b!r} ({type(b)})"
        assert a == b, f"{where}: {a!r} != {b!r}"


def _reports(period: str, customer: str, policy: Any) -> dict[str, Report]:
    win = window(period, None, None)
    days = window(None, f"{period}-02", f"{period}-20")  # whole UTC days, not a month
    return {
        # the three windows of ``report customers``: one month (``rollup_month``), the open
        # window (``rollup_customer``), whole days (``rollup_daily`` and ``rollup_task``)
        "customers": lambda c: customer_rows(c, win),
        "customers_open": lambda c: customer_rows(c, Window()),
        "customers_days": lambda c: customer_rows(c, days),
        "customer_report_limit": lambda c: list(customer_report(c, limit=2, sort="cost_usd")),
        "diagnose": lambda c: diagnose.diagnose(c, win),
        "outcomes": lambda c: outcomes.outcomes(c, win),
        "outcomes_by_feature": lambda c: outcomes.outcomes(c, win, by="feature"),
        "workload": lambda c: workload.workload(c, win),  # rollup_task, rollup_calls
        "workload_open": lambda c: workload.workload(c, Window()),
        "margins": lambda c: margins.margins(c, win),
        "anomalies": lambda c: anomalies.anomalies(c, policy=policy),
        "decide": lambda c: decide.decide(c, customer),
        "renewal": lambda c: renewal.renewal(c, customer),
        "digest_daily": lambda c: digest.digest(c, "daily", policy=policy),
        "digest_weekly": lambda c: digest.digest(c, "weekly", policy=policy),
        "digest_quarterly": lambda c: digest.digest(c, "quarterly", policy=policy),
        "kpis": lambda c: kpis.kpis(c, period=period, policy=policy),
    }


REPORTS = list(_reports("2025-06", "x", None))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """name -> (DuckDB ledger, chdb ledger, period, a customer, policy); the chdb ledgers share
    one chdb directory (one per process), each in its own database."""
    from tailguard.simulate import simulate
    from tests.fixtures_asymmetric import write_asymmetric
    from tests.ledger.fixtures import write_fixture

    root = tmp_path_factory.mktemp("parity")
    chdir = root / "chdb"
    out: dict[str, Any] = {}
    d = root / "asym"
    d.mkdir()
    ev, prices, cust = write_asymmetric(d)
    duck, ch = twin_ledgers(d, ev, prices, cust, chdir=chdir, database="asym")
    out["asymmetric"] = (duck, ch, "2025-06", "WIN", None)
    d = root / "hand"
    d.mkdir()
    ev, prices, cust = write_fixture(d)
    duck, ch = twin_ledgers(d, ev, prices, cust, chdir=chdir, database="hand")
    out["hand"] = (duck, ch, "2025-06", "A", None)
    sim = simulate(customers=12, days=40, seed=7, out=root / "sim", start=dt.date(2026, 1, 1))
    duck, ch = twin_ledgers(
        root / "sim",
        sim.events_path,
        sim.prices_path,
        sim.customers_path,
        chdir=chdir,
        database="sim",
    )
    first = sorted(r["customer_id"] for r in duck.customers_table().to_pylist())[0]
    out["simulated"] = (duck, ch, "2026-01", first, load_policy(sim.policy_path))
    return out


@pytest.mark.parametrize("rollups", [True, False], ids=["rollups", "events"])
@pytest.mark.parametrize("dataset", ["asymmetric", "hand", "simulated"])
@pytest.mark.parametrize("report", REPORTS)
def test_every_report_is_the_same_on_duckdb_and_clickhouse(
    datasets: dict[str, Any], dataset: str, report: str, rollups: bool
) -> None:
    """DuckDB reading its roll-ups against ClickHouse reading its own roll-ups, and against
    ClickHouse reading only events (every query path of the reports run in ClickHouse)."""
    duck, ch, period, customer, policy = datasets[dataset]
    assert isinstance(duck, Ledger) and isinstance(ch, ClickHouseLedger)
    run = _reports(period, customer, policy)[report]
    with QueryContext.open(duck) as ctx:
        assert ctx.dialect.name == "duckdb"
        expected = run(ctx)
    with QueryContext.open(ch) as ctx:
        assert ctx.dialect is CLICKHOUSE  # the ledger brings its dialect: SQL in ClickHouse
        ctx.use_rollup = rollups
        got = run(ctx)
    _same(got, expected, f"{dataset}/{report}")


def test_the_datasets_hold_what_the_reports_need(datasets: dict[str, Any]) -> None:
    """A parity over empty answers would prove nothing: each ledger has its events in both
    engines, and the monthly customer table has a row with cost for each dataset."""
    for name, (duck, ch, period, _customer, _policy) in datasets.items():
        assert duck.count() == ch.count() > 10, name
        with QueryContext.open(ch) as ctx:
            rows = customer_rows(ctx, window(period, None, None))
        assert any(r["cost_usd"] > 0 for r in rows), name


def test_parameters_are_typed_literals() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    sql = bind(
        "SELECT ? , '?' , ?, ?, ?", [when, Decimal("0.000000001"), "it's", dt.date(2026, 1, 2)]
    )
    assert sql == (
        "SELECT toDateTime64('2026-01-02 03:04:05.000006', 6, 'UTC') , '?' , "
        "toDecimal128('1E-9', 9), 'it\\'s', toDate32('2026-01-02')"
    )


def test_median_is_exact_and_qualified_columns_keep_their_names() -> None:
    assert "groupArray(cost)" in translate("SELECT median(cost) FROM t")
    assert translate("SELECT e.a, e.b FROM t e") == "SELECT e.a AS a, e.b AS b FROM t e"


def test_clickhouse_reads_the_same_levels_as_duckdb(datasets: dict[str, Any]) -> None:
    """The parity above is between the same sources: on both engines a context has the four
    per-segment levels and the month level, and ``report customers`` answers a month from
    ``rollup_month`` and the open window from ``rollup_customer``."""
    from tailguard.analytics.customers import month_where

    duck, ch, period, _customer, _policy = datasets["simulated"]
    month = window(period, None, None)
    for led in (duck, ch):
        with QueryContext.open(led) as ctx:
            for rel in ("rollup", "rollup_daily", "rollup_task", "rollup_calls"):
                assert ctx.has_rollup(rel), (ctx.dialect.name, rel)
            assert month_where(ctx, Window()) == ("rollup_customer", "TRUE", [])
            assert month_where(ctx, month) == ("rollup_month", "month = ?", [month.start.date()])
