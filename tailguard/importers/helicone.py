"""Helicone's request export (``npx @helicone/export``, JSON/JSONL/CSV; the rows of its
``/v1/request/query-clickhouse`` API).

The event id is ``helicone:<request_id>``. Tokens: ``prompt_tokens`` counts the whole prompt,
cache included (Helicone prices ``prompt_tokens - prompt_cache_read_tokens -
prompt_cache_write_tokens`` at the input rate), which is the ledger's convention;
``prompt_cache_read_tokens`` / ``prompt_cache_write_tokens`` are split out, and
``completion_tokens`` counts the whole completion. ``cost`` (or ``cost_usd``) in dollars is kept
as ``reported_cost_usd``. ``request_created_at`` is the time; ``delay_ms`` (or ``latency``) the
latency; a ``response_status`` of 400 or more an error.

Customer: a ``customer_id`` custom property (``request_properties``/``properties``, also under
its header name ``Helicone-Property-Customer-Id``), then the user id.
"""

from __future__ import annotations

from typing import Any

from tailguard.importers.convert import Problem, integer, money, timestamp
from tailguard.importers.mapping import ImportMap, excluded, first
from tailguard.importers.records import Record

CUSTOMER = (
    "request_properties.customer_id",
    "properties.customer_id",
    "request_properties.Helicone-Property-Customer-Id",
    "request_user_id",
    "user_id",
)
USER = ("request_user_id", "user_id")
FEATURE = ("request_properties.feature", "properties.feature")
SESSION = ("request_properties.Helicone-Session-Id", "properties.Helicone-Session-Id")
TAGS = None


def convert(rec: Record, mp: ImportMap) -> dict[str, Any] | None:
    """One request as an ``llm_call``; ``None`` when the map excludes it."""
    if mp.exclude and excluded(rec, mp, TAGS):
        return None
    rid = rec.get("request_id") or rec.get("id")
    if not rid:
        raise Problem("request_id", "missing required field")
    ts = timestamp(rec.get("request_created_at") or rec.get("created_at"), "request_created_at")
    customer = first(rec, mp.rules("customer", CUSTOMER), TAGS)
    if customer is None:
        looked = ", ".join(mp.rules("customer", CUSTOMER))
        raise Problem("customer_id", f"no customer found (looked at {looked})")
    model = rec.get("model") or rec.get("request_model") or rec.get("response_model")
    if not model:
        raise Problem("model", "missing required field")
    delay = "delay_ms" if rec.get("delay_ms") not in (None, "") else "latency"
    latency = integer(rec, delay)
    code = integer(rec, "response_status")
    cost_key = "cost" if rec.get("cost") not in (None, "") else "cost_usd"
    return {
        "event_id": f"helicone:{rid}",
        "kind": "llm_call",
        "ts": ts,
        "customer_id": mp.customer_ids.get(customer, customer),
        "user_id": first(rec, mp.rules("user", USER), TAGS),
        "feature": first(rec, mp.rules("feature", FEATURE), TAGS),
        "session_id": first(rec, mp.rules("session", SESSION), TAGS),
        "provider": (str(rec["provider"]).lower() if rec.get("provider") else None),
        "model": str(model),
        "input_tokens": integer(rec, "prompt_tokens", default=0),
        "output_tokens": integer(rec, "completion_tokens", default=0),
        "cache_read_tokens": integer(rec, "prompt_cache_read_tokens", default=0),
        "cache_write_tokens": integer(rec, "prompt_cache_write_tokens", default=0),
        "latency_ms": float(latency) if latency is not None else None,
        "status": "error" if code is not None and code >= 400 else "ok",
        "reported_cost_usd": money(rec.get(cost_key), cost_key),
    }
