"""FOCUS export benchmark: `tailguard export focus` of a 10M-event month.

    python bench/bench_focus.py --events 10000000 --runs 2

The month (2025-06) is written straight into a ledger's segments by DuckDB (1M rows a segment,
the ledger's schema and types; generating is not what is measured): 80% LLM calls over 2,000
customers and 6 models of 2 providers, priced with their cost per token type (as the pricing
step stores it; a tenth carry a reported cost instead), 10% tool calls, 5% retrievals, 5% task
outcomes. A warm-up connect writes the roll-ups the segments lack first. Measured: the whole
export (one grouping query, the unpivot per token type, the FOCUS projection, ``COPY`` to
Parquet) and the same to CSV, wall and CPU (user + system of the process, all threads).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.finops.focus import export_focus
from tailguard.ledger import Ledger

SEGMENT_ROWS = 1_000_000

_GEN = """
SELECT
  'ev-' || i AS event_id,
  CASE WHEN i % 20 < 16 THEN 'llm_call' WHEN i % 20 < 18 THEN 'tool_call'
       WHEN i % 20 = 18 THEN 'retrieval' ELSE 'task_outcome' END AS kind,
  TIMESTAMPTZ '2025-06-01 00:00:00+00' + to_microseconds(CAST(hash(i) % 2592000000000 AS BIGINT))
    AS ts,
  'cust-' || (hash(i * 7) % 2000) AS customer_id,
  CASE WHEN i % 20 < 16 THEN ['openai', 'openai', 'openai', 'anthropic', 'anthropic',
    'anthropic'][1 + i % 6] END AS provider,
  CASE WHEN i % 20 < 16 THEN ['gpt-4o', 'gpt-4o-mini', 'o3', 'claude-sonnet-4',
    'claude-3-5-haiku', 'claude-opus-4'][1 + i % 6] END AS model,
  CASE WHEN i % 20 < 16 THEN 1 END AS attempt,
  CASE WHEN i % 20 < 16 THEN 1 END AS requests,
  CASE WHEN i % 20 < 16 THEN 500 + i % 4000 END AS input_tokens,
  CASE WHEN i % 20 < 16 THEN 50 + i % 700 END AS output_tokens,
  CASE WHEN i % 20 < 16 THEN i % 400 END AS cache_read_tokens,
  CASE WHEN i % 20 < 16 THEN i % 37 END AS cache_write_tokens,
  CASE WHEN i % 20 < 16 THEN 0 END AS reasoning_tokens,
  CASE WHEN i % 20 < 18 THEN 'ok' END AS status,
  CASE WHEN i % 20 IN (16, 17) THEN ['search', 'crm', 'email'][1 + i % 3] END AS tool,
  CASE WHEN i % 20 IN (16, 17) THEN 'read' END AS tool_kind,
  CASE WHEN i % 20 = 18 THEN 1 + i % 4 END AS queries,
  CASE WHEN i % 20 = 18 THEN 0 END AS reranks,
  CASE WHEN i % 20 = 19 THEN 'accepted' END AS outcome,
  -- per token type, nano-dollars: uncached input x 2.5, cache read x 1.25, write x 3.75,
  -- output x 10 (per Mtok); a tenth of the calls carry a reported cost (no parts)
  CASE WHEN i % 20 < 16 AND i % 10 <> 3
    THEN CAST((500 + i % 4000 - i % 400 - i % 37) * 2.5e-6 AS DECIMAL(18, 9)) END
    AS input_cost_usd,
  CASE WHEN i % 20 < 16 AND i % 10 <> 3
    THEN CAST((i % 400) * 1.25e-6 AS DECIMAL(18, 9)) END AS cache_read_cost_usd,
  CASE WHEN i % 20 < 16 AND i % 10 <> 3
    THEN CAST((i % 37) * 3.75e-6 AS DECIMAL(18, 9)) END AS cache_write_cost_usd,
  CASE WHEN i % 20 < 16 AND i % 10 <> 3
    THEN CAST((50 + i % 700) * 10e-6 AS DECIMAL(18, 9)) END AS output_cost_usd,
  CASE WHEN i % 20 IN (16, 17) THEN DECIMAL '0.001' WHEN i % 20 = 18 THEN DECIMAL '0.0005'
       WHEN i % 20 = 19 THEN DECIMAL '0' END AS other_cost
FROM range({lo}, {hi}) t(i)
"""


def make_ledger(root: Path, events: int) -> Ledger:
    """A ledger of ``events`` events in 2025-06, written as segments by DuckDB."""
    led = Ledger(root / "ledger")
    led.segments_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_schema", LEDGER_SCHEMA.empty_table())
    cols = [f.name for f in LEDGER_SCHEMA]
    for n, lo in enumerate(range(0, events, SEGMENT_ROWS)):
        hi = min(events, lo + SEGMENT_ROWS)
        gen = _GEN.format(lo=lo, hi=hi)
        cost = (
            "CASE WHEN input_cost_usd IS NOT NULL THEN input_cost_usd + cache_read_cost_usd"
            " + cache_write_cost_usd + output_cost_usd WHEN kind = 'llm_call' THEN "
            "CAST((input_tokens + output_tokens) * 3e-6 AS DECIMAL(18, 9)) ELSE other_cost END"
        )
        select = ", ".join(
            f"{cost} AS cost_usd"
            if c == "cost_usd"
            else "CASE WHEN kind = 'llm_call' AND input_cost_usd IS NULL THEN 'reported' "
            "WHEN kind = 'llm_call' THEN 'price' ELSE 'unit' END AS cost_source"
            if c == "cost_source"
            else "false AS unpriced"
            if c == "unpriced"
            else c
            if c in _generated()
            else f"NULL AS {c}"
            for c in cols
        )
        table = con.sql(f"SELECT {select} FROM ({gen})").to_arrow_table()
        table = table.cast(LEDGER_SCHEMA)
        dest = led.segments_dir / f"{n:020d}-bench{n:07d}.parquet"
        import pyarrow.parquet as pq

        pq.write_table(table, dest, compression="zstd", row_group_size=122_880)
    con.close()
    return Ledger(root / "ledger")


def _generated() -> set[str]:
    return {
        "event_id", "kind", "ts", "customer_id", "provider", "model", "attempt", "requests",
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
        "reasoning_tokens", "status", "tool", "tool_kind", "queries", "reranks", "outcome",
        "input_cost_usd", "cache_read_cost_usd", "cache_write_cost_usd", "output_cost_usd",
    }  # fmt: skip


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="Build (or reuse) the ledger here.")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="tg-bench-focus-"))
    try:
        t0 = time.perf_counter()
        if not (root / "ledger" / "segments").exists():
            make_ledger(root, args.events)
        led = Ledger(root / "ledger")
        led.connect().close()  # the roll-ups the generated segments lack: not measured
        built = time.perf_counter() - t0
        table = Table(title=f"export focus, {args.events:,} events (ledger built in {built:.1f} s)")
        for col in ("format", "rows out", "wall s (runs)", "events/s", "CPU s", "load"):
            table.add_column(col, justify="right")
        for suffix in (".parquet", ".csv"):
            walls, cpus, done = [], [], None
            for _ in range(args.runs):
                out = root / f"focus{suffix}"
                c0, w0 = _cpu(), time.perf_counter()
                done = export_focus(led, "2025-06", out, account_id="acct", account_name="Acct")
                walls.append(time.perf_counter() - w0)
                cpus.append(_cpu() - c0)
            wall = statistics.median(walls)
            assert done is not None
            table.add_row(
                suffix[1:],
                f"{done.rows:,}",
                f"{wall:.2f} ({', '.join(f'{w:.2f}' for w in walls)})",
                f"{args.events / wall:,.0f}",
                f"{statistics.median(cpus):.2f}",
                f"{os.getloadavg()[0]:.1f}",
            )
        Console().print(table)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
