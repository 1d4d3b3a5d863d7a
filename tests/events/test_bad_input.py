"""Bad input found by probing (issue 16): each is refused by name, nothing valid is lost.

Every case used to end in a traceback (CSV, customers), raw engine SQL at row 0 (Parquet), or
silent acceptance (a year-1 timestamp, a key given twice).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.cli.app import run
from tailguard.errors import ConfigError, InputError
from tailguard.events.batch import DEFAULT_TS_WINDOW, TsWindow, ts_window
from tailguard.events.readers import read_events
from tailguard.ledger import Ledger, read_customers_csv

HEADER = b"event_id,kind,ts,customer_id,model,input_tokens,output_tokens\n"


def _row(i: str, model: bytes = b"gpt-4o", ts: bytes = b"2025-06-01T00:00:00Z") -> bytes:
    return b"%s,llm_call,%s,c1,%s,10,2\n" % (i.encode(), ts, model)


# --- CSV -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "line", "field", "words"),
    [
        (_row("b", model=b"gpt-\xff4o"), 3, "model", "not UTF-8 text (0xff at byte 39)"),
        (_row("b").replace(b"\n", b",extra\n"), 3, "<row>", "8 fields where the header has 7"),
        (b"b,llm_call\n", 3, "<row>", "2 fields where the header has 7"),
        (b'b,llm_call,2025-06-01T00:00:00Z,c1,"gpt-4o,10,2\n', 3, "<row>", "quote is not closed"),
        (b'b,llm_call,2025-06-01T00:00:00Z,c1,"gpt"4o,10,2\n', 3, "<row>", "closing quote"),
    ],
    ids=["non-utf8", "ragged-long", "ragged-short", "unclosed-quote", "text-after-quote"],
)
def test_csv_bad_row_named_and_the_others_kept(
    tmp_path: Path, bad: bytes, line: int, field: str, words: str
) -> None:
    """Row a (line 2) and row c (line 4) are valid and survive the bad row between them,
    even an unclosed quote (reading resumes on the next physical line)."""
    p = tmp_path / "e.csv"
    p.write_bytes(HEADER + _row("a") + bad + _row("c"))
    b = read_events(p)
    assert [(r.line, r.field) for r in b.rejects] == [(line, field)]
    assert words in b.rejects[0].reason
    assert sorted(b.table.column("event_id").to_pylist()) == ["a", "c"]


def test_csv_quoted_field_over_two_lines_is_still_a_row(tmp_path: Path) -> None:
    """CSV allows a newline inside quotes: the row starting on line 3 holds it and is kept."""
    p = tmp_path / "e.csv"
    p.write_bytes(HEADER + _row("a") + _row("b", model=b'"gpt\n4o"') + _row("c"))
    b = read_events(p)
    assert b.rejects == []
    assert sorted(b.table.column("model").to_pylist()) == ["gpt\n4o", "gpt-4o", "gpt-4o"]


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_csv_float_must_be_finite_and_non_negative(tmp_path: Path, value: str) -> None:
    """JSON cannot carry inf or NaN and Parquet refuses them; CSV text "inf" was accepted."""
    p = tmp_path / "e.csv"
    p.write_text(
        "event_id,kind,ts,customer_id,model,input_tokens,output_tokens,latency_ms\n"
        "a,llm_call,2025-06-01T00:00:00Z,c1,gpt-4o,10,2,1.5\n"
        f"b,llm_call,2025-06-01T00:00:00Z,c1,gpt-4o,10,2,{value}\n"
    )
    b = read_events(p)
    assert [(r.line, r.field) for r in b.rejects] == [(3, "latency_ms")]
    assert b.table.column("latency_ms").to_pylist() == [1.5]


def test_csv_header_problems(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_bytes(b"event_id,kind,k\xe9nd\n")
    with pytest.raises(InputError) as exc:
        read_events(p)
    assert exc.value.problems == [f"{p}:1: <header>: not UTF-8 text (0xe9 at byte 15)"]
    p.write_bytes(b"event_id,kind,ts,kind\n")
    with pytest.raises(InputError) as exc:
        read_events(p)
    assert exc.value.problems == [f"{p}:1: kind: column named twice in the header"]


def test_csv_bom_header_read(tmp_path: Path) -> None:
    p = tmp_path / "e.csv"
    p.write_bytes(b"\xef\xbb\xbf" + HEADER + _row("a"))
    assert read_events(p).table.column("event_id").to_pylist() == ["a"]


def test_ingest_cli_bad_csv_one_line_per_row_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "e.csv"
    p.write_bytes(HEADER + _row("a") + _row("b", model=b"\xff") + b"c,llm_call\n")
    led = tmp_path / "led"
    assert run(["ingest", str(p), "--ledger", str(led)]) == 1
    err = capsys.readouterr().err
    assert f"{p}:3: model: not UTF-8 text" in err
    assert f"{p}:4: <row>: 2 fields where the header has 7" in err
    assert "Traceback" not in err
    assert Ledger(led).count() == 0  # without --rejects nothing is half-ingested
    rejects = tmp_path / "rejects.jsonl"
    assert run(["ingest", str(p), "--ledger", str(led), "--rejects", str(rejects)]) == 0
    assert Ledger(led).count() == 1
    assert [json.loads(x)["line"] for x in rejects.read_text().splitlines()] == [3, 4]


# --- Parquet -------------------------------------------------------------------------------


def _parquet(path: Path, **cols: pa.Array) -> Path:
    n = len(next(iter(cols.values())))
    base = {
        "event_id": pa.array([f"e{i}" for i in range(1, n + 1)]),
        "kind": pa.array(["llm_call"] * n),
        "ts": pa.array([dt.datetime(2025, 6, 1, tzinfo=dt.UTC)] * n, pa.timestamp("us", "UTC")),
        "customer_id": pa.array(["c1"] * n),
        "model": pa.array(["gpt-4o"] * n),
        "input_tokens": pa.array([10] * n),
        "output_tokens": pa.array([1] * n),
    }
    pq.write_table(pa.table(base | cols), path)
    return path


@pytest.mark.parametrize(
    ("cols", "rejects"),
    [
        (
            {"cost_usd": pa.array([0.5, float("nan"), float("inf"), 1e12])},
            [
                (2, "cost_usd", "nan is not a finite number"),
                (3, "cost_usd", "inf is not a finite number"),
                (4, "cost_usd", "1000000000000.0 out of range: must be < 1e9 (DECIMAL(18, 9))"),
            ],
        ),
        (
            {"input_tokens": pa.array([10, 2**64 - 1, 2**63], pa.uint64())},
            [
                (2, "input_tokens", "18446744073709551615 out of range: must be <= 2^63 - 1"),
                (3, "input_tokens", "9223372036854775808 out of range: must be <= 2^63 - 1"),
            ],
        ),
        (
            {"attempt": pa.array([1, 2**31], pa.int64())},
            [(2, "attempt", "2147483648 out of range: must be <= 2^31 - 1")],
        ),
        (
            {"latency_ms": pa.array([1.0, float("nan")])},
            [(2, "latency_ms", "nan is not a finite number")],
        ),
    ],
    ids=["cost", "uint64", "attempt", "latency"],
)
def test_parquet_numbers_out_of_range_are_named_rejects(
    tmp_path: Path, cols: dict, rejects: list
) -> None:
    """Row 1 is valid in every case and kept; each other row is refused with its row number
    and field, not with the engine's SQL text at row 0."""
    b = read_events(_parquet(tmp_path / "e.parquet", **cols))
    assert [(r.line, r.field, r.reason) for r in b.rejects] == rejects
    assert b.table.column("event_id").to_pylist() == ["e1"]


def test_parquet_dictionary_encoded_columns_read(tmp_path: Path) -> None:
    """pandas writes a categorical as a dictionary-encoded column: read by its values."""
    ts = pa.array([dt.datetime(2025, 6, 1, tzinfo=dt.UTC)] * 2, pa.timestamp("us", "UTC"))
    t = pa.table(
        {
            "event_id": ["a", "b"],
            "kind": pa.array(["task_outcome"] * 2).dictionary_encode(),
            "ts": ts,
            "customer_id": pa.array(["c1", "c2"]).dictionary_encode(),
            "outcome": pa.array(["accepted", "maybe"]).dictionary_encode(),
        }
    )
    p = tmp_path / "e.parquet"
    pq.write_table(t, p)
    b = read_events(p)
    assert b.table.column("customer_id").to_pylist() == ["c1"]
    assert [(r.line, r.field) for r in b.rejects] == [(2, "outcome")]


def test_parquet_column_named_twice_refused(tmp_path: Path) -> None:
    ts = pa.array([dt.datetime(2025, 6, 1, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))
    cols = [pa.array(["a"]), pa.array(["task_outcome"]), ts, pa.array(["c"])]
    cols += [pa.array(["accepted"]), pa.array(["rejected"])]
    names = ["event_id", "kind", "ts", "customer_id", "outcome", "outcome"]
    p = tmp_path / "e.parquet"
    pq.write_table(pa.Table.from_arrays(cols, names=names), p)
    with pytest.raises(InputError) as exc:
        read_events(p)
    assert exc.value.problems == [f"{p}:1: outcome: column named twice in the schema"]


# --- the time window -----------------------------------------------------------------------

EDGES = {
    "0001-01-01T00:00:00Z": False,
    "1970-01-01T00:00:00Z": False,
    "1999-12-31T23:59:59.999999Z": False,
    "2000-01-01T00:00:00Z": True,
    "2099-12-31T23:59:59.999999Z": True,
    "2100-01-01T00:00:00Z": False,
    "9999-12-31T23:59:59Z": False,
}


def _edge_files(tmp_path: Path) -> dict[str, Path]:
    rows = [
        {
            "event_id": f"e{i}",
            "kind": "task_outcome",
            "ts": t,
            "customer_id": "c",
            "outcome": "accepted",
        }
        for i, t in enumerate(EDGES)
    ]
    j = tmp_path / "e.jsonl"
    j.write_text("".join(json.dumps(r) + "\n" for r in rows))
    c = tmp_path / "e.csv"
    c.write_text(
        "event_id,kind,ts,customer_id,outcome\n"
        + "".join(f"{r['event_id']},task_outcome,{r['ts']},c,accepted\n" for r in rows)
    )
    stamps = [dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in EDGES]
    t = pa.table(
        {
            "event_id": [r["event_id"] for r in rows],
            "kind": ["task_outcome"] * len(rows),
            "ts": pa.array(stamps, pa.timestamp("us", "UTC")),
            "customer_id": ["c"] * len(rows),
            "outcome": ["accepted"] * len(rows),
        }
    )
    p = tmp_path / "e.parquet"
    pq.write_table(t, p)
    return {"jsonl": j, "csv": c, "parquet": p}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_timestamps_outside_the_window_are_refused(tmp_path: Path, fmt: str) -> None:
    """[2000-01-01, 2100-01-01): the first instant in, the last microsecond before the end
    in, one microsecond before the start and the end itself out; year 1 and 9999 out."""
    b = read_events(_edge_files(tmp_path)[fmt])
    kept = {f"e{i}" for i, ok in enumerate(EDGES.values()) if ok}
    assert set(b.table.column("event_id").to_pylist()) == kept
    assert [(r.line, r.field) for r in b.rejects] == [
        (i + 2 if fmt == "csv" else i + 1, "ts") for i, ok in enumerate(EDGES.values()) if not ok
    ]
    assert "outside the accepted time window [2000-01-01, 2100-01-01)" in b.rejects[0].reason


def test_ledger_append_applies_the_window(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "led")
    ok = {"event_id": "a", "kind": "task_outcome", "customer_id": "c", "outcome": "accepted"}
    with pytest.raises(InputError) as exc:
        led.append([ok | {"ts": "2025-06-01T00:00:00Z"}, ok | {"ts": "0001-01-01T00:00:00Z"}])
    assert exc.value.problems == [f"<append>:2: ts: {DEFAULT_TS_WINDOW.reason()}"]
    assert led.count() == 0  # nothing of the call is written
    assert led.append([ok | {"ts": "2025-06-01T00:00:00Z"}]).accepted == 1
    with pytest.raises(InputError) as exc:
        led.append([ok | {"ts": "2025-06-01T00:00:00Z", "outcome": "maybe"}])
    (problem,) = exc.value.problems
    assert problem.startswith("<append>:1: outcome: Invalid enum value 'maybe'")


def test_the_window_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _edge_files(tmp_path)
    monkeypatch.setenv("TAILGUARD_TS_WINDOW", "1970-01-01..2100-01-01T00:00:01")
    assert ts_window() == TsWindow(
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    )
    for path in files.values():
        b = read_events(path)
        assert [r.line - (path.suffix == ".csv") for r in b.rejects] == [1, 7]
    everything = TsWindow(
        dt.datetime(1, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    )
    assert len(read_events(files["jsonl"], window=everything).rejects) == 1  # 9999-12-31 23:59:59
    monkeypatch.setenv("TAILGUARD_TS_WINDOW", "2100..2000")
    with pytest.raises(ConfigError, match="TAILGUARD_TS_WINDOW"):
        ts_window()
    monkeypatch.setenv("TAILGUARD_TS_WINDOW", "2100-01-01..2000-01-01")
    with pytest.raises(ConfigError, match="START must come before END"):
        ts_window()
    monkeypatch.delenv("TAILGUARD_TS_WINDOW")
    assert ts_window() == DEFAULT_TS_WINDOW
    # the config file too (the test runs in its own directory: ./tailguard.toml is this one)
    Path("tailguard.toml").write_text('[tailguard]\nts_window = "1970-01-01..2100-01-02"\n')
    assert ts_window() == TsWindow(
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 2, tzinfo=dt.UTC)
    )
    monkeypatch.setenv("TAILGUARD_TS_WINDOW", "2001-01-01..2002-01-01")  # env over file
    assert ts_window().start.year == 2001


# --- customers import ----------------------------------------------------------------------


def test_customers_import_bad_bytes_and_numbers_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "customers.csv"
    p.write_bytes(
        b"customer_id,name,tier,segment,mrr_usd,seats\n"
        b"A,Acm\xe9,pro,smb,50,5\n"
        b"B,Bolt,free,smb,0,\xc2\xb2\n"  # a superscript two: isdigit() is true, int() fails
        b"C,Calm,free,smb,1e300,1\n"
        b"D,Dune,free,smb,1,1,x\n"
    )
    with pytest.raises(InputError) as exc:
        read_customers_csv(p)
    assert exc.value.problems == [
        f"{p}:2: name: not UTF-8 text (0xe9 at byte 5)",
        f"{p}:3: seats: '²' is not a whole number from 0 to 9223372036854775807",
        f"{p}:4: mrr_usd: '1e300' is not a number >= 0 and < 1e9",
        f"{p}:5: <row>: 7 fields where the header has 6",
    ]
    led = tmp_path / "led"
    assert run(["customers", "import", str(p), "--ledger", str(led)]) == 1
    err = capsys.readouterr().err
    assert f"{p}:2: name: not UTF-8 text" in err
    assert "Traceback" not in err
    assert Ledger(led).customers_table() is None  # nothing half-imported


def test_customers_import_money_kept_to_the_nano(tmp_path: Path) -> None:
    p = tmp_path / "customers.csv"
    p.write_text("customer_id,tier,segment,mrr_usd\nA,pro,smb,49.9999999995\n")
    # nano-dollars, half-even: 49.999999999|5 has an odd ninth digit, so it rounds up to 50
    assert read_customers_csv(p).column("mrr_usd")[0].as_py() == Decimal("50.000000000")


# --- any bytes: never a traceback ----------------------------------------------------------

_LINE = st.one_of(
    st.just(None),  # a valid row, numbered when the file is built
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\n"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINE, max_size=25), quote=st.booleans())
def test_any_csv_bytes_give_rows_or_named_rejects(lines: list[bytes | None], quote: bool) -> None:
    """Whatever bytes follow the header: no exception escapes, every reject names a line of
    the file, and no line is refused twice. Without a quote character in the junk, every
    valid row is kept (with one, a quote may legitimately join lines into one value)."""
    import tempfile

    body = [
        _row(f"good{i}") if ln is None else (ln if quote else ln.replace(b'"', b"'"))
        for i, ln in enumerate(lines)
    ]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "e.csv"
        p.write_bytes(HEADER + b"".join(body))
        b = read_events(p)
    lines_in_file = 1 + len(body)
    assert all(2 <= r.line <= lines_in_file for r in b.rejects)
    assert len({r.line for r in b.rejects}) == len(b.rejects)
    kept = b.table.column("event_id").to_pylist()
    assert len(kept) + len(b.rejects) <= len(body)
    if not quote:
        good = {f"good{i}" for i, ln in enumerate(lines) if ln is None}
        assert good <= set(kept)


def test_fit_checks_only_where_a_value_can_fail_to_fit() -> None:
    """The Parquet query checks a column only when its type can hold a value the ledger's
    cannot (every check costs the engine time on every row)."""
    from tailguard.events.batch import SQL_TYPES
    from tailguard.events.sql import _fit_checks

    def checked(**raw: pa.DataType) -> list[str]:
        """The fields the checks name (each reason's SQL text starts with 'field|')."""
        return sorted({text.split("|")[0].strip("'") for _, text in _fit_checks(SQL_TYPES, raw)})

    assert (
        checked(
            input_tokens=pa.int64(),
            attempt=pa.int16(),
            queries=pa.uint32(),
            cost_usd=pa.decimal128(18, 9),
            amount_usd=pa.decimal128(12, 6),
        )
        == []
    )
    assert checked(
        input_tokens=pa.uint64(),
        attempt=pa.int64(),
        latency_ms=pa.float64(),
        cost_usd=pa.float32(),
        amount_usd=pa.decimal128(38, 9),
    ) == ["amount_usd", "attempt", "cost_usd", "input_tokens", "latency_ms"]
