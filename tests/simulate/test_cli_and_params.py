"""The ``tailguard simulate`` command, and the derived parameters against the real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailguard.cli import run

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"


def test_cli_writes_the_five_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    argv = ["simulate", "--customers", "30", "--days", "3", "--seed", "4", "--out", str(out)]
    assert run([*argv, "--format", "parquet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == [
        "customers.csv",
        "events.parquet",
        "policy.toml",
        "prices.toml",
        "truth.json",
    ]
    truth = json.loads((out / "truth.json").read_text())
    assert summary["events"] == truth["events"] > 0
    assert truth["seed"] == 4 and truth["customers"] == 30 and truth["days"] == 3
    assert set(truth["shape_metrics"]) == {
        "long_sessions", "tool_fanout", "oversized_prompts", "failure_magnet",
        "high_frequency", "low_cache_hit", "reasoning_heavy",
    }  # fmt: skip
    assert 0 < truth["top1_share"] <= 1 and 0 <= truth["gini"] < 1


def test_cli_start_date_and_default_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    argv = ["simulate", "--customers", "5", "--days", "2", "--out", str(out)]
    assert run([*argv, "--start", "2025-06-01"]) == 0
    first = json.loads((out / "events.jsonl").read_text().splitlines()[0])
    assert first["ts"].startswith("2025-06-0") and first["ts"].endswith("Z")


@pytest.mark.parametrize(
    "extra",
    [["--format", "csv"], ["--start", "yesterday"], ["--customers", "0"], ["--days", "-1"]],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, extra: list[str]) -> None:
    assert run(["simulate", "--out", str(tmp_path / "x"), *extra]) == 2


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is absent on this machine")
def test_params_are_reproduced_from_the_real_data() -> None:
    from tailguard.simulate.derive_params import render

    committed = (Path(__file__).resolve().parents[2] / "tailguard/simulate/params.py").read_text()
    # the price snapshot follows the installed genai-prices; the real-data tables must not drift
    marker = "# USD per million tokens"
    assert render(REALDATA).split(marker)[0] == committed.split(marker)[0]
