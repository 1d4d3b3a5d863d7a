"""The guard: per-customer budgets, caps, rate limits and ceilings, decided before every call.

::

    from tailguard.guard import Guard, Request, load_policy
    guard = Guard(load_policy("policy.toml"))          # in process; or store=RedisStore(url)
    d = guard.check(Request("acme", Decimal("0.012"), model="gpt-4o", input_tokens=900,
                            max_output_tokens=1000, session_id="s1", task_id="t1"))
    if d.allowed:                      # allow, or degrade: call d.model instead
        ...call the provider with d.model...
        guard.settle(d.reservation, actual_cost_usd, input_tokens=..., output_tokens=...)
        # or guard.release(d.reservation) if the call failed
    else:                              # deny (d.message, d.retry_after) or kill
        ...

See ``docs/guard.md`` for the policy file, the decision rules and the overspend bound. Inside:
``engine`` (the public ``Guard``, thin sync / async shells) over ``planning`` (a request to the
store's atomic plan), ``deciding`` (the store's answer to a decision, and events) and
``failover`` (the fail mode while a shared store is down, and the catch-up after it); ``stores``
holds the memory and Redis stores, which share one shape.
"""

from __future__ import annotations

from typing import Any

from tailguard.customers import CustomerInfo, customers_from_ledger
from tailguard.guard.engine import Guard
from tailguard.guard.policy import (
    Limits,
    Policy,
    PolicyError,
    Settings,
    load_policy,
    parse_policy,
)
from tailguard.guard.stores.memory import MemoryStore
from tailguard.guard.types import Decision, Request, Reservation, Settlement

__all__ = [
    "CustomerInfo",
    "Decision",
    "Guard",
    "Limits",
    "MemoryStore",
    "Policy",
    "PolicyError",
    "RedisStore",
    "Request",
    "Reservation",
    "Settings",
    "Settlement",
    "StoreUnavailableError",
    "customers_from_ledger",
    "load_policy",
    "parse_policy",
]


def __getattr__(name: str) -> Any:
    if name in ("RedisStore", "StoreUnavailableError"):
        from tailguard.guard.stores import redis as _redis

        return getattr(_redis, name)
    raise AttributeError(name)
