"""The event ids a writer knows: the dedupe behind "every event is counted once".

Why hashes, not a table join: a writer checks each batch against every id committed before it
(millions) and every id it staged itself. A hash join of the batch against an id table scans
that whole table per batch, so an ingest of N events costs O(N^2 / batch): 21.6 of the 45 CPU
seconds of a 10M-event ingest (3.3 here, ``bench/bench_dedupe.py``). Two parts:

- the committed segments' ids, as their 64-bit hashes only, sorted by one ``np.sort`` when
  the writer starts (8 bytes an id: 0.9 GB and ~8 CPU s at 110M ids, where the strings
  would take 5 GB): a batch's ids, sorted, are binary-searched in them (the needles ascending,
  so the searches walk forwards);
- the ids this writer staged, with their strings (Arrow), as hashes in sorted runs (an LSM:
  a batch is a run of its own, eight runs of one size class are merged into one, so a few
  dozen runs exist at most and each id is re-merged ~log8(N / batch) times), behind a bit
  filter (16 to 32 bits per id, the hash's top bits): only a batch's ids whose bit is set
  (1 in 16 to 32 new ones) are searched for in the runs.

Exactness: a hash says only "maybe seen". Every hit (a duplicate, or an accidental
collision: the chance of any among 10M ids is ~N^2/2^65, 3 in a million) is confirmed on the
id strings: the staged ids with the same hash are taken and compared
(``pyarrow.compute.is_in``); a committed one is looked up in the segments' ids, which the
engine reads into a table the first time a batch needs them (a replayed file: then each
batch costs a scan of that table, as every batch did before). The ids within a batch that
share a hash are compared too. So no event is ever dropped for a hash collision, and a true
duplicate always is. The common case (no hit) never touches the strings.

A null ``event_id`` (which validation refuses before it gets here) is never a duplicate: kept,
not remembered, as a SQL join treats NULL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tailguard.events.batch import sql_literal

_FANOUT = 8
_FANOUT_BITS = 3  # log2(_FANOUT)
_SLOTS_PER_ID = 16
_ONE, _SIX, _SIXTY_THREE = np.uint64(1), np.uint64(6), np.uint64(63)
_MIN_SLOT_BITS = 20


def _tier(n: int) -> int:
    return (n.bit_length() - 1) // _FANOUT_BITS  # floor(log_FANOUT(n))


def _merge_tail(
    runs: list[Any], size: Callable[[Any], int], merge: Callable[[list[Any]], Any]
) -> None:
    """Tiered merges of the last ``runs``, size classes powers of _FANOUT: a run follows only
    runs of its class or larger (a smaller one before it is absorbed), and _FANOUT runs of one
    class become one; so at most _FANOUT - 1 runs per class exist (a few dozen in all), and
    each id is re-merged ~log_FANOUT(ids / batch) times."""
    while True:
        last = _tier(size(runs[-1])) if runs else 0
        if len(runs) >= 2 and _tier(size(runs[-2])) < last:
            k = 2
        elif len(runs) >= _FANOUT and _tier(size(runs[-_FANOUT])) == last:
            k = _FANOUT
        else:
            return
        runs[-k:] = [merge(runs[-k:])]


def _merge_runs(runs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (hashes, positions) runs as one; concatenated sorted runs are merged in linear
    time by the stable sort (timsort finds the runs)."""
    h = np.concatenate([r[0] for r in runs])
    o = np.argsort(h, kind="stable")
    return h[o], np.concatenate([r[1] for r in runs])[o]


def _merge_hashes(runs: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(runs), kind="stable")


class IdIndex:
    """The event ids a writer knows are committed (or staged by itself)."""

    #: the id's hash, in the engine's SQL (``{}``: the column); any function of the id will
    #: do, since every match is confirmed on the strings (the tests weaken it to 4 bits)
    HASH_SQL = "hash({})"

    def __init__(self, files: list[Path]) -> None:
        import duckdb

        # the engine computes the 64-bit hash of each id (``hash``: one C loop per batch)
        self._con: Any = duckdb.connect()
        # the ids this writer staged: sorted runs of (hashes ascending, global positions of
        # those ids in ``_ids``), and the ids themselves, chunk by chunk
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self._ids: list[pa.Array] = []
        # the committed segments' ids: their hashes alone, sorted (one array per listing
        # read); the strings are read into ``_known`` only when a hash matches one of them
        self._committed: list[np.ndarray] = []
        self._files: list[Path] = []
        self._known = False  # whether the engine's table ``known`` holds the files' ids
        self._staged = 0  # ids in ``_ids``
        # a filter in front of the runs: one bit per slot, slot = the hash's top bits, 16 to
        # 32 slots per id (2 to 4 bytes), so ~1 in 16 to 32 new ids finds its slot taken and
        # is searched for in the runs
        self._slots = np.zeros(1 << (_MIN_SLOT_BITS - 6), dtype=np.uint64)
        self._shift = np.uint64(64 - _MIN_SLOT_BITS)
        self.add_segments(files)
        # a batch's hashes are one short scan: a second engine thread only adds hand-offs
        self._con.execute("SET threads = 1")

    def __len__(self) -> int:
        return self._staged + sum(len(h) for h in self._committed)

    def close(self) -> None:
        self._con.close()

    # --- building ----------------------------------------------------------------------------

    def _hash(self, ids: pa.Array) -> np.ndarray:
        self._con.register("_tg_ids", pa.table({"i": ids}))
        try:
            # a projection keeps the input's order (DuckDB's preserve_insertion_order)
            h = self._con.sql(f"SELECT {self.HASH_SQL.format('i')} AS h FROM _tg_ids")
            h = h.fetchnumpy()["h"]
        finally:
            self._con.unregister("_tg_ids")
        return np.asarray(h, dtype=np.uint64)

    def _remember(self, ids: pa.Array, hashes: np.ndarray, order: np.ndarray | None = None) -> None:
        """Add ``ids`` with their ``hashes`` (``order``: their ascending order, if known) as
        a new run."""
        if len(ids) == 0:
            return
        if order is None:
            order = np.argsort(hashes)
        # positions as int32 while they fit: half the bytes moved by every merge
        start = self._staged
        kind = np.int32 if start + len(ids) < 2**31 else np.int64
        pos = np.arange(start, start + len(ids), dtype=kind)[order]
        self._ids.append(ids)
        self._staged += len(ids)
        sh = hashes[order]
        self._runs.append((sh, pos))
        _merge_tail(self._runs, lambda r: len(r[0]), _merge_runs)
        if self._staged * _SLOTS_PER_ID > 64 * len(self._slots):  # 32 slots per id again
            bits = max(_MIN_SLOT_BITS, (self._staged * _SLOTS_PER_ID * 2 - 1).bit_length())
            self._slots = np.zeros(1 << (bits - 6), dtype=np.uint64)
            self._shift = np.uint64(64 - bits)
            for run, _ in self._runs:
                self._mark(run)
        else:
            self._mark(sh)

    def _mark(self, sorted_hashes: np.ndarray) -> None:
        """Set the filter's bits of ``sorted_hashes`` (ascending: the words come in order, so
        the bits of one word are OR-ed together first, then written once)."""
        slot = sorted_hashes >> self._shift
        word = (slot >> _SIX).astype(np.int64)
        bit = _ONE << (slot & _SIXTY_THREE)
        starts = np.flatnonzero(np.diff(word, prepend=-1))
        self._slots[word[starts]] |= np.bitwise_or.reduceat(bit, starts)

    def _maybe(self, hashes: np.ndarray) -> np.ndarray:
        """Mask of ``hashes`` whose filter bit is set (a known id may have that hash)."""
        slot = hashes >> self._shift
        word = self._slots[(slot >> _SIX).astype(np.int64)]
        return ((word >> (slot & _SIXTY_THREE)) & _ONE).astype(bool)

    def add_segments(self, files: list[Path]) -> None:
        """Remember the ids of committed segment ``files``: their hashes, sorted by the engine
        (8 bytes an id: 0.9 GB at 110M ids; their strings, 5 GB in Arrow, are read only if a
        batch repeats one of them, ``_in_committed``)."""
        if not files:
            return
        lst = ", ".join(sql_literal(str(p)) for p in files)
        h = self._con.sql(
            f"SELECT {self.HASH_SQL.format('event_id')} AS h FROM read_parquet([{lst}]) "
            "WHERE event_id IS NOT NULL"
        ).fetchnumpy()["h"]
        h = np.sort(np.asarray(h, dtype=np.uint64))
        self._files.extend(files)
        if self._known:  # the strings are loaded already: keep them whole
            self._con.execute(f"INSERT INTO known SELECT event_id FROM read_parquet([{lst}])")
        if len(h) == 0:
            return
        # searched directly (one binary search per batch id, the needles ascending), not
        # through the filter: marking 110M hashes would cost more than the searches it saves
        self._committed.append(h)
        # (a long-lived writer, the gateway, adds a listing per commit: kept to a few dozen)
        _merge_tail(self._committed, len, _merge_hashes)

    # --- lookup ------------------------------------------------------------------------------

    @staticmethod
    def _in_runs(runs: list[np.ndarray], needles: np.ndarray) -> np.ndarray:
        """Mask of ``needles`` (ascending) found in any of the sorted ``runs``. Ascending
        needles make the binary searches walk each run forwards: 6x less CPU than in batch
        order."""
        found = np.zeros(len(needles), dtype=bool)
        for run in runs:
            i = np.searchsorted(run, needles)
            i[i == len(run)] = 0
            found |= run[i] == needles
        return found

    def _in_committed(self, cand: pa.Array) -> np.ndarray:
        """Mask of the ids ``cand`` that a committed segment holds, read from the segments'
        strings (loaded once, on the first batch that needs them: a replayed file)."""
        if not self._known:
            lst = ", ".join(sql_literal(str(p)) for p in self._files)
            self._con.execute(
                f"CREATE TABLE known AS SELECT event_id FROM read_parquet([{lst}]) "
                "WHERE event_id IS NOT NULL"
            )
            self._known = True
        self._con.register("_tg_cand", pa.table({"i": cand, "p": np.arange(len(cand))}))
        try:
            # an inner join, built on the candidates (the smaller side), probed by a scan
            pos = self._con.sql(
                "SELECT DISTINCT c.p FROM _tg_cand c JOIN known k ON c.i = k.event_id"
            ).fetchnumpy()["p"]
        finally:
            self._con.unregister("_tg_cand")
        seen = np.zeros(len(cand), dtype=bool)
        seen[np.asarray(pos, dtype=np.int64)] = True
        return seen

    def _known_ids(self, hashes: np.ndarray) -> pa.Array:
        """Every known id whose hash is one of ``hashes``."""
        positions = []
        for run, pos in self._runs:
            lo = np.searchsorted(run, hashes, side="left")
            n = np.searchsorted(run, hashes, side="right") - lo
            lo, n = lo[n > 0], n[n > 0]
            if len(n):  # the ranges [lo, lo + n) of every hash, concatenated
                starts = np.repeat(lo - (np.cumsum(n) - n), n)
                positions.append(pos[starts + np.arange(n.sum())])
        if not positions:
            return pa.array([], pa.string())
        chunked = pa.chunked_array(self._ids, pa.string())
        return chunked.take(pa.array(np.concatenate(positions))).combine_chunks()

    def _new(self, ids: pa.Array, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask of the rows of ``ids`` to keep: not known, and the first of their id in
        ``ids``; exact (every hash match confirmed on the strings). And the rows' ascending
        hash order."""
        n = len(ids)
        keep = np.ones(n, dtype=bool)
        # within the batch: rows sharing a hash
        order = np.argsort(hashes)
        sh = hashes[order]
        same = np.flatnonzero(sh[1:] == sh[:-1])
        if len(same):
            shared = np.unique(np.concatenate([order[same], order[same + 1]]))  # ascending
            t = pa.table({"i": ids.take(pa.array(shared)), "p": pa.array(shared)})
            first = t.group_by("i", use_threads=False).aggregate([("p", "min")])
            keep[shared] = False
            keep[np.asarray(first.column("p_min").to_numpy(), dtype=np.int64)] = True
        # against what this writer staged: the rows whose filter bit is set, searched for in
        # the runs; against the committed segments: every row searched for; every hash found
        # confirmed on the strings
        maybe = np.flatnonzero(self._maybe(sh))
        if len(maybe):
            staged = order[maybe[self._in_runs([r for r, _ in self._runs], sh[maybe])]]
            if len(staged):
                staged.sort()
                cand = ids.take(pa.array(staged))
                known = self._known_ids(np.unique(hashes[staged]))
                seen = np.asarray(pc.is_in(cand, value_set=known).to_numpy(zero_copy_only=False))
                keep[staged[seen]] = False
        if self._committed:
            committed = order[self._in_runs(self._committed, sh)]
            if len(committed):
                committed.sort()
                seen = self._in_committed(ids.take(pa.array(committed)))
                keep[committed[seen]] = False
        return keep, order

    def fresh(self, table: pa.Table) -> pa.Table:
        """Rows of ``table`` whose ``event_id`` is not known and not seen earlier in
        ``table``, in their order; then remember them."""
        ids = table.column("event_id").combine_chunks()
        if ids.null_count:
            valid = np.asarray(ids.is_valid().to_numpy(zero_copy_only=False))
            keep = valid.copy()
            idx = np.flatnonzero(valid)
            sub = ids.take(pa.array(idx))
            h = self._hash(sub)
            k, _ = self._new(sub, h)
            keep[idx] = k
            self._remember(sub.filter(pa.array(k)), h[k])
            return table.filter(pa.array(~valid | keep))
        h = self._hash(ids)
        keep, order = self._new(ids, h)
        if keep.all():
            self._remember(ids, h, order)
            return table
        self._remember(ids.filter(pa.array(keep)), h[keep])
        return table.filter(pa.array(keep))


__all__ = ["IdIndex"]
