"""``tailguard report pricing-drift``: tailguard's price against the imported source's cost."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.cli.app import run
from tailguard.importers import import_files
from tests.importers.helpers import write_jsonl


def _row(rid: str, model: str, prompt: int, completion: int, spend: str) -> dict[str, object]:
    return {
        "request_id": rid,
        "startTime": "2025-06-03T08:00:00Z",
        "model": model,
        "custom_llm_provider": "openai",
        "end_user": "acme",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "spend": spend,
    }


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """gpt-4o: two calls of 1000 prompt + 200 completion tokens, each 1000 x 2.50 + 200 x 10
    = 4500 micro-$, so 0.009 priced against 0.0045 + 0.00454 = 0.00904 reported: -0.00004,
    -0.44% (under 1%). gpt-4o-mini: 2000 x 0.15 + 500 x 0.60 = 600 micro-$ = 0.0006 against
    0.0010 reported: -0.0004, -40.00%. my-finetune: no price, so unpriced with 0.002 reported."""
    src = write_jsonl(
        tmp_path / "spend.jsonl",
        [
            _row("a", "gpt-4o", 1000, 200, "0.0045"),
            _row("d", "gpt-4o", 1000, 200, "0.00454"),
            _row("b", "gpt-4o-mini", 2000, 500, "0.0010"),
            _row("c", "my-finetune", 10, 10, "0.002"),
        ],
    )
    import_files("litellm", [src], tmp_path / "L")
    return tmp_path / "L"


def test_lists_models_beyond_one_percent_and_the_unpriced(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["report", "pricing-drift", "--ledger", str(ledger), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert [(r["model"], r["unpriced_calls"]) for r in rows] == [
        ("gpt-4o-mini", 0),
        ("my-finetune", 1),
    ]
    mini, ft = rows
    assert Decimal(mini["difference_usd"]) == Decimal("-0.0004")
    assert Decimal(mini["drift_pct"]) == Decimal("-40.00")
    assert ft["reported_usd"] == Decimal("0.002")
    assert (ft["priced_usd"], ft["difference_usd"], ft["drift_pct"]) == (None, None, None)


def test_a_lower_threshold_lists_the_small_drift(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-0.00004 / 0.00904 x 100 = -50/113 % = -0.44247787610619469026548672566... (bc -l),
    every digit in the CSV (was rounded to -0.44)."""
    argv = ["report", "pricing-drift", "--ledger", str(ledger), "--threshold", "0.1", "--csv"]
    assert run(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("provider,model,calls")
    gpt4o = next(line for line in out if ",gpt-4o," in line)
    assert gpt4o.endswith(",-0.4424778761061946902654867257")
