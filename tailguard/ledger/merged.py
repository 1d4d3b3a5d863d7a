"""The month level: the roll-ups merged ACROSS segments, one row per customer x UTC month.

The three per-segment levels (``tailguard.ledger.rollup``) hold one set of rows per segment, so
a ledger-wide question re-aggregates every segment's rows: at 110M events ``report customers``
sums 2.3M ``rollup_daily`` rows and groups 10.4M ``rollup_task`` rows per task for its distinct
tasks. A coarser level *per segment* would not shrink that on a gateway ledger, whose segments
are cut by time (every segment holds a slice of every active customer). This level is merged
over the whole ledger instead::

    rollups/month/<digest>.parquet     one row per customer x UTC month (MONTH_SCHEMA), and
                                       one per customer for the whole ledger (month NULL)

Measures: every ``rollup_daily`` measure summed over the month (``DAILY_MERGE``: exact DECIMAL
money, integer counts; ``first_ts``/``last_ts`` min/max), ``first_day``/``last_day`` (the
month's first and last UTC day with events), and four task counts from ``rollup_task``:

- ``tasks``, ``successful_tasks``: distinct task ids with an outcome event in the month, and
  those with an ``accepted`` outcome in the month (what a ``--period YYYY-MM`` window counts);
- ``first_tasks``, ``first_successful_tasks``: each task counted once, in the month of its
  first outcome, as won when any of its outcomes over the whole covered ledger was accepted.
  Summed over every month they are the open window's distinct tasks (a task whose outcomes
  span two months is one task), so the open window needs no per-task grouping at read time.

Each customer also has a whole-ledger row (``month`` NULL: the month rows summed, its tasks
the first-outcome counts summed), so the two windows the level answers, the open one and one
whole month, are each one row per customer: a read is a scan, no GROUP BY. ``Ledger.connect``
shows them as two views, ``rollup_month`` (the month rows) and ``rollup_customer`` (the
whole-ledger rows, without ``month``).

Freshness without bookkeeping: the file's name is a digest of the exact list of live segment
names it was computed from (and of ``VERSION``, the level's definition). A reader
(``create_view``, called by ``Ledger.connect`` with the listing its ``events`` view was made
from) looks for the file named after its own listing: present, it is the month level of exactly
those events, and the view ``rollup_month`` is created; absent (a segment committed or
compacted since the last refresh), there is no such view and the reports read the per-segment
levels, exact and slower. A stale month level is never read, so it can never give a wrong
number; the worst it does is cost time.

Writes: ``refresh`` (at the end of ``ingest``, of ``compact``, of ``tailguard rollup``)
computes the level from the per-segment roll-ups of the listing it saw, writes it tmp + fsync +
rename under its digest name (a crash leaves either no file, which is only stale, or the whole
file), and removes month files superseded more than ``grace_s`` ago (a report that listed the
segments before the refresh still reads its own file meanwhile). No lock is needed: the file is
a function of immutable segments, so two processes refreshing at once write the same rows under
the same name. ``refresh`` is idempotent and a no-op when the level is fresh.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tailguard.events.batch import engine as _engine
from tailguard.events.batch import sql_literal
from tailguard.ledger import rollup
from tailguard.ledger.segments import SegmentDir, fsync_dir

#: the view ``Ledger.connect`` creates when the month level is fresh
VIEW = "rollup_month"
#: ... and the whole-ledger row of each customer (the same file, ``month`` NULL): the same
#: columns but ``month``, with ``tasks`` / ``successful_tasks`` the distinct tasks over the ledger
TOTAL_VIEW = "rollup_customer"
#: directory under ``rollups/``
MONTH_DIR = "month"
#: the level's definition: part of the digest, so a change of definition makes old files stale
VERSION = "2"
#: seconds a superseded month file is kept for readers that listed the segments before it
GRACE_S = 3600.0

_DAILY = [(c, t) for c, t, _ in rollup.DAILY_MEASURES]

MONTH_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("month", pa.date32()),  # the first day of the UTC month
        *_DAILY,
        ("first_day", pa.date32()),
        ("last_day", pa.date32()),
        ("tasks", pa.int64()),
        ("successful_tasks", pa.int64()),
        ("first_tasks", pa.int64()),
        ("first_successful_tasks", pa.int64()),
    ]
)


def _measure(col: str, typ: pa.DataType) -> str:
    fn = rollup.DAILY_MERGE[col]
    if pa.types.is_integer(typ):
        return f"CAST({fn}({col}) AS BIGINT) AS {col}"
    return f"{fn}({col}) AS {col}"


def month_sql(daily: str, task: str) -> str:
    """The month level from the daily rows in relation ``daily`` and the task rows in ``task``
    (per-segment rows: any number per key), with each customer's whole-ledger row (``month``
    NULL), totals first so that either half is whole row groups of the file."""
    measures = ", ".join(_measure(c, t) for c, t in _DAILY)
    totals = measures  # the same sums, min and max over the month rows: the whole ledger
    month = "CAST(date_trunc('month', day) AS DATE)"
    return f"""
WITH d AS (
  SELECT customer_id, {month} AS month, {measures},
    min(day) AS first_day, max(day) AS last_day
  FROM {daily}
  GROUP BY 1, 2
), k AS (
  SELECT customer_id, task_id, {month} AS month,
    max(CASE WHEN accepted > 0 THEN 1 ELSE 0 END) AS won
  FROM {task}
  WHERE outcomes > 0 AND task_id IS NOT NULL
  GROUP BY 1, 2, 3
), km AS (
  SELECT customer_id, month, count(*) AS tasks, sum(won) AS successful_tasks
  FROM k GROUP BY 1, 2
), f AS (
  SELECT customer_id, task_id, min(month) AS month, max(won) AS won
  FROM k GROUP BY 1, 2
), fm AS (
  SELECT customer_id, month, count(*) AS first_tasks, sum(won) AS first_successful_tasks
  FROM f GROUP BY 1, 2
), m AS (
SELECT d.*,
  CAST(coalesce(km.tasks, 0) AS BIGINT) AS tasks,
  CAST(coalesce(km.successful_tasks, 0) AS BIGINT) AS successful_tasks,
  CAST(coalesce(fm.first_tasks, 0) AS BIGINT) AS first_tasks,
  CAST(coalesce(fm.first_successful_tasks, 0) AS BIGINT) AS first_successful_tasks
FROM d
LEFT JOIN km ON km.customer_id = d.customer_id AND km.month = d.month
LEFT JOIN fm ON fm.customer_id = d.customer_id AND fm.month = d.month
)
SELECT * FROM m
UNION ALL
SELECT customer_id, CAST(NULL AS DATE) AS month, {totals},
  min(first_day) AS first_day, max(last_day) AS last_day,
  CAST(sum(first_tasks) AS BIGINT) AS tasks,
  CAST(sum(first_successful_tasks) AS BIGINT) AS successful_tasks,
  CAST(sum(first_tasks) AS BIGINT) AS first_tasks,
  CAST(sum(first_successful_tasks) AS BIGINT) AS first_successful_tasks
FROM m
GROUP BY customer_id
ORDER BY month NULLS FIRST, customer_id
"""


def digest(segments: Sequence[Path | str]) -> str:
    """The name of the month file of exactly ``segments`` (their file names, in any order)."""
    names = sorted(Path(s).name for s in segments)
    h = hashlib.sha256(f"tailguard-month-v{VERSION}\n".encode())
    for n in names:
        h.update(n.encode() + b"\n")
    return h.hexdigest()[:32]


def month_dir(ledger: SegmentDir) -> Path:
    return ledger.path / rollup.ROLLUPS / MONTH_DIR


def path_for(ledger: SegmentDir, segments: Sequence[Path | str]) -> Path:
    """Where the month level of exactly ``segments`` lives (whether or not it exists)."""
    return month_dir(ledger) / f"{digest(segments)}.parquet"


def is_fresh(ledger: SegmentDir, segments: Sequence[Path] | None = None) -> bool:
    """True when the month level of ``segments`` (default: the live listing) exists."""
    files = ledger.segment_files() if segments is None else segments
    return path_for(ledger, files).exists()


def compute(ledger: SegmentDir, segments: Sequence[Path], con: Any = None) -> pa.Table:
    """The month level of ``segments`` (from their per-segment roll-ups; a segment lacking
    them is aggregated inline, as a read-only ``rollup.create_view`` does: a refresh writes
    no file but its own)."""
    own = con is None
    con = _engine() if own else con
    try:
        rollup.create_view(con, ledger, segments, fix=False)
        table = con.sql(month_sql(rollup.DAILY_VIEW, rollup.TASK_VIEW)).to_arrow_table()
        return table.select(MONTH_SCHEMA.names).cast(MONTH_SCHEMA)
    finally:
        if own:
            con.close()


@dataclass
class RefreshResult:
    """What a refresh did."""

    segments: int = 0  # live segments covered
    written: bool = False  # False: it was fresh already (or the ledger is empty)
    rows: int = 0  # month rows written
    removed: int = 0  # superseded month files removed
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "segments": self.segments,
            "written": self.written,
            "rows": self.rows,
            "removed": self.removed,
            "seconds": round(self.seconds, 3),
        }


def refresh(
    ledger: SegmentDir, *, force: bool = False, grace_s: float = GRACE_S, now: float | None = None
) -> RefreshResult:
    """Make the month level of the live listing exist (recompute it with ``force``, e.g.
    after ``tailguard rollup --rebuild``); remove month files superseded over ``grace_s`` ago.
    A no-op when fresh. A segment deleted while it is read (a compaction's grace ran out
    between listing and reading) leaves the level stale, never wrong: the next refresh
    computes it."""
    t0 = time.perf_counter()
    files = ledger.segment_files()
    result = RefreshResult(segments=len(files))
    if not files:
        return result
    dest = path_for(ledger, files)
    if force or not dest.exists():
        try:
            table = compute(ledger, files)
        except Exception:
            if all(f.exists() for f in files):
                raise
            return result  # a source vanished: stale, not wrong
        d = month_dir(ledger)
        d.mkdir(parents=True, exist_ok=True)
        ledger.tmp_dir.mkdir(parents=True, exist_ok=True)
        rollup._write_file(table, dest, ledger.tmp_dir)
        fsync_dir(d)
        result.written, result.rows = True, table.num_rows
    result.removed = _remove_superseded(ledger, dest, grace_s, time.time() if now is None else now)
    result.seconds = time.perf_counter() - t0
    return result


def _remove_superseded(ledger: SegmentDir, current: Path, grace_s: float, now: float) -> int:
    """Delete month files other than ``current`` that a newer file superseded over ``grace_s``
    seconds ago (a file is superseded when the next one is written: its successor's mtime)."""
    d = month_dir(ledger)
    files = sorted(
        (p for p in d.iterdir() if p.suffix == ".parquet" and p != current),
        key=lambda p: p.stat().st_mtime,
    )
    times = [p.stat().st_mtime for p in files] + [current.stat().st_mtime]
    removed = 0
    for p, succ in zip(files, times[1:], strict=True):
        if now - succ >= grace_s:
            p.unlink(missing_ok=True)
            removed += 1
    if removed:
        fsync_dir(d)
    return removed


def refresh_quietly(ledger: Any) -> RefreshResult | None:
    """``refresh`` for the write paths' hooks (ingest, compact): a ledger that is not a segment
    directory (ClickHouse) has no month level, a live segment lacking its per-segment
    roll-ups defers the refresh (no inline aggregation of events at write time), and a failure
    leaves the level stale (the reports read the per-segment levels), never fails the write
    that already succeeded."""
    if not isinstance(ledger, SegmentDir):
        return None
    try:
        # a hook never aggregates events: a segment without its roll-ups (a crash, an older
        # ledger) waits for the repair of the next ``connect`` and the next refresh
        if rollup.missing(ledger, ledger.segment_files()):
            return None
        return refresh(ledger)
    except Exception:  # the write succeeded; the level stays stale (slower reads, never wrong)
        return None


def create_view(con: Any, ledger: SegmentDir, segments: Sequence[Path]) -> bool:
    """Create the views ``rollup_month`` and ``rollup_customer`` over the month level of
    exactly ``segments`` (the listing the ``events`` view was made from) when it exists; True
    when it did."""
    if not segments:
        return False
    p = path_for(ledger, segments)
    if not p.exists():
        return False
    src = f"read_parquet({sql_literal(str(p))})"
    con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM {src} WHERE month IS NOT NULL")
    con.execute(
        f"CREATE VIEW {TOTAL_VIEW} AS SELECT * EXCLUDE (month, first_tasks, "
        f"first_successful_tasks) FROM {src} WHERE month IS NULL"
    )
    return True


__all__ = [
    "MONTH_SCHEMA",
    "TOTAL_VIEW",
    "VIEW",
    "RefreshResult",
    "compute",
    "create_view",
    "digest",
    "is_fresh",
    "month_sql",
    "path_for",
    "refresh",
    "refresh_quietly",
]
