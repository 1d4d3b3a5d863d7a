"""``tailguard price --service-tier`` and ``--cache-write-1h-tokens``, costs worked out by hand.

Prices per million tokens, from the providers' pages:
- GPT-4o (platform.openai.com/docs/pricing): $2.50 in / $10 out; Batch API half: $1.25 / $5.
- GPT-5 mini: Flex $0.125 / $1.00, Priority $0.45 / $3.60 (standard $0.25 / $2.00).
- Claude Sonnet 4.5 (platform.claude.com/docs/en/about-claude/pricing): $3 in, 5-minute cache
  writes $3.75, 1-hour cache writes $6, output $15.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailguard.cli import run


def _quote(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert run(["price", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_service_tier(capsys: pytest.CaptureFixture[str]) -> None:
    # gpt-4o batch on 2025-05-01: 12,000 x 1.25 + 800 x 5 = 19,000 micro-dollars
    base = ["--model", "gpt-4o", "--provider", "openai", "--at", "2025-05-01T10:00:00Z"]
    tokens = ["--input-tokens", "12000", "--output-tokens", "800"]
    out = _quote(capsys, *base, *tokens, "--service-tier", "batch")
    assert out["cost_usd_exact"] == "0.019000000" and out["service_tier"] == "batch"
    assert out["rates_usd_per_mtok"]["input"] == 1.25
    # standard, and "default" the same: 12,000 x 2.5 + 800 x 10 = 38,000
    assert _quote(capsys, *base, *tokens)["cost_usd_exact"] == "0.038000000"
    out = _quote(capsys, *base, *tokens, "--service-tier", "default")
    assert out["cost_usd_exact"] == "0.038000000" and out["service_tier"] is None
    # gpt-5-mini, 4,000 in, 900 out: flex 4,000 x 0.125 + 900 x 1 = 1,400;
    # priority 4,000 x 0.45 + 900 x 3.6 = 5,040
    base = ["--model", "gpt-5-mini", "--provider", "openai", "--at", "2026-11-01T00:00:00Z"]
    tokens = ["--input-tokens", "4000", "--output-tokens", "900"]
    flex = _quote(capsys, *base, *tokens, "--service-tier", "flex")
    prio = _quote(capsys, *base, *tokens, "--service-tier", "priority")
    assert (flex["cost_usd_exact"], prio["cost_usd_exact"]) == ("0.001400000", "0.005040000")


def test_cache_write_1h_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    """3,000 in of which 2,000 written (1,500 for an hour), 200 out:
    1,000 x 3 + 500 x 3.75 + 1,500 x 6 + 200 x 15 = 16,875 micro-dollars; all 2,000 at the
    5-minute rate: 1,000 x 3 + 2,000 x 3.75 + 3,000 = 13,500."""
    args = [
        "--model",
        "claude-sonnet-4-5",
        "--provider",
        "anthropic",
        "--at",
        "2026-01-15T00:00:00Z",
        "--input-tokens",
        "3000",
        "--cache-write-tokens",
        "2000",
        "--output-tokens",
        "200",
    ]
    out = _quote(capsys, *args, "--cache-write-1h-tokens", "1500")
    assert out["cost_usd_exact"] == "0.016875000"
    assert out["usage"]["cache_write_1h_tokens"] == 1500
    assert out["cache_write_1h_usd_per_mtok"] == 6.0
    assert _quote(capsys, *args)["cost_usd_exact"] == "0.013500000"
    # the table shows the 1-hour writes on their own line
    assert run(["price", *args, "--cache-write-1h-tokens", "1500"]) == 0
    table = capsys.readouterr().out
    assert "cache write (1 hour)" in table and "0.016875000" in table
    # more 1-hour writes than writes: refused
    assert run(["price", *args, "--cache-write-1h-tokens", "2001"]) == 1
    assert "cache_write_1h_tokens" in capsys.readouterr().err


def test_an_unknown_service_tier_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A tier pricing does not know is refused (exit 2) with the flag named and the known tiers
    listed, never priced at the standard rates."""
    args = ["--model", "gpt-4o", "--provider", "openai", "--at", "2025-05-01T10:00:00Z",
            "--input-tokens", "12000", "--output-tokens", "800"]  # fmt: skip
    assert run(["price", *args, "--service-tier", "bogus", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1] == (
        "Error: --service-tier: 'bogus' is not a service tier tailguard can price "
        "(known: standard, default, auto, batch, flex, priority, scale)"
    )


def test_anthropic_priority_has_no_list_price(capsys: pytest.CaptureFixture[str]) -> None:
    """Anthropic's Priority Tier is billed by contract: no price (exit 3, as for an unknown
    model), with the reason, never the standard rates."""
    args = ["--model", "claude-sonnet-4-5", "--provider", "anthropic", "--at", "2026-01-15",
            "--input-tokens", "10000", "--output-tokens", "500"]  # fmt: skip
    assert run(["price", *args, "--service-tier", "priority", "--json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "priority tier: contract price" in captured.err
    # the standard tier of the same call: 10,000 x 3 + 500 x 15 = $0.0375
    assert _quote(capsys, *args)["cost_usd_exact"] == "0.037500000"


def test_a_contract_tier_priced_by_the_operator_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A ``[[model]]`` entry with ``service_tier = "priority"`` prices Anthropic's priority
    call at the contract's $4.50 / $22.50: 10,000 x 4.50 + 500 x 22.50 = 45,000 + 11,250 =
    $0.05625; the output names the tier (JSON ``service_tier``, the table's title and its
    source line). The standard call of the same model keeps genai-prices' $0.0375."""
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[[model]]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n'
        'service_tier = "priority"\ninput_mtok = 4.5\noutput_mtok = 22.5\n'
    )
    args = ["--model", "claude-sonnet-4-5", "--provider", "anthropic", "--at", "2026-01-15",
            "--input-tokens", "10000", "--output-tokens", "500",
            "--prices", str(prices)]  # fmt: skip
    out = _quote(capsys, *args, "--service-tier", "priority")
    assert (out["cost_usd_exact"], out["source"], out["service_tier"]) == (
        "0.056250000",
        "override",
        "priority",
    )
    assert out["rates_usd_per_mtok"]["input"] == 4.5
    assert run(["price", *args, "--service-tier", "priority"]) == 0
    table = capsys.readouterr().out
    assert "priority tier" in table and "source: override, priority tier" in table
    standard = _quote(capsys, *args)
    assert (standard["cost_usd_exact"], standard["service_tier"]) == ("0.037500000", None)
    assert run(["price", *args]) == 0
    assert "source: genai-prices, standard tier" in capsys.readouterr().out


def test_a_contract_tier_without_an_entry_says_how_to_price_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """OpenAI's Scale Tier has no list price: exit 3, and the message shows the entry that
    would price it."""
    args = ["--model", "gpt-4o", "--provider", "openai", "--at", "2026-01-15",
            "--input-tokens", "12000", "--output-tokens", "800"]  # fmt: skip
    assert run(["price", *args, "--service-tier", "scale"]) == 3
    err = capsys.readouterr().err
    assert "scale tier: contract price" in err
    assert '  service_tier = "scale"\n' in err and '  model = "gpt-4o"\n' in err


def test_an_unknown_tier_in_the_price_file_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[[model]]\nmodel = "gpt-4o"\nservice_tier = "premium"\ninput_mtok = 1\noutput_mtok = 2\n'
    )
    args = ["--model", "gpt-4o", "--input-tokens", "1", "--output-tokens", "1"]
    assert run(["price", *args, "--prices", str(prices)]) == 1
    err = capsys.readouterr().err
    assert f"{prices}: [[model]] #1 (model 'gpt-4o'): service_tier: unknown tier 'premium'" in err
    assert "(known: standard, default, auto, batch, flex, priority, scale)" in err
