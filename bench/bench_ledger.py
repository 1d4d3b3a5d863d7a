"""Ledger benchmark: ingest events/s (JSONL, Parquet) and `report customers` against the floor.

    python bench/bench_ledger.py --sizes 1000000 10000000

The floor is a plain DuckDB GROUP BY over the same Parquet files: (a) the identical aggregate
text the report runs, straight over read_parquet (what hand-written SQL would cost), and (b) a
minimal two-aggregate GROUP BY (sum of cost, count) for scale. The report's time includes
listing segments, the customer join and the Python derivations over the aggregated rows.
Synthetic events (mixed kinds, power-law customers) are generated with numpy and written by
DuckDB, so generation is not what is measured.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import run_times, timed
from rich.console import Console
from rich.table import Table

from tailguard.analytics.customers import AGGREGATE_SQL, customer_rows
from tailguard.analytics.period import Window
from tailguard.events.readers import INPUT_SCHEMA
from tailguard.ledger import Ledger, ingest

KINDS = np.array(["llm_call", "tool_call", "retrieval", "escalation", "task_outcome"])
KIND_P = [0.70, 0.15, 0.05, 0.02, 0.08]
MODELS = np.array(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022"])
PROVIDERS = np.array(["openai", "openai", "anthropic"])


def make_events(n: int, customers: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    kind = KINDS[rng.choice(len(KINDS), n, p=KIND_P)]
    weights = rng.pareto(1.2, customers) + 1
    cust = rng.choice(customers, n, p=weights / weights.sum())
    m = rng.integers(0, 3, n)
    is_llm = kind == "llm_call"
    inp = rng.lognormal(7, 1, n).astype(np.int64)
    cache = (inp * rng.uniform(0, 0.6, n)).astype(np.int64)
    out = rng.lognormal(5, 1, n).astype(np.int64)
    ts = (np.int64(1_748_736_000_000_000) + rng.integers(0, 30 * 86_400_000_000, n)).astype(
        "datetime64[us]"
    )
    task = rng.integers(0, n // 8 + 1, n)
    cols = {
        "event_id": pa.array(np.char.add("ev", np.arange(n).astype(str))),
        "kind": pa.array(kind),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "customer_id": pa.array(np.char.add("c", cust.astype(str))),
        "user_id": pa.array(np.char.add("u", (cust * 10 + rng.integers(0, 10, n)).astype(str))),
        "feature": pa.array(np.array(["support", "search", "draft"])[rng.integers(0, 3, n)]),
        "task_id": pa.array(np.char.add("t", task.astype(str))),
        "session_id": pa.array(np.char.add("s", (task // 3).astype(str))),
        "workload": pa.array(np.array(["chat", "agent", "rag"])[rng.integers(0, 3, n)]),
        "provider": pa.array(np.where(is_llm, PROVIDERS[m], None)),
        "model": pa.array(np.where(is_llm, MODELS[m], None)),
        "attempt": pa.array(np.where(is_llm, 1 + (rng.random(n) < 0.05), None), pa.int32()),
        "input_tokens": pa.array(np.where(is_llm, inp, None), pa.int64()),
        "output_tokens": pa.array(np.where(is_llm, out, None), pa.int64()),
        "cache_read_tokens": pa.array(np.where(is_llm, cache, None), pa.int64()),
        "cache_write_tokens": pa.array(np.where(is_llm, 0, None), pa.int64()),
        "reasoning_tokens": pa.array(np.where(is_llm, 0, None), pa.int64()),
        "latency_ms": pa.array(np.where(is_llm, 800.0, None), pa.float64()),
        "status": pa.array(np.where(is_llm, "ok", None)),
        "tool": pa.array(np.where(kind == "tool_call", "db_read", None)),
        "tool_kind": pa.array(np.where(kind == "tool_call", "read", None)),
        "queries": pa.array(np.where(kind == "retrieval", 2, None), pa.int64()),
        "reranks": pa.array(np.where(kind == "retrieval", 1, None), pa.int64()),
        "minutes": pa.array(np.where(kind == "escalation", 6.0, None), pa.float64()),
        "outcome": pa.array(
            np.where(
                kind == "task_outcome",
                np.array(["accepted", "rejected", "abandoned"])[rng.integers(0, 3, n)],
                None,
            )
        ),
    }
    arrays = [
        cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type) for f in INPUT_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=INPUT_SCHEMA)


def write_jsonl(table: pa.Table, path: Path) -> None:
    con = duckdb.connect()
    con.register("t", table)
    cols = ", ".join(
        "strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS ts" if c == "ts" else c
        for c in table.schema.names
        if c not in ("cost_usd", "amount_usd")
    )
    con.execute(f"COPY (SELECT {cols} FROM t) TO '{path}' (FORMAT json)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--jsonl-size", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ingest-runs", type=int, default=3, help="runs per size up to 2M events")
    args = ap.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    ing = Table(title="ingest (median of runs, each into a new ledger)")
    for c in ("format", "events", "runs", "seconds", "events/s", "CPU s", "cores busy"):
        ing.add_column(c, justify="right")

    def ingest_runs(fmt: str, path: Path, n: int, runs: int) -> Ledger:
        walls, cpus, led = [], [], None
        for k in range(runs):
            led = Ledger(work / f"L-{fmt}-{n}-{k}")
            c0 = resource.getrusage(resource.RUSAGE_SELF)
            s, _ = timed(lambda led=led: ingest([path], led))
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            walls.append(s)
            cpus.append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
            if k < runs - 1:
                shutil.rmtree(led.path)
        w, c = statistics.median(walls), statistics.median(cpus)
        ing.add_row(
            fmt, f"{n:,}", str(runs), f"{w:.2f}", f"{n / w:,.0f}", f"{c:.1f}", f"{c / w:.2f}"
        )
        assert led is not None
        return led

    rep = Table(title="report customers vs plain DuckDB GROUP BY (median of runs)")
    for c in ("events", "report s", "same SQL on Parquet s", "ratio", "minimal GROUP BY s"):
        rep.add_column(c, justify="right")
    try:
        jt = make_events(args.jsonl_size, args.customers, seed=2)
        jpath = work / "events.jsonl"
        write_jsonl(jt, jpath)
        del jt
        ingest_runs("jsonl", jpath, args.jsonl_size, args.ingest_runs)
        for n in args.sizes:
            t = make_events(n, args.customers)
            ppath = work / f"events-{n}.parquet"
            pq.write_table(t, ppath)  # pyarrow's default: row groups of 1Mi rows
            if n <= 2_000_000:
                # the same events in DuckDB-sized row groups (as DuckDB, Polars, Spark write):
                # the engine validates one row group per core, so the layout shows
                small_rg = work / f"events-{n}-rg.parquet"
                pq.write_table(t, small_rg, row_group_size=122_880)
                ingest_runs("parquet (rg 122,880)", small_rg, n, args.ingest_runs)
            del t
            led = ingest_runs("parquet", ppath, n, args.ingest_runs if n <= 2_000_000 else 1)

            def report(led: Ledger = led) -> int:
                con = led.connect()
                try:
                    return len(customer_rows(con, Window()))
                finally:
                    con.close()

            files = ", ".join(f"'{p}'" for p in led.segment_files())
            con = duckdb.connect()
            same_sql = AGGREGATE_SQL.format(where="TRUE").replace(
                "FROM events", f"FROM read_parquet([{files}])"
            )
            minimal = (
                f"SELECT customer_id, sum(cost_usd), count(*) FROM read_parquet([{files}]) "
                "GROUP BY customer_id"
            )
            report()  # warm the OS cache for every contender alike
            # interleaved (report, floor, minimal, report, ...): a drift in machine load hits
            # all three alike instead of skewing the ratio
            runs: dict[str, list[float]] = {"r": [], "f": [], "m": []}
            for _ in range(args.repeat):
                runs["r"] += run_times(report)[0]
                runs["f"] += run_times(lambda q=same_sql, c=con: c.execute(q).fetchall())[0]
                runs["m"] += run_times(lambda q=minimal, c=con: c.execute(q).fetchall())[0]
            r_s, f_s, m_s = (statistics.median(runs[k]) for k in "rfm")
            rep.add_row(f"{n:,}", f"{r_s:.3f}", f"{f_s:.3f}", f"{r_s / f_s:.2f}×", f"{m_s:.3f}")
        console.print(ing)
        console.print(rep)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
