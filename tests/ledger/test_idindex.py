"""The id index behind dedupe: exact whatever the hashes do.

The reference is the rule stated in ``tailguard.ledger.ingest`` and ``Ledger.commit``, worked
out by a second method (a Python set): a row is kept when its ``event_id`` was in no earlier
batch and in no earlier row of its own batch. The index is run with its real hash and with a
4-bit hash (every id collides with ~1/16 of the others), so the confirmation on the id strings
is what decides, and any shortcut taken on a hash match would drop a distinct event.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.ledger.idindex import IdIndex


def _reference(batches: list[list[str | None]]) -> list[list[str | None]]:
    seen: set[str] = set()
    out = []
    for b in batches:
        kept = []
        for i in b:
            if i is None:  # a NULL id is never a duplicate (as a SQL join treats it)
                kept.append(i)
            elif i not in seen:
                seen.add(i)
                kept.append(i)
        out.append(kept)
    return out


class Weak(IdIndex):
    """A 4-bit hash (the string's length): collisions everywhere, in the batches and in the
    committed segments alike."""

    HASH_SQL = "CAST(length({}) % 16 AS UBIGINT)"


def _run(index: IdIndex, batches: list[list[str | None]]) -> list[list[str | None]]:
    out = []
    for b in batches:
        t = pa.table({"event_id": pa.array(b, pa.string()), "n": pa.array(range(len(b)))})
        kept = index.fresh(t)
        # rows come back whole and in their order
        ns = kept.column("n").to_pylist()
        assert ns == sorted(ns)
        assert [b[n] for n in ns] == kept.column("event_id").to_pylist()
        out.append(kept.column("event_id").to_pylist())
    return out


ids = st.one_of(st.none(), st.text(alphabet="abcxyz", min_size=1, max_size=4))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(ids, max_size=30), max_size=8), st.booleans())
def test_fresh_is_first_occurrence_exactly(batches: list[list[str | None]], weak: bool) -> None:
    index = Weak([]) if weak else IdIndex([])
    assert _run(index, batches) == _reference(batches)


def test_colliding_distinct_ids_are_all_kept() -> None:
    """Ten distinct ids of one length share one weak hash: none is a duplicate of another;
    their replays all are."""
    distinct = [f"{c}{c}{c}" for c in "abcdefghij"]
    index = Weak([])
    assert _run(index, [distinct[:5], distinct[5:] + distinct[:5], distinct]) == [
        distinct[:5],
        distinct[5:],
        [],
    ]


def test_many_runs_and_a_growing_filter() -> None:
    """Enough batches for the runs to merge several times (8 runs of 5,000 ids become one,
    five times) and the slot filter to grow past its first size (2**20 slots, 16 per id: it
    grows at 65,537 ids): every id kept once, each replayed one found, whichever run holds
    it."""
    index = IdIndex([])
    batches = [[f"e{b}-{i}" for i in range(5_000)] for b in range(40)]  # 200,000 ids
    kept = _run(index, batches)
    assert kept == batches
    assert len(index) == 200_000
    replay = [[*batches[0][:10], "new-1", *batches[39][-10:], *batches[17][100:110]]]
    assert _run(index, replay) == [["new-1"]]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(ids, max_size=20), max_size=4),
    st.lists(st.lists(ids, max_size=20), max_size=5),
    st.booleans(),
)
def test_committed_segments_and_staged_batches(
    tmp_path_factory: pytest.TempPathFactory,
    committed: list[list[str | None]],
    batches: list[list[str | None]],
    weak: bool,
) -> None:
    """Segments committed before the writer started (their hashes loaded, their strings read
    only when a batch repeats one), a second listing added later (``add_segments``, as
    ``Ledger.commit`` does), then batches: kept as the reference keeps them."""
    d = tmp_path_factory.mktemp("segs")
    files = []
    for k, seg in enumerate(committed):
        files.append(d / f"s{k}.parquet")
        pq.write_table(pa.table({"event_id": pa.array(seg, pa.string())}), files[-1])
    cls = Weak if weak else IdIndex
    half = len(files) // 2
    index = cls(files[:half])
    out = _run(index, batches[:1])
    index.add_segments(files[half:])
    out += _run(index, batches[1:])
    first, later = committed[:half], committed[half:]
    ref = _reference(first + batches[:1] + later + batches[1:])
    assert out == ref[half : half + len(batches[:1])] + ref[len(committed) + len(batches[:1]) :]


def test_committed_segments_are_known(tmp_path: Path) -> None:
    seg = tmp_path / "s.parquet"
    pq.write_table(pa.table({"event_id": ["a", "b", None, "c"]}), seg)
    index = IdIndex([seg])
    assert _run(index, [["c", "d", "a", "d", None]]) == [["d", None]]
    # a segment committed by another writer after the strings were read (on the hit above)
    seg2 = tmp_path / "s2.parquet"
    pq.write_table(pa.table({"event_id": ["e"]}), seg2)
    index.add_segments([seg2])
    assert _run(index, [["e", "f", "b"]]) == [["f"]]


@pytest.mark.parametrize("weak", [False, True])
def test_a_batch_of_one_id_repeated(weak: bool) -> None:
    index = Weak([]) if weak else IdIndex([])
    assert _run(index, [["x"] * 1000, ["x", "y"]]) == [["x"], ["y"]]
