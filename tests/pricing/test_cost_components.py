"""A priced call's cost per token type (issue 11: FOCUS rows per token type need it stored).

By hand, model ``parts`` ($3 input, $0.30 cache read, $3.75 cache write, $15 output per Mtok): a
call of 1,000,000 input tokens (200,000 cache reads and 100,000 cache writes among them) and
10,000 output tokens costs 700,000 x 3 + 200,000 x 0.3 + 100,000 x 3.75 + 10,000 x 15 per Mtok =
2.1 + 0.06 + 0.375 + 0.15 = $2.685.

Rounding (model ``tiny``, $0.0006 per Mtok for input and cache read = 0.6 nano-dollars a token):
one uncached and one cached input token cost 1.2 nano-dollars, stored as 1. Rounded half-even on
their own the two parts would be 1 + 1 = 2 > 1, leaving output at -1; rounded down they are
0 + 0 and output holds the 1: the parts add up to the cost and none is negative.
"""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.events.schema import COMPONENT_COLUMNS
from tailguard.pricing import PriceBook, price_table
from tests.pricing.pricing_helpers import events_table

TS = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
PRICES = """
[[model]]
model = "parts"
input_mtok = 3
cache_read_mtok = 0.3
cache_write_mtok = 3.75
output_mtok = 15

[[model]]
model = "tiny"
input_mtok = 0.0006
cache_read_mtok = 0.0006
cache_write_mtok = 0.0006
output_mtok = 0.0006
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path: Path = tmp_path_factory.mktemp("prices") / "prices.toml"
    path.write_text(PRICES)
    return PriceBook.load(path)


def _call(model: str, inp: int, out: int, **kw: Any) -> dict[str, Any]:
    return {"kind": "llm_call", "ts": TS, "model": model, "input_tokens": inp,
            "output_tokens": out, **kw}  # fmt: skip


def _parts(book: PriceBook, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    t = price_table(book, events_table(rows))
    return list(
        zip(*(t.column(c).to_pylist() for c in ("cost_usd", *COMPONENT_COLUMNS)), strict=True)
    )


def test_parts_by_hand(book: PriceBook) -> None:
    got = _parts(
        book,
        [_call("parts", 1_000_000, 10_000, cache_read_tokens=200_000, cache_write_tokens=100_000)],
    )
    assert got == [tuple(Decimal(x) for x in ("2.685", "2.1", "0.06", "0.375", "0.15"))]


def test_parts_round_down_and_output_takes_the_rest(book: PriceBook) -> None:
    got = _parts(book, [_call("tiny", 2, 0, cache_read_tokens=1)])
    nano = Decimal("0.000000001")
    assert got == [(nano, Decimal(0), Decimal(0), Decimal(0), nano)]


def test_reported_and_unpriced_have_no_parts(book: PriceBook) -> None:
    got = _parts(
        book,
        [_call("parts", 10, 1, cost_usd=Decimal("0.5")), _call("no-such-model", 10, 1)],
    )
    assert got == [(Decimal("0.5"), None, None, None, None), (None, None, None, None, None)]


def test_aggregate_row_picks_the_tier_of_its_mean_call(book: PriceBook) -> None:
    """gemini-2.5-pro (genai-prices: $1.25 / $10 per Mtok up to 200k input tokens, $2.50 / $15
    above). One call of 300,000 input and 1,000 output tokens is in the upper band: 0.75 +
    0.015 = $0.765. A bucket of 2 requests with the same totals averages 150,000 input tokens:
    lower band, 0.375 + 0.01 = $0.385."""
    row = {**_call("gemini-2.5-pro", 300_000, 1_000), "provider": "google"}
    got = _parts(book, [row, {**row, "requests": 2}])
    assert [g[0] for g in got] == [Decimal("0.765"), Decimal("0.385")]
    assert [g[1] for g in got] == [Decimal("0.75"), Decimal("0.375")]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.sampled_from(["parts", "tiny"]),
)
def test_parts_add_up_to_the_cost(unc: int, cr: int, cw: int, out: int, model: str) -> None:
    book = _cached_book()
    row = _call(model, unc + cr + cw, out, cache_read_tokens=cr, cache_write_tokens=cw)
    ((cost, *parts),) = _parts(book, [row])
    assert sum(parts) == cost
    assert all(p >= 0 for p in parts)


@functools.cache
def _cached_book() -> PriceBook:
    """One book for every hypothesis example (a function-scoped fixture would not be reset
    between examples anyway)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "prices.toml"
        path.write_text(PRICES)
        return PriceBook.load(path)
