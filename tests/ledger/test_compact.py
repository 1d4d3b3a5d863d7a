"""Compaction: totals conserved, no reader ever double counts, a kill at any step is harmless."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.cli.app import run
from tailguard.ledger import Ledger, ingest
from tailguard.ledger.compact import MANIFESTS, compact

GPT = {"provider": "openai", "model": "gpt-4o", "workload": "chat"}


def _events(n: int, start: int = 0) -> list[dict]:
    """``n`` calls of exactly $0.000123 each (reported cost: no price lookup involved)."""
    return [
        {
            "event_id": f"e{i}",
            "kind": "llm_call",
            "ts": "2025-06-01T00:00:00Z",
            "customer_id": f"c{i % 3}",
            "input_tokens": 10,
            "output_tokens": 1,
            "cost_usd": "0.000123",
            **GPT,
        }
        for i in range(start, start + n)
    ]


def _totals(led: Ledger) -> tuple[int, int, Decimal]:
    con = led.connect()
    try:
        return con.execute(
            "SELECT count(*), count(DISTINCT event_id), coalesce(sum(cost_usd), 0) FROM events"
        ).fetchone()
    finally:
        con.close()


def _small_ledger(tmp_path: Path, sizes: list[int]) -> Ledger:
    led = Ledger(tmp_path / "L")
    start = 0
    for n in sizes:  # one append, one segment
        led.append(_events(n, start))
        start += n
    return led


def test_merge_then_delete_after_the_grace(tmp_path: Path) -> None:
    """5 segments of 10 rows: one merged segment of 50 rows; 50 x $0.000123 = $0.00615."""
    led = _small_ledger(tmp_path, [10] * 5)
    assert len(led.segment_files()) == 5
    before = _totals(led)
    assert before == (50, 50, Decimal("0.006150000"))
    res = compact(led, small_rows=100, now=1_000.0)
    assert (res.merged_segments, res.source_segments, res.rows) == (1, 5, 50)
    live = led.segment_files()
    assert [pq.read_metadata(p).num_rows for p in live] == [50]
    assert _totals(led) == before
    # the sources stay on disk for the grace period, unlisted
    assert len(list(led.segments_dir.glob("*.parquet"))) == 6
    again = compact(led, small_rows=100, now=1_000.0 + 3599)
    assert again.deleted_segments == 0 and again.merged_segments == 0
    done = compact(led, small_rows=100, now=1_000.0 + 3601)
    assert done.deleted_segments == 5
    assert len(list(led.segments_dir.glob("*.parquet"))) == 1
    assert not list((led.path / MANIFESTS).glob("*.json"))
    assert _totals(led) == before


def test_large_segments_are_left_alone_and_groups_respect_the_target(tmp_path: Path) -> None:
    led = _small_ledger(tmp_path, [30, 30, 30, 30, 200])
    res = compact(led, small_rows=100, target_rows=70)
    # 30+30 = 60 <= 70, 30+30 again: two groups of two; the 200-row segment is not small
    assert (res.merged_segments, res.source_segments) == (2, 4)
    assert sorted(pq.read_metadata(p).num_rows for p in led.segment_files()) == [60, 60, 200]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=12),
    small=st.integers(1, 60),
    target=st.integers(1, 120),
    rounds=st.integers(1, 3),
)
def test_totals_conserved_and_replays_still_deduped(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], small: int, target: int, rounds: int
) -> None:
    """Property: any compaction schedule keeps every row exactly once, and re-ingesting the
    original events afterwards accepts nothing (the merged segments carry the ids)."""
    d = tmp_path_factory.mktemp("c")
    led = _small_ledger(d, sizes)
    n = sum(sizes)
    expected = (n, n, Decimal("0.000123") * n)
    t = 0.0
    for _ in range(rounds):
        compact(led, small_rows=small, target_rows=target, grace_s=10, now=t)
        assert _totals(led) == expected
        t += 11  # the next round also deletes what the previous one replaced
    src = d / "all.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in _events(n)))
    res = ingest([src], Ledger(d / "L"))
    assert (res.accepted, res.duplicates) == (0, n)
    assert _totals(led) == expected


def test_a_reader_that_listed_before_the_switch_keeps_reading(tmp_path: Path) -> None:
    led = _small_ledger(tmp_path, [10] * 4)
    con = led.connect()  # lists the four sources
    compact(led, small_rows=100)
    assert con.execute("SELECT count(*) FROM events").fetchone() == (40,)
    con.close()
    assert _totals(led)[:2] == (40, 40)


def test_crash_between_manifest_and_switch_is_ignored_then_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = _small_ledger(tmp_path, [10] * 3)
    real = os.replace

    def die_on_switch(src: object, dst: object) -> None:
        if str(dst).startswith(str(led.segments_dir)):
            raise KeyboardInterrupt("killed before the switch")
        real(src, dst)

    monkeypatch.setattr(os, "replace", die_on_switch)
    with pytest.raises(KeyboardInterrupt):
        compact(led, small_rows=100)
    monkeypatch.setattr(os, "replace", real)
    assert len(list((led.path / MANIFESTS).glob("*.json"))) == 1  # a manifest, no merged file
    assert _totals(led)[:2] == (30, 30)
    res = compact(led, small_rows=100)
    assert res.merged_segments == 1
    assert len(list((led.path / MANIFESTS).glob("*.json"))) == 1  # the stale one is gone
    assert _totals(led)[:2] == (30, 30)


_KILL_AT = """
import os, pathlib, signal, sys
import tailguard.ledger.compact as c
from tailguard.ledger import Ledger

step = sys.argv[2]
def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)
if step == "written":  # the merged rows are in tmp/, no manifest yet
    real_write = c.atomic_write_parquet
    def write(*a):
        real_write(*a)
        die()
    c.atomic_write_parquet = write
elif step == "manifest":  # the manifest is synced, the merged segment not switched in
    real_manifest = c.write_synced
    def manifest(*a):
        real_manifest(*a)
        die()
    c.write_synced = manifest
elif step == "switch":  # the first merged segment is in segments/, the others not yet
    real_replace = os.replace
    def replace(a, b):
        real_replace(a, b)
        if os.sep + "segments" + os.sep in str(b):
            die()
    os.replace = replace
elif step == "delete":  # three of the replaced segments deleted, the rest and the manifest not
    real_unlink = pathlib.Path.unlink
    n = [0]
    def unlink(self, *a, **k):
        real_unlink(self, *a, **k)
        if self.parent.name == "segments":
            n[0] += 1
            if n[0] == 3:
                die()
    pathlib.Path.unlink = unlink
c.compact(Ledger(sys.argv[1]), small_rows=100, target_rows=200, grace_s=0)
"""


def test_sigkill_at_every_step_never_double_counts(tmp_path: Path) -> None:
    """A real SIGKILL at each step of a compaction (the merged rows written; the manifest
    written; the switch; midway through deleting replaced segments): after each, every row
    is there exactly once, and the next run finishes the job."""
    led = _small_ledger(tmp_path, [5] * 120)
    expected = _totals(led)
    for step in ("written", "manifest", "switch", "delete"):
        p = subprocess.run([sys.executable, "-c", _KILL_AT, str(led.path), step], check=False)
        assert p.returncode == -signal.SIGKILL, step
        assert _totals(Ledger(led.path)) == expected, step
    for _ in range(2):
        compact(Ledger(led.path), small_rows=100, target_rows=200, grace_s=0)
    live = Ledger(led.path).segment_files()
    assert sorted(pq.read_metadata(p).num_rows for p in live) == [200, 200, 200]
    assert _totals(Ledger(led.path)) == expected
    assert len(list(led.segments_dir.glob("*.parquet"))) == 3  # nothing left behind
    assert not list(led.tmp_dir.iterdir())
    assert not list((led.path / MANIFESTS).iterdir())


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    led = _small_ledger(tmp_path, [10] * 3)
    assert run(["compact", "--ledger", str(led.path), "--small-rows", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["merged_segments"], out["source_segments"], out["rows"]) == (1, 3, 30)
    assert run(["compact", "--ledger", str(led.path)]) == 0
    assert "merged 0 small segments" in capsys.readouterr().out


def test_a_backlog_is_worked_off_in_bounded_runs(tmp_path: Path) -> None:
    """max_segments=3 over 7 segments of 10 rows (oldest name first; a merged segment's name
    is newer than its sources): run 1 merges a,b,c -> M1 (30); run 2 merges d,e,f -> M2 (30);
    run 3 merges g, M1, M2 (all still under 100 rows) -> 70. Every row once throughout."""
    led = _small_ledger(tmp_path, [10] * 7)
    expected = _totals(led)
    sizes = []
    for _ in range(3):
        res = compact(led, small_rows=100, max_segments=3)
        sizes.append(res.source_segments)
        assert _totals(led) == expected
    assert sizes == [3, 3, 3]
    assert sorted(pq.read_metadata(p).num_rows for p in led.segment_files()) == [70]


def test_a_writer_does_not_relearn_the_ids_of_a_compaction(tmp_path: Path) -> None:
    """A long-lived writer (the gateway) compacts its own segments: the merged segment holds
    only ids it has seen (30 of them, appended in three segments), so its index stays at 30;
    a replay of any of them is still refused, and a segment another writer committed meanwhile
    (5 new ids) is learnt: 35."""
    led = _small_ledger(tmp_path, [10, 10, 10])
    assert len(led._refresh_index()) == 30
    compact(led, small_rows=100, now=1_000.0)
    other = Ledger(led.path)
    other.append(_events(5, start=100))
    assert led.append(_events(30)).accepted == 0  # every id known
    assert len(led._refresh_index()) == 35
    assert _totals(led)[:2] == (35, 35)
