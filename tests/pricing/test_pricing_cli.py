"""``tailguard price``: the JSON contract, the table, exit codes, --prices and TAILGUARD_PRICES."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tailguard.cli import run

BASE = ["price", "--model", "gpt-4o", "--provider", "openai", "--at", "2025-05-01T10:00:00Z"]


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(
        [
            *BASE,
            "--input-tokens",
            "12000",
            "--cache-read-tokens",
            "8000",
            "--output-tokens",
            "800",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    # 4,000 x 2.50 + 8,000 x 1.25 + 800 x 10 = 10,000 + 10,000 + 8,000 micro-dollars
    assert out["cost_usd"] == 0.028
    assert isinstance(out["cost_usd"], float)
    assert out["cost_usd_exact"] == "0.028000000"
    assert (out["provider"], out["model"], out["source"]) == ("openai", "gpt-4o", "genai-prices")
    assert out["input_cost_usd"] == 0.02 and out["output_cost_usd"] == 0.008
    assert out["rates_usd_per_mtok"] == {
        "input": 2.5,
        "cache_read": 1.25,
        "cache_write": 2.5,
        "output": 10.0,
    }
    assert out["at"] == "2025-05-01T10:00:00+00:00"


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*BASE, "--input-tokens", "1000000", "--output-tokens", "0"]) == 0
    out = capsys.readouterr().out
    assert "2.500000000" in out and "source: genai-prices" in out


def test_prices_flag_and_env(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    price_file: Callable[[str], Path],
) -> None:
    env_file = price_file('[[model]]\nmodel = "gpt-4o"\ninput_mtok = 1\noutput_mtok = 1\n')
    flag_file = price_file('[[model]]\nmodel = "gpt-4o"\ninput_mtok = 2\noutput_mtok = 2\n')
    args = [*BASE, "--input-tokens", "1000000", "--output-tokens", "0", "--json"]
    monkeypatch.setenv("TAILGUARD_PRICES", str(env_file))
    assert run(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["cost_usd"], out["source"]) == (1.0, "override")
    assert run([*args, "--prices", str(flag_file)]) == 0  # the flag wins over the environment
    assert json.loads(capsys.readouterr().out)["cost_usd"] == 2.0


def test_unknown_model_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    rc = run(["price", "--model", "in-house-v0", "--input-tokens", "1", "--output-tokens", "1"])
    assert rc == 3
    err = capsys.readouterr().err
    assert "unknown model 'in-house-v0'" in err
    assert "--prices FILE" in err and "[[model]]" in err  # says how to add it


@pytest.mark.parametrize(
    ("extra", "code", "text"),
    [
        (["--at", "yesterday"], 2, "not an ISO 8601"),
        (["--cache-read-tokens", "20"], 1, "exceed input_tokens"),
        (["--input-tokens", "-1"], 2, ""),
    ],
)
def test_bad_arguments(
    capsys: pytest.CaptureFixture[str], extra: list[str], code: int, text: str
) -> None:
    args = ["price", "--model", "gpt-4o", "--input-tokens", "10", "--output-tokens", "1", *extra]
    assert run(args) == code
    assert text in capsys.readouterr().err


def test_bad_price_file_exits_1(
    capsys: pytest.CaptureFixture[str], price_file: Callable[[str], Path]
) -> None:
    bad = price_file('[[model]]\nmodel = "m"\ninput_mtok = -1\noutput_mtok = 1\n')
    assert run([*BASE, "--input-tokens", "1", "--output-tokens", "1", "--prices", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "input_mtok" in err


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["price", "-h"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "tailguard price --model" in out
