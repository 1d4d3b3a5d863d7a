"""Compaction: merge small segments into large ones without a reader ever double counting.

The gateway's write-ahead log commits a segment every few seconds, so a month of a quiet
gateway leaves tens of thousands of tiny Parquet files, and every report opens all of them.
``compact`` merges segments under ``small_rows`` rows into segments of up to ``target_rows``.

Readers never take a lock, so a merge must be safe against a reader listing the directory at
any moment, and against a SIGKILL at any step. The order of the steps is what makes it so:

1. the merged rows are written to ``tmp/`` and synced (a crash here leaves an orphan there);
2. a manifest ``compacted/<merged>.json`` naming the sources is written and synced;
3. the merged segment is renamed into ``segments/`` (atomic): from this instant a listing that
   holds it also finds its manifest, and drops the sources (``superseded``), so a reader sees
   either the sources or the merged segment, never both;
4. only after ``grace_s`` (default one hour) are the sources deleted, then the manifest, so a
   report that listed the sources just before step 3 can still read them.

Roll-ups (``tailguard.ledger.rollup``) follow the segments: the merged segment's roll-up is
computed from the merged rows and written between steps 1 and 3, so the switch of step 3
switches the roll-ups too; a source's roll-up is deleted right after the source.

A crash between 2 and 3 leaves a manifest whose merged segment does not exist: it is ignored
by readers and removed by the next compaction. Rows are copied, never changed: the totals of
every report are the same before and after (a property test checks it).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from tailguard.events.batch import engine as _engine
from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.ledger import merged as month_level
from tailguard.ledger import rollup
from tailguard.ledger.segments import (
    MANIFESTS,
    SegmentDir,
    atomic_write_parquet,
    fsync_dir,
    manifests,
    write_synced,
)


@dataclass
class CompactResult:
    """What one compaction did."""

    merged_segments: int = 0  # new segments written
    source_segments: int = 0  # small segments they replace
    rows: int = 0  # rows copied
    deleted_segments: int = 0  # superseded segments removed after their grace period
    merged: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "merged_segments": self.merged_segments,
            "source_segments": self.source_segments,
            "rows": self.rows,
            "deleted_segments": self.deleted_segments,
            "merged": [str(p) for p in self.merged],
        }


def compact(
    ledger: SegmentDir,
    *,
    small_rows: int = 100_000,
    target_rows: int = 1_000_000,
    grace_s: float = 3600.0,
    max_segments: int = 5_000,
    now: float | None = None,
) -> CompactResult:
    """Merge segments under ``small_rows`` rows into segments of up to ``target_rows`` rows,
    and delete the segments superseded more than ``grace_s`` seconds ago. At most
    ``max_segments`` small segments are merged per call.

    Holds the commit lock throughout (writers wait; readers never do).
    """
    result = CompactResult()
    t = time.time() if now is None else now
    manifest_dir = ledger.manifests_dir
    with ledger.lock():
        ledger.clean_orphans()
        result.deleted_segments = _finish_old(ledger, manifest_dir, t, grace_s)
        rollup.remove_orphans(ledger)  # of segments deleted, or of a commit cut short
        groups = _plan(ledger, small_rows, target_rows, max_segments)
        if groups:
            manifest_dir.mkdir(exist_ok=True)
        for group in groups:
            table = _read(group)
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}-c.parquet"
            tmp = ledger.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.staged.parquet"
            atomic_write_parquet(table, tmp, ledger.tmp_dir)  # step 1: written and synced
            rollup.write_for(ledger, name, table)  # its roll-up, before it can be listed
            manifest = {"merged": name, "sources": [p.name for p in group], "created": t}
            write_synced(manifest_dir / f"{name}.json", json.dumps(manifest).encode())  # step 2
            fsync_dir(manifest_dir)
            os.replace(tmp, ledger.segments_dir / name)  # step 3: the switch
            fsync_dir(ledger.segments_dir)
            result.merged_segments += 1
            result.source_segments += len(group)
            result.rows += table.num_rows
            result.merged.append(ledger.segments_dir / name)
    month_level.refresh_quietly(ledger)  # the month level of the new listing (no lock needed)
    return result


def _plan(
    ledger: SegmentDir, small_rows: int, target_rows: int, max_segments: int
) -> list[list[Path]]:
    """Groups of at least two small live segments, each group under ``target_rows`` rows,
    ``max_segments`` sources at most in all (a backlog is worked off over several runs, so the
    commit lock is never held for long)."""
    files = ledger.segment_files()
    if len(files) < 2:
        return []
    con = _engine()
    try:
        counts = dict(
            con.sql(
                "SELECT file_name, sum(num_rows) FROM parquet_file_metadata(?) GROUP BY file_name",
                params=[[str(p) for p in files]],
            ).fetchall()
        )
    finally:
        con.close()
    small = [(p, int(counts[str(p)])) for p in files if counts[str(p)] < small_rows]
    small = small[:max_segments]
    groups: list[list[Path]] = []
    cur: list[Path] = []
    rows = 0
    for p, n in small:
        if cur and rows + n > target_rows:
            groups.append(cur)
            cur, rows = [], 0
        cur.append(p)
        rows += n
    if cur:
        groups.append(cur)
    return [g for g in groups if len(g) > 1]


def _read(files: list[Path]) -> pa.Table:
    """The rows of ``files``, read by the engine in parallel (the files are many and small)."""
    con = _engine()
    try:
        table = con.sql(
            "SELECT * FROM read_parquet(?, union_by_name = true)",
            params=[[str(p) for p in files]],
        ).to_arrow_table()
    finally:
        con.close()
    # segments written before a column existed (``requests``, the cost components) merge
    # with NULL there, as the events view reads them
    for f in LEDGER_SCHEMA:
        if f.name not in table.schema.names:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(LEDGER_SCHEMA.names).cast(LEDGER_SCHEMA)


def _finish_old(ledger: SegmentDir, manifest_dir: Path, now: float, grace_s: float) -> int:
    """Delete the sources of manifests older than the grace period, then the manifests."""
    if not manifest_dir.is_dir():
        return 0
    deleted = 0
    for tmp in manifest_dir.glob("*.json.tmp"):  # a manifest cut short by a crash
        tmp.unlink(missing_ok=True)
    for m in sorted(manifest_dir.glob("*.json")):
        info = json.loads(m.read_text())
        merged_exists = (ledger.segments_dir / info["merged"]).exists()
        if merged_exists and now - float(info["created"]) < grace_s:
            continue  # readers may still hold a listing with the sources
        if merged_exists:
            for s in info["sources"]:
                p = ledger.segments_dir / s
                if p.exists():
                    p.unlink()
                    deleted += 1
                rollup.remove(ledger, s)  # after its segment
            fsync_dir(ledger.segments_dir)
        m.unlink()  # after the sources: a listing with a source still finds the manifest
    return deleted


__all__ = ["MANIFESTS", "CompactResult", "compact", "manifests"]
