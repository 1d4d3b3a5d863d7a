"""The product's vocabulary: every closed set of names, defined once.

Events, pricing, the ledger, the guard, the simulator and the reports all speak of tiers,
segments, event kinds, outcomes, workload classes, diagnosed shapes, guard actions and rule
names. Each set lives here and everything else imports it, so a name added or renamed in one
place cannot silently disagree with another (issue 15: ``TIERS`` was defined three times, the
simulator wrote guard rule names the engine never writes).

Each set is a ``Literal`` type (what msgspec validates and a type checker reads) and the tuple
of its values, taken from the type with ``get_args``: one spelling for both. Tuple order is
part of the contract where arrays are indexed by it (the simulator's tier and shape codes).

No imports from the rest of the package: anything may import this module.
"""

from __future__ import annotations

from typing import Literal, get_args

# --- customers -----------------------------------------------------------------------------

Tier = Literal["free", "pro", "team", "enterprise", "custom"]
#: the plans a customer can be on (``custom``: usage based, a monthly commit)
TIERS: tuple[str, ...] = get_args(Tier)

Segment = Literal["smb", "mid_market", "enterprise", "usage_based"]
#: the market segments margins are judged by
SEGMENTS: tuple[str, ...] = get_args(Segment)

# --- events --------------------------------------------------------------------------------

Kind = Literal["llm_call", "tool_call", "retrieval", "escalation", "task_outcome", "guard"]
#: the event kinds of DESIGN.md, in the order the ledger groups them
KINDS: tuple[str, ...] = get_args(Kind)

Workload = Literal["chat", "agent", "rag", "other"]
#: workload classes an event may name (``other``: none of the three)
WORKLOADS: tuple[str, ...] = get_args(Workload)

Status = Literal["ok", "error", "usage_invalid"]
#: an LLM or tool call's status. ``usage_invalid``: answered, but the provider's usage broke
#: the ledger's rules or was missing; recorded with the usage repaired
#: (``tailguard.gateway.usage``) and left unpriced
STATUSES: tuple[str, ...] = get_args(Status)

ServiceTier = Literal["standard", "default", "auto", "batch", "flex", "priority", "scale"]
#: the service tiers an LLM call is priced at (``tailguard.pricing``): ``standard`` and its other
#: names ``default`` (OpenAI's response value) and ``auto`` (the request's default); ``batch``
#: (OpenAI's Batch API, Anthropic's Message Batches); ``flex``; ``priority``; ``scale`` (OpenAI's
#: Scale Tier, billed by contract: priced only by an operator ``[[model]]`` entry for the tier).
#: An event may carry any other string (a tier a provider adds later must not lose the call): it
#: is unpriced
SERVICE_TIERS: tuple[str, ...] = get_args(ServiceTier)

ToolKind = Literal["read", "write"]
TOOL_KINDS: tuple[str, ...] = get_args(ToolKind)

Outcome = Literal["accepted", "rejected", "abandoned", "timed_out", "tool_error", "escalated"]
#: how a task ended; only ``accepted`` is a success
OUTCOMES: tuple[str, ...] = get_args(Outcome)

# --- diagnosis -----------------------------------------------------------------------------

Shape = Literal[
    "long_sessions",
    "tool_fanout",
    "oversized_prompts",
    "failure_magnet",
    "high_frequency",
    "low_cache_hit",
    "reasoning_heavy",
]
#: the cost shapes a diagnosis names (and the simulator plants), in the order of the
#: simulator's shape bits
SHAPES: tuple[str, ...] = get_args(Shape)

# --- the guard -----------------------------------------------------------------------------

GuardAction = Literal["degrade", "deny", "kill", "overage", "soft_threshold", "fail_open"]
#: what a ``guard`` event says the guard did
GUARD_ACTIONS: tuple[str, ...] = get_args(GuardAction)

GuardRule = Literal[
    "soft_threshold",
    "hard_limit",
    "payg",
    "session_velocity",
    "session_killed",
    "store_unavailable",
    "rpm",
    "user_rpm",
    "tpm",
    "max_input_tokens",
    "task_max_llm_calls",
    "task_max_cost_usd",
    "invalid_request",
    "guard_unavailable",
    "guard_error",
]
#: the rule a ``guard`` event or a guard decision names: the soft-threshold alert, the hard
#: limit (denied, or degraded past it), the pay-as-you-go overage metered past the limit, a
#: session over its velocity limit (killed) and its later calls (denied), the store down (failed
#: open); the rate limits (requests a minute for the account, per user, tokens a minute), a
#: prompt over the per-prompt ceiling, a task over its step or dollar ceiling, a request the
#: guard cannot plan (numbers out of range), the store down with ``fail_closed`` (denied), and
#: an unexpected guard failure (denied or allowed by the fail mode). The guard's code is
#: scanned for every rule it writes (tests/events/test_vocabulary.py)
GUARD_RULES: tuple[str, ...] = get_args(GuardRule)

Overage = Literal["hard_cap", "soft_cap_degrade", "payg"]
#: what happens at a tier's hard limit: deny; degrade to cheaper models; let calls go on and
#: meter the overage
OVERAGES: tuple[str, ...] = get_args(Overage)

#: the overage pattern each tier has in the example policy and the simulated product (one per
#: tier; a policy file may choose otherwise)
DEFAULT_OVERAGE: dict[str, str] = {
    "free": "hard_cap",
    "pro": "soft_cap_degrade",
    "team": "payg",
    "enterprise": "payg",
    "custom": "payg",
}
