"""``report pricing-drift`` carries every digit of the drift in --json and --csv (issue 16)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.cli.app import run
from tailguard.importers import import_files
from tests.importers.helpers import write_jsonl


def test_drift_pct_is_not_rounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """gpt-4o-mini: 2000 x 0.15 + 500 x 0.60 = 600 micro-$ = 0.0006 priced against 0.0009
    reported: -0.0003 / 0.0009 x 100 = -100/3 % = -33.333...% (two places: -33.33)."""
    src = write_jsonl(
        tmp_path / "spend.jsonl",
        [
            {
                "request_id": "b",
                "startTime": "2025-06-03T08:00:00Z",
                "model": "gpt-4o-mini",
                "custom_llm_provider": "openai",
                "end_user": "acme",
                "prompt_tokens": 2000,
                "completion_tokens": 500,
                "spend": "0.0009",
            }
        ],
    )
    import_files("litellm", [src], tmp_path / "L")
    argv = ["report", "pricing-drift", "--ledger", str(tmp_path / "L")]
    hand = Decimal("-33.33333333333333333333333333")  # -100/3 to 28 significant digits
    assert run([*argv, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert Decimal(str(row["difference_usd"])) == Decimal("-0.0003")
    assert Decimal(str(row["drift_pct"])) == hand
    assert run([*argv, "--csv"]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert Decimal(row["drift_pct"]) == hand
