"""Usage conversion against real provider usage bodies and genai-prices' own extraction.

``genai_prices_tests_dataset_usages.json`` holds usage objects recorded from the real APIs
(genai-prices' and pydantic-ai's test cassettes) with what genai-prices extracts from each,
in the same convention as the ledger (input includes cache tokens). The expected values come
from there, not from the gateway's code.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tailguard.gateway.usage import Usage, add_anthropic, from_openai
from tests.conftest import REALDATA

DATA = REALDATA / "exports" / "genai_prices_tests_dataset_usages.json"


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    if not DATA.exists():
        return []
    out = []
    for rec in json.loads(DATA.read_text()):
        usage = rec["body"].get("usage")
        if not isinstance(usage, dict):
            continue
        for group in rec["extracted"]:
            flavors = {(e["provider_id"], e["api_flavor"]) for e in group["extractors"]}
            if ("anthropic", "default") in flavors:
                out.append(("anthropic", usage, group["usage"]))
            elif ("openai", "chat") in flavors or ("openai", "responses") in flavors:
                out.append(("openai", usage, group["usage"]))
    return out


CASES = _cases()


@pytest.mark.skipif(not CASES, reason="shared real data not present")
def test_conversion_matches_genai_prices_on_real_usage_bodies() -> None:
    seen: Counter[str] = Counter()
    for wire, body, want in CASES:
        if wire == "anthropic":
            got = Usage()
            add_anthropic(got, body)
        else:
            got = from_openai(body)
        assert got.input_tokens == want.get("input_tokens", 0), (body, want)
        assert got.output_tokens == want.get("output_tokens", 0), (body, want)
        assert got.cache_read_tokens == want.get("cache_read_tokens", 0), (body, want)
        assert got.cache_write_tokens == want.get("cache_write_tokens", 0), (body, want)
        if wire == "openai" and "output_reasoning_tokens" in want:
            assert got.reasoning_tokens == want["output_reasoning_tokens"], (body, want)
        seen[wire] += 1
    assert seen["anthropic"] > 10 and seen["openai"] > 10, seen
