"""The demo end to end on a small product: files written, headline consistent with the ledger."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import duckdb

from tailguard.cli import run


def test_demo_small(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    code = run(
        ["demo", "--out", str(out), "--customers", "150", "--days", "7", "--seed", "3", "--json"]
    )
    assert code == 0
    head = json.loads(capsys.readouterr().out)
    assert Path(head["report"]).exists() and (out / "customers_report.csv").exists()
    report = Path(head["report"]).read_text()
    assert "What the average hides" in report
    # the headline's total equals an independent sum over the ledger's segments
    total = duckdb.sql(
        f"SELECT sum(cost_usd) FROM read_parquet('{out}/ledger/segments/*.parquet')"
    ).fetchall()[0][0]
    assert Decimal(str(head["total_cost_usd"])) == total
    assert head["customers"] == 150
    assert 0 < head["top_1pct_share"] <= 1
    d = head["per_customer_cost_per_successful_task"]
    assert d["median"] <= d["p95"] <= d["p99"]


def test_demo_rerun_starts_clean(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--customers", "60", "--days", "3", "--json"]
    assert run([*args, "--seed", "1"]) == 0
    first = json.loads(capsys.readouterr().out)["events"]
    assert run([*args, "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == first  # not doubled


def test_demo_tail_summary_in_report(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert run(["demo", "--out", str(out), "--customers", "300", "--days", "10", "--json"]) == 0
    head = json.loads(capsys.readouterr().out)
    tail = head["tail"]
    assert 0 <= tail["failure_cost_share"] <= 1
    assert tail["concentration_verdict"]
    # every customer diagnosed in the headline is named in the report with its first lever
    text = (out / "report.md").read_text()
    for d in tail["diagnosed"]:
        assert d["customer_id"] in text and d["top_lever"] in text


def test_demo_needs_no_optional_extra(tmp_path: Path) -> None:
    """The README's demo is `pip install -e . && tailguard demo`: no extra may be needed.

    The optional packages are made unimportable in a fresh interpreter (None in sys.modules),
    then a small demo runs.
    """
    import subprocess
    import sys

    extras = ["matplotlib", "redis", "starlette", "uvicorn", "httpx", "aiohttp", "uvloop"]
    code = (
        "import sys\n"
        f"for m in {extras!r}: sys.modules[m] = None\n"
        "from tailguard.cli import run\n"
        f"sys.exit(run(['demo', '--out', {str(tmp_path / 'd')!r}, '--customers', '80',"
        " '--days', '3', '--json']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["customers"] == 80


def test_demo_ends_with_the_next_commands_and_the_dashboard(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """The demo's last lines name what to run next (diagnose, the panel with the policy the
    simulated customers ran under, the renewal of the most expensive customer), with this demo's
    ledger filled in, and each of them runs on it; then the command that opens the dashboard."""
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "demo"
    assert run(["demo", "--out", str(out), "--customers", "120", "--days", "40"]) == 0
    lines = [x.strip() for x in capsys.readouterr().out.strip().splitlines()]
    led = out / "ledger"
    policy = out / "sim" / "policy.toml"
    # the very last: the command that opens the dashboard on this ledger (issue 12)
    assert lines[-2:] == ["open the dashboard:", f"tailguard ui --ledger {led} --policy {policy}"]
    lines = lines[:-2]
    assert lines[-4] == "next:"
    assert lines[-3] == f"tailguard diagnose --ledger {led}"
    assert lines[-2] == f"tailguard kpis --ledger {led} --policy {policy}"
    top = lines[-1].split()[2]
    assert lines[-1] == f"tailguard renewal {top} --ledger {led}"
    # the customer named is the most expensive one of the demo's table
    with (out / "customers_report.csv").open() as f:
        assert next(csv.DictReader(f))["customer_id"] == top
    for cmd in lines[-3:]:
        assert run(cmd.split()[1:]) == 0, cmd


def test_cli_runs_the_demo_product_by_default() -> None:
    """`tailguard demo` with no flags is run_demo()'s product: the customers and days the
    calibration was measured on (docs/simulator.md), not a default of the CLI's own."""
    import inspect

    from tailguard.cli.demo import demo
    from tailguard.demo import DEMO_CUSTOMERS, DEMO_DAYS, run_demo

    cli = inspect.signature(demo).parameters
    api = inspect.signature(run_demo).parameters
    assert cli["customers"].default == DEMO_CUSTOMERS == api["customers"].default
    assert cli["days"].default == DEMO_DAYS == api["days"].default
