"""The ClickHouse ledger (chdb): URLs, DDL, idempotent writes, concurrent writers, WAL retries."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from tailguard.errors import LedgerError
from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.ledger import Ledger, ingest
from tailguard.ledger.clickhouse import EVENTS_TABLE, ClickHouseLedger, ClickHouseURL, ch_type
from tailguard.ledger.url import open_ledger
from tailguard.ledger.wal import WriteAheadLog

from .helpers import chdb_url, llm, price_book, priced, write_jsonl

# --- the URL -------------------------------------------------------------------------------------


def test_a_path_is_the_directory_ledger_and_a_url_picks_clickhouse(tmp_path: Path) -> None:
    assert type(open_ledger(tmp_path / "d")) is Ledger
    assert type(open_ledger(str(tmp_path / "d"))) is Ledger
    ch = open_ledger(chdb_url(tmp_path / "c"))
    assert isinstance(ch, ClickHouseLedger)
    assert ch.path == (tmp_path / "c").resolve()  # the WAL's directory is the chdb directory
    srv = ClickHouseURL.parse("clickhouse://u:p@db.example:8123/analytics?spool=/var/spool/tg")
    assert (srv.scheme, srv.database, srv.local) == (
        "clickhouse",
        "analytics",
        Path("/var/spool/tg"),
    )
    assert ClickHouseURL.parse("https://h:8443/").database == "default"


def test_a_chdb_url_with_a_host_is_refused_by_name() -> None:
    with pytest.raises(LedgerError, match="three slashes"):
        ClickHouseURL.parse("chdb://relative/dir")


def test_column_types_follow_the_ledger_schema() -> None:
    types = {f.name: ch_type(f) for f in LEDGER_SCHEMA}
    assert types["event_id"] == "String"  # the sorting key: never NULL
    assert types["ts"] == "DateTime64(6, 'UTC')"
    assert types["cost_usd"] == "Nullable(Decimal(18, 9))"  # money stays Decimal
    assert types["model"] == "LowCardinality(Nullable(String))"
    assert types["attempt"] == "Nullable(Int32)"


# --- DDL -----------------------------------------------------------------------------------------


def test_init_creates_a_replacing_merge_tree_by_month_ordered_per_customer(tmp_path: Path) -> None:
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    assert not led.exists()
    assert led.init() == [f"CREATE TABLE default.{EVENTS_TABLE}"]
    row = led.query(
        "SELECT engine, partition_key, sorting_key FROM system.tables "
        f"WHERE database = 'default' AND name = '{EVENTS_TABLE}'"
    ).to_pylist()[0]
    assert row == {
        "engine": "ReplacingMergeTree",
        "partition_key": "toYYYYMM(ts)",
        "sorting_key": "customer_id, ts, event_id",
    }
    again = ClickHouseLedger(chdb_url(tmp_path / "c"))
    assert again.init() == []  # idempotent


def test_init_adds_a_column_the_schema_gained(tmp_path: Path) -> None:
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.init()
    led.engine().command(f"ALTER TABLE {EVENTS_TABLE} DROP COLUMN reasoning_tokens")
    assert ClickHouseLedger(chdb_url(tmp_path / "c")).init() == ["ADD COLUMN reasoning_tokens"]


# --- idempotent writes ---------------------------------------------------------------------------


def _cost_and_count(led: ClickHouseLedger) -> tuple[Decimal, int]:
    row = led.query("SELECT sum(cost_usd) AS c, count() AS n FROM events").to_pylist()[0]
    return row["c"], row["n"]


def test_ingesting_a_file_twice_counts_it_once(tmp_path: Path) -> None:
    book = price_book(tmp_path)
    f = write_jsonl(tmp_path / "ev.jsonl", [llm(i) for i in range(10)])
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    first = ingest([f], led, prices=book)
    second = ingest([f], chdb_url(tmp_path / "c"), prices=book)  # a URL works as well
    assert (first.accepted, first.duplicates) == (10, 0)
    assert (second.accepted, second.duplicates) == (0, 10)
    assert _cost_and_count(led) == (Decimal("0.012"), 10)  # 10 x $0.0012


def test_the_first_occurrence_of_an_id_wins(tmp_path: Path) -> None:
    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    # within one batch, then across commits: the later e1 (cost 5) never replaces the first
    led.append([llm(1, cost_usd="0.25"), llm(1, cost_usd="5")], prices=book)
    res = led.append([llm(1, cost_usd="7"), llm(2)], prices=book)
    assert (res.accepted, res.duplicates) == (1, 1)
    assert _cost_and_count(led) == (Decimal("0.2512"), 2)


def test_rows_inserted_past_the_dedupe_are_settled_first_insert_wins(tmp_path: Path) -> None:
    """Two replicas that do not share a lock both insert e1 (same customer and ts, the price
    differs): FINAL keeps one row, the one inserted first (its version is the greater)."""
    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.append([llm(0)], prices=book)  # creates the tables
    led.insert_rows(priced(book, [llm(1, cost_usd="0.5")]))
    led.insert_rows(priced(book, [llm(1, cost_usd="9")]))
    raw = led.query(f"SELECT count() AS n FROM {EVENTS_TABLE} WHERE event_id = 'e1'")
    assert raw.column("n")[0].as_py() == 2  # both rows are stored, no merge has run
    assert _cost_and_count(led) == (Decimal("0.5012"), 2)  # e0 $0.0012 + the first e1 $0.5


def test_concurrent_writers_with_overlapping_events_count_each_once(tmp_path: Path) -> None:
    """Four writers (each its own ledger handle, as four gateway threads) append overlapping
    ranges at once: ids 0..59 with overlaps, each id once in the end."""
    book = price_book(tmp_path)
    url = chdb_url(tmp_path / "c")
    ClickHouseLedger(url).init()
    ranges = [range(0, 30), range(10, 40), range(20, 50), range(25, 60)]
    errors: list[BaseException] = []
    accepted: list[int] = []

    def write(r: range) -> None:
        try:
            led = ClickHouseLedger(url)
            for start in range(r.start, r.stop, 5):  # several small commits each
                ids = range(start, min(start + 5, r.stop))
                accepted.append(led.append([llm(i) for i in ids], prices=book).accepted)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in ranges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(accepted) == 60  # every id accepted by exactly one writer
    assert _cost_and_count(ClickHouseLedger(url)) == (Decimal("0.072"), 60)  # 60 x $0.0012


def test_racing_inserts_without_the_lock_are_settled_by_final(tmp_path: Path) -> None:
    """The server case: writers in different processes share no lock, so each inserts its
    whole batch; the overlapping rows are stored twice and read once."""
    book = price_book(tmp_path)
    url = chdb_url(tmp_path / "c")
    led = ClickHouseLedger(url)
    led.init()
    threads = [
        threading.Thread(
            target=ClickHouseLedger(url).insert_rows, args=(priced(book, [llm(i) for i in r]),)
        )
        for r in (range(0, 40), range(20, 60), range(30, 50))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw = led.query(f"SELECT count() AS n FROM {EVENTS_TABLE}").column("n")[0].as_py()
    assert raw == 100  # 40 + 40 + 20 stored
    assert _cost_and_count(led) == (Decimal("0.072"), 60)


# --- the write-ahead log -------------------------------------------------------------------------


def test_a_write_that_fails_mid_batch_is_retried_from_the_wal_without_loss(
    tmp_path: Path,
) -> None:
    """The insert of a flush lands its first half and then fails (the connection drops): the
    log keeps its file, the next flush replays it, the half already in ClickHouse is not
    inserted again and the other half is."""
    book = price_book(tmp_path)
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    led.init()
    engine = led.engine()
    real_insert = engine.insert_arrow
    failures = [1]

    def flaky(table: str, data: pa.Table) -> None:
        if failures and table.endswith(EVENTS_TABLE):
            failures.pop()
            real_insert(table, data.slice(0, data.num_rows // 2))
            raise ConnectionError("connection reset mid-insert")
        real_insert(table, data)

    engine.insert_arrow = flaky  # type: ignore[method-assign]
    wal = WriteAheadLog(
        tmp_path / "wal", lambda evs: led.append(evs, prices=book), flush_interval_s=3600
    )
    wal.submit([llm(i) for i in range(20)]).result()
    with pytest.raises(ConnectionError):
        wal.flush()
    assert _cost_and_count(led)[1] == 10  # half landed
    assert list((tmp_path / "wal").glob("wal-*.jsonl"))  # the log still holds the batch
    assert wal.flush() == 20  # replayed whole; the landed half is dropped as duplicates
    wal.close()
    assert _cost_and_count(led) == (Decimal("0.024"), 20)  # 20 x $0.0012, each once
    assert not [p for p in (tmp_path / "wal").glob("wal-*.jsonl") if p.stat().st_size]


def test_customers_are_replaced_whole(tmp_path: Path) -> None:
    from tailguard.customers import CUSTOMER_SCHEMA

    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    rows = [{"customer_id": "a", "name": "A", "mrr_usd": Decimal("12.5")}, {"customer_id": "b"}]
    led.write_customers(pa.Table.from_pylist(rows, schema=CUSTOMER_SCHEMA))
    led.write_customers(pa.Table.from_pylist(rows[:1], schema=CUSTOMER_SCHEMA))
    got = led.customers_table()
    assert got is not None and got.schema == CUSTOMER_SCHEMA
    assert got.to_pylist() == [
        {**{n: None for n in CUSTOMER_SCHEMA.names}, **rows[0]},
    ]


def test_copy_moves_a_directory_ledger_across_once(tmp_path: Path) -> None:
    book = price_book(tmp_path)
    src = Ledger(tmp_path / "d")
    src.append([llm(i, cust=f"c{i % 3}") for i in range(30)], prices=book)
    src.append([llm(i) for i in range(30, 35)], prices=book)  # a second segment
    dst = ClickHouseLedger(chdb_url(tmp_path / "c"))
    assert dst.copy_from(src).accepted == 35
    again = dst.copy_from(src)
    assert (again.accepted, again.duplicates) == (0, 35)
    assert _cost_and_count(dst) == (Decimal("0.042"), 35)
    # a copy interrupted after the first segment (30 events): the rerun adds the other 5
    part = ClickHouseLedger(f"{chdb_url(tmp_path / 'c')}?database=partial")
    first = part.insert_file(src.segment_files()[0], check_known=False)
    assert first is not None and first.accepted == 30
    rest = part.copy_from(src)
    assert (rest.accepted, rest.duplicates) == (5, 30)
    assert _cost_and_count(part) == (Decimal("0.042"), 35)
    stored = part.query(f"SELECT count() AS n FROM {EVENTS_TABLE}").column("n")[0].as_py()
    assert stored == 35


def test_parquet_files_are_read_by_clickhouse_with_the_first_copy_winning(tmp_path: Path) -> None:
    """``commit_files`` on chdb: ClickHouse reads a file itself (``insert_file``) and leaves out
    the ids the ledger has; a file that repeats an id goes through the Arrow path, which keeps
    its first row. By hand: A = e1..e4 at $0.5 (4 new); B = e3, e4 at $7 and e5 at $0.25 (e3,
    e4 known: 1 new); C = e6 at $1, e6 at $9, e7 at $2 (e6 once, at $1: 2 new, 1 duplicate).
    Total 4 x 0.5 + 0.25 + 1 + 2 = $5.25 over 7 ids; B's $7 and C's $9 never counted."""
    import pyarrow.parquet as pq

    book = price_book(tmp_path)

    def parquet(name: str, rows: list[tuple[int, str]]) -> Path:
        path = tmp_path / f"{name}.parquet"
        pq.write_table(priced(book, [llm(i, cost_usd=c) for i, c in rows]), path)
        return path

    a = parquet("a", [(i, "0.5") for i in range(1, 5)])
    b = parquet("b", [(3, "7"), (4, "7"), (5, "0.25")])
    c = parquet("c", [(6, "1"), (6, "9"), (7, "2")])
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    res = led.insert_file(a)  # the native path takes it
    assert res is not None and (res.accepted, res.duplicates) == (4, 0)
    assert led.insert_file(c) is None  # a repeated id: left to the Arrow path
    res = led.commit_files([b, c])
    assert (res.accepted, res.duplicates) == (3, 3)
    assert _cost_and_count(led) == (Decimal("5.25"), 7)
    stored = led.query(f"SELECT count() AS n FROM {EVENTS_TABLE}").column("n")[0].as_py()
    assert stored == 7  # not merely hidden by FINAL: never inserted
    again = led.commit_files([a, b, c])  # a re-run adds nothing
    assert (again.accepted, again.duplicates) == (0, 10)


def test_a_ledger_from_before_the_id_table_gets_its_ids_filled_once(tmp_path: Path) -> None:
    """``ledger_ids`` (the id check's index) is filled by a materialized view on every insert;
    a ledger made before it existed gets its ids copied by the next ``init``, so an event
    stored then is still known: appended again, it is a duplicate, counted once."""
    from tailguard.ledger.clickhouse import IDS_TABLE

    book = price_book(tmp_path)
    url = chdb_url(tmp_path / "c")
    led = ClickHouseLedger(url)
    led.append([llm(1), llm(2)], prices=book)
    ids = f"SELECT count() AS n, uniqExact(event_id) AS u FROM {IDS_TABLE}"
    assert led.query(ids).to_pylist() == [{"n": 2, "u": 2}]  # written by the view
    led.engine().command(f"DROP VIEW {IDS_TABLE}_mv")
    led.engine().command(f"DROP TABLE {IDS_TABLE}")
    old = ClickHouseLedger(url)
    assert old.init() == [f"FILL default.{IDS_TABLE}"]
    assert old.init() == []
    assert old.query(ids).to_pylist() == [{"n": 2, "u": 2}]
    res = old.append([llm(2), llm(3)], prices=book)
    assert (res.accepted, res.duplicates) == (1, 1)
    assert _cost_and_count(old) == (Decimal("0.0036"), 3)
    assert old.query(ids).to_pylist() == [{"n": 3, "u": 3}]


def test_rows_from_an_older_segment_get_the_new_columns_as_null(tmp_path: Path) -> None:
    """A segment written before the schema gained ``requests`` (and the cost components) is
    copied across with those columns NULL, as the DuckDB ledger reads it (NULL requests: 1)."""
    book = price_book(tmp_path)
    old = priced(book, [llm(1), llm(2)]).drop_columns(["requests"])
    led = ClickHouseLedger(chdb_url(tmp_path / "c"))
    assert led.commit(old).accepted == 2
    got = led.query("SELECT count() AS n, countIf(requests IS NULL) AS null_requests FROM events")
    assert got.to_pylist() == [{"n": 2, "null_requests": 2}]
