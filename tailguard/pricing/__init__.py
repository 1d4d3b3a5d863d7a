"""Pricing: what a usage record costs at its own time.

genai-prices' bundled snapshot is the source; an operator file (``docs/pricing.md``) adds models,
price histories, negotiated discounts and the unit costs of tools, retrievals and escalations.

- ``PriceBook.load(path)`` then ``book.price(...)`` prices one call (``PriceQuote``);
- ``book.resolve(model, provider=..., at=...)`` gives the ``ModelPrice`` in force and its window;
- ``price_table(book, table)`` prices an Arrow table of events in bulk (vectorised).
"""

from tailguard.pricing._book import ModelPrice, PriceBook, PriceQuote, PriceTier
from tailguard.pricing._overrides import UnitCosts
from tailguard.pricing._table import price_table

__all__ = ["ModelPrice", "PriceBook", "PriceQuote", "PriceTier", "UnitCosts", "price_table"]
