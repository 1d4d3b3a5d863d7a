"""genai-prices' golden dataset: the real Anthropic responses with a 5-minute / 1-hour cache
write split or server-side web searches, priced through the new pricing inputs (issue 11).

The file is pydantic/genai-prices ``tests/dataset/usages.json`` (``../shared/realdata``): real
provider responses, the usage genai-prices extracted and its ``input_price`` + ``output_price``.
The Anthropic bodies carry ``usage.cache_creation.ephemeral_5m_input_tokens`` /
``ephemeral_1h_input_tokens`` (extracted as ``cache_write_5m_tokens``) and
``usage.server_tool_use.web_search_requests`` (``web_searches``). A call is an ``llm_call``
whose ``cache_write_1h_tokens`` = writes - 5-minute writes; its searches are tool calls
(``tailguard import anthropic-usage``), so the dataset's token price (input + output, which
holds no search) must equal the llm_call's cost exactly, and each search costs genai-prices'
``web_searches_kcount`` / 1,000 = $0.01 (Anthropic: "$10 per 1,000 searches").
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from tailguard.pricing import PriceBook, price_table
from tests.conftest import REALDATA
from tests.pricing.pricing_helpers import events_table

DATASET = REALDATA / "exports" / "genai_prices_tests_dataset_usages.json"

AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # as test_pricing_dataset: the dataset's snapshot
KEYS = {"input_tokens", "output_tokens", "output_reasoning_tokens", "cache_read_tokens",
        "cache_write_tokens", "cache_write_5m_tokens", "web_searches"}  # fmt: skip

pytestmark = pytest.mark.skipif(not DATASET.exists(), reason="no ../shared/realdata here")


def _cases() -> list[dict[str, Any]]:
    out = []
    for body in json.loads(DATASET.read_text()):
        for ext in body["extracted"]:
            u = ext["usage"]
            if not set(u) <= KEYS or not {"cache_write_5m_tokens", "web_searches"} & set(u):
                continue
            for ex in ext["extractors"]:
                if ex["provider_id"] == "anthropic" and "input_price" in ex:
                    price = Decimal(ex["input_price"]) + Decimal(ex["output_price"])
                    exp = price.quantize(Decimal("1e-9"), ROUND_HALF_EVEN)
                    out.append({"model": body["model"], "usage": u, "body": body["body"],
                                "expected": exp})  # fmt: skip
    return out


def test_split_writes_and_searches_match_the_dataset() -> None:
    cases = _cases()
    assert len(cases) >= 15  # 13 with split writes, 6 with searches in the pinned file
    book = PriceBook()
    rows = []
    for c in cases:
        u = c["usage"]
        cw = u.get("cache_write_tokens", 0)
        rows.append(
            {
                "kind": "llm_call",
                "ts": AT,
                "provider": "anthropic",
                "model": c["model"],
                "input_tokens": u["input_tokens"],
                "output_tokens": u.get("output_tokens", 0),
                "cache_read_tokens": u.get("cache_read_tokens", 0),
                "cache_write_tokens": cw,
                "cache_write_1h_tokens": cw - u.get("cache_write_5m_tokens", cw),
            }
        )
    got = price_table(book, events_table(rows)).column("cost_usd").to_pylist()
    assert got == [c["expected"] for c in cases]
    searches = [
        (c["model"], c["usage"]["web_searches"]) for c in cases if "web_searches" in c["usage"]
    ]
    assert searches
    for model, n in searches:
        assert n * book.web_search_usd(model, provider="anthropic", at=AT) == n * Decimal("0.01")


def test_the_bodies_carry_the_fields_the_importer_reads() -> None:
    """The raw usage of each case names what the usage report and the pricing inputs read:
    ``cache_creation.ephemeral_1h_input_tokens`` (0 in every body of this file: it holds no
    1-hour write, so the 2x rate is tested on the documented rows instead), ``service_tier``
    (``standard``: no batch call either) and ``server_tool_use.web_search_requests``."""
    cases = _cases()
    bodies = [c["body"]["usage"] for c in cases if "cache_creation" in c["body"].get("usage", {})]
    assert bodies
    assert {b["cache_creation"]["ephemeral_1h_input_tokens"] for b in bodies} == {0}
    assert {b.get("service_tier") for b in bodies} <= {"standard", None}
    with_search = [c for c in cases if "web_searches" in c["usage"]]
    for c in with_search:
        tools = c["body"]["usage"]["server_tool_use"]
        assert tools["web_search_requests"] == c["usage"]["web_searches"]
