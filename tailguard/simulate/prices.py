"""The simulated operator's price file: what tools, retrievals and human escalations cost.

genai-prices knows what tokens cost; it cannot know what the operator pays for a web search, a
vector query, a rerank or a minute of a support agent. Without these the fully loaded cost of a
task is only its LLM cost, and the human escalation (the per-customer economics essay: "most
expensive line item in many products") costs nothing. ``simulate()`` writes
:func:`demo_prices_toml` as ``prices.toml`` next to the events; ingest it with ``--prices``
(``PriceBook.load(result.prices_path)``).

The unit prices are public list prices of the kind of service each tool stands for (late 2025):

==================  ==========  ===========================================================
unit                USD         what it stands for
==================  ==========  ===========================================================
web_search          0.010       a search API call (Brave / Tavily / Bing tiers: $5-10 per 1k)
file_search         0.0025      a hosted file-search call ($2.50 per 1k calls)
email_send          0.001       a transactional e-mail
crm_read/crm_write  0.0002      a metered CRM API call
db_read, others     0.0001      the default: internal calls (compute, egress)
retrieval query     0.0004      an embedding plus a managed vector-database query
rerank              0.002       a hosted rerank call ($2 per 1k searches)
escalation minute   0.50        a support agent's fully loaded cost ($30 an hour: the US median
                                customer-service wage, $19.08 an hour in BLS OES May 2023, x 1.5)
==================  ==========  ===========================================================

The simulator uses the same numbers (``UNIT_USD``) for its own estimates (budgets, planted
customers, ``truth.json``), so those agree with what ingest computes with this file.
"""

from __future__ import annotations

#: USD per call of each tool the simulator emits; tools not listed cost ``default``
TOOL_USD: dict[str, float] = {
    "default": 0.0001,
    "web_search": 0.01,
    "file_search": 0.0025,
    "email_send": 0.001,
    "crm_read": 0.0002,
    "crm_write": 0.0002,
}
RETRIEVAL_QUERY_USD = 0.0004
RERANK_USD = 0.002
ESCALATION_MINUTE_USD = 0.5

#: the four unit costs in one mapping (the ``[units]`` table)
UNIT_USD: dict[str, object] = {
    "tool_call_usd": TOOL_USD,
    "retrieval_query_usd": RETRIEVAL_QUERY_USD,
    "rerank_usd": RERANK_USD,
    "escalation_minute_usd": ESCALATION_MINUTE_USD,
}


def tool_usd(tools: tuple[str, ...]) -> list[float]:
    """USD per call of each tool in ``tools`` (the catalogue's order)."""
    return [TOOL_USD.get(t, TOOL_USD["default"]) for t in tools]


def demo_prices_toml() -> str:
    """The operator override file of the simulated product (``docs/pricing.md`` format)."""
    tools = ", ".join(f"{k} = {v!r}" for k, v in TOOL_USD.items())
    return (
        "# tailguard simulate: the simulated operator's unit costs (docs/pricing.md).\n"
        "# Token prices come from genai-prices; these are the costs that are not tokens.\n"
        "[units]\n"
        f"tool_call_usd = {{ {tools} }}\n"
        f"retrieval_query_usd = {RETRIEVAL_QUERY_USD!r}\n"
        f"rerank_usd = {RERANK_USD!r}\n"
        f"escalation_minute_usd = {ESCALATION_MINUTE_USD!r}\n"
    )
