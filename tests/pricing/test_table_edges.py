"""price_table where a wrong branch gives a wrong number that the other tests would not see.

A tiered price whose price changes inside the batch, the exact tier threshold, a batch with no
priced call, int64 overflow guards with big and small rows together, unit costs too large for
int64, a tool with no name. Expected costs are worked out by hand in each docstring from the
prices stated there (Gemini 2.5 Pro's list prices are Google's published ones: $1.25 / $10 per
million tokens up to 200k input tokens, $2.50 / $15 above; cache read $0.125 / $0.25, cache write
at the input price in genai-prices' snapshot).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.pricing import PriceBook
from tests.pricing.pricing_helpers import priced

UTC = dt.UTC

PRICES = """
[[discount]]
provider = "google"
model = "gemini-2.5-pro"
discount = 0.5
effective_from = "2025-06-15"

[[model]]
model = "fine-input"
input_mtok = 0.123456789
output_mtok = 1.0

[[model]]
model = "heavy"
input_mtok = 0.123456789
output_mtok = 1.0
cache_read_mtok = 0.01
cache_write_mtok = 3.75

[[model]]
model = "heavy-out"
input_mtok = 0.123456789
output_mtok = 4.0
cache_read_mtok = 0.01
cache_write_mtok = 1.0

[units]
tool_call_usd = { default = 0.002, web_search = 0.01 }
retrieval_query_usd = 0.0004
rerank_usd = "0.0000000001234"
escalation_minute_usd = 0.75
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path: Path = tmp_path_factory.mktemp("prices") / "prices.toml"
    path.write_text(PRICES)
    return PriceBook.load(path)


def _gemini(ts: dt.datetime, inp: int, out: int, **kw: int) -> dict[str, Any]:
    return {
        "kind": "llm_call",
        "ts": ts,
        "provider": "google",
        "model": "gemini-2.5-pro",
        "input_tokens": inp,
        "output_tokens": out,
        **kw,
    }


def test_tier_and_price_change_in_one_batch(book: PriceBook) -> None:
    """Before Jun 15: list price; from Jun 15 00:00 UTC: half price (the discount). The tier
    is chosen on total input tokens (cache included), strictly above 200,000, in each window.

    Jun 20, 300,000 in, 10,000 out, tier, half:   300k x 1.25 + 10k x 7.5  = 0.45
    Jun 1,  100,000 in, 10,000 out, base, list:   100k x 1.25 + 10k x 10   = 0.225
    Jun 1,  200,000 in (the threshold: base):     200k x 1.25              = 0.25
    Jun 1,  200,001 in (above: tier):             200,001 x 2.5            = 0.5000025
    Jun 20, 100,000 in, 10,000 out, base, half:   100k x 0.625 + 10k x 5   = 0.1125
    Jun 1,  300,000 in, 10,000 out, tier, list:   300k x 2.5 + 10k x 15    = 0.9
    Jun 14 23:59:59.999999, 300,000 in, tier, list:                        = 0.75
    Jun 15 00:00:00, 300,000 in, tier, half (the change is inclusive):     = 0.375
    Jun 20, 300,000 in of which 100,000 cache read and 50,000 cache write, tier, half:
        150k x 1.25 + 100k x 0.125 + 50k x 1.25 = 187,500 + 12,500 + 62,500 -> 0.2625
    Jun 1,  1,000 in, all cache read (no uncached token is still valid): 1k x 0.125 = 0.000125
    (all per million tokens)
    """
    d = dt.datetime
    rows = [
        _gemini(d(2025, 6, 20, tzinfo=UTC), 300_000, 10_000),
        _gemini(d(2025, 6, 1, tzinfo=UTC), 100_000, 10_000),
        _gemini(d(2025, 6, 1, tzinfo=UTC), 200_000, 0),
        _gemini(d(2025, 6, 1, tzinfo=UTC), 200_001, 0),
        _gemini(d(2025, 6, 20, tzinfo=UTC), 100_000, 10_000),
        _gemini(d(2025, 6, 1, tzinfo=UTC), 300_000, 10_000),
        _gemini(d(2025, 6, 14, 23, 59, 59, 999_999, tzinfo=UTC), 300_000, 0),
        _gemini(d(2025, 6, 15, tzinfo=UTC), 300_000, 0),
        _gemini(
            d(2025, 6, 20, tzinfo=UTC),
            300_000,
            0,
            cache_read_tokens=100_000,
            cache_write_tokens=50_000,
        ),
        _gemini(d(2025, 6, 1, tzinfo=UTC), 1_000, 0, cache_read_tokens=1_000),
    ]
    got = priced(book, rows)
    assert [c for c, _, _ in got] == [
        Decimal("0.45"),
        Decimal("0.225"),
        Decimal("0.25"),
        Decimal("0.5000025"),
        Decimal("0.1125"),
        Decimal("0.9"),
        Decimal("0.75"),
        Decimal("0.375"),
        Decimal("0.2625"),
        Decimal("0.000125"),
    ]
    assert {s for _, s, _ in got} == {"price"}


def test_a_batch_with_no_priced_call(book: PriceBook) -> None:
    """Every call unknown (a model no price list has, a known model at an unknown provider, no
    model name at all): each is null and unpriced, none is $0."""
    t = dt.datetime(2025, 6, 1, tzinfo=UTC)
    rows = [
        {"kind": "llm_call", "ts": t, "model": "in-house-v0", "input_tokens": 10},
        {"kind": "llm_call", "ts": t, "model": "gemini-2.5-pro", "provider": "my-proxy"},
        {"kind": "llm_call", "ts": t, "input_tokens": 5, "output_tokens": 5},
    ]
    assert priced(book, rows) == [(None, "unpriced", True)] * 3


def test_a_call_with_no_model_beside_priced_calls(book: PriceBook) -> None:
    """A call that names a provider but no model is unpriced even when the batch prices other
    calls (fine-input from any provider: 1,000 in x 0.123456789 + 1,000 out x 1 per million =
    0.001123456789 -> 0.001123457); its key must not land on a priced (model, provider)."""
    t = dt.datetime(2025, 6, 1, tzinfo=UTC)
    rows = [
        {
            "kind": "llm_call",
            "ts": t,
            "model": "fine-input",
            "input_tokens": 1_000,
            "output_tokens": 1_000,
        },
        {"kind": "llm_call", "ts": t, "provider": "acme", "input_tokens": 1_000},
        {"kind": "llm_call", "ts": t, "input_tokens": 1_000},
    ]
    assert priced(book, rows) == [
        (Decimal("0.001123457"), "price", False),
        (None, "unpriced", True),
        (None, "unpriced", True),
    ]


def test_big_and_small_rows_together(book: PriceBook) -> None:
    """heavy, per million tokens: input $0.123456789, cache read $0.01, cache write $3.75, output
    $1. Per token the finest rate has 15 decimals, so the integer rates at that scale are input
    123,456,789, cache read 10^7, cache write 3.75x10^9, output 10^9 (int64 holds 9.2e18; a row
    whose estimate reaches 2^62 = 4.6e18 is priced in Decimal). heavy-out: output $4 (4x10^9),
    cache write $1 (10^9), the rest as heavy.

    10^11 input tokens:       x 123,456,789 = 1.2e19, too big: Decimal, 12,345.6789
    3x10^9 cache-write tokens: x 3.75x10^9 = 1.1e19, too big: Decimal, 3x10^9 x 3.75e-6 = 11,250
        (at the output rate the estimate would be 3e18, under 2^62: int64 would wrap)
    2x10^10 output tokens:    x 10^9 = 2e19, too big: Decimal, 20,000
    10^12 cache-read tokens:  x 10^7 = 1e19, too big: Decimal, 10^12 x 1e-8 = 10,000
    heavy-out, 3x10^9 output tokens: x 4x10^9 = 1.2e19: Decimal, 3x10^9 x 4e-6 = 12,000 (at the
        cache-write rate the estimate would be 3e18)
    1,000 in + 1,000 out: 0.000123456789 + 0.001 = 0.001123456789 -> 0.001123457 (half-even
        to nano-dollars, the integer path)
    2,000 in, 0 out: 0.000246913578 -> 0.000246914 (input and output rates swapped: 0.002)
    Each big row is big by one part only (uncached input, cache write, output, cache read): an
    estimate that misread that part would send it to int64, where it wraps around. A batch
    whose only big row is big by its output (heavy-out, whose largest rate is the output's:
    1.2e19, barely over int64) checks the batch-wide bound: it must not fall below that row.
    """
    t = dt.datetime(2025, 6, 1, tzinfo=UTC)

    def heavy(**kw: int) -> dict[str, Any]:
        return {"kind": "llm_call", "ts": t, "model": "heavy", **kw}

    rows = [
        heavy(input_tokens=10**11),
        heavy(input_tokens=3 * 10**9, cache_write_tokens=3 * 10**9),
        heavy(input_tokens=0, output_tokens=2 * 10**10),
        heavy(input_tokens=10**12, cache_read_tokens=10**12),
        {**heavy(input_tokens=0, output_tokens=3 * 10**9), "model": "heavy-out"},
        heavy(input_tokens=1_000, output_tokens=1_000),
        heavy(input_tokens=2_000),
    ]
    assert [c for c, _, _ in priced(book, rows)] == [
        Decimal("12345.6789"),
        Decimal(11_250),
        Decimal(20_000),
        Decimal(10_000),
        Decimal(12_000),
        Decimal("0.001123457"),
        Decimal("0.000246914"),
    ]
    out_rows = [heavy(input_tokens=0, output_tokens=3 * 10**9), heavy(input_tokens=5)]
    output_only = [{**r, "model": "heavy-out"} for r in out_rows]
    # 3x10^9 x 4e-6 = 12,000 (1.2e19 in int64: over its 9.2e18); 5 x 0.123456789e-6 =
    # 6.17283945e-7 = 617.28 nano-dollars -> 617 nano-dollars
    assert [c for c, _, _ in priced(book, output_only)] == [Decimal(12_000), Decimal("6.17E-7")]


def test_unit_costs_too_big_for_int64(book: PriceBook) -> None:
    """rerank_usd 1.234e-10 (13 decimals). 10^16 reranks + 10 queries: 1,234,000 + 0.004 =
    1,234,000.004 (the integer product 10^16 x 1234 overflows int64: priced exactly in Python
    ints). 3 queries + 2 reranks in the same batch: 0.0012 + 0.0000000002468 -> 0.0012 (the
    2.468e-10 rounds away at nano-dollars)."""
    t = dt.datetime(2025, 6, 1, tzinfo=UTC)
    rows = [
        {"kind": "retrieval", "ts": t, "queries": 10, "reranks": 10**16},
        {"kind": "retrieval", "ts": t, "queries": 3, "reranks": 2},
    ]
    assert priced(book, rows) == [
        (Decimal("1234000.004"), "unit", False),
        (Decimal("0.0012"), "unit", False),
    ]


def test_units_per_kind(book: PriceBook) -> None:
    """A tool with no name and an unlisted tool: the default 0.002; web_search 0.01; a reported
    cost wins over the unit price (0.5). Escalation 1/3 minute: rounded to 333,333 micro-minutes
    x 0.75 = 0.24999975; 2.5 minutes = 1.875. Outcome and guard rows: 0 (``none``). A kind
    nobody knows: null and unpriced."""
    t = dt.datetime(2025, 6, 1, tzinfo=UTC)
    rows = [
        {"kind": "tool_call", "ts": t, "tool": None},
        {"kind": "tool_call", "ts": t, "tool": "not_listed"},
        {"kind": "tool_call", "ts": t, "tool": "web_search"},
        {"kind": "tool_call", "ts": t, "tool": "web_search", "cost_usd": Decimal("0.5")},
        {"kind": "escalation", "ts": t, "minutes": 1 / 3},
        {"kind": "escalation", "ts": t, "minutes": 2.5},
        {"kind": "task_outcome", "ts": t, "outcome": "accepted"},
        {"kind": "guard", "ts": t},
        {"kind": "telepathy", "ts": t},
    ]
    assert priced(book, rows) == [
        (Decimal("0.002"), "unit", False),
        (Decimal("0.002"), "unit", False),
        (Decimal("0.01"), "unit", False),
        (Decimal("0.5"), "reported", False),
        (Decimal("0.24999975"), "unit", False),
        (Decimal("1.875"), "unit", False),
        (Decimal(0), "none", False),
        (Decimal(0), "none", False),
        (None, "unpriced", True),
    ]


def test_many_model_provider_pairs_are_grouped_by_sorting(book: PriceBook) -> None:
    """Over 32 distinct (model, provider) pairs take the sorting path of the grouping. heavy
    (any provider) at 40 providers, in a shuffled order, each 1,000 in + 1,000 out =
    0.000123456789 + 0.001 -> 0.001123457; 2,000 in, 0 out -> 0.000246914 (the rows of one
    pair must not take another's tokens); a call with no model among them stays unpriced."""
    t = dt.datetime(2025, 6, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for i in (7 * k % 40 for k in range(40)):  # 7 and 40 are coprime: each i once, shuffled
        rows.append(
            {
                "kind": "llm_call",
                "ts": t,
                "model": "heavy",
                "provider": f"p{i:02d}",
                "input_tokens": 1_000 if i % 2 else 2_000,
                "output_tokens": 1_000 if i % 2 else 0,
            }
        )
    rows.append({"kind": "llm_call", "ts": t, "provider": "p00", "input_tokens": 1})
    got = priced(book, rows)
    for row, (cost, source, _) in zip(rows[:-1], got, strict=False):
        odd = int(row["provider"][1:]) % 2
        assert cost == Decimal("0.001123457" if odd else "0.000246914"), row
        assert source == "price"
    assert got[-1] == (None, "unpriced", True)
