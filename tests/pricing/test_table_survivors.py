"""price_table: the mutation survivors of ``pricing/_table.py`` that a test can see (issue 19).

Each test names the mutant it catches (``scripts/mutation tailguard/pricing/_table.py --match
...``) and was checked to fail against it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.pricing import PriceBook, price_table
from tests.pricing.pricing_helpers import events_table

PRICES = """
[[model]]
model = "m1"
input_mtok = 1.0
output_mtok = 2.0
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path: Path = tmp_path_factory.mktemp("prices") / "prices.toml"
    path.write_text(PRICES)
    return PriceBook.load(path)


def test_a_row_of_no_known_kind_is_not_priced_as_an_llm_call(book: PriceBook) -> None:
    """Three rows of m1 with 1,000 input and 1,000 output tokens: the LLM call costs 1,000 × $1 +
    1,000 × $2 per million = $0.003; the same row with no kind, or a kind no version of the
    schema has, is unpriced (null, never $0 and never an LLM call's price). Catches ``1 -> 0``
    and ``1 -> 0 #2`` on ``_codes``' ``-1`` codes (a null or unknown kind would take code 0, the
    first kind: llm_call)."""
    t = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    call = {"ts": t, "model": "m1", "input_tokens": 1000, "output_tokens": 1000}
    kinds = [None, "mystery", "llm_call"]
    out = price_table(book, events_table([{"kind": k, **call} for k in kinds]))
    got = out.select(["cost_usd", "cost_source", "unpriced"]).to_pylist()
    assert got == [
        {"cost_usd": None, "cost_source": "unpriced", "unpriced": True},
        {"cost_usd": None, "cost_source": "unpriced", "unpriced": True},
        {"cost_usd": Decimal("0.003000000"), "cost_source": "price", "unpriced": False},
    ]
