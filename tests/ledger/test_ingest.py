"""The ledger's promises: idempotent, all-or-nothing on bad input, durable under SIGKILL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.errors import InputError
from tailguard.ledger import Ledger, ingest
from tests.ledger.fixtures import write_fixture

GPT = {"provider": "openai", "model": "gpt-4o", "workload": "chat"}


def _totals(led: Ledger) -> tuple[int, Decimal]:
    con = led.connect()
    n, cost = con.execute("SELECT count(*), coalesce(sum(cost_usd), 0) FROM events").fetchone()
    return n, cost


def _write(p: Path, rows: list[dict]) -> Path:
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_reingest_same_file_changes_nothing(tmp_path: Path) -> None:
    ev, _, _ = write_fixture(tmp_path)
    led = Ledger(tmp_path / "L")
    first = ingest([ev], led)
    before = _totals(led)
    again = ingest([ev], Ledger(tmp_path / "L"))  # a new process would start like this
    assert (first.accepted, again.accepted, again.duplicates) == (14, 0, 14)
    assert _totals(led) == before


call_events = st.lists(
    st.tuples(st.integers(0, 30), st.integers(0, 5000), st.integers(0, 500)),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=call_events, splits=st.lists(st.integers(0, 40), max_size=4))
def test_replays_in_any_split_never_double_count(tmp_path_factory, rows, splits) -> None:
    """Property: ingesting overlapping slices of one log, in any order and any number of times,
    ends with exactly the distinct events and the same total as one clean ingest."""
    d = tmp_path_factory.mktemp("p")
    evs = [
        {
            "event_id": f"id{i}",
            "kind": "llm_call",
            "ts": "2025-06-01T00:00:00Z",
            "customer_id": "c",
            "input_tokens": inp,
            "output_tokens": out,
            "cost_usd": f"0.{i:03d}",
            **GPT,
        }
        for i, inp, out in rows
    ]
    distinct = {e["event_id"]: e for e in evs}
    want_cost = sum((Decimal(e["cost_usd"]) for e in distinct.values()), Decimal(0))
    led = Ledger(d / "L")
    cuts = sorted({min(s, len(evs)) for s in splits} | {0, len(evs)})
    slices = [evs[a:b] for a, b in itertools.pairwise(cuts)] + [evs, evs[::-1]]
    for k, sl in enumerate(slices):
        if sl:
            ingest([_write(d / f"s{k}.jsonl", sl)], led)
    assert _totals(led) == (len(distinct), want_cost)


def test_bad_row_refuses_whole_input_and_ledger_untouched(tmp_path: Path) -> None:
    ev, _, _ = write_fixture(tmp_path)
    led = Ledger(tmp_path / "L")
    ingest([ev], led)
    before = _totals(led)
    good = {
        "event_id": "new1",
        "kind": "task_outcome",
        "ts": "2025-06-02T00:00:00Z",
        "customer_id": "A",
        "outcome": "accepted",
    }
    bad = {**good, "event_id": "new2", "outcome": "won"}
    p = _write(tmp_path / "more.jsonl", [good, bad])
    with pytest.raises(InputError) as exc:
        ingest([p], led)
    assert exc.value.problems == [f"{p}:2: outcome: Invalid enum value 'won'"]
    assert _totals(led) == before
    assert not list((tmp_path / "L" / "tmp").iterdir())  # nothing staged left behind


def test_rejects_file_keeps_good_rows(tmp_path: Path) -> None:
    good = {
        "event_id": "g",
        "kind": "task_outcome",
        "ts": "2025-06-02T00:00:00Z",
        "customer_id": "A",
        "outcome": "accepted",
    }
    bad = {**good, "event_id": "b", "ts": "yesterday"}
    p = _write(tmp_path / "e.jsonl", [good, bad])
    led = Ledger(tmp_path / "L")
    res = ingest([p], led, rejects_path=tmp_path / "rejects.jsonl")
    assert (res.accepted, res.rejected) == (1, 1)
    rej = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in rej] == [(2, "ts")]
    assert _totals(led)[0] == 1


def test_unknown_model_kept_unpriced_with_null_cost(tmp_path: Path) -> None:
    ev, _, _ = write_fixture(tmp_path)
    led = Ledger(tmp_path / "L")
    res = ingest([ev], led)
    assert res.unpriced >= 1
    con = led.connect()
    row = con.execute(
        "SELECT cost_usd, unpriced, cost_source FROM events WHERE event_id = 'e10'"
    ).fetchone()
    assert row == (None, True, "unpriced")


def test_writers_in_parallel_processes_do_not_double_count(tmp_path: Path) -> None:
    """Two processes ingest overlapping files into one ledger at the same time."""
    evs = [
        {
            "event_id": f"x{i}",
            "kind": "llm_call",
            "ts": "2025-06-01T00:00:00Z",
            "customer_id": f"c{i % 7}",
            "input_tokens": 10,
            "output_tokens": 1,
            "cost_usd": "0.001",
            **GPT,
        }
        for i in range(4000)
    ]
    a = _write(tmp_path / "a.jsonl", evs[:3000])
    b = _write(tmp_path / "b.jsonl", evs[1000:])
    L = tmp_path / "L"
    code = (
        "import sys; from tailguard.ledger import ingest, Ledger;"
        "ingest([sys.argv[1]], Ledger(sys.argv[2]), batch_rows=250)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p), str(L)]) for p in (a, b)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert _totals(Ledger(L)) == (4000, Decimal("4.000"))


def test_sigkill_mid_ingest_loses_nothing_reported(tmp_path: Path) -> None:
    """Kill an ingest at a random moment; the ledger holds whole segments only, and a rerun
    completes it exactly."""
    n = 200_000
    evs = (
        json.dumps(
            {
                "event_id": f"k{i}",
                "kind": "llm_call",
                "ts": "2025-06-01T00:00:00Z",
                "customer_id": f"c{i % 50}",
                "input_tokens": 100,
                "output_tokens": 10,
                "cost_usd": "0.000001",
                **GPT,
            }
        )
        + "\n"
        for i in range(n)
    )
    src = tmp_path / "big.jsonl"
    src.write_text("".join(evs))
    L = tmp_path / "L"
    code = (
        "import sys; from tailguard.ledger import ingest, Ledger;"
        "ingest([sys.argv[1]], Ledger(sys.argv[2]), batch_rows=20000)"
    )
    for delay in (0.3, 1.0, 2.0):
        p = subprocess.Popen([sys.executable, "-c", code, str(src), str(L)])
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        seen, _ = _totals(Ledger(L))  # readable, whole segments only
        assert 0 <= seen <= n
    res = ingest([src], Ledger(L))
    assert _totals(Ledger(L)) == (n, Decimal("0.2"))
    assert res.accepted + res.duplicates == n
    assert not [p for p in (L / "tmp").iterdir() if p.suffix != ".lock"]


def _llm_rows(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "event_id": f"e{i}",
            "kind": "llm_call",
            "ts": "2025-06-01T00:00:00Z",
            "customer_id": f"c{i % 7}",
            "input_tokens": 1000,
            "output_tokens": 100,
            **GPT,
        }
        for i in range(start, start + n)
    ]


def test_segments_fill_to_batch_rows_and_keep_every_row(tmp_path: Path) -> None:
    """1,000 rows at batch_rows=300: segments of 300, 300, 300 and 100 rows (the stager fills
    a segment up to batch_rows, then starts the next), summing to every accepted row."""
    import pyarrow.parquet as pq

    p = _write(tmp_path / "e.jsonl", _llm_rows(1000))
    led = Ledger(tmp_path / "L")
    res = ingest([p], led, batch_rows=300)
    sizes = sorted((pq.read_metadata(s).num_rows for s in led.segment_files()), reverse=True)
    assert sizes == [300, 300, 300, 100]
    assert res.accepted == 1000 and _totals(led)[0] == 1000
    assert not list(led.tmp_dir.iterdir())


def test_parquet_rejects_found_in_every_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parquet is streamed in chunks; a bad row in any chunk is named by its row number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tailguard.events import readers
    from tailguard.events.readers import INPUT_SCHEMA

    monkeypatch.setattr(readers, "_PARQUET_CHUNK_ROWS", 7)
    rows = _llm_rows(50)
    for i in (3, 24, 49):  # rows 4, 25 and 50 (1-based) in chunks 1, 4 and 8
        rows[i]["output_tokens"] = -1
    table = pa.Table.from_pylist(
        [{**r, "ts": dt.datetime(2025, 6, 1, tzinfo=dt.UTC)} for r in rows],
        schema=pa.schema([f for f in INPUT_SCHEMA if f.name in rows[0]]),
    )
    p = tmp_path / "e.parquet"
    pq.write_table(table, p)
    led = Ledger(tmp_path / "L")
    with pytest.raises(InputError) as exc:
        ingest([p], led)
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in exc.value.problems] == [
        "4",
        "25",
        "50",
    ]
    assert not led.segment_files()
    res = ingest([p], led, rejects_path=tmp_path / "rej.jsonl")
    assert (res.read, res.accepted, res.rejected) == (50, 47, 3)


def test_a_failed_segment_write_refuses_the_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write error in the stager's thread (a full disk, say) reaches the caller; nothing is
    committed and no staged file is left behind."""
    ingest_mod = sys.modules["tailguard.ledger.ingest"]

    opened = []
    real = ingest_mod.open_segment_writer

    def failing(path: Path):  # the second segment cannot be written
        opened.append(path)
        if len(opened) == 2:
            raise OSError(28, "No space left on device")
        return real(path)

    monkeypatch.setattr(ingest_mod, "open_segment_writer", failing)
    p = _write(tmp_path / "e.jsonl", _llm_rows(1000))
    led = Ledger(tmp_path / "L")
    with pytest.raises(OSError, match="No space"):
        ingest([p], led, batch_rows=300)
    assert not led.segment_files()
    assert not list(led.tmp_dir.iterdir())


def _mixed_rows(n: int) -> list[dict]:
    """LLM calls, tools, retrievals, escalations and outcomes over 3 customers, 4 users, 3 UTC
    days, with latencies and minutes that are not integers (their sums depend on the order)."""
    kinds = ["llm_call", "llm_call", "tool_call", "retrieval", "escalation", "task_outcome"]
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        row: dict = {
            "event_id": f"m{i}",
            "kind": kind,
            "ts": dt.datetime(2025, 6, 1 + i % 3, (7 * i) % 24, tzinfo=dt.UTC),
            "customer_id": f"c{i % 3}",
            "user_id": f"u{i % 4}",
            "task_id": f"t{i % 5}",
            "workload": ["chat", "agent"][i % 2],
            "latency_ms": 100.1 * (i % 9) + 0.3,
        }
        if kind == "llm_call":
            row |= {"provider": "openai", "model": "gpt-4o", "input_tokens": 10 * i + 1}
            row |= {"output_tokens": i % 50, "status": ["ok", "error"][i % 5 == 0]}
        elif kind == "tool_call":
            row |= {"tool": "search", "tool_kind": ["read", "write"][i % 2]}
        elif kind == "retrieval":
            row |= {"queries": i % 4}
        elif kind == "escalation":
            row |= {"minutes": 0.1 * (i % 17) + 1.7}
        else:
            row |= {"outcome": ["accepted", "rejected"][i % 2]}
        rows.append(row)
    return rows


def _mixed_parquet(path: Path, n: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tailguard.events.readers import INPUT_SCHEMA

    rows = _mixed_rows(n)
    names = {k for r in rows for k in r}
    schema = pa.schema([f for f in INPUT_SCHEMA if f.name in names])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def test_stager_rollups_equal_the_committed_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stager computes each segment's roll-ups from the batches it holds, not from the
    file: every level of every committed segment equals, cell for cell (the float sums too),
    what ``rollup.of_files`` computes from the segment file on one thread. Chunks of 7 rows and
    segments of >= 20 rows: 120 rows make segments of three or more batches each."""
    import pyarrow.parquet as pq

    from tailguard.events import readers
    from tailguard.events.batch import engine
    from tailguard.ledger import rollup

    monkeypatch.setattr(readers, "_PARQUET_CHUNK_ROWS", 7)
    p = _mixed_parquet(tmp_path / "e.parquet", 120)
    led = Ledger(tmp_path / "L")
    res = ingest([p], led, batch_rows=20)
    segments = led.segment_files()
    assert res.accepted == 120 and len(segments) >= 4
    assert all(pq.read_metadata(s).num_row_groups >= 3 for s in segments)
    con = engine()
    con.execute("SET threads = 1")
    for seg in segments:
        want = rollup.of_files([seg], con)
        for level, table in (
            (rollup.VIEW, want.full),
            (rollup.DAILY_VIEW, want.daily),
            (rollup.TASK_VIEW, want.task),
            (rollup.CALLS_VIEW, want.calls),
        ):
            got = pq.read_table(rollup.path_for(led, seg, level))
            order = [(c, "ascending") for c in got.column_names]
            assert got.sort_by(order).equals(table.sort_by(order)), (seg.name, level)
    assert not list(led.tmp_dir.iterdir())


def test_a_failed_rollup_refuses_the_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A roll-up that fails in the stager's thread refuses the whole ingest like a failed
    segment write: nothing committed, no staged segment or roll-up file left in tmp/."""
    from tailguard.ledger import rollup

    calls = []
    real = rollup.of_table

    def failing(table, con=None):  # the second segment's roll-up fails
        calls.append(table.num_rows)
        if len(calls) == 2:
            raise MemoryError("out of memory")
        return real(table, con)

    monkeypatch.setattr(rollup, "of_table", failing)
    p = _write(tmp_path / "e.jsonl", _llm_rows(1000))
    led = Ledger(tmp_path / "L")
    with pytest.raises(MemoryError):
        ingest([p], led, batch_rows=300)
    assert len(calls) >= 2
    assert not led.segment_files()
    rolled = led.path / rollup.ROLLUPS
    assert not rolled.exists() or not list(rolled.iterdir())
    assert not list(led.tmp_dir.iterdir())
