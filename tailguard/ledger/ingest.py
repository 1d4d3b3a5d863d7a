"""Ingest event files into the ledger: validate, price, dedupe, stage, commit.

One ingest is all-or-nothing per call. Validated and priced batches are staged as Parquet files
under ``tmp/`` (invisible to readers) while the input is read; only when every input has been
read do they move into ``segments/``, under the commit lock. So:

- without a rejects file, one bad row refuses the whole input and the ledger is untouched;
- nothing is reported accepted before its segment is renamed into place and synced; a SIGKILL
  while staging leaves only orphans in ``tmp/`` (the next writer removes them); a SIGKILL during
  the final renames leaves a prefix of whole segments visible, never a partial file, and running
  the same ingest again completes it exactly (it is idempotent);
- every row is written once: duplicates are dropped (a DuckDB hash join on the id column)
  against the ids committed when the ingest started plus those it staged, and re-checked under
  the lock only against segments that other writers committed in the meantime. Within the
  input, the first occurrence of an id wins.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tailguard.errors import InputError
from tailguard.events.batch import DEFAULT_BATCH_ROWS, Batch, Reject, TsWindow, engine
from tailguard.events.readers import read_batches
from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.ledger import rollup
from tailguard.ledger.segments import (
    ROW_GROUP_ROWS,
    atomic_write_parquet,
    fsync_dir,
    fsync_file,
    open_segment_writer,
)
from tailguard.ledger.store import IdIndex, Ledger
from tailguard.pricing import PriceBook, price_table

_IN_FLIGHT = 3  # batches waiting for the writer at most

Progress = Callable[[int, int], None]
"""Called with (rows read so far, rows staged so far)."""


@dataclass
class IngestResult:
    """What an ingest did. ``accepted`` rows are durable when this is returned."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    unpriced: int = 0
    segments: list[Path] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "unpriced_calls": self.unpriced,
            "segments": [str(p) for p in self.segments],
        }


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    ledger: Ledger | str | os.PathLike[str],
    *,
    prices: PriceBook | None = None,
    rejects_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    window: TsWindow | None = None,
    reader: Callable[[str | os.PathLike[str]], Iterator[Batch]] | None = None,
) -> IngestResult:
    """Ingest ``paths`` into ``ledger``.

    Without ``rejects_path`` any invalid row raises ``InputError`` (every problem listed as
    ``file:line: field: reason``) and nothing is written. With it, invalid rows go to that file
    as JSON lines (with their reason) and the valid rows are accepted. An event whose ``ts``
    is outside ``window`` (default: ``TAILGUARD_TS_WINDOW``, else 2000-01-01..2100-01-01) is
    invalid. ``reader`` turns a path into validated batches instead of the event-file readers
    (``tailguard import`` reads other systems' exports this way, through the same pipeline).
    """
    from tailguard.ledger.url import open_ledger  # a directory or a ClickHouse URL

    led = open_ledger(ledger)
    book = prices or PriceBook.load()
    led.ensure()
    with led.lock():
        led.clean_orphans()
        snapshot = {p.name for p in led.segment_files()}
        index = IdIndex(led.segment_files())
    result = IngestResult()
    staging_ok = True
    read_before = 0
    from tailguard.ledger.clickhouse import ClickHouseLedger

    # a directory ledger's roll-ups are computed by the stager as each segment closes
    stager = _Stager(led.tmp_dir, batch_rows, rollups=not isinstance(led, ClickHouseLedger))
    try:
        for path in paths:
            rows_in_file = 0
            batches = (
                reader(path)
                if reader is not None
                else read_batches(path, batch_rows=batch_rows, window=window)
            )
            for batch in batches:
                rows_in_file = batch.rows_read
                result.rejects.extend(batch.rejects)
                if batch.rejects and rejects_path is None:
                    staging_ok = False  # keep reading to report every problem, stage nothing
                if staging_ok and batch.table.num_rows:
                    priced = price_table(book, batch.table)
                    kept = index.fresh(priced)
                    result.duplicates += priced.num_rows - kept.num_rows
                    if kept.num_rows:
                        stager.add(kept.cast(LEDGER_SCHEMA))
                        result.unpriced += int(
                            pc.sum(kept.column("unpriced").cast(pa.int64())).as_py() or 0
                        )
                if progress:
                    progress(read_before + rows_in_file, stager.rows)
            read_before += rows_in_file
        staged = stager.finish()  # a failed write raises here, before anything is committed
        result.rejected = len(result.rejects)
        result.read = read_before
        if result.rejects and rejects_path is None:
            raise InputError(
                f"{len(result.rejects)} invalid row(s); nothing was ingested "
                "(fix them, or give a rejects file to set them aside and accept the valid rows)",
                [str(r) for r in result.rejects],
            )
        if rejects_path is not None:
            _write_rejects(Path(rejects_path), result.rejects)
        _commit_staged(led, staged, snapshot, result)
    finally:
        stager.discard()
    from tailguard.ledger.merged import refresh_quietly

    refresh_quietly(led)  # the ledger-wide month level of the new listing (ledger/merged.py)
    return result


class _Stager:
    """Appends batches to staged segment files under ``tmp/``, in background threads.

    Each segment gets about ``segment_rows`` rows (it is closed at the first batch that fills
    it), in row groups of at most ``ROW_GROUP_ROWS`` (DuckDB's own size: the engine scans
    one row group per thread, so a segment is read on every core). Encoding and zstd (a third
    of the CPU of a Parquet ingest) release the GIL, so writing overlaps reading, pricing and
    deduping the next batches. Each of the ``threads`` writers fills its own segment and takes
    the next batch when it is free, so both cores stay busy to the end. The queue is bounded:
    memory stays flat.

    With ``rollups``, a writer also computes its segment's roll-ups when it closes it, from the
    batches it still holds (``tailguard.ledger.rollup.of_table`` on one DuckDB thread of its
    own), and writes them, synced, under ``tmp/`` (``rollup.stage``): the same rows in the
    same order as the staged file, so the same sums as reading the file back, without decoding
    it again, overlapped with the staging of the next segments instead of run after the last
    one; the commit only renames them into place. It holds at most one segment's batches
    (less ``event_id``, which no roll-up reads) per writer.
    """

    def __init__(
        self, tmp_dir: Path, segment_rows: int, threads: int = 2, *, rollups: bool = False
    ) -> None:
        self._tmp_dir = tmp_dir
        self._segment_rows = segment_rows
        self._rollups = rollups
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(_IN_FLIGHT)
        # [path, rows, staged roll-up files or None], appended under the lock
        self._staged: list[list[Any]] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self.rows = 0  # rows handed over so far (for progress)
        self._threads = [
            threading.Thread(target=self._run, name=f"tailguard-stage-{i}", daemon=True)
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def add(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)
        self.rows += table.num_rows

    def _run(self) -> None:
        writer: pq.ParquetWriter | None = None
        entry: list[Any] = []
        parts: list[pa.Table] = []  # the open segment's batches (for its roll-ups)
        con: Any = None

        def close() -> None:
            nonlocal writer, con
            assert writer is not None
            writer.close()
            writer = None
            if self._rollups:
                if con is None:
                    con = engine()
                    con.execute("SET threads = 1")  # the other cores are staging
                rows = pa.concat_tables(parts)
                parts.clear()
                computed = rollup.of_table(rows, con)
                if computed is not None:  # (a benchmark switches the roll-ups off)
                    entry[2] = rollup.stage(computed, self._tmp_dir)

        try:
            while (table := self._queue.get()) is not None:
                if self._error is not None:
                    continue  # another writer failed: drain until the end marker
                if writer is None:
                    path = self._tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.staged.parquet"
                    entry = [path, 0, None]
                    with self._lock:
                        self._staged.append(entry)
                    writer = open_segment_writer(path)
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                if self._rollups:
                    parts.append(table.drop_columns(["event_id"]))
                entry[1] += table.num_rows
                if entry[1] >= self._segment_rows:
                    close()
            if writer is not None and self._error is None:
                close()
        except BaseException as exc:
            self._error = exc
            while self._queue.get() is not None:  # unblock the producer
                pass
        finally:
            if writer is not None:
                writer.close()
            if con is not None:
                con.close()

    def _stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()

    def finish(self) -> list[tuple[Path, int, list[tuple[str, Path]] | None]]:
        """Wait for every write; the staged files, their row counts and their staged roll-up
        files (``rollup.stage``; None without ``rollups``)."""
        self._stop()
        if self._error is not None:
            raise self._error
        return [(p, n, r) for p, n, r in self._staged]

    def discard(self) -> None:
        """Remove whatever was staged and not committed (a no-op after a commit)."""
        if any(t.is_alive() for t in self._threads):
            self._stop()
        for tmp, _, rollups in self._staged:
            tmp.unlink(missing_ok=True)
            if rollups:
                rollup.discard(rollups)


def _commit_staged(
    led: Ledger,
    staged: list[tuple[Path, int, list[tuple[str, Path]] | None]],
    snapshot: set[str],
    result: IngestResult,
) -> None:
    if not staged:
        return
    from tailguard.ledger.clickhouse import ClickHouseLedger

    if isinstance(led, ClickHouseLedger):  # the staged batches go to ClickHouse, not segments/
        with led.lock():
            res = led.commit_files([p for p, _, _ in staged])
        result.accepted += res.accepted
        result.duplicates += res.duplicates
        return
    # the roll-ups of the staged files were computed and written under tmp/ by the stager; a
    # file that loses rows to a late duplicate gets its roll-up recomputed below
    with led.lock():
        others = [p for p in led.segment_files() if p.name not in snapshot]
        late_ids: set[str] = set()
        for p in others:  # committed by another writer while we were staging
            late_ids.update(pq.read_table(p, columns=["event_id"]).column("event_id").to_pylist())
        for i, (tmp, n, rollups) in enumerate(staged):
            fsync_file(tmp)
            name = f"{os.path.basename(tmp).split('.')[0]}-{i:05d}.parquet"
            dest = led.segments_dir / name
            if late_ids:
                table = pq.read_table(tmp)
                keep = pc.invert(
                    pc.is_in(table.column("event_id"), value_set=pa.array(list(late_ids)))
                )
                table = table.filter(keep)
                result.duplicates += n - table.num_rows
                n = table.num_rows
                if rollups:
                    rollup.discard(rollups)
                if n == 0:
                    continue
                rollup.write_for(led, name, table)  # before the segment: see rollup.py
                atomic_write_parquet(table, dest, led.tmp_dir)
            else:
                if rollups is None:  # not computed by the stager
                    rollup.write(rollup.of_files([tmp]), led, name)
                else:
                    rollup.install(rollups, led, name)  # before the segment: see rollup.py
                os.replace(tmp, dest)
            result.accepted += n
            result.segments.append(dest)
        fsync_dir(led.segments_dir)


def _write_rejects(path: Path, rejects: list[Reject]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in rejects:
            fh.write(
                json.dumps(
                    {
                        "file": r.file,
                        "line": r.line,
                        "field": r.field,
                        "reason": r.reason,
                        "raw": r.raw,
                    }
                )
                + "\n"
            )
