"""Benchmark: the ClickHouse ledger (chdb, in process) against the DuckDB/Parquet ledger.

    nice -n 10 .venv/bin/python bench/bench_clickhouse.py --source /tmp/l14m/ledger \\
        --dir /tmp/tg-bench-ch --wal-events 200000

Takes an existing DuckDB ledger (``--source``: the simulator's, e.g. bench_panel's) and
measures, printing one table:

- load from Parquet: ``ClickHouseLedger.copy_from`` (segments read as Arrow, each batch's ids
  checked against the ledger, inserted in Arrow format), events per second;
- load from the write-ahead log: ``--wal-events`` events (the first ones of the source, as
  the dicts the gateway logs) submitted to a ``WriteAheadLog`` whose flush appends to the chdb
  ledger (validated, priced, deduplicated, inserted), from the first submit to the last flush;
- the roll-up refresh after the load (every day rebuilt from FINAL), then after
  ``--late-events`` new events on the last day (one day rebuilt, its month swapped in);
- de-duplication at read time: one per-customer GROUP BY with ``FINAL``, with an ``argMax``
  per event id, and with ``LIMIT 1 BY`` (the issue asks which is faster);
- ``report customers`` (the per-customer table for the ledger's first month) and ``kpis`` on
  both engines through ``QueryContext`` (the same report code; DuckDB reads Parquet segments
  and their roll-ups, ClickHouse runs the SQL itself).

Each report is run ``--repeat`` times on a fresh context; best and median wall seconds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from _common import run_times


def _row(name: str, times: list[float], note: str = "") -> None:
    best, med = min(times), statistics.median(times)
    print(f"| {name} | {best:.2f} | {med:.2f} | {note} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="a DuckDB ledger directory")
    ap.add_argument("--dir", default="/tmp/tg-bench-ch")
    ap.add_argument("--wal-events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--policy", default=str(Path(__file__).parents[1] / "examples/policy.toml"))
    ap.add_argument("--skip-load", action="store_true", help="reuse the chdb ledger in --dir")
    ap.add_argument("--late-events", type=int, default=1000)
    ap.add_argument("--refresh-only", action="store_true", help="stop after the refresh steps")
    args = ap.parse_args()

    from tailguard.analytics.customers import customer_rows
    from tailguard.analytics.kpis import kpis
    from tailguard.analytics.period import window
    from tailguard.guard.policy import load_policy
    from tailguard.ledger import Ledger
    from tailguard.ledger.clickhouse import EVENTS_TABLE, ClickHouseLedger
    from tailguard.ledger.clickhouse_rollup import refresh

    src = Ledger(args.source)
    root = Path(args.dir)
    if not args.skip_load and root.exists():
        shutil.rmtree(root)
    ch = ClickHouseLedger(f"chdb://{root.resolve()}")
    policy = load_policy(args.policy)
    con = src.connect()
    n, lo = con.execute("SELECT count(*), min(ts) FROM events").fetchall()[0]
    con.close()
    period = lo.strftime("%Y-%m")
    print(f"source: {n:,} events in {len(src.segment_files())} segments, first month {period}")
    print("| step | best s | median s | note |")
    print("|---|---|---|---|")

    if not args.skip_load:
        t = time.perf_counter()
        res = ch.copy_from(src)
        dt_load = time.perf_counter() - t
        _row("load from Parquet (copy)", [dt_load], f"{res.accepted / dt_load:,.0f} events/s")
        _wal(ch, src, root, args.wal_events)
    t = time.perf_counter()
    months = refresh(ch)  # a first refresh: every day is stale
    _row("roll-up refresh, every day", [time.perf_counter() - t], f"{len(months)} months")
    _late_events(ch, args.late_events)
    t = time.perf_counter()
    months = refresh(ch)
    _row(
        f"roll-up refresh after {args.late_events:,} events in one day",
        [time.perf_counter() - t],
        f"{len(months)} month",
    )
    if args.refresh_only:
        return

    db = ch.db
    for name, sql in (
        (
            "GROUP BY customer, FINAL",
            f"SELECT customer_id, sum(cost_usd) FROM {db}.{EVENTS_TABLE} FINAL GROUP BY 1",
        ),
        (
            "GROUP BY customer, argMax per id",
            "SELECT customer_id, sum(c) FROM (SELECT customer_id, event_id, "
            f"argMax(cost_usd, _version) AS c FROM {db}.{EVENTS_TABLE} "
            "GROUP BY customer_id, ts, event_id) GROUP BY 1",
        ),
        (
            "GROUP BY customer, LIMIT 1 BY id",
            "SELECT customer_id, sum(cost_usd) FROM (SELECT customer_id, cost_usd FROM "
            f"{db}.{EVENTS_TABLE} ORDER BY _version DESC LIMIT 1 BY customer_id, ts, event_id) "
            "GROUP BY 1",
        ),
        (
            "GROUP BY customer, no dedupe",
            f"SELECT customer_id, sum(cost_usd) FROM {db}.{EVENTS_TABLE} GROUP BY 1",
        ),
    ):
        times, _ = run_times(lambda sql=sql: ch.query(sql), args.repeat)
        _row(f"chdb: {name}", times)
    times, _ = run_times(
        lambda: _duck_sql(src, "SELECT customer_id, sum(cost_usd) FROM events GROUP BY 1"),
        args.repeat,
    )
    _row("duckdb: GROUP BY customer (Parquet)", times)

    win = window(period, None, None)
    for label, led in (("duckdb", src), ("chdb", ch)):
        times, rows = run_times(
            lambda led=led: _report(led, lambda c: customer_rows(c, win)), args.repeat
        )
        _row(f"{label}: report customers {period}", times, f"{len(rows)} customers")
        times, _ = run_times(
            lambda led=led: _report(led, lambda c: kpis(c, period=period, policy=policy)),
            args.repeat,
        )
        _row(f"{label}: kpis {period}", times)
        times, _ = run_times(lambda led=led: _report(led, lambda c: None), args.repeat)
        _row(f"{label}: open a context (no report)", times)


def _late_events(ch: Any, count: int) -> None:
    """``count`` new events on the ledger's last day (what a gateway adds between reports)."""
    last = ch.query(f"SELECT max(ts) AS m FROM {ch.db}.events").column("m")[0].as_py()
    ts = last.replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    run = time.time_ns()  # new ids on every run
    ch.append(
        [
            {
                "event_id": f"late-{run}-{i}",
                "kind": "tool_call",
                "ts": ts,
                "customer_id": f"late-{i % 10}",
                "tool": "lookup",
                "tool_kind": "read",
                "cost_usd": "0.001",
            }
            for i in range(count)
        ]
    )


def _duck_sql(led: Any, sql: str) -> Any:
    con = led.connect()
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _report(led: Any, fn: Any) -> Any:
    from tailguard.analytics.context import QueryContext

    with QueryContext.open(led) as ctx:
        return fn(ctx)


def _wal(ch: Any, src: Any, root: Path, count: int) -> None:
    """``count`` events through a WriteAheadLog into a second database of the same chdb."""
    import pyarrow.parquet as pq

    from tailguard.ledger.clickhouse import ClickHouseLedger
    from tailguard.ledger.wal import WriteAheadLog
    from tailguard.pricing import PriceBook

    table = pq.ParquetFile(src.segment_files()[0]).read_row_groups([0, 1]).slice(0, count)
    keep = [c for c in table.column_names if c not in ("cost_source", "unpriced", "cost_usd")]
    rows = [{k: v for k, v in r.items() if v is not None} for r in table.select(keep).to_pylist()]
    for r in rows:
        r["ts"] = r["ts"].isoformat()
        for k in ("reported_cost_usd", "amount_usd"):
            if k in r:
                r[k] = str(r[k])
    target = ClickHouseLedger(f"chdb://{root.resolve()}?database=walbench")
    book = PriceBook.load()
    wal = WriteAheadLog(
        root / "wal", lambda evs: target.append(evs, prices=book), flush_interval_s=3600
    )
    t = time.perf_counter()
    for i in range(0, len(rows), 500):  # requests of 500 events, as a busy gateway batches
        wal.submit(rows[i : i + 500])
    wal.close()  # writes what is queued and folds every file into ClickHouse
    dt = time.perf_counter() - t
    got = target.count()
    _row("load from the WAL (submit -> flushed)", [dt], f"{got / dt:,.0f} events/s, {got:,} events")


if __name__ == "__main__":
    main()
