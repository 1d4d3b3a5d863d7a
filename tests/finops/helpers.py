"""Shared by the FinOps tests on both engines (tests/finops, tests/clickhouse)."""

from __future__ import annotations


def priced_call(eid: str, day: str, customer: str, cost: str, provider: str = "openai") -> dict:
    """An ``llm_call`` at noon UTC on ``day`` whose cost is given (``cost_usd``), so a
    reconcile test's attributed figures are the costs written here, not a price book's."""
    return {
        "kind": "llm_call", "event_id": eid, "ts": f"{day}T12:00:00Z", "customer_id": customer,
        "provider": provider, "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1,
        "cost_usd": cost,
    }  # fmt: skip
