"""Roll-ups: ingest with and without them, roll-up rows per event, a 100M-event ledger.

    python bench/bench_rollup.py ingest --events 10000000
    python bench/bench_rollup.py ratio --ledger /tmp/l14m5/ledger
    python bench/bench_rollup.py make --base /tmp/l14m5/ledger --out /tmp/l100m --copies 7
    python bench/bench_rollup.py reports --ledger /tmp/l100m --repeat 3
    python bench/bench_rollup.py refresh --ledger /tmp/l100m

``ingest``: bench_ledger's synthetic events (the 581k events/s figure's generator, written with
pyarrow's default layout) ingested into a new ledger with roll-ups, and with the roll-up writes
switched off, interleaved run by run. Those events are the roll-up's worst case: users and
seconds drawn uniformly, so nearly every event is a group of its own.

``make``: a ledger of ``copies`` x the base ledger's events, written straight as segments (each
copy's customer, user, task, session and event ids suffixed ``~k``, so every copy is a new set
of customers with the base's shapes), plus the customers file. The events are already priced
(they are copies of priced rows), so no pricing runs. Each copy's roll-ups are the base
segment's roll-ups with the same ids suffixed (customer and user are roll-up keys, the other ids
are not), written before it; with ``--rebuild`` they are instead computed from the copied events
by ``tailguard.ledger.rollup.rebuild`` (what ``tailguard rollup --rebuild`` runs). Either way
the command checks at the end that every roll-up level holds exactly the events' count and cost
(the task level: the LLM calls' requests and cost, and the outcome events).

``reports``: ``report customers`` (the library call the command makes) on a fresh connection,
against two floors over the same ledger: the raw ``GROUP BY customer_id`` over the events, and
the same over ``rollup_daily``. Each of: every row (``customer_report``, open window: the
table and its first row; then every row as a dict; then the command's ``--csv`` and ``--json``
writers over it, to /dev/null), the top 20
by cost (``customer_report(limit=20)``: sorted and cut in the engine), and with ``--period``
the same for one month; on the month level when it is fresh (``tailguard.ledger.merged``) and
again on the per-segment levels only (the month level switched off), for comparison.

``refresh``: the month level recomputed and written (``merged.refresh(force=True)``, what
``tailguard rollup --rebuild`` adds): its cost at the end of an ingest or a compaction.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
from _common import run_times
from rich.console import Console
from rich.table import Table

from tailguard.ledger import Ledger, ingest, rollup
from tailguard.ledger.segments import ROW_GROUP_ROWS

_ID_COLS = ("customer_id", "user_id", "task_id", "session_id", "event_id")


def _cpu() -> float:
    """CPU seconds of this process so far (user + system, every thread)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cmd_ingest(args: argparse.Namespace) -> None:
    from bench_ledger import make_events

    work = Path(tempfile.mkdtemp(prefix="tg-bench-rollup-", dir=args.tmp))
    try:
        if args.input:  # e.g. the simulator's events.parquet: realistic groups
            path = Path(args.input)
            args.events = pq.read_metadata(path).num_rows
        else:
            path = work / "events.parquet"
            pq.write_table(make_events(args.events, args.customers), path)
        real = (rollup.of_files, rollup.of_table, rollup.write)
        runs: dict[str, list[float]] = {"without roll-ups": [], "with roll-ups": []}
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        rows = 0
        for k in range(args.runs):
            for name in runs:
                if name == "without roll-ups":
                    rollup.of_files = lambda files, con=None: None  # type: ignore[assignment,misc]
                    rollup.of_table = lambda table, con=None: None  # type: ignore[assignment,misc]
                    rollup.write = lambda *a, **kw: None  # type: ignore[assignment]
                led = Ledger(work / f"L{k}-{name[:4]}")
                t, c = time.perf_counter(), _cpu()
                res = ingest([path], led)
                runs[name].append(time.perf_counter() - t)
                cpu[name].append(_cpu() - c)
                rollup.of_files, rollup.of_table, rollup.write = real
                assert res.accepted + res.duplicates == args.events
                if name == "with roll-ups":
                    con = led.connect(repair=False)
                    rows = con.execute("SELECT count(*) FROM rollup").fetchone()[0]
                    con.close()
                shutil.rmtree(led.path)
        table = Table(title=f"ingest, Parquet, {args.events:,} events (median of {args.runs})")
        for c in ("run", "seconds", "CPU s", "events/s", "events per CPU s", "roll-up rows"):
            table.add_column(c, justify="right")
        for name, ts in runs.items():
            s = statistics.median(ts)
            cs = statistics.median(cpu[name])
            table.add_row(
                name,
                f"{s:.2f}",
                f"{cs:.2f}",
                f"{args.events / s:,.0f}",
                f"{args.events / cs:,.0f}",
                f"{rows:,}" if name == "with roll-ups" else "",
            )
        Console().print(table)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cmd_ratio(args: argparse.Namespace) -> None:
    con = Ledger(args.ledger).connect()
    ev = con.execute("SELECT count(*) FROM events").fetchone()[0]
    full = con.execute("SELECT count(*) FROM rollup").fetchone()[0]
    daily = con.execute("SELECT count(*) FROM rollup_daily").fetchone()[0]
    task = con.execute("SELECT count(*) FROM rollup_task").fetchone()[0]
    calls = con.execute("SELECT count(*) FROM rollup_calls").fetchone()[0]
    segs = len(Ledger(args.ledger).segment_files())
    table = Table(title=f"roll-up rows per event, {args.ledger} ({segs} segments)")
    for c in ("level", "rows", "rows per event"):
        table.add_column(c, justify="right")
    table.add_row("events", f"{ev:,}", "1")
    table.add_row("rollup", f"{full:,}", f"{full / ev:.4f}")
    table.add_row("rollup_daily", f"{daily:,}", f"{daily / ev:.4f}")
    table.add_row("rollup_task", f"{task:,}", f"{task / ev:.4f}")
    table.add_row("rollup_calls", f"{calls:,}", f"{calls / ev:.4f}")
    Console().print(table)


def _suffixed(cols: list[str], k: int) -> str:
    return ", ".join(
        f"CASE WHEN {c} IS NULL THEN NULL ELSE {c} || '~{k}' END AS {c}" if c in _ID_COLS else c
        for c in cols
    )


def cmd_make(args: argparse.Namespace) -> None:
    base = Ledger(args.base)
    out = Ledger(args.out)
    if out.segment_files():
        raise SystemExit(f"{args.out} already holds segments")
    out.ensure()
    files = base.segment_files()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def copy(src: Path, dest: Path, k: int) -> None:
        cols = [
            r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{src}')").fetchall()
        ]
        tmp = out.tmp_dir / (dest.name + ".tmp")
        con.execute(
            f"COPY (SELECT {_suffixed(cols, k)} FROM read_parquet('{src}')) TO '{tmp}' "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
        )
        tmp.rename(dest)

    t0 = time.perf_counter()
    n_seg = 0
    (out.path / rollup.ROLLUPS).mkdir(exist_ok=True)
    for k in range(args.copies):
        for f in files:
            name = f"{time.time_ns():020d}-copy{k:02d}s{n_seg:04d}.parquet"
            if not args.rebuild:  # the roll-ups first, as a writer does
                for level in (rollup.VIEW, rollup.DAILY_VIEW, rollup.TASK_VIEW, rollup.CALLS_VIEW):
                    copy(rollup.path_for(base, f, level), rollup.path_for(out, name, level), k)
            copy(f, out.segments_dir / name, k)
            n_seg += 1
    t_seg = time.perf_counter() - t0
    cust = base.path / "customers.parquet"
    if cust.exists():
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{cust}'").fetchall()]
        parts = " UNION ALL ".join(
            f"SELECT {_suffixed(cols, k)} FROM '{cust}'" for k in range(args.copies)
        )
        out.write_customers(con.sql(parts).to_arrow_table())
    t1 = time.perf_counter()
    res = rollup.rebuild(out) if args.rebuild else None
    t_roll = time.perf_counter() - t1
    check = out.connect(repair=False)
    n, cost = check.execute("SELECT count(*), sum(cost_usd) FROM events").fetchone()
    for level in (rollup.VIEW, rollup.DAILY_VIEW):
        got = check.execute(f"SELECT sum(events), sum(cost_usd) FROM {level}").fetchone()
        assert got == (n, cost), (level, got, (n, cost))
    # the task level: the LLM calls' requests and cost, and the outcome events
    want = check.execute(
        "SELECT sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END), "
        "sum(CASE WHEN kind = 'llm_call' THEN cost_usd END), "
        "count(*) FILTER (WHERE kind = 'task_outcome') FROM events"
    ).fetchone()
    got = check.execute(
        "SELECT sum(calls), sum(cost_usd), sum(outcomes) FROM rollup_task"
    ).fetchone()
    assert got == want, ("rollup_task", got, want)
    # the call-size level: the LLM calls' requests (the sizes are not id-suffixed: the same)
    got = check.execute("SELECT sum(calls) FROM rollup_calls").fetchone()
    assert got == want[:1], ("rollup_calls", got, want[:1])
    check.close()
    table = Table(title=f"{args.out}: {args.copies} copies of {args.base}")
    for c in ("step", "seconds", "result"):
        table.add_column(c, justify="right")
    table.add_row("segments (and roll-ups) written", f"{t_seg:.1f}", f"{n_seg} segments")
    if res is not None:
        table.add_row("roll-ups (rebuild)", f"{t_roll:.1f}", f"{res.rows:,} rows, both levels")
    table.add_row("check: roll-up totals = events'", "", f"{n:,} events, ${cost}")
    Console().print(table)


def cmd_reports(args: argparse.Namespace) -> None:
    import contextlib
    import os

    from tailguard.analytics.context import DAILY, ROLLUP, TASK, QueryContext
    from tailguard.analytics.customers import CUSTOMER_FIELDS
    from tailguard.analytics.period import window
    from tailguard.analytics.report import customer_report
    from tailguard.cli.output import print_csv, print_json
    from tailguard.ledger import merged

    led = Ledger(args.ledger)
    files = ", ".join(f"'{p}'" for p in led.segment_files())
    per_segment = (ROLLUP, DAILY, TASK)  # every level but the month one

    def on(use: Any, fn: Any) -> Any:
        def run() -> Any:
            with QueryContext.open(led) as ctx:
                ctx.use_rollup = use
                return len(fn(ctx))

        return run

    def report() -> int:  # the table (a fresh connection); its first row, as any use reads
        rows = customer_report(led)
        return len(rows[0]) * len(rows)

    def report_dicts() -> int:  # every row as a dict (what iterating the table builds)
        return len(list(customer_report(led)))

    def written(write: Any) -> Any:  # what `report customers --csv / --json` writes, to /dev/null
        def run() -> int:
            rows = customer_report(led)
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                write(rows)
            return len(rows)

        return run

    def floor_events() -> Any:
        con = duckdb.connect()
        try:
            return con.execute(
                f"SELECT customer_id, sum(cost_usd), count(*) FROM read_parquet([{files}]) "
                "GROUP BY 1"
            ).fetchall()
        finally:
            con.close()

    def floor_daily() -> Any:
        con = led.connect()
        try:
            return con.execute(
                "SELECT customer_id, sum(cost_usd), sum(events) FROM rollup_daily GROUP BY 1"
            ).fetchall()
        finally:
            con.close()

    fresh = merged.is_fresh(led)
    month = "" if fresh else " (month level stale)"
    cases = {
        f"report customers (open window, all rows){month}": report,
        "  ... every row as a dict": report_dicts,
        "  ... --csv, to /dev/null": written(lambda rows: print_csv(rows, CUSTOMER_FIELDS)),
        "  ... --json, to /dev/null": written(print_json),
        f"report customers --limit 20{month}": on(True, lambda c: customer_report(c, limit=20)),
        "report customers --limit 20, per-segment levels": on(
            per_segment, lambda c: customer_report(c, limit=20)
        ),
    }
    if args.period:
        win = window(args.period)
        cases[f"report customers --period {args.period} --limit 20{month}"] = on(
            True, lambda c: customer_report(c, window=win, limit=20)
        )
    cases |= {
        "floor: GROUP BY customer over the events": floor_events,
        "floor: GROUP BY customer over rollup_daily": floor_daily,
    }
    report()  # warm the OS cache alike for every contender
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeat):  # interleaved: a drift in load hits all alike
        for name, fn in cases.items():
            c = _cpu()
            times[name] += run_times(fn)[0]
            cpu[name].append(_cpu() - c)
    table = Table(title=f"{args.ledger} (best / median of {args.repeat})")
    for c in ("measure", "best s", "median s", "best CPU s"):
        table.add_column(c, justify="right")
    for name, ts in times.items():
        table.add_row(
            name, f"{min(ts):.3f}", f"{statistics.median(ts):.3f}", f"{min(cpu[name]):.2f}"
        )
    Console().print(table)


def cmd_refresh(args: argparse.Namespace) -> None:
    from tailguard.ledger import merged

    led = Ledger(args.ledger)
    table = Table(title=f"{args.ledger}: month level refresh ({len(led.segment_files())} segments)")
    for c in ("run", "s", "CPU s", "rows"):
        table.add_column(c, justify="right")
    for k in range(args.repeat):
        t, c = time.perf_counter(), _cpu()
        res = merged.refresh(led, force=True)
        table.add_row(
            str(k + 1), f"{time.perf_counter() - t:.3f}", f"{_cpu() - c:.2f}", f"{res.rows:,}"
        )
    Console().print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--tmp", default="/tmp")
    p.add_argument("--input", help="ingest this Parquet file instead of synthetic events")
    p = sub.add_parser("ratio")
    p.add_argument("--ledger", required=True)
    p = sub.add_parser("make")
    p.add_argument("--base", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--copies", type=int, default=7)
    p.add_argument("--rebuild", action="store_true", help="compute the roll-ups from the events")
    p = sub.add_parser("reports")
    p.add_argument("--ledger", required=True)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--period", help="also the top 20 of this month (YYYY-MM)")
    p = sub.add_parser("refresh")
    p.add_argument("--ledger", required=True)
    p.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    cmds = {
        "ingest": cmd_ingest,
        "ratio": cmd_ratio,
        "make": cmd_make,
        "reports": cmd_reports,
        "refresh": cmd_refresh,
    }
    cmds[args.cmd](args)


if __name__ == "__main__":
    main()
