"""Names the simulator emits: models per tier and workload, features, tools, outcome rates.

Kept apart from the generator so the product being simulated can be read (and changed) in one
place. Model names are ones genai-prices knows, with their provider, so ingest prices every call.
"""

from __future__ import annotations

import numpy as np

from tailguard.simulate import params
from tailguard.vocabulary import OUTCOMES as OUTCOMES
from tailguard.vocabulary import TIERS

MODELS: tuple[str, ...] = tuple(params.PRICES)
PROVIDERS: tuple[str, ...] = tuple(sorted({v[0] for v in params.PRICES.values()}))
MODEL_PROVIDER: np.ndarray = np.array([PROVIDERS.index(params.PRICES[m][0]) for m in MODELS])
M = {m: i for i, m in enumerate(MODELS)}
PLANNER = M["o3-mini"]
#: the model reasoning-heavy customers run every call on, with extended thinking
DEEP = M["claude-sonnet-4-20250514"]
DOWNGRADE = "gpt-4o-mini"

#: price arrays (USD per token) indexed by model code
PRICE_IN = np.array([params.PRICES[m][1] for m in MODELS]) / 1e6
PRICE_OUT = np.array([params.PRICES[m][2] for m in MODELS]) / 1e6
PRICE_CR = np.array([params.PRICES[m][3] for m in MODELS]) / 1e6
PRICE_CW = np.array([params.PRICES[m][4] for m in MODELS]) / 1e6
#: Anthropic needs explicit cache writes (charged); OpenAI caches automatically (no write)
WRITES_CACHE = np.array([params.PRICES[m][0] == "anthropic" for m in MODELS])
#: decode speed, ms per output token (small models are faster)
MS_PER_TOKEN = np.array(
    [
        {
            "gpt-4o-mini": 8.0,
            "claude-3-5-haiku-20241022": 9.0,
            "o3-mini": 7.0,
        }.get(m, 14.0)
        for m in MODELS
    ]
)

#: model choice per (tier, workload): list of (model, probability); the eight-KPI framework's tier
#: policy: free on a small model, pro and team on Sonnet-class, enterprise routed.
_ROUTES: dict[str, dict[str, list[tuple[str, float]]]] = {
    "free": {
        "chat": [("gpt-4o-mini", 1.0)],
        "agent": [("gpt-4o-mini", 1.0)],
        "rag": [("gpt-4o-mini", 1.0)],
    },
    "pro": {
        "chat": [("gpt-4o-mini", 0.4), ("claude-3-5-haiku-20241022", 0.3), ("gpt-4o", 0.3)],
        "agent": [("claude-3-5-sonnet-20241022", 0.6), ("gpt-4o", 0.4)],
        "rag": [("gpt-4o-mini", 0.4), ("claude-3-5-haiku-20241022", 0.3), ("gpt-4o", 0.3)],
    },
    "team": {
        "chat": [("gpt-4o", 0.5), ("claude-3-5-haiku-20241022", 0.3), ("gpt-4o-mini", 0.2)],
        "agent": [("claude-3-5-sonnet-20241022", 0.4), ("claude-sonnet-4-20250514", 0.6)],
        "rag": [("gpt-4o", 0.5), ("claude-3-5-haiku-20241022", 0.5)],
    },
    "enterprise": {
        "chat": [
            ("gpt-4o", 0.5),
            ("claude-sonnet-4-20250514", 0.3),
            ("claude-3-5-haiku-20241022", 0.2),
        ],
        "agent": [("claude-sonnet-4-20250514", 1.0)],
        "rag": [("gpt-4o", 0.6), ("claude-sonnet-4-20250514", 0.4)],
    },
    "custom": {
        "chat": [("gpt-4o-mini", 0.7), ("gpt-4o", 0.3)],
        "agent": [("claude-sonnet-4-20250514", 0.7), ("gpt-4o", 0.3)],
        "rag": [("gpt-4o-mini", 0.5), ("gpt-4o", 0.5)],
    },
}
#: the budget sibling each model is routed to as cost optimisations ship (the cost-per-resolved-task
#: article's drift)
_CHEAPER = {
    "gpt-4o": "gpt-4o-mini",
    "claude-3-5-sonnet-20241022": "claude-3-5-haiku-20241022",
    "claude-sonnet-4-20250514": "claude-3-5-haiku-20241022",
}
CHEAPER = np.array([M[_CHEAPER.get(m, m)] for m in MODELS])
#: the same map by name, for a policy's ``degrade_to``
DOWNGRADE_TO: dict[str, str] = dict(_CHEAPER)
TIER_ORDER = TIERS
WL_ORDER = ("chat", "agent", "rag")


def _route_matrix() -> np.ndarray:
    """(tier, workload, model) probabilities."""
    r = np.zeros((len(TIER_ORDER), len(WL_ORDER), len(MODELS)))
    for ti, t in enumerate(TIER_ORDER):
        for wi, w in enumerate(WL_ORDER):
            for m, p in _ROUTES[t][w]:
                r[ti, wi, M[m]] = p
    return r


ROUTES = _route_matrix()

#: two features per workload (the product surfaces making calls)
FEATURES: tuple[str, ...] = (
    "support_chat",
    "assistant",
    "ticket_agent",
    "research_agent",
    "doc_qa",
    "kb_search",
)
#: system prompt tokens per feature (the shared, cacheable prefix)
SYSTEM_PROMPT = np.array([900, 600, 12000, 10000, 1500, 1200])

#: tools: name, kind (0 read, 1 write), median latency ms; results are appended to the context
TOOLS: tuple[str, ...] = (
    "db_read",
    "web_search",
    "crm_read",
    "file_search",
    "crm_write",
    "ticket_update",
    "email_send",
)
TOOL_KIND = np.array([0, 0, 0, 0, 1, 1, 1])
TOOL_P = np.array([0.38, 0.1, 0.18, 0.12, 0.1, 0.08, 0.04])
TOOL_LATENCY_MS = np.array([120.0, 1400.0, 300.0, 450.0, 350.0, 300.0, 600.0])

#: outcome rates per workload for the base population (before the drift and the customer's
#: difficulty): about one task in six does not resolve, and one in a hundred goes to a human (the
#: product answers most tasks itself; a human reviews the few it cannot, see prices.py). Hand-set:
#: no source document gives rates; they are chosen so that LLM calls stay the main cost line and
#: cost per resolved task lands at 3-8x cost per call (the cost-per-resolved-task article band;
#: docs/simulator.md).
OUTCOME_P = np.array(
    [
        [0.85, 0.06, 0.06, 0.01, 0.01, 0.01],  # chat
        [0.83, 0.06, 0.03, 0.03, 0.04, 0.01],  # agent
        [0.85, 0.07, 0.06, 0.01, 0.00, 0.01],  # rag
    ]
)
#: failure-mode magnets: most tasks fail, one in sixteen goes to a human
OUTCOME_P_MAGNET = np.array([0.10, 0.19, 0.17, 0.22, 0.26, 0.06])

GUARD_ACTIONS: tuple[str, ...] = ("soft_threshold", "deny", "degrade", "overage")
#: the rule names the guard engine writes (``tailguard.guard.engine``): a soft-threshold alert,
#: the hard limit (denied on a hard_cap tier, degraded past it on a soft_cap_degrade tier), and
#: the pay-as-you-go overage it meters
GUARD_RULES: tuple[str, ...] = ("soft_threshold", "hard_limit", "payg")
