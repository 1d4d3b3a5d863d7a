"""Compaction benchmark: `report customers` over many small segments, then after `compact`.

    python bench/bench_compact.py --segments 2000 --rows 500

The small segments stand for what the gateway's write-ahead log leaves (one segment per flush,
every few seconds). Events are the ledger benchmark's synthetic ones, priced, split into
``--segments`` files of ``--rows`` rows written directly (so building them is not measured).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import uuid
from pathlib import Path

from _common import timed
from bench_ledger import make_events
from rich.console import Console
from rich.table import Table

from tailguard.analytics.customers import customer_rows
from tailguard.analytics.period import Window
from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.ledger import Ledger
from tailguard.ledger.store import write_segment
from tailguard.pricing import PriceBook, price_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tg-compact-"))
    try:
        led = Ledger(work / "L")
        led.ensure()
        n = args.segments * args.rows
        priced = price_table(PriceBook.load(), make_events(n, 20_000)).cast(LEDGER_SCHEMA)
        for i in range(args.segments):
            part = priced.slice(i * args.rows, args.rows)
            write_segment(part, led.segments_dir / f"{i:08d}-{uuid.uuid4().hex[:8]}.parquet")

        def report() -> int:
            con = led.connect()
            try:
                return len(customer_rows(con, Window()))
            finally:
                con.close()

        report()  # warm the OS cache
        before, _ = timed(report, args.repeat)

        def compact_all() -> tuple[int, int, int]:
            runs = merged = sources = 0
            while True:  # a backlog takes several bounded runs (max_segments each)
                r = led.compact()
                if not r.merged_segments:
                    return runs, merged, sources
                runs, merged, sources = (
                    runs + 1,
                    merged + r.merged_segments,
                    sources + r.source_segments,
                )

        c_s, (runs, merged, sources) = timed(compact_all)
        after, _ = timed(report, args.repeat)
        t = Table(title=f"report customers over {n:,} events (median of {args.repeat})")
        for c in ("segments", "report s"):
            t.add_column(c, justify="right")
        t.add_row(f"{args.segments:,} × {args.rows:,} rows", f"{before:.2f}")
        t.add_row(f"{len(led.segment_files()):,} after compact", f"{after:.2f}")
        Console().print(t)
        Console().print(
            f"compact: {sources:,} segments → {merged:,} in {runs} run(s), {c_s:.1f} s in all"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
