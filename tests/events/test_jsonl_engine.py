"""The JSONL engine path (DuckDB builds the columns) against the struct path (msgspec alone).

The struct path is the reference: msgspec's structs are the definition of an event. The
engine path must give the same table cell for cell, for every form of input msgspec accepts,
and fall back (never guess) where DuckDB reads something differently or refuses it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.events import jsonl
from tailguard.events.batch import TsWindow
from tailguard.events.jsonl import _line_blocks, read_jsonl
from tailguard.events.schema import AwareTs
from tests.events.helpers import event

ENVELOPE = '"event_id": "e{i}", "ts": "{ts}", "customer_id": "c"'


#: wider than any generated time, so the two paths are compared on every row
WIDE = TsWindow(dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2200, 1, 1, tzinfo=dt.UTC))


def _both(path: Path, batch_rows: int = 4) -> tuple[list[dict], list[dict]]:
    """Rows from each path (the struct path groups rows by kind: compare as multisets)."""
    fast = [b for b in read_jsonl(path, batch_rows, window=WIDE)]
    slow = [b for b in read_jsonl(path, batch_rows, engine=False, window=WIDE)]
    assert [str(r) for b in fast for r in b.rejects] == [str(r) for b in slow for r in b.rejects]
    assert [b.rows_read for b in fast] == [b.rows_read for b in slow]
    rows = [sorted((r for b in bs for r in b.table.to_pylist()), key=repr) for bs in (fast, slow)]
    return rows[0], rows[1]


# Every RFC 3339 shape msgspec accepts, including those DuckDB reads differently: more than
# six fractional digits (msgspec rounds, DuckDB truncates), lower-case t/z (DuckDB refuses),
# a space for T, offsets with and without a colon.
ts_text = st.builds(
    lambda d, sep, frac, zone: d.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + zone,
    st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from(["T", "t", " "]),
    st.one_of(
        st.just(""),
        st.integers(1, 9).flatmap(
            lambda n: st.text("0123456789", min_size=n, max_size=n).map(lambda s: "." + s)
        ),
    ),
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+05:30", "-0800", "+1400"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    evs=st.lists(event(), min_size=1, max_size=15),
    stamps=st.lists(ts_text, min_size=15, max_size=15),
    blank=st.sampled_from(["", "\n", "  \n", "\r\n"]),
    batch_rows=st.integers(1, 7),
)
def test_engine_path_equals_struct_path(
    tmp_path_factory: pytest.TempPathFactory,
    evs: list[dict],
    stamps: list[str],
    blank: str,
    batch_rows: int,
) -> None:
    d = tmp_path_factory.mktemp("j")
    p = d / "e.jsonl"
    lines = []
    for e, t in zip(evs, stamps, strict=False):
        lines.append(json.dumps(e | {"ts": t}) + "\n")
        lines.append(blank)
    p.write_text("".join(lines).rstrip("\n"))  # and a last line without a line end
    fast, slow = _both(p, batch_rows)
    assert fast == slow
    assert len(fast) == len(evs)


def test_timestamps_take_msgspec_reading(tmp_path: Path) -> None:
    """Worked by hand: msgspec rounds the 7th digit half up; DuckDB would truncate."""
    cases = {
        "2025-01-01T00:00:00.1234565Z": dt.datetime(2025, 1, 1, 0, 0, 0, 123457, dt.UTC),
        "2025-01-01T00:00:00.9999995Z": dt.datetime(2025, 1, 1, 0, 0, 1, 0, dt.UTC),
        "2025-01-01t05:30:00+05:30": dt.datetime(2025, 1, 1, 0, 0, 0, 0, dt.UTC),
        "2025-01-01 00:00:00.5-0100": dt.datetime(2025, 1, 1, 1, 0, 0, 500000, dt.UTC),
        "2025-01-01T00:00:00.000001z": dt.datetime(2025, 1, 1, 0, 0, 0, 1, dt.UTC),
    }
    p = tmp_path / "e.jsonl"
    p.write_text(
        "".join(
            "{" + ENVELOPE.format(i=i, ts=t) + ', "kind": "task_outcome", "outcome": "accepted"}\n'
            for i, t in enumerate(cases)
        )
    )
    got = [r["ts"] for b in read_jsonl(p, 100) for r in b.table.to_pylist()]
    assert got == list(cases.values())
    decode = msgspec.json.Decoder(AwareTs).decode  # and the second method agrees
    assert got == [decode(json.dumps(t).encode()) for t in cases]


def _with_odd_line(p: Path, odd: str) -> Path:
    good = '{"kind": "task_outcome", ENV, "outcome": "accepted"}'
    rows = [good] * 5 + [odd] + [good] * 5
    p.write_text(
        "".join(
            r.replace("ENV", ENVELOPE.format(i=i, ts="2025-01-01T00:00:00Z")) + "\n"
            for i, r in enumerate(rows)
        )
    )
    return p


def test_engine_refusal_falls_back_without_loss(tmp_path: Path) -> None:
    # msgspec ignores a field of another kind; DuckDB refuses its type
    odd = '{"kind": "tool_call", ENV, "tool": "t", "tool_kind": "read", "input_tokens": "abc"}'
    fast, slow = _both(_with_odd_line(tmp_path / "e.jsonl", odd), batch_rows=3)
    assert fast == slow
    assert len(fast) == 11


@pytest.mark.parametrize("engine", [True, False])
@pytest.mark.parametrize("batch_rows", [3, 100])
@pytest.mark.parametrize(
    ("odd", "key"),
    [
        ('{"kind": "retrieval", ENV, "queries": 5, "queries": 7}', "queries"),
        ('{"kind": "retrieval", ENV, "queries" : 5, "cost_usd": 1, "queries":5}', "queries"),
        ('{"kind": "retrieval", "kind": "retrieval", ENV}', "kind"),
    ],
)
def test_a_key_given_twice_is_refused(
    tmp_path: Path, odd: str, key: str, engine: bool, batch_rows: int
) -> None:
    """Line 6 gives a key twice (even with the same value): which one is meant is unknown,
    so the line is refused by name on both paths, and the ten other lines are kept."""
    p = _with_odd_line(tmp_path / "e.jsonl", odd)
    batches = list(read_jsonl(p, batch_rows, engine=engine))
    assert [(r.line, r.field) for b in batches for r in b.rejects] == [(6, key)]
    assert "twice" in batches[0 if batch_rows == 100 else 1].rejects[0].reason
    assert sum(b.table.num_rows for b in batches) == 10


@pytest.mark.parametrize(
    "odd",
    [
        # marks that look like keys: a nested object, an escaped quote before a colon
        '{"kind": "retrieval", ENV, "extra": {"a": 1, "b": "x\\":y"}, "queries": 2}',
        # an unknown key twice, and a key twice inside a nested value: ignored like the value
        '{"kind": "retrieval", ENV, "foo": 1, "foo": 2}',
        '{"kind": "retrieval", ENV, "extra": {"a": 1, "a": 2}}',
    ],
)
def test_repeated_key_check_counts_only_event_fields(tmp_path: Path, odd: str) -> None:
    """Both paths keep all 11 lines when no field of the event is given twice."""
    p = _with_odd_line(tmp_path / "e.jsonl", odd)
    for engine in (True, False):
        batches = list(read_jsonl(p, 100, engine=engine))
        assert [r for b in batches for r in b.rejects] == []
        assert sum(b.table.num_rows for b in batches) == 11


def test_engine_builds_the_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On clean input no batch is built from structs (the point of the engine path)."""

    def refuse(_events: list) -> None:
        raise AssertionError("struct path used")

    monkeypatch.setattr(jsonl, "structs_to_table", refuse)
    p = tmp_path / "e.jsonl"
    p.write_text(
        "".join(
            "{" + ENVELOPE.format(i=i, ts="2025-01-01T00:00:00Z") + ', "kind": "llm_call", '
            '"model": "m", "input_tokens": 10, "output_tokens": 2, "cost_usd": 0.1234567895}\n'
            for i in range(50)
        )
    )
    rows = [r for b in read_jsonl(p, 7) for r in b.table.to_pylist()]
    assert len(rows) == 50
    # money from the JSON text, half-even at the ninth decimal: ...789|5 -> ...790
    assert {r["cost_usd"] for r in rows} == {Decimal("0.123456790")}
    assert {r["attempt"] for r in rows} == {1}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ('"input_tokens": 10, "output_tokens": 2, "cache_read_tokens": 11', "cache_read_tokens"),
        ('"input_tokens": 10, "output_tokens": 2, "reasoning_tokens": 3', "reasoning_tokens"),
        ('"input_tokens": 10, "output_tokens": 2, "cost_usd": -0.5', "cost_usd"),
        ('"input_tokens": 10, "output_tokens": 2, "cost_usd": 1000000000', "cost_usd"),
        ('"input_tokens": 10, "output_tokens": 2, "cost_usd": "NaN"', "cost_usd"),
        ('"input_tokens": 10, "output_tokens": 2, "cost_usd": "Infinity"', "cost_usd"),
    ],
)
def test_rules_msgspec_cannot_state_are_checked_per_batch(
    tmp_path: Path, bad: str, field: str
) -> None:
    """The field structs skip __post_init__; the batch check must catch what it would."""
    p = tmp_path / "e.jsonl"
    good = '"input_tokens": 10, "output_tokens": 2'
    rows = [good] * 4 + [bad] + [good] * 4
    p.write_text(
        "".join(
            "{" + ENVELOPE.format(i=i, ts="2025-01-01T00:00:00Z") + ', "kind": "llm_call", '
            f'"model": "m", {r}}}\n'
            for i, r in enumerate(rows)
        )
    )
    batches = list(read_jsonl(p, 3))
    rejects = [r for b in batches for r in b.rejects]
    assert [(r.line, r.field) for r in rejects] == [(5, field)]
    assert sum(b.table.num_rows for b in batches) == 8


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b" ", b"xyz\n"]), max_size=60),
    max_lines=st.integers(1, 6),
    chunk=st.integers(1, 9),
)
def test_line_blocks_keep_every_byte_and_count_lines(
    data: list, max_lines: int, chunk: int
) -> None:
    raw = b"".join(data)
    old = jsonl._CHUNK_BYTES
    jsonl._CHUNK_BYTES = chunk
    try:
        blocks = list(_line_blocks(io.BytesIO(raw), max_lines))
    finally:
        jsonl._CHUNK_BYTES = old
    assert b"".join(c for chunks, _ in blocks for c in chunks) == raw
    # the physical lines of `for line in file`, counted independently
    assert sum(n for _, n in blocks) == len(io.BytesIO(raw).readlines())
    for chunks, n in blocks:
        assert n <= max_lines
        assert b"".join(chunks).count(b"\n") in (n, n - 1)


def test_the_roll_up_engine_is_utc_and_prints_no_progress_bar() -> None:
    """The engine connection computes roll-ups inside ``Ledger.connect`` while a report owns the
    terminal: DuckDB's progress bar (on by default) must be off there, and the day boundary UTC."""
    from tailguard.events.batch import engine

    con = engine()
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
