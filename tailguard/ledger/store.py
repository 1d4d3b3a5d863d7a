"""The ledger: append-only, idempotent by ``event_id``, durable, readable while written.

Layout of a ledger directory: the segment directory (``tailguard.ledger.segments``: committed
segments, compaction manifests, ``tmp/``, the commit lock) plus::

    customers.parquet                   the customer dimension (replaced atomically)

Why this shape: a single DuckDB file admits one writer process and blocks readers, but the
gateway, several ``ingest`` runs and the reports must all work at once. Immutable Parquet
segments give that for free: a writer builds a segment under ``tmp/``, fsyncs it, and renames it
into ``segments/`` (atomic on POSIX), then fsyncs the directory. A reader globs ``segments/`` and
sees a segment whole or not at all; a SIGKILL leaves at most an orphan in ``tmp/``, which the next
writer removes. Nothing is reported accepted before its segment is renamed and synced.

Idempotency: commits are serialised by the lock (short: the dedupe and the rename). Under the
lock the writer drops every event whose ``event_id`` is already in a committed segment (or
earlier in the same batch), so replaying a file, or two processes ingesting the same file at
once, never double counts. The committed ids live in memory (``IdIndex``: sorted runs of their
64-bit hashes, every hit confirmed on the id strings): loaded once per writer, then extended only
with the segments other processes committed since, so a long-lived writer does not rescan the
ledger per batch.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from tailguard.errors import InputError
from tailguard.events.batch import (
    INPUT_SCHEMA,
    Reject,
    split_error,
    structs_to_table,
    ts_window,
)
from tailguard.events.schema import LEDGER_SCHEMA, Event
from tailguard.ledger import merged, rollup
from tailguard.ledger.compact import CompactResult, compact
from tailguard.ledger.idindex import IdIndex
from tailguard.ledger.segments import SegmentDir, atomic_write_parquet, manifests, write_segment

if TYPE_CHECKING:
    import duckdb

    from tailguard.pricing import PriceBook

CUSTOMERS = "customers.parquet"


@dataclass
class CommitResult:
    """What one commit did."""

    accepted: int
    duplicates: int
    segment: Path | None


class Ledger(SegmentDir):
    """A ledger directory. Cheap to construct; nothing is created until the first write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._index: IdIndex | None = None
        self._seen_segments: set[str] = set()

    # --- write path ------------------------------------------------------------------------

    def _refresh_index(self) -> IdIndex:
        """The id index, extended with segments committed since this writer last looked."""
        if self._index is None:
            self.clean_orphans()
            files = self.segment_files()
            self._index = IdIndex(files)
            self._seen_segments.update(p.name for p in files)
        else:
            new = [p for p in self.segment_files() if p.name not in self._seen_segments]
            # a compacted segment whose sources this writer had all seen holds only ids it
            # knows: not added again (a long-lived writer, the gateway, compacts periodically)
            merged = manifests(self.path) if new else {}
            seen = self._seen_segments
            self._index.add_segments(
                [p for p in new if not (p.name in merged and set(merged[p.name]) <= seen)]
            )
            self._seen_segments.update(p.name for p in new)
        return self._index

    def commit(self, table: pa.Table) -> CommitResult:
        """Append priced rows (LEDGER_SCHEMA) durably; drop ids already in the ledger.

        Returns only after the segment is on disk and visible: what it counts as accepted
        survives a crash.
        """
        if table.schema != LEDGER_SCHEMA:
            table = table.select(LEDGER_SCHEMA.names).cast(LEDGER_SCHEMA)
        with self.lock():
            kept = self._refresh_index().fresh(table)
            dup = table.num_rows - kept.num_rows
            if kept.num_rows == 0:
                return CommitResult(0, dup, None)
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
            dest = self.segments_dir / name
            rollup.write_for(self, name, kept)  # before the segment: see tailguard.ledger.rollup
            atomic_write_parquet(kept, dest, self.tmp_dir)
            self._seen_segments.add(name)
            return CommitResult(kept.num_rows, dup, dest)

    def compact(self, **kwargs: Any) -> CompactResult:
        """Merge small segments; see ``tailguard.ledger.compact.compact``."""
        return compact(self, **kwargs)

    def append(
        self,
        events: Iterable[Mapping[str, Any] | Any],
        *,
        prices: PriceBook | None = None,
    ) -> CommitResult:
        """Validate, price and commit events given as dicts (or event structs).

        For the SDK, the guard's sink and tests. Bad events (an event outside the time window
        included, as in ``ingest``) raise ``InputError`` and nothing of the call is written.
        """
        from tailguard.pricing import PriceBook, price_table

        decoder = msgspec.json.Decoder(Event)
        structs: list[Any] = []
        problems: list[str] = []
        for n, ev in enumerate(events, start=1):
            if isinstance(ev, Mapping):
                try:
                    structs.append(decoder.decode(msgspec.json.encode(ev)))
                except msgspec.ValidationError as exc:  # the readers' form: line, field, reason
                    field, reason = split_error(str(exc))
                    problems.append(f"<append>:{n}: {field}: {reason}")
            else:
                structs.append(ev)
        window = ts_window()  # the window ingest applies: one rule for every way in
        problems += [
            f"<append>:{n}: ts: {window.reason()}"
            for n, ev in enumerate(structs, start=1)
            if not window.start <= ev.ts < window.end
        ]
        if problems:
            raise InputError(f"{len(problems)} invalid event(s)", problems)
        if not structs:
            return CommitResult(0, 0, None)
        table = structs_to_table(structs)
        priced = price_table(prices or PriceBook.load(), table)
        return self.commit(priced)

    # --- customers ---------------------------------------------------------------------------

    def write_customers(self, table: pa.Table) -> None:
        self.ensure()
        with self.lock():
            atomic_write_parquet(table, self.path / CUSTOMERS, self.tmp_dir)

    def customers_table(self) -> pa.Table | None:
        p = self.path / CUSTOMERS
        return pq.read_table(p) if p.exists() else None

    # --- read path ---------------------------------------------------------------------------

    def connect(
        self, *, threads: int | None = None, repair: bool = True
    ) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``events``, ``rollup`` and ``customers`` over this
        ledger.

        The views list the segments at the moment they are made: one report sees one consistent
        set of segments even while writers add more, and ``rollup`` sums exactly the events of
        ``events``. A live segment without its roll-up (a crash, an older ledger) gets one
        written here (``repair``; else, or when the ledger is read-only, the view aggregates
        that segment inline). The session time zone is UTC.
        """
        import duckdb

        con = duckdb.connect()
        # every date bucket (days, weeks, months) is a UTC one, whatever the machine's zone
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # reports own the terminal
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        files = self.segment_files()
        if files:
            # by name: segments written before a column was added (``requests``) read it as NULL
            file_list = ", ".join(_sql_str(str(p)) for p in files)
            source = f"read_parquet([{file_list}], union_by_name = true)"
            con.execute(f"CREATE VIEW events AS SELECT * FROM {source}")
            # a column no segment has yet (every segment predates it) is added as NULL
            have = {r[0] for r in con.execute("DESCRIBE events").fetchall()}
            missing = [f for f in LEDGER_SCHEMA if f.name not in have]
            if missing:
                con.register("_ledger_types", LEDGER_SCHEMA.empty_table())
                types = dict(
                    con.execute(
                        "SELECT column_name, column_type FROM (DESCRIBE _ledger_types)"
                    ).fetchall()
                )
                con.unregister("_ledger_types")
                extra = ", ".join(f"CAST(NULL AS {types[f.name]}) AS {f.name}" for f in missing)
                con.execute(f"CREATE OR REPLACE VIEW events AS SELECT *, {extra} FROM {source}")
        else:
            con.register("_empty_events", LEDGER_SCHEMA.empty_table())
            con.execute("CREATE VIEW events AS SELECT * FROM _empty_events")
        # the roll-ups of the same segments (missing ones computed): see tailguard.ledger.rollup
        rollup.create_view(con, self, files, fix=repair)
        merged.create_view(con, self, files)  # the month level, only when it is of these files
        cust = self.path / CUSTOMERS
        if cust.exists():
            con.execute(
                f"CREATE VIEW customers AS SELECT * FROM read_parquet({_sql_str(str(cust))})"
            )
        else:
            from tailguard.customers import CUSTOMER_SCHEMA

            con.register("_empty_customers", CUSTOMER_SCHEMA.empty_table())
            con.execute("CREATE VIEW customers AS SELECT * FROM _empty_customers")
        # reconcile --allocate's rows, apart from measured cost: see tailguard.finops.allocation
        from tailguard.finops.allocation import create_view as allocations_view

        allocations_view(con, self.path)
        return con

    def count(self) -> int:
        con = self.connect()
        try:
            row = con.execute("SELECT count(*) FROM events").fetchone()
            return int(row[0]) if row else 0
        finally:
            con.close()


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


__all__ = [
    "INPUT_SCHEMA",
    "CommitResult",
    "Ledger",
    "Reject",
    "atomic_write_parquet",
    "write_segment",
]
