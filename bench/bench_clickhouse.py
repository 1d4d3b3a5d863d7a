"""Benchmark: the ClickHouse ledger (chdb, in process) against the DuckDB/Parquet ledger.

    nice -n 10 .venv/bin/python bench/bench_clickhouse.py --source /tmp/l14m/ledger \\
        --dir /tmp/tg-bench-ch --wal-events 200000

Takes an existing DuckDB ledger (``--source``: the simulator's, e.g. bench_panel's) and
measures, printing one table (wall seconds, best and median of ``--repeat``, and the process's
CPU seconds, user + sys, of the median call: chdb runs in this process, so its threads count):

- load from Parquet: ``ClickHouseLedger.copy_from`` (chdb reads each segment itself with
  ``INSERT ... SELECT FROM file()``; into an empty ledger without the id check), events per
  second; then the same again (each file's ids checked against the ledger: all known, nothing
  inserted: what the check costs) and, with ``--arrow-rows``, that many
  events through the Arrow path (batches read by pyarrow, id check, Arrow insert: what a
  server ledger and a file repeating an id take);
- load from the write-ahead log: ``--wal-events`` events (the first ones of the source, as
  the dicts the gateway logs) submitted to a ``WriteAheadLog`` whose flush appends to the chdb
  ledger (validated, priced, deduplicated, inserted), from the first submit to the last flush;
- the roll-up refresh after the load (every day rebuilt in the four per-day levels, then the
  month level), the check with nothing changed, then after ``--late-events`` new events on the
  last day (that day rebuilt, its partitions swapped, the month level rebuilt); the month
  level's rebuild alone, and each level's rows per event;
- de-duplication at read time: one per-customer GROUP BY with ``FINAL``, with an ``argMax``
  per event id, and with ``LIMIT 1 BY`` (the issue asks which is faster);
- ``report customers`` (the per-customer table for the ledger's first month: ``rollup_month``;
  and for the open window: ``rollup_customer``), ``workload`` (``rollup_task``,
  ``rollup_calls``) and ``kpis`` on both ledgers through ``QueryContext`` (DuckDB reads the
  segments and their roll-ups, ClickHouse runs the SQL itself, on its own roll-up tables).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def run_times(fn: Any, repeat: int = 1) -> tuple[list[tuple[float, float]], Any]:
    """Call ``fn`` ``repeat`` times: ((wall s, CPU s) of each call, the last result)."""
    out, times = None, []
    for _ in range(repeat):
        t, c = time.perf_counter(), _cpu()
        out = fn()
        times.append((time.perf_counter() - t, _cpu() - c))
    return times, out


def _row(name: str, times: list[tuple[float, float]], note: str = "") -> None:
    walls = sorted(times)
    best, med = walls[0][0], statistics.median(w for w, _ in walls)
    cpu = walls[len(walls) // 2][1]
    print(f"| {name} | {best:.2f} | {med:.2f} | {cpu:.1f} | {note} |", flush=True)


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
    ap.add_argument("--arrow-rows", type=int, default=1_000_000)
    ap.add_argument("--load-only", action="store_true", help="stop after the load steps")
    ap.add_argument("--no-recopy", action="store_true", help="skip the second (checked) copy")
    ap.add_argument("--no-dedupe", action="store_true", help="skip FINAL / argMax / LIMIT 1 BY")
    args = ap.parse_args()

    from tailguard.analytics.customers import customer_rows
    from tailguard.analytics.kpis import kpis
    from tailguard.analytics.period import Window, window
    from tailguard.analytics.workload import workload
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
    print("| step | best s | median s | CPU s | note |")
    print("|---|---|---|---|---|")

    if not args.skip_load:
        times, res = run_times(lambda: ch.copy_from(src))
        _row("load from Parquet (copy)", times, f"{res.accepted / times[0][0]:,.0f} events/s")
        if not args.no_recopy:
            times, res = run_times(lambda: ch.copy_from(src))
            _row("the same copy again (ids checked, all known)", times, f"{res.accepted:,} new")
        if args.arrow_rows:
            _arrow(src, root, args.arrow_rows)
        if args.wal_events:
            _wal(ch, src, root, args.wal_events)
    if args.load_only:
        return
    times, months = run_times(lambda: refresh(ch))  # a first refresh: every day is stale
    _row("roll-up refresh, every day", times, f"{len(months)} months")
    times, months = run_times(lambda: refresh(ch), args.repeat)
    _row("roll-up refresh, nothing changed", times, f"{len(months)} months")
    _late_events(ch, args.late_events)
    times, months = run_times(lambda: refresh(ch))
    _row(f"roll-up refresh after {args.late_events:,} events in one day", times, "one day")
    _month_level(ch, args.repeat)
    if args.refresh_only:
        return

    db = ch.db
    for name, sql in (
        ()
        if args.no_dedupe
        else (
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
        )
    ):
        times, _ = run_times(lambda sql=sql: ch.query(sql), args.repeat)
        _row(f"chdb: {name}", times)
    times, _ = run_times(
        lambda: _duck_sql(src, "SELECT customer_id, sum(cost_usd) FROM events GROUP BY 1"),
        args.repeat,
    )
    _row("duckdb: GROUP BY customer (Parquet)", times)

    win = window(period, None, None)
    reports = (
        (f"report customers {period}", lambda c: customer_rows(c, win)),
        ("report customers, open window", lambda c: customer_rows(c, Window())),
        (f"workload {period}", lambda c: workload(c, win)),
        (f"kpis {period}", lambda c: kpis(c, period=period, policy=policy)),
    )
    for name, fn in reports:  # both engines one after the other: the same machine load
        for label, led in (("duckdb", src), ("chdb", ch)):
            times, res = run_times(lambda led=led, fn=fn: _report(led, fn), args.repeat)
            note = f"{len(res)} customers" if name.startswith("report customers") else ""
            _row(f"{label}: {name}", times, note)
    for label, led in (("duckdb", src), ("chdb", ch)):
        times, _ = run_times(lambda led=led: _report(led, lambda c: None), args.repeat)
        _row(f"{label}: open a context (no report)", times)


def _month_level(ch: Any, repeat: int) -> None:
    """The month level rebuilt alone (what a refresh adds once any day changed), and the rows
    of each level per event."""
    from tailguard.ledger import clickhouse_rollup as cr

    sig = cr._recorded(ch)
    times, rows = run_times(lambda: cr.rebuild_month(ch, sig), repeat)
    _row("month level rebuilt from the daily and task tables", times, f"{rows:,} rows")
    n = ch.count()
    counts = {
        t: ch.query(f"SELECT count() AS n FROM {ch.db}.{t}").column("n")[0].as_py()
        for t in (*cr.DAY_TABLES, cr.MONTH_TABLE)
    }
    print(
        f"roll-up rows ({n:,} events): "
        + ", ".join(f"{t} {c:,} ({c / n:.4f}/event)" for t, c in counts.items()),
        flush=True,
    )


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

    def run() -> None:
        for i in range(0, len(rows), 500):  # requests of 500 events, as a busy gateway batches
            wal.submit(rows[i : i + 500])
        wal.close()  # writes what is queued and folds every file into ClickHouse

    times, _ = run_times(run)
    got = target.count()
    rate = f"{got / times[0][0]:,.0f} events/s, {got:,} events"
    _row("load from the WAL (submit -> flushed)", times, rate)


def _arrow(src: Any, root: Path, count: int) -> None:
    """``count`` events through the Arrow path (``commit``: pyarrow batches of 500k, the id
    check, an Arrow insert) into a second database of the same chdb."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tailguard.ledger.clickhouse import ClickHouseLedger

    target = ClickHouseLedger(f"chdb://{root.resolve()}?database=arrowbench")
    batches, n = [], 0
    for path in src.segment_files():
        for batch in pq.ParquetFile(path).iter_batches(batch_size=500_000):
            batches.append(pa.Table.from_batches([batch]))
            n += batch.num_rows
            if n >= count:
                break
        if n >= count:
            break

    def run() -> int:
        return sum(target.commit(b).accepted for b in batches)

    times, got = run_times(run)
    _row("load through the Arrow path (commit)", times, f"{got / times[0][0]:,.0f} events/s")


if __name__ == "__main__":
    main()
