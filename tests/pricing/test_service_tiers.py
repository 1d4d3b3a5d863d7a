"""A service tier pricing does not know is never priced at the standard rates.

The tiers pricing knows (``tailguard.vocabulary.SERVICE_TIERS``): ``standard`` and its other
names ``default`` (OpenAI's response value) and ``auto`` (the request's default), ``batch``,
``flex``, ``priority`` and ``scale`` (OpenAI's, billed by contract: unpriced without an operator
entry for it). Any other value (a typo, a tier a provider adds later) has no price tailguard can
vouch for.

The call used, gpt-4o-mini (platform.openai.com/docs/pricing: $0.15 input, $0.60 output per
Mtok; Batch API half, $0.075 / $0.30), 1,000,000 input and 100,000 output tokens, by hand:

    standard  1,000,000 x 0.15  + 100,000 x 0.60 = 150,000 + 60,000 = $0.21
    batch     1,000,000 x 0.075 + 100,000 x 0.30 =  75,000 + 30,000 = $0.105
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.errors import ArgumentError, NoTierPriceError, PricingError
from tailguard.pricing import PriceBook
from tests.pricing.pricing_helpers import priced

AT = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
MINI = {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1_000_000,
        "output_tokens": 100_000}  # fmt: skip


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def _row(**kw: Any) -> dict[str, Any]:
    return {"kind": "llm_call", "ts": AT, **MINI, **kw}


def test_an_unknown_tier_is_unpriced_in_bulk(book: PriceBook) -> None:
    """In one table: standard, batch, a known alias, an unknown tier (a typo) and OpenAI's Scale
    Tier (billed by contract units, no list price): the last two are null and unpriced, the rest
    keep their own prices."""
    rows = [
        _row(),
        _row(service_tier="batch"),
        _row(service_tier="Default"),
        _row(service_tier="bogus"),
        _row(service_tier="scale"),
    ]
    assert priced(book, rows) == [
        (Decimal("0.21"), "price", False),
        (Decimal("0.105"), "price", False),
        (Decimal("0.21"), "price", False),
        (None, "unpriced", True),
        (None, "unpriced", True),
    ]


def test_an_unknown_tier_has_no_price(book: PriceBook) -> None:
    """``resolve`` says "no price" (as for an unknown model); ``price`` refuses the argument by
    name and lists the tiers it knows."""
    assert book.resolve("gpt-4o-mini", provider="openai", at=AT, service_tier="bogus") is None
    with pytest.raises(ArgumentError) as err:
        book.price(**MINI, service_tier="bogus", at=AT)
    assert err.value.argument == "service_tier"
    assert str(err.value) == (
        "service_tier: 'bogus' is not a service tier tailguard can price "
        "(known: standard, default, auto, batch, flex, priority, scale)"
    )
    # the known ones still price, in any case
    assert book.price(**MINI, service_tier="BATCH", at=AT).cost_usd == Decimal("0.105")


def test_an_unknown_tier_is_unpriced_even_with_an_operator_price(tmp_path: Path) -> None:
    """An operator's price for the model ($1 / $4 per Mtok: 1,000,000 x 1 + 100,000 x 4 =
    $1.40) is its standard price; it says nothing of a tier nobody knows."""
    path = tmp_path / "p.toml"
    path.write_text(
        '[[model]]\nprovider = "openai"\nmodel = "gpt-4o-mini"\ninput_mtok = 1\noutput_mtok = 4\n'
    )
    book = PriceBook.load(path)
    assert priced(book, [_row(), _row(service_tier="bogus")]) == [
        (Decimal("1.4"), "price", False),
        (None, "unpriced", True),
    ]


def test_an_event_file_with_an_unknown_tier_is_kept_unpriced(tmp_path: Path) -> None:
    """``ingest`` keeps the line (the tier is an open string, like the provider: a tier a
    provider adds later must not lose the call) and stores it unpriced: cost null."""
    import json

    from tailguard.ledger import Ledger
    from tailguard.ledger.ingest import ingest

    base = {"kind": "llm_call", "ts": "2025-08-01T00:00:00+00:00", "customer_id": "acme", **MINI}
    path = tmp_path / "ev.jsonl"
    path.write_text(
        json.dumps({"event_id": "e1", **base, "service_tier": "batch"})
        + "\n"
        + json.dumps({"event_id": "e2", **base, "service_tier": "bogus"})
        + "\n"
    )
    ingest([path], tmp_path / "L")
    con = Ledger(tmp_path / "L").connect()
    try:
        got = con.execute(
            "SELECT event_id, cost_usd, cost_source, unpriced FROM events ORDER BY event_id"
        ).fetchall()
    finally:
        con.close()
    assert got == [("e1", Decimal("0.105"), "price", False), ("e2", None, "unpriced", True)]


def test_a_search_of_a_call_with_invalid_usage_is_unpriced(tmp_path: Path) -> None:
    """A ``tool_call`` marked ``usage_invalid`` (a web search of a call whose usage could not be
    trusted) is unpriced like its call, never its unit price; with ``ok`` or no status it pays
    ``tool_call_usd`` (web_search $0.01, default $0.002); a stated cost still wins."""
    path = tmp_path / "p.toml"
    path.write_text("[units]\ntool_call_usd = { default = 0.002, web_search = 0.01 }\n")
    book = PriceBook.load(path)
    search = {"kind": "tool_call", "ts": AT, "tool": "web_search", "tool_kind": "read"}
    rows = [
        {**search, "status": "usage_invalid"},
        {**search, "status": "ok"},
        {**search},
        {**search, "tool": "crm", "status": "usage_invalid"},
        {**search, "status": "usage_invalid", "cost_usd": Decimal("0.03")},
    ]
    assert priced(book, rows) == [
        (None, "unpriced", True),
        (Decimal("0.01"), "unit", False),
        (Decimal("0.01"), "unit", False),
        (None, "unpriced", True),
        (Decimal("0.03"), "reported", False),
    ]


#: Claude Sonnet 4.5 (platform.claude.com/docs/en/about-claude/pricing): $3 input, $15 output
#: per Mtok; 10,000 in and 500 out = 30,000 + 7,500 = $0.0375 at the standard tier
SONNET = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input_tokens": 10_000,
          "output_tokens": 500}  # fmt: skip


def test_anthropic_priority_is_a_contract_price(book: PriceBook, tmp_path: Path) -> None:
    """Anthropic bills its Priority Tier against a capacity commitment (platform.claude.com/
    docs/en/api/service-tiers: "Available only to organizations with an existing capacity
    commitment"; no per-token list price, and genai-prices has no priority variant for
    Anthropic): a priority call is unpriced, not $0.0375 at the standard rates. OpenAI's
    priority has a list price and keeps it (gpt-5-mini, $0.45 / $3.60 per Mtok from
    2026-10-12 in genai-prices: 4,000 x 0.45 + 900 x 3.60 = $0.00504)."""
    new = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    sonnet = {"kind": "llm_call", "ts": new, **SONNET}
    mini = {"kind": "llm_call", "ts": new, "provider": "openai", "model": "gpt-5-mini",
            "input_tokens": 4_000, "output_tokens": 900}  # fmt: skip
    no_provider = {**sonnet, "provider": None}  # genai-prices finds Anthropic by the name
    rows = [
        sonnet,
        {**sonnet, "service_tier": "priority"},
        {**no_provider, "service_tier": "Priority"},
        {**mini, "service_tier": "priority"},
    ]
    assert priced(book, rows) == [
        (Decimal("0.0375"), "price", False),
        (None, "unpriced", True),
        (None, "unpriced", True),
        (Decimal("0.00504"), "price", False),
    ]
    assert book.resolve("claude-sonnet-4-5", at=new, service_tier="priority") is None
    with pytest.raises(PricingError, match="priority tier: contract price"):
        book.price(**SONNET, service_tier="priority", at=new)
    # an operator's price for the model is its standard price ($1 / $4: 10,000 x 1 + 500 x 4
    # = $0.012), not the contract's
    path = tmp_path / "p.toml"
    path.write_text('[[model]]\nmodel = "claude-sonnet-4-5"\ninput_mtok = 1\noutput_mtok = 4\n')
    assert priced(PriceBook.load(path), rows[:2]) == [
        (Decimal("0.012"), "price", False),
        (None, "unpriced", True),
    ]


def test_an_operator_price_is_the_standard_tiers(tmp_path: Path) -> None:
    """An operator's ``[[model]]`` price for gpt-5-mini ($0.20 / $1.60 per Mtok, negotiated)
    has no tier in it: it prices the standard tier, and batch at half, the documented discount
    (4,000 in, 900 out: 800 + 1,440 = $0.00224; batch $0.00112). A flex or priority call has
    no operator price (the standard one is not the tier's: OpenAI lists priority at 1.8x
    standard, $0.45 / $3.60) and is unpriced, never $0.00224 in silence; before, it was
    priced at the standard entry and even labelled with the tier."""
    path = tmp_path / "p.toml"
    path.write_text(
        '[[model]]\nprovider = "openai"\nmodel = "gpt-5-mini"\ninput_mtok = 0.2\n'
        "output_mtok = 1.6\n"
    )
    book = PriceBook.load(path)
    new = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    call = {"kind": "llm_call", "ts": new, "provider": "openai", "model": "gpt-5-mini",
            "input_tokens": 4_000, "output_tokens": 900}  # fmt: skip
    rows = [{**call, "service_tier": t} for t in (None, "batch", "flex", "priority")]
    assert priced(book, rows) == [
        (Decimal("0.00224"), "price", False),
        (Decimal("0.00112"), "price", False),
        (None, "unpriced", True),
        (None, "unpriced", True),
    ]
    assert book.resolve("gpt-5-mini", provider="openai", at=new, service_tier="flex") is None
    with pytest.raises(NoTierPriceError, match="standard tier's"):
        book.price(**{k: v for k, v in call.items() if k not in ("kind", "ts")},
                   service_tier="priority", at=new)  # fmt: skip
