"""ingest, customers import and report customers through the CLI boundary (exit codes, formats)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tailguard.cli import run
from tests.ledger.fixtures import write_fixture


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_fixture(tmp_path)


def test_ingest_report_roundtrip(files, tmp_path: Path, capsys, monkeypatch) -> None:
    ev, prices, cust = files
    monkeypatch.setenv("TAILGUARD_LEDGER", str(tmp_path / "L"))  # env instead of --ledger
    assert run(["ingest", str(ev), "--prices", str(prices), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["accepted"], out["rejected"], out["unpriced_calls"]) == (14, 0, 1)
    assert run(["customers", "import", str(cust)]) == 0
    capsys.readouterr()
    assert run(["report", "customers", "--period", "2025-06", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["customer_id"] for r in rows] == ["A", "B", "C"]
    assert rows[0]["cost_usd"] == 7.8162  # see tests/analytics/test_report_customers.py
    assert run(["report", "customers", "--period", "2025-06", "--csv", "--limit", "1"]) == 0
    got = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(got) == 1 and got[0]["cost_usd"] == "7.816200000"
    assert run(["report", "customers", "--sort", "successful_tasks", "--json"]) == 0
    capsys.readouterr()


def test_prices_from_env(files, tmp_path: Path, capsys, monkeypatch) -> None:
    ev, prices, _ = files
    monkeypatch.setenv("TAILGUARD_PRICES", str(prices))
    assert run(["ingest", str(ev), "--ledger", str(tmp_path / "L"), "--json"]) == 0
    capsys.readouterr()
    assert run(["report", "customers", "--ledger", str(tmp_path / "L"), "--json"]) == 0
    rows = {r["customer_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["A"]["cost_usd"] == 7.8162  # the override units were used


def test_bad_input_exit_1_with_file_line_field(tmp_path: Path, capsys) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"event_id": "a", "kind": "task_outcome", "ts": "2025-01-01T00:00:00Z",'
        ' "customer_id": "c", "outcome": "maybe"}\n'
    )
    assert run(["ingest", str(p), "--ledger", str(tmp_path / "L")]) == 1
    err = capsys.readouterr().err
    assert f"{p}:1: outcome: Invalid enum value 'maybe'" in err
    assert "Traceback" not in err


def test_bad_customers_csv(tmp_path: Path, capsys) -> None:
    p = tmp_path / "c.csv"
    p.write_text("customer_id,tier,segment,mrr_usd\nx,gold,smb,10\ny,pro,smb,-3\n")
    assert run(["customers", "import", str(p), "--ledger", str(tmp_path / "L")]) == 1
    err = capsys.readouterr().err
    assert f"{p}:2: tier: 'gold' is not one of free, pro, team, enterprise, custom" in err
    assert f"{p}:3: mrr_usd: '-3' is not a number >= 0" in err
    assert not (tmp_path / "L" / "customers.parquet").exists()


def test_usage_errors_exit_2(capsys) -> None:
    assert run(["report", "customers", "--limit", "0"]) == 2
    assert run(["no-such-command"]) == 2
    capsys.readouterr()


def test_bad_period_is_a_usage_error_exit_2(capsys) -> None:
    """A bad date is a usage error (exit 2) whichever command reads it; the flag is named."""
    assert run(["report", "customers", "--period", "June"]) == 2
    assert "--period: 'June' is not a month (YYYY-MM)" in capsys.readouterr().err
    assert run(["report", "customers", "--from", "2025-02-30"]) == 2
    assert "--from: '2025-02-30' is not a date (YYYY-MM-DD)" in capsys.readouterr().err
    assert run(["report", "customers", "--from", "2025-02-03", "--to", "2025-02-01"]) == 2
    assert "--to: 2025-02-01 is before the first day, 2025-02-03" in capsys.readouterr().err


def _commands(group, prefix=()):  # type: ignore[no-untyped-def]
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_has_help_with_an_example() -> None:
    import typer

    from tailguard.cli import app

    root = typer.main.get_command(app)
    missing = [
        " ".join(path) for path, cmd in _commands(root) if "example" not in (cmd.help or "").lower()
    ]
    assert missing == []
