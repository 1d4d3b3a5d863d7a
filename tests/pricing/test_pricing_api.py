"""The public API of tailguard.pricing does not drift (the ledger ingest calls exactly this)."""

from __future__ import annotations

import inspect

import tailguard.pricing as pricing


def test_public_names() -> None:
    assert pricing.__all__ == sorted(pricing.__all__)
    assert set(pricing.__all__) == {
        "ModelPrice",
        "PriceBook",
        "PriceQuote",
        "PriceTier",
        "UnitCosts",
        "price_table",
    }


def test_signatures_are_keyword_only() -> None:
    price = inspect.signature(pricing.PriceBook.price)
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY
        for name, p in price.parameters.items()
        if name != "self"
    )
    resolve = inspect.signature(pricing.PriceBook.resolve)
    assert [n for n, p in resolve.parameters.items() if p.kind is p.KEYWORD_ONLY] == [
        "provider",
        "at",
        "service_tier",
    ]
    assert list(inspect.signature(pricing.price_table).parameters) == ["book", "table"]
