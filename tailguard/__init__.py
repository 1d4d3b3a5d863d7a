"""tailguard: per-customer unit economics for LLM spend, and the guardrails to act on it.

The public API, re-exported here and imported lazily (``import tailguard`` loads nothing
heavy)::

    from tailguard import Ledger, ingest, PriceBook, simulate, customer_report, Guard

Every report takes the ledger first (a ``Ledger``, its directory, an open connection, or a
``QueryContext`` to share one connection between reports) and its window as ``window=``::

    with QueryContext.open("ledger/") as ctx:
        panel, table = kpis(ctx, policy=load_policy("policy.toml")), margins(ctx)

Flow (docs/architecture in DESIGN.md): events → pricing → ledger → analytics → report; the guard
decides before a call and settles after it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "BudgetExceeded": "tailguard.sdk",
    "ConfigError": "tailguard.errors",
    "Decision": "tailguard.guard",
    "Event": "tailguard.events",
    "Guard": "tailguard.guard",
    "InputError": "tailguard.errors",
    "Ledger": "tailguard.ledger",
    "PriceBook": "tailguard.pricing",
    "QueryContext": "tailguard.analytics.context",
    "Request": "tailguard.guard",
    "TailguardError": "tailguard.errors",
    "UnknownModelError": "tailguard.errors",
    "Window": "tailguard.analytics.period",
    "anomalies": "tailguard.analytics.anomalies",
    "concentration": "tailguard.analytics.concentration",
    "connect": "tailguard.sdk",
    "customer_report": "tailguard.analytics.report",
    "decide": "tailguard.analytics.decide",
    "diagnose": "tailguard.analytics.diagnose",
    "digest": "tailguard.analytics.digest",
    "entity_totals": "tailguard.analytics.totals",
    "ingest": "tailguard.ledger",
    "kpis": "tailguard.analytics.kpis",
    "load_policy": "tailguard.guard",
    "margins": "tailguard.analytics.margins",
    "outcomes": "tailguard.analytics.outcomes",
    "price_table": "tailguard.pricing",
    "read_events": "tailguard.events.readers",
    "renewal": "tailguard.analytics.renewal",
    "simulate": "tailguard.simulate",
    "window": "tailguard.analytics.period",
    "workload": "tailguard.analytics.workload",
}

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "Decision",
    "Event",
    "Guard",
    "InputError",
    "Ledger",
    "PriceBook",
    "QueryContext",
    "Request",
    "TailguardError",
    "UnknownModelError",
    "Window",
    "anomalies",
    "concentration",
    "connect",
    "customer_report",
    "decide",
    "diagnose",
    "digest",
    "entity_totals",
    "ingest",
    "kpis",
    "load_policy",
    "margins",
    "outcomes",
    "price_table",
    "read_events",
    "renewal",
    "simulate",
    "window",
    "workload",
]

if TYPE_CHECKING:  # pragma: no cover
    from tailguard.analytics.anomalies import anomalies
    from tailguard.analytics.concentration import concentration
    from tailguard.analytics.context import QueryContext
    from tailguard.analytics.decide import decide
    from tailguard.analytics.diagnose import diagnose
    from tailguard.analytics.digest import digest
    from tailguard.analytics.kpis import kpis
    from tailguard.analytics.margins import margins
    from tailguard.analytics.outcomes import outcomes
    from tailguard.analytics.period import Window, window
    from tailguard.analytics.renewal import renewal
    from tailguard.analytics.report import customer_report
    from tailguard.analytics.totals import entity_totals
    from tailguard.analytics.workload import workload
    from tailguard.errors import ConfigError, InputError, TailguardError, UnknownModelError
    from tailguard.events import Event
    from tailguard.events.readers import read_events
    from tailguard.guard import Decision, Guard, Request, load_policy
    from tailguard.ledger import Ledger, ingest
    from tailguard.pricing import PriceBook, price_table
    from tailguard.sdk import BudgetExceeded, connect
    from tailguard.simulate import simulate


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'tailguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
