"""Roll-ups on ClickHouse: the four per-day levels rebuilt per changed day from the
de-duplicated events, the month level rebuilt from them, all equal to DuckDB's."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tailguard.analytics.clickhouse import ClickHouseConnection
from tailguard.ledger import Ledger, merged
from tailguard.ledger.clickhouse import EVENTS_TABLE, ClickHouseLedger
from tailguard.ledger.clickhouse_rollup import FULL_TABLE, MONTH_TABLE, refresh, stale_days
from tailguard.ledger.rollup import (
    CALLS_KEYS,
    CALLS_SCHEMA,
    MERGE,
    ROLLUP_KEYS,
    TASK_KEYS,
    TASK_SCHEMA,
)

from .helpers import chdb_url, llm, price_book, priced


def _cost(led: ClickHouseLedger, table: str) -> Decimal:
    return led.query(f"SELECT sum(cost_usd) AS c FROM {table}").column("c")[0].as_py()


def test_a_raced_duplicate_is_rolled_up_once(tmp_path: Path) -> None:
    """Two writers without a shared lock insert e1 twice: a roll-up summing inserted rows (a
    materialized view) would count $0.0024; the refresh reads FINAL and counts $0.0012."""
    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.init()
    led.insert_rows(priced(book, [llm(1)]))
    led.insert_rows(priced(book, [llm(1)]))
    assert _cost(led, EVENTS_TABLE) == Decimal("0.0024")  # what an insert-time sum would see
    assert refresh(led) == [202601]
    assert _cost(led, FULL_TABLE) == Decimal("0.0012")
    row = led.query(f"SELECT sum(events) AS n, sum(input_tokens) AS t FROM {FULL_TABLE}")
    assert row.to_pylist() == [{"n": 1, "t": 1000}]


def test_only_the_days_that_changed_are_rebuilt(tmp_path: Path) -> None:
    import datetime as dt

    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.append([llm(1), llm(2, ts="2026-02-03T00:00:00Z")], prices=book)
    assert refresh(led) == [202601, 202602]
    assert refresh(led) == []  # nothing changed
    parts = f"SELECT partition, name FROM system.parts WHERE table = '{FULL_TABLE}' AND active"
    before = led.query(parts).to_pylist()
    led.append([llm(3, ts="2026-02-28T23:59:59Z")], prices=book)
    assert [d for d, _, _ in stale_days(led)[202602]] == [dt.date(2026, 2, 28)]
    assert refresh(led) == [202602]
    after = led.query(parts).to_pylist()
    # one partition per day: Jan 5 and Feb 3 keep their parts, Feb 28 is a new partition
    assert sorted(r["partition"] for r in before) == ["20260105", "20260203"]
    assert [r for r in after if r["partition"] != "20260228"] == before
    assert sorted(r["partition"] for r in after) == ["20260105", "20260203", "20260228"]
    rows = led.query(
        f"SELECT day, sum(cost_usd) AS c, sum(events) AS n FROM {FULL_TABLE} GROUP BY day "
        "ORDER BY day"
    ).to_pylist()
    assert rows == [  # Feb 3 and January untouched, Feb 28 added
        {"day": dt.date(2026, 1, 5), "c": Decimal("0.0012"), "n": 1},
        {"day": dt.date(2026, 2, 3), "c": Decimal("0.0012"), "n": 1},
        {"day": dt.date(2026, 2, 28), "c": Decimal("0.0012"), "n": 1},
    ]
    daily = led.query("SELECT count() AS n, sum(cost_usd) AS c FROM ledger_rollup_daily")
    assert daily.to_pylist() == [{"n": 3, "c": Decimal("0.0036")}]


def test_a_context_reads_fresh_rollups(tmp_path: Path) -> None:
    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.append([llm(1)], prices=book)
    con = ClickHouseConnection(led)
    try:
        assert con.arrow("SELECT sum(cost_usd) AS c FROM rollup").to_pylist() == [
            {"c": Decimal("0.0012")}
        ]
    finally:
        con.close()
    led.append([llm(2)], prices=book)  # the month changed: the next context rebuilds it
    con = ClickHouseConnection(led)
    try:
        got = con.arrow("SELECT sum(cost_usd) AS c, sum(events) AS n FROM rollup_daily")
        assert got.to_pylist() == [{"c": Decimal("0.0024"), "n": 2}]
    finally:
        con.close()


@pytest.mark.parametrize("final_from_days", [1, 10_000])
def test_the_rollup_rows_equal_duckdbs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, final_from_days: int
) -> None:
    """The same simulated events in both engines: every level's measures equal key by key
    (the full, task and call-size levels: the segments' roll-up files re-aggregated per key in
    DuckDB, the days' rows in ClickHouse; the month level and the customers' whole-ledger rows
    row for row), whether the rebuild reads the months with FINAL or the days' rows
    de-duplicated by key."""
    import datetime as dt

    from tailguard.ledger import clickhouse_rollup

    monkeypatch.setattr(clickhouse_rollup, "FINAL_FROM_DAYS", final_from_days)
    from tailguard.simulate import simulate

    from .helpers import twin_ledgers

    sim = simulate(customers=6, days=35, seed=3, out=tmp_path / "sim", start=dt.date(2026, 1, 20))
    duck, ch = twin_ledgers(tmp_path, sim.events_path, sim.prices_path, sim.customers_path)
    assert isinstance(duck, Ledger)
    assert merged.is_fresh(duck)  # DuckDB's month level of its listing: read below

    def by_key(keys: tuple[str, ...], measures: dict[str, str], rel: str) -> str:
        cols = ", ".join(f"{fn}({m}) AS {m}" for m, fn in measures.items())
        return f"SELECT {', '.join(keys)}, {cols} FROM {rel} GROUP BY {', '.join(keys)}"

    def sums(schema: pa.Schema, keys: tuple[str, ...]) -> dict[str, str]:
        return {n: "sum" for n in schema.names if n not in keys}

    levels = {  # each level's rows re-aggregated per key (DuckDB: one set per segment)
        "rollup": by_key(ROLLUP_KEYS, MERGE, "rollup"),
        "rollup_task": by_key(TASK_KEYS, sums(TASK_SCHEMA, TASK_KEYS), "rollup_task"),
        "rollup_calls": by_key(CALLS_KEYS, sums(CALLS_SCHEMA, CALLS_KEYS), "rollup_calls"),
        "rollup_month": "SELECT * FROM rollup_month",  # merged across segments: one per key
        "rollup_customer": "SELECT * FROM rollup_customer",
    }
    con = duck.connect()
    try:
        expected = {name: _sorted(con.execute(sql).fetchall()) for name, sql in levels.items()}
    finally:
        con.close()
    cc = ClickHouseConnection(ch)
    try:
        got = {
            name: _sorted([tuple(r.values()) for r in cc.arrow(sql).to_pylist()])
            for name, sql in levels.items()
        }
    finally:
        cc.close()
    assert {r[ROLLUP_KEYS.index("day")].month for r in got["rollup"]} == {1, 2}  # two partitions
    assert {r[1].month for r in got["rollup_month"]} == {1, 2}
    for name, rows in got.items():
        assert len(rows) == len(expected[name]) > 5, name
        for g, e in zip(rows, expected[name], strict=True):
            assert len(g) == len(e)
            for a, b in zip(g, e, strict=True):
                if isinstance(a, float):  # a float sum's last bits depend on the order
                    assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), name
                else:
                    assert a == b, (name, g, e)
    assert len(got["rollup"]) > 50 and len(got["rollup_task"]) > 50


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def test_rollup_tables_partitioned_by_month_are_rebuilt_by_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger whose roll-ups were built before the per-day layout (partitioned by month) is
    rebuilt in the new layout by the next refresh, with the same sums."""
    from tailguard.ledger import clickhouse_rollup

    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.append([llm(1), llm(2, ts="2026-01-20T00:00:00Z")], prices=book)
    with monkeypatch.context() as m:  # the old layout, recorded as up to date (but empty)
        m.setattr(clickhouse_rollup, "PARTITION_KEY", "toYYYYMM(day)")
        clickhouse_rollup.ensure(led)
    key = f"SELECT partition_key AS k FROM system.tables WHERE name = '{FULL_TABLE}'"
    assert led.query(key).column("k")[0].as_py() == "toYYYYMM(day)"
    for d, n, ins in stale_days(led)[202601]:
        led.engine().command(
            f"INSERT INTO {clickhouse_rollup.STATE_TABLE} (day, raw_rows, max_inserted) "
            f"VALUES ('{d}', {n}, '{ins:%Y-%m-%d %H:%M:%S.%f}')"
        )
    assert stale_days(led) == {}
    assert refresh(led) == [202601]  # the old layout and its record dropped: every day rebuilt
    assert led.query(key).column("k")[0].as_py() == "toYYYYMMDD(day)"
    assert _cost(led, FULL_TABLE) == Decimal("0.0024")
    assert refresh(led) == []


def _month(led: ClickHouseLedger) -> dict[tuple[str, Any], dict[str, Any]]:
    cols = ", ".join(merged.MONTH_SCHEMA.names)
    rows = led.query(f"SELECT {cols} FROM {MONTH_TABLE}").to_pylist()
    return {(r["customer_id"], r["month"]): r for r in rows}


_TASK_COLS = ("tasks", "successful_tasks", "first_tasks", "first_successful_tasks")


def test_the_month_level_by_hand_and_a_later_month_changing_an_earlier_row(
    tmp_path: Path,
) -> None:
    """tests/ledger/helpers.py's hand ledger, in two commits (January, then February).

    After January: A's t1 has one outcome (rejected, Jan 31): January tasks 1, won 0; its first
    month January, not won. B's t3 likewise. After February (t1 accepted on Feb 1, t2 abandoned
    then accepted on Feb 10): A's February tasks {t1, t2}, both won there; t1's first month is
    still January, now won over the ledger: January's row gains first_successful_tasks 1 though
    no January event was written (the month level is rebuilt whole, not per day). A's whole
    ledger: 2 tasks, 2 won; cost 0.000000001 + 1 + 0.002; 4 LLM requests (1 + an aggregate
    row of 3)."""
    from tests.ledger.helpers import FEB, JAN, SEG1, SEG2

    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.append(SEG1)
    assert refresh(led) == [202601]
    m = _month(led)
    assert [m[("A", JAN)][c] for c in _TASK_COLS] == [1, 0, 1, 0]
    assert [m[("B", JAN)][c] for c in _TASK_COLS] == [1, 0, 1, 0]
    assert [m[("A", None)][c] for c in _TASK_COLS] == [1, 0, 1, 0]
    led.append(SEG2)
    assert refresh(led) == [202602]  # only February's days rebuilt ...
    m = _month(led)
    assert [m[("A", JAN)][c] for c in _TASK_COLS] == [1, 0, 1, 1]  # ... January's row changed
    assert [m[("A", FEB)][c] for c in _TASK_COLS] == [2, 2, 1, 1]
    assert [m[("A", None)][c] for c in _TASK_COLS] == [2, 2, 2, 2]
    assert [m[("B", None)][c] for c in _TASK_COLS] == [1, 0, 1, 0]
    a = m[("A", None)]
    assert (a["cost_usd"], a["requests"], a["events"]) == (Decimal("1.002000001"), 4, 7)
    assert (a["first_day"], a["last_day"]) == (dt.date(2026, 1, 31), dt.date(2026, 2, 11))
    assert (m[("A", FEB)]["read_tool_calls"], m[("A", FEB)]["tool_cost_usd"]) == (
        1,
        Decimal("0.002"),
    )
    assert len(m) == 5  # A Jan, A Feb, B Jan, and A's and B's whole-ledger rows


def test_a_month_level_left_behind_by_a_crash_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that dies after the days are swapped in and before the month level is leaves
    the days recorded as built: the next refresh finds no stale day, sees that the month level
    was built from other days, and rebuilds it."""
    from tailguard.ledger import clickhouse_rollup

    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.append([llm(1)], prices=book)
    refresh(led)

    def crash(*_: Any) -> int:
        raise RuntimeError("killed")

    led.append([llm(2, ts="2026-01-06T00:00:00Z")], prices=book)
    with monkeypatch.context() as mp:
        mp.setattr(clickhouse_rollup, "rebuild_month", crash)
        with pytest.raises(RuntimeError):
            refresh(led)
    assert stale_days(led) == {}
    assert _month(led)[("c1", None)]["cost_usd"] == Decimal("0.0012")  # stale, whole
    assert clickhouse_rollup.month_stale(led) is not None
    assert refresh(led) == []
    assert _month(led)[("c1", None)]["cost_usd"] == Decimal("0.0024")
    assert clickhouse_rollup.month_stale(led) is None


def test_a_ledger_with_the_two_level_layout_gets_every_level(tmp_path: Path) -> None:
    """A ledger refreshed before the task, call-size and month levels existed (only the full
    and daily tables, every day recorded as built): ``ensure`` drops the old tables and their
    record, and the refresh rebuilds every day in all four levels and the month level."""
    from tailguard.ledger import clickhouse_rollup as cr

    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.append([llm(1, task_id="t"), llm(2, ts="2026-02-01T00:00:00Z")], prices=book)
    refresh(led)
    for table in (cr.TASK_TABLE, cr.CALLS_TABLE, cr.MONTH_TABLE, cr.MONTH_STATE_TABLE):
        led.engine().command(f"DROP TABLE {led.db}.{table}")
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))  # a new process: the layout checked once
    assert refresh(led) == [202601, 202602]
    got = led.query(f"SELECT sum(calls) AS n, sum(cost_usd) AS c FROM {cr.TASK_TABLE}")
    assert got.to_pylist() == [{"n": 2, "c": Decimal("0.0024")}]
    got = led.query(f"SELECT sum(calls) AS n FROM {cr.CALLS_TABLE}")
    assert got.to_pylist() == [{"n": 2}]
    assert _month(led)[("c1", None)]["requests"] == 2


def test_an_empty_ledger_has_empty_levels_and_a_context_opens(tmp_path: Path) -> None:
    """No events: the refresh records an empty month level (ClickHouse refuses to replace a
    partition from an empty staging table: it is dropped instead), a context opens and each
    level is empty, and a second refresh has nothing to do."""
    from tailguard.ledger import clickhouse_rollup as cr

    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.init()
    assert refresh(led) == []
    assert cr.month_stale(led) is None
    con = ClickHouseConnection(led)
    try:
        for view in ("rollup", "rollup_task", "rollup_calls", "rollup_month", "rollup_customer"):
            assert con.arrow(f"SELECT count() AS n FROM {view}").to_pylist() == [{"n": 0}]
    finally:
        con.close()
