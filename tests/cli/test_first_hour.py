"""A new user's first hour (issue 17): a wrong ledger path is an error, not an empty report; an
error is printed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailguard.cli import run

#: every command that reads the ledger and reports on it, with the arguments it needs
READ_COMMANDS = [
    ["report", "customers"],
    ["concentration"],
    ["kpis"],
    ["anomalies"],
    ["margins"],
    ["diagnose"],
    ["outcomes"],
    ["workload"],
    ["decide", "A"],
    ["renewal", "A"],
    ["digest", "daily"],
]


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_missing_ledger_is_an_error_naming_the_path(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 and one line that names the path and how to make a ledger (was: an empty table,
    exit 0, which reads as "no spend")."""
    missing = tmp_path / "no-such-ledger"
    assert run([*argv, "--ledger", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        f"Error: no ledger at {missing}: create it with `tailguard ingest EVENTS --ledger "
        f"{missing}`, or point --ledger (or TAILGUARD_LEDGER) at an existing ledger"
    ]
    assert out == ""


def test_default_ledger_missing_names_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    """No --ledger and no ./tailguard-data (the tests run in an empty directory)."""
    assert run(["report", "customers"]) == 1
    assert "no ledger at ./tailguard-data:" in capsys.readouterr().err


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_empty_ledger_says_so_in_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ledger with customers imported but no events yet."""
    led = tmp_path / "L"
    cust = tmp_path / "c.csv"
    cust.write_text("customer_id,tier,segment,mrr_usd\nA,pro,smb,50\n")
    assert run(["customers", "import", str(cust), "--ledger", str(led)]) == 0
    capsys.readouterr()
    assert run([*argv, "--ledger", str(led)]) == 1
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        f"Error: the ledger at {led} holds no events yet: add some with "
        f"`tailguard ingest EVENTS --ledger {led}`"
    ]
    assert out == ""


def test_a_file_is_not_a_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "events.jsonl"
    f.write_text("{}\n")
    assert run(["kpis", "--ledger", str(f)]) == 1
    assert capsys.readouterr().err == f"Error: {f} is a file, not a ledger directory\n"


def test_ingest_of_a_missing_file_says_it_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One message, the path once, no ``:0: <file>`` (was printed twice: the problem line
    ``PATH:0: <file>: no such file`` and then ``Error: PATH: no such file``)."""
    missing = tmp_path / "nonexistent.jsonl"
    assert run(["ingest", str(missing), "--ledger", str(tmp_path / "L")]) == 1
    err = capsys.readouterr().err
    assert err == f"Error: {missing}: no such file\n"


def test_row_problems_are_listed_then_summed_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several bad rows: each ``file:line: field: reason``, then one summary line."""
    p = tmp_path / "c.csv"
    p.write_text("customer_id,tier,segment,mrr_usd\nx,gold,smb,10\ny,silver,smb,3\n")
    assert run(["customers", "import", str(p), "--ledger", str(tmp_path / "L")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"{p}:2: tier: 'gold'")
    assert lines[1].startswith(f"{p}:3: tier: 'silver'")
    assert lines[2].startswith("Error: ") and len(lines) == 3


def test_concentration_of_a_missing_csv_says_it_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "billing.csv"
    assert run(["concentration", "--input", str(missing), "--value-column", "amount"]) == 1
    assert capsys.readouterr().err == f"Error: {missing}: no such file\n"


def test_missing_policy_file_names_no_placeholder(
    small_ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(was ``Error: PATH: <file>: no such file``)"""
    missing = tmp_path / "policy.toml"
    assert run(["kpis", "--ledger", str(small_ledger), "--policy", str(missing)]) == 1
    assert capsys.readouterr().err == f"Error: {missing}: no such file\n"


def test_compact_of_a_missing_ledger_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(was: exit 0, "merged 0 small segments", and an empty ledger made at the typo's path)"""
    missing = tmp_path / "typo"
    assert run(["compact", "--ledger", str(missing)]) == 1
    assert f"no ledger at {missing}:" in capsys.readouterr().err
    assert not missing.exists()


def test_bad_rows_name_the_rejects_flag_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The library's message names no flag; the CLI adds the one that sets bad rows aside."""
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"event_id": "a", "kind": "task_outcome", "ts": "2025-01-01T00:00:00Z",'
        ' "customer_id": "c", "outcome": "maybe"}\n'
    )
    assert run(["ingest", str(p), "--ledger", str(tmp_path / "L")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"{p}:1: outcome:")
    assert lines[-1].startswith("Error: 1 invalid row(s); nothing was ingested")
    assert lines[-1].endswith(": pass --rejects FILE") and len(lines) == 2
