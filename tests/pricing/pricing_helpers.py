"""Build event tables with the ledger's input columns for the pricing tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from tailguard.events.schema import INPUT_SCHEMA
from tailguard.pricing import PriceBook, price_table


def events_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A table with every input column; fields a row leaves out are null."""
    filled = [{"event_id": str(i), "customer_id": "c1", **dict(r)} for i, r in enumerate(rows)]
    return pa.Table.from_pylist(filled, schema=INPUT_SCHEMA)


def priced(book: PriceBook, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, str, bool]]:
    """Each row's ``(cost_usd, cost_source, unpriced)`` after ``price_table``.

    Why here: the table tests and the edge tests read a priced table the same way, so the
    three columns they compare against hand-worked values are picked in one place.
    """
    out = price_table(book, events_table(rows))
    return list(
        zip(
            out.column("cost_usd").to_pylist(),
            out.column("cost_source").to_pylist(),
            out.column("unpriced").to_pylist(),
            strict=True,
        )
    )


#: the instant the dated operator price below starts
BOUNDARY = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)

#: gpt-4o's list price (genai-prices, platform.openai.com/docs/pricing) is $2.50 / $10 per Mtok;
#: from ``BOUNDARY`` the operator's contract price, $1.25 / $5 (the gateway's and the SDK's
#: dated-price tests, the price cache's)
DATED_GPT4O = """
[[model]]
provider = "openai"
model = "gpt-4o"
input_mtok = 1.25
output_mtok = 5.0
effective_from = "2027-01-01"
"""
