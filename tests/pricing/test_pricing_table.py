"""price_table: the bulk path, against hand-computed values and, row by row, PriceBook.price."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.errors import UnknownModelError
from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.pricing import PriceBook, price_table
from tests.pricing.pricing_helpers import events_table, priced

UTC = dt.UTC
T0 = dt.datetime(2025, 3, 1, 12, tzinfo=UTC)

PRICES = """
[[model]]
model = "acme-70b"
input_mtok = 1.0
output_mtok = 2.0
cache_read_mtok = 0.25
effective_from = 2025-01-01
[[model]]
model = "acme-70b"
input_mtok = 0.5
output_mtok = 1.0
effective_from = "2025-02-15"
discount = 0.1
[[model]]
model = "fine-grained"
input_mtok = 0.123456789
output_mtok = "0.0000000000005"
[[discount]]
provider = "anthropic"
discount = 0.15
[units]
tool_call_usd = { default = 0.002, web_search = 0.01 }
retrieval_query_usd = 0.0004
rerank_usd = 0.001
escalation_minute_usd = 0.75
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path = tmp_path_factory.mktemp("prices") / "prices.toml"
    path.write_text(PRICES)
    return PriceBook.load(path)


def test_every_kind(book: PriceBook) -> None:
    rows: list[dict[str, Any]] = [
        # 1M uncached input at 0.5 x 0.9 + 1M output at 1.0 x 0.9 = 0.45 + 0.90 = 1.35
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "acme-70b",
            "input_tokens": 1_000_000,
            "output_tokens": 1_000_000,
        },
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "in-house-v0",
            "input_tokens": 5,
            "output_tokens": 5,
        },
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "in-house-v0",
            "input_tokens": 5,
            "output_tokens": 5,
            "cost_usd": Decimal("0.123"),
        },
        {"kind": "tool_call", "ts": T0, "tool": "web_search", "tool_kind": "read"},
        {"kind": "tool_call", "ts": T0, "tool": "crm_update", "tool_kind": "write"},
        {"kind": "tool_call", "ts": T0, "tool": "web_search", "cost_usd": Decimal("0.5")},
        # 3 x 0.0004 + 2 x 0.001 = 0.0032
        {"kind": "retrieval", "ts": T0, "queries": 3, "reranks": 2},
        # 2.5 x 0.75 = 1.875; 0.1 x 0.75 = 0.075
        {"kind": "escalation", "ts": T0, "minutes": 2.5},
        {"kind": "escalation", "ts": T0, "minutes": 0.1},
        {"kind": "task_outcome", "ts": T0, "outcome": "accepted"},
        {"kind": "guard", "ts": T0, "action": "deny", "rule": "r", "amount_usd": Decimal(3)},
        # cache tokens above input tokens break the convention: flagged, not priced negative
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "acme-70b",
            "input_tokens": 5,
            "cache_read_tokens": 6,
            "output_tokens": 0,
        },
    ]
    assert priced(book, rows) == [
        (Decimal("1.35"), "price", False),
        (None, "unpriced", True),  # never a silent zero
        (Decimal("0.123"), "reported", False),
        (Decimal("0.01"), "unit", False),
        (Decimal("0.002"), "unit", False),
        (Decimal("0.5"), "reported", False),
        (Decimal("0.0032"), "unit", False),
        (Decimal("1.875"), "unit", False),
        (Decimal("0.075"), "unit", False),
        (Decimal(0), "none", False),
        (Decimal(0), "none", False),
        (None, "unpriced", True),
    ]


def test_output_has_the_ledger_schema_and_keeps_the_reported_cost(book: PriceBook) -> None:
    rows = [
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "acme-70b",
            "input_tokens": 10,
            "output_tokens": 1,
            "cost_usd": Decimal("0.000000001"),
            "attempt": 2,
            "latency_ms": 12.5,
        },
        {"kind": "llm_call", "ts": T0, "model": "acme-70b", "input_tokens": 10, "output_tokens": 1},
    ]
    out = price_table(book, events_table(rows))
    assert out.schema == LEDGER_SCHEMA
    assert out.column("reported_cost_usd").to_pylist() == [Decimal("1E-9"), None]
    assert out.column("attempt").to_pylist() == [2, None]
    assert out.column("latency_ms").to_pylist() == [12.5, None]


def test_price_change_mid_period_prices_each_call_at_its_date(book: PriceBook) -> None:
    usage = {"kind": "llm_call", "input_tokens": 1_000_000, "output_tokens": 1_000_000}
    rows = [
        {**usage, "model": "acme-70b", "ts": dt.datetime(2024, 12, 31, 23, tzinfo=UTC)},
        {**usage, "model": "acme-70b", "ts": dt.datetime(2025, 2, 14, 23, 59, tzinfo=UTC)},
        {**usage, "model": "acme-70b", "ts": dt.datetime(2025, 2, 15, tzinfo=UTC)},
        {
            **usage,
            "model": "o3",
            "provider": "openai",
            "ts": dt.datetime(2025, 6, 9, 23, tzinfo=UTC),
        },
        {
            **usage,
            "model": "o3",
            "provider": "openai",
            "ts": dt.datetime(2025, 6, 10, 1, tzinfo=UTC),
        },
    ]
    assert [c for c, _, _ in priced(book, rows)] == [
        None,  # before the first override and unknown to genai-prices
        Decimal(3),  # 1.0 + 2.0
        Decimal("1.35"),  # (0.5 + 1.0) x 0.9
        Decimal(50),  # o3 before OpenAI's 2025-06-10 cut: 10 + 40
        Decimal(10),  # after: 2 + 8
    ]


def test_rows_too_big_for_int64_and_rates_too_fine_fall_back_exactly(book: PriceBook) -> None:
    rows = [
        # 1e10 x 0.123456789 / 1e6 = 1,234.56789 (the int64 product would overflow)
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "fine-grained",
            "input_tokens": 10**10,
            "output_tokens": 0,
        },
        # 3e9 output tokens at 5e-13 $/Mtok = 1.5e-9 -> 2 nano-dollars (half-even); rate scale 19
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "fine-grained",
            "input_tokens": 0,
            "output_tokens": 3 * 10**9,
        },
    ]
    assert [c for c, _, _ in priced(book, rows)] == [Decimal("1234.56789"), Decimal("2E-9")]


def test_chunked_empty_and_sparse_inputs(book: PriceBook) -> None:
    rows = [
        {
            "kind": "llm_call",
            "ts": T0,
            "model": "acme-70b",
            "input_tokens": 1_000_000,
            "output_tokens": 0,
        },
        {"kind": "tool_call", "ts": T0, "tool": "web_search"},
    ]
    table = events_table(rows)
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1)])
    assert price_table(book, chunked).column("cost_usd").to_pylist() == [
        Decimal("0.45"),
        Decimal("0.01"),
    ]
    # reported costs read from sliced chunks (non-zero array offsets)
    rep = events_table(
        [{"kind": "tool_call", "ts": T0, "cost_usd": Decimal(f"{i}.000000007")} for i in range(5)]
    )
    sliced = pa.concat_tables([rep.slice(0, 2), rep.slice(3, 2)])
    assert price_table(book, sliced).column("cost_usd").to_pylist() == [
        Decimal(f"{i}.000000007") for i in (0, 1, 3, 4)
    ]
    empty = price_table(book, table.slice(0, 0))
    assert empty.num_rows == 0 and empty.schema == LEDGER_SCHEMA
    sparse = table.select(
        [
            "event_id",
            "kind",
            "ts",
            "customer_id",
            "model",
            "input_tokens",
            "output_tokens",
            "tool",
            "cost_usd",
        ]
    )
    assert price_table(book, sparse).column("cost_usd").to_pylist() == [
        Decimal("0.45"),
        Decimal("0.01"),
    ]


# ----------------------------------------------------------------------------- property
MODELS = [
    ("acme-70b", None),  # override history with a discount
    ("fine-grained", None),  # rates beyond int64 scale: Decimal path
    ("gpt-4o-2024-08-06", "openai"),
    ("gpt-4o-mini", None),
    ("o3", "openai"),  # genai-prices price change 2025-06-10
    ("claude-sonnet-4-5", "anthropic"),  # 200k context tier, 15% discount
    ("claude-3-5-haiku-latest", None),
    ("claude-sonnet-4-6", "anthropic"),  # dated price 2026-03-13
    ("deepseek-chat", "deepseek"),  # off-peak time-of-day prices
    ("deepseek-v4-flash", "deepseek"),  # dated and time-of-day
    ("qwen/qwen3-coder-flash", "openrouter"),  # two context tiers
    ("sonar", "perplexity"),  # a per-request fee
    ("gemini-2.5-pro", "google"),  # tiered
    ("in-house-v0", None),  # unknown
    ("gpt-4o", "my-proxy"),  # unknown provider
]


@st.composite
def llm_rows(draw: st.DrawFn) -> dict[str, Any]:
    model, provider = draw(st.sampled_from(MODELS))
    inp = draw(st.one_of(st.integers(0, 2_000), st.integers(0, 600_000)))
    cr = draw(st.integers(0, inp))
    cw = draw(st.integers(0, inp - cr))
    seconds = draw(st.integers(0, 2 * 365 * 86_400))
    return {
        "kind": "llm_call",
        "ts": dt.datetime(2025, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=seconds),
        "model": model,
        "provider": provider,
        "input_tokens": inp,
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "output_tokens": draw(st.integers(0, 100_000)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(llm_rows(), min_size=1, max_size=30))
def test_price_table_equals_price_row_by_row(book: PriceBook, rows: list[dict[str, Any]]) -> None:
    got = price_table(book, events_table(rows)).column("cost_usd").to_pylist()
    for row, cost in zip(rows, got, strict=True):
        args = {k: v for k, v in row.items() if k not in ("kind", "ts")}
        try:
            expected = book.price(**args, at=row["ts"]).cost_usd
        except UnknownModelError:
            expected = None
        assert cost == expected, row


def test_price_table_never_calls_genai_prices_per_row(
    book: PriceBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    import genai_prices.types as gp

    calls = 0
    real = gp.ModelPrice.calc_price

    def counting(self: gp.ModelPrice, usage: object) -> Any:
        nonlocal calls
        calls += 1
        return real(self, usage)

    monkeypatch.setattr(gp.ModelPrice, "calc_price", counting)
    rows = [
        {
            "kind": "llm_call",
            "ts": T0 + dt.timedelta(minutes=i),
            "model": "gpt-4o-mini",
            "provider": "openai",
            "input_tokens": i,
            "output_tokens": i,
        }
        for i in range(5_000)
    ]
    price_table(PriceBook.load(), events_table(rows))
    assert calls <= 7  # one probe set (7 usages) for the one (provider, model, window)
