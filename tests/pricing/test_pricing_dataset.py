"""genai-prices' own price cases (its cross-language golden dataset) through tailguard.

The file is pydantic/genai-prices ``tests/dataset/usages.json``, copied to
``../shared/realdata/exports/``: real provider responses, the usage genai-prices extracted and the
``input_price`` / ``output_price`` it computed per provider. Expected values come from that file,
not from the code under test. Cases whose usage has keys outside tailguard's four token counts
(audio, image, text-only breakdowns, ...) cannot be expressed as an event and are left out.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.pricing import PriceBook, price_table
from tests.pricing.pricing_helpers import events_table

DATASET = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "realdata"
    / "exports"
    / "genai_prices_tests_dataset_usages.json"
)
TOKEN_KEYS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"}
#: the dataset was computed with the data of genai-prices at its commit, "now" at generation; the
#: installed snapshot is pinned at this instant (a later day picks up later price changes)
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: (model, provider) whose price in the installed snapshot differs from the dataset's snapshot:
#: Google's long-context tier for Claude Sonnet 4.5 (dataset: flat $3/Mtok above 200k tokens),
#: DeepSeek's R1-distill price and Mistral's ministral-8b change of 2025-12-02 — data updates,
#: not arithmetic. The test fails if any *other* case disagrees.
KNOWN_DATA_DRIFT = {
    ("claude-sonnet-4-5-20250929", "google"),
    ("deepseek-r1-distill-llama-70b", "deepseek"),
    ("ministral-8b-latest", "mistral"),
}


def _cases() -> list[dict[str, Any]]:
    data = json.loads(DATASET.read_text())
    cases = []
    for body in data:
        model = body.get("model")
        if not model:
            continue
        for extracted in body["extracted"]:
            usage = extracted["usage"]
            if not set(usage) <= TOKEN_KEYS:
                continue
            for ex in extracted["extractors"]:
                if "input_price" not in ex:
                    continue
                expected = Decimal(ex["input_price"]) + Decimal(ex["output_price"])
                cases.append(
                    {
                        "model": model,
                        "provider": ex["provider_id"],
                        "usage": {k: int(usage.get(k, 0)) for k in TOKEN_KEYS},
                        "expected": expected.quantize(Decimal("1e-9"), ROUND_HALF_EVEN),
                    }
                )
    return cases


pytestmark = pytest.mark.skipif(
    not DATASET.exists(),
    reason=f"genai-prices dataset not found at {DATASET} (no ../shared/realdata here)",
)


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    return _cases()


def test_dataset_has_cases(cases: list[dict[str, Any]]) -> None:
    # 2,595 priced (case, provider) pairs with token-only usage, 126 bodies with cache tokens
    assert len(cases) > 2500
    assert sum(1 for c in cases if c["usage"]["cache_read_tokens"]) > 50


def test_price_matches_dataset(cases: list[dict[str, Any]]) -> None:
    book = PriceBook.load()
    wrong = []
    for c in cases:
        q = book.price(model=c["model"], provider=c["provider"], at=AT, **c["usage"])
        if q.cost_usd != c["expected"] and (c["model"], c["provider"]) not in KNOWN_DATA_DRIFT:
            wrong.append((c, q.cost_usd))
    assert wrong == []


def test_price_table_matches_dataset(cases: list[dict[str, Any]]) -> None:
    rows = [
        {"kind": "llm_call", "ts": AT, "model": c["model"], "provider": c["provider"], **c["usage"]}
        for c in cases
    ]
    out = price_table(PriceBook.load(), events_table(rows))
    got = out.column("cost_usd").to_pylist()
    sources = set(out.column("cost_source").to_pylist())
    assert sources == {"price"}
    wrong = [
        (c["model"], c["provider"], c["usage"], c["expected"], g)
        for c, g in zip(cases, got, strict=True)
        if g != c["expected"] and (c["model"], c["provider"]) not in KNOWN_DATA_DRIFT
    ]
    assert wrong == []
