"""Dedupe: the writer's id index (``tailguard.ledger.idindex.IdIndex``) against the hash join it
replaced, on the same ids.

    python bench/bench_dedupe.py --input /tmp/h13/ev10m.parquet     # the simulator's ids
    python bench/bench_dedupe.py --events 10000000                  # uuid4 ids

Each method sees the ids in batches of ``--batch`` rows (the Parquet reader's 122,880), as an
ingest hands them over: first every id once (all kept), then ``--replay`` batches again (all
duplicates: the path every hit takes). ``join`` is the previous index, kept here as the
baseline: an in-memory DuckDB table of the known ids, each batch joined against it (a scan of
every known id per batch). CPU seconds are this process's (user + system, every thread).
"""

from __future__ import annotations

import argparse
import resource
import time
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from tailguard.ledger.idindex import IdIndex


class JoinIndex:
    """The index before: known ids in a DuckDB table, a hash join per batch."""

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()
        self.con.execute("CREATE TABLE known (event_id VARCHAR)")

    def fresh(self, table: pa.Table) -> pa.Table:
        ids = pa.table(
            {
                "event_id": table.column("event_id"),
                "_pos": pa.array(np.arange(table.num_rows, dtype=np.int64)),
            }
        )
        self.con.register("_ids", ids)
        pos = self.con.sql(
            "WITH seen AS (SELECT b.event_id FROM _ids b JOIN known k USING (event_id)) "
            "SELECT min(_pos) AS p FROM _ids ANTI JOIN seen USING (event_id) GROUP BY event_id"
        ).fetchnumpy()["p"]
        self.con.unregister("_ids")
        if len(pos) == table.num_rows:
            kept = table
        else:
            kept = table.take(pa.array(np.sort(np.asarray(pos, dtype=np.int64))))
        self.con.register("_kept", kept.select(["event_id"]))
        self.con.execute("INSERT INTO known SELECT event_id FROM _kept")
        self.con.unregister("_kept")
        return kept


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _run(index: Any, batches: list[pa.Table], replay: int) -> dict[str, float]:
    c, w = _cpu(), time.perf_counter()
    kept = sum(index.fresh(b).num_rows for b in batches)
    c2, w2 = _cpu(), time.perf_counter()
    again = sum(index.fresh(b).num_rows for b in batches[:replay])
    return {
        "kept": kept,
        "cpu": c2 - c,
        "wall": w2 - w,
        "replay_kept": again,
        "replay_cpu": _cpu() - c2,
        "replay_wall": time.perf_counter() - w2,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", help="a Parquet file with an event_id column")
    ap.add_argument("--events", type=int, default=10_000_000, help="uuid4 ids (without --input)")
    ap.add_argument("--batch", type=int, default=122_880)
    ap.add_argument("--replay", type=int, default=10, help="batches ingested a second time")
    ap.add_argument("--skip-join", action="store_true", help="only the id index")
    args = ap.parse_args()
    if args.input:
        ids = pq.read_table(args.input, columns=["event_id"])
    else:
        ids = pa.table({"event_id": [str(uuid.uuid4()) for _ in range(args.events)]})
    batches = [pa.Table.from_batches([b]) for b in ids.to_batches(max_chunksize=args.batch)]
    methods: dict[str, Any] = {"IdIndex": IdIndex}
    if not args.skip_join:
        methods["join (before)"] = JoinIndex
    table = Table(title=f"dedupe of {ids.num_rows:,} ids in batches of {args.batch:,}")
    cols = ("method", "kept", "CPU s", "wall s", "ids per CPU s", "replay kept", "replay CPU s")
    for col in cols:
        table.add_column(col, justify="right")
    for name, cls in methods.items():
        r = _run(cls([]) if cls is IdIndex else cls(), batches, args.replay)
        table.add_row(
            name,
            f"{r['kept']:,}",
            f"{r['cpu']:.2f}",
            f"{r['wall']:.2f}",
            f"{r['kept'] / r['cpu']:,.0f}",
            f"{r['replay_kept']:,} of {sum(b.num_rows for b in batches[: args.replay]):,}",
            f"{r['replay_cpu']:.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
