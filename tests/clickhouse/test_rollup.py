"""Roll-ups on ClickHouse: rebuilt per changed day from the de-duplicated events, equal to
DuckDB's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.analytics.clickhouse import ClickHouseConnection
from tailguard.ledger import Ledger
from tailguard.ledger.clickhouse import EVENTS_TABLE, ClickHouseLedger
from tailguard.ledger.clickhouse_rollup import FULL_TABLE, refresh, stale_days
from tailguard.ledger.rollup import MERGE, ROLLUP_KEYS

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
    """The same simulated events in both engines: every roll-up key's measures equal (the
    segments' roll-up files re-aggregated per key in DuckDB; the month's rows in ClickHouse),
    whether the rebuild reads the months with FINAL or the days' rows de-duplicated by key."""
    import datetime as dt

    from tailguard.ledger import clickhouse_rollup

    monkeypatch.setattr(clickhouse_rollup, "FINAL_FROM_DAYS", final_from_days)
    from tailguard.simulate import simulate

    from .helpers import twin_ledgers

    sim = simulate(customers=6, days=35, seed=3, out=tmp_path / "sim", start=dt.date(2026, 1, 20))
    duck, ch = twin_ledgers(tmp_path, sim.events_path, sim.prices_path, sim.customers_path)
    assert isinstance(duck, Ledger)
    keys = ", ".join(ROLLUP_KEYS)
    measures = ", ".join(f"{fn}({m}) AS {m}" for m, fn in MERGE.items())
    sql = f"SELECT {keys}, {measures} FROM rollup GROUP BY {keys}"
    con = duck.connect()
    try:
        expected = sorted(
            con.execute(sql).fetchall(), key=lambda r: tuple("" if v is None else str(v) for v in r)
        )
    finally:
        con.close()
    cc = ClickHouseConnection(ch)
    try:
        got = [tuple(r.values()) for r in cc.arrow(sql).to_pylist()]
    finally:
        cc.close()
    got.sort(key=lambda r: tuple("" if v is None else str(v) for v in r))
    assert len(got) == len(expected) > 50
    assert {r[ROLLUP_KEYS.index("day")].month for r in got} == {1, 2}  # two partitions
    for g, e in zip(got, expected, strict=True):
        assert len(g) == len(e)
        for a, b in zip(g, e, strict=True):
            if isinstance(a, float):
                assert abs(a - b) <= 1e-9 * max(1.0, abs(b))
            else:
                assert a == b


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
