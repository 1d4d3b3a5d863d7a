"""The segment directory: where a ledger's rows live, and the rule for which of them count.

Layout::

    segments/<name>.parquet     committed, immutable, LEDGER_SCHEMA
    compacted/<merged>.json     a compaction manifest: the sources a merged segment replaces
    tmp/                        files being written (invisible to readers)
    .lock                       the commit lock (fcntl), held only while committing

Everything that decides what a reader sees is here, in one place: how a file becomes visible
(``atomic_write_parquet``: written under ``tmp/``, synced, renamed, directory synced), the lock
that serialises writers (``SegmentDir.lock``), the manifests compaction writes, and the live
listing (``SegmentDir.segment_files``), which drops every source a merged segment replaces.
That listing is the no-double-count guarantee: a row is in exactly one live segment at every
instant. ``tailguard.ledger.store`` (commits, reads) and ``tailguard.ledger.compact`` (merges)
both build on this module and not on each other.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tailguard.errors import LedgerError
from tailguard.events.schema import LEDGER_SCHEMA

SEGMENTS = "segments"
MANIFESTS = "compacted"
TMP = "tmp"

#: columns worth dictionary-encoding (few distinct values); unique ones (event_id, ts, ...) are
#: not: trying a dictionary on them costs write time for nothing
DICTIONARY_COLUMNS = [
    "kind",
    "customer_id",
    "feature",
    "workload",
    "provider",
    "model",
    "attempt",
    "status",
    "tool",
    "tool_kind",
    "queries",
    "reranks",
    "outcome",
    "action",
    "rule",
    "cost_source",
    "unpriced",
    "cache_write_tokens",
    "reasoning_tokens",
]

#: DuckDB's row group size: its Parquet scan runs one row group per thread
ROW_GROUP_ROWS = 122_880

#: columns whose min/max are written: the ones a reader's filter can prune row groups on.
#: ``ts`` (every report's window; a segment's rows come in time order); ``customer_id``
#: (a drill-down into one customer, when a segment holds few). The others' min/max would
#: never prune (every row group holds every kind, model, status) and cost 15% of the write
#: CPU (1M simulator events written as a segment: 8.6 vs 7.2 CPU s per 10M; BENCHMARKS.md).
STATISTICS_COLUMNS = ["ts", "customer_id"]

_SEGMENT_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": DICTIONARY_COLUMNS,
    "write_statistics": STATISTICS_COLUMNS,
}


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (a rename, a delete) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Make the contents of file ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_segment(table: pa.Table, where: Any) -> None:
    """Write one ledger segment (zstd; row groups of DuckDB's size for its parallel scan)."""
    pq.write_table(table, where, row_group_size=ROW_GROUP_ROWS, **_SEGMENT_OPTIONS)


def open_segment_writer(where: Any) -> pq.ParquetWriter:
    """A writer for a segment built batch by batch (each ``write_table`` is a row group)."""
    return pq.ParquetWriter(where, LEDGER_SCHEMA, **_SEGMENT_OPTIONS)


def atomic_write_parquet(table: pa.Table, dest: Path, tmp_dir: Path) -> None:
    """Write ``table`` to ``dest`` so that readers see all of it or nothing."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.parquet.tmp"
    try:
        with pa.OSFile(str(tmp), "wb") as sink:
            write_segment(table, sink)
        fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def write_synced(path: Path, data: bytes) -> None:
    """Write a small file (a manifest) whole or not at all, and sync it."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def manifests(ledger_path: Path) -> dict[str, list[str]]:
    """The compaction manifests: merged segment name -> the source names it replaces."""
    d = ledger_path / MANIFESTS
    if not d.is_dir():
        return {}
    out: dict[str, list[str]] = {}
    for m in d.glob("*.json"):
        try:
            out[m.name[: -len(".json")]] = json.loads(m.read_text())["sources"]
        except FileNotFoundError:  # removed meanwhile: its sources were removed before it
            continue
    return out


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a temp file's writer may still be writing it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SegmentDir:
    """A ledger directory's segments, lock and temp area. Nothing is created until needed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.segments_dir = self.path / SEGMENTS
        self.tmp_dir = self.path / TMP
        self.manifests_dir = self.path / MANIFESTS

    def ensure(self) -> None:
        """Create the directories a writer needs."""
        try:
            self.segments_dir.mkdir(parents=True, exist_ok=True)
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"{self.path}: cannot create the ledger directory: {exc}") from exc

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The commit lock: serialises writers only; readers never take it."""
        self.ensure()
        fh = (self.path / ".lock").open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    def segment_files(self) -> list[Path]:
        """The live segments: every Parquet file in ``segments/`` minus those a compacted
        segment in the same listing replaces (``tailguard.ledger.compact``).

        The manifests are read before and after listing: a manifest is written before its
        merged segment appears and deleted only after its sources, so one of the two reads
        finds it whenever the listing holds both the merged segment and a source.
        """
        if not self.segments_dir.exists():
            return []
        before = manifests(self.path)
        files = sorted(p for p in self.segments_dir.iterdir() if p.suffix == ".parquet")
        found = before | manifests(self.path)
        if not found:
            return files
        names = {p.name for p in files}
        gone = {s for merged, sources in found.items() if merged in names for s in sources}
        return [p for p in files if p.name not in gone]

    def clean_orphans(self) -> None:
        """Remove temp files left by writers that died (their pid is gone)."""
        for p in [*self.tmp_dir.glob("*.tmp"), *self.tmp_dir.glob("*.staged.parquet")]:
            pid = p.name.split("-", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                p.unlink(missing_ok=True)
