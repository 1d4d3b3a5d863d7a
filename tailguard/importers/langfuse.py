"""Langfuse observations (public API ``/api/public/v2/observations`` and v1
``/api/public/observations`` pages).

Only ``GENERATION`` observations are model calls; spans and events are skipped. The event id is
``langfuse:<id>``.

Tokens: Langfuse's ``usageDetails`` splits usage into disjoint parts whose sum is the total:
``input`` is the prompt *without* its cached part (Langfuse subtracts cache from ``input``),
``input_cached_tokens`` / ``cache_read_input_tokens`` the cache reads,
``cache_creation_input_tokens`` the cache writes, ``output`` the completion without
``output_reasoning_tokens``. The ledger counts cache inside input and reasoning inside output
(OpenTelemetry), so input is the sum of every input-side key and output of every output-side key.
A v1 observation without ``usageDetails`` gives ``usage.input`` / ``usage.output`` (no split).

Cost: ``costDetails.total`` (else the sum of its parts, else ``calculatedTotalCost`` /
``totalCost``), kept as ``reported_cost_usd``.

Customer: ``userId``, then a ``customer_id`` metadata key, then a ``customer:`` tag.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tailguard.importers.convert import Problem, integer, money, timestamp
from tailguard.importers.mapping import ImportMap, excluded, first
from tailguard.importers.records import Record

CUSTOMER = ("userId", "metadata.customer_id", "tag:customer")
USER: tuple[str, ...] = ()
FEATURE = ("name",)
SESSION = ("sessionId",)
TAGS = "tags"

_CACHE_READ = ("input_cached_tokens", "cache_read_input_tokens", "input_cache_read")
_CACHE_WRITE = ("cache_creation_input_tokens", "input_cache_creation", "input_cache_write")
_REASONING = ("output_reasoning_tokens", "output_reasoning")


def _is_input(key: str) -> bool:
    return key.startswith("input") or key.startswith("cache_")


def convert(rec: Record, mp: ImportMap) -> dict[str, Any] | None:
    """One generation as an ``llm_call``; ``None`` for a span or event, or an excluded one."""
    if str(rec.get("type") or "GENERATION").upper() != "GENERATION":
        return None
    if mp.exclude and excluded(rec, mp, TAGS):
        return None
    oid = rec.get("id")
    if not oid:
        raise Problem("id", "missing required field")
    start = timestamp(rec.get("startTime"), "startTime")
    customer = first(rec, mp.rules("customer", CUSTOMER), TAGS)
    if customer is None:
        looked = ", ".join(mp.rules("customer", CUSTOMER))
        raise Problem("customer_id", f"no customer found (looked at {looked})")
    model = rec.get("model") or rec.get("providedModelName")
    if not model:
        raise Problem("model", "missing required field")
    details = rec.get("usageDetails")
    if isinstance(details, dict) and details:
        inp = out = read = write = reasoning = 0
        for key in details:
            if key == "total":
                continue
            n = integer(details, key, default=0) or 0
            if _is_input(key):
                inp += n
            elif key.startswith("output"):
                out += n
            read += n if key in _CACHE_READ else 0
            write += n if key in _CACHE_WRITE else 0
            reasoning += n if key in _REASONING else 0
    else:
        usage = rec.get("usage") if isinstance(rec.get("usage"), dict) else {}
        inp = integer(usage, "input", default=0) or integer(rec, "promptTokens", default=0) or 0
        out = integer(usage, "output", default=0) or integer(rec, "completionTokens", default=0)
        read = write = reasoning = 0
    latency = rec.get("latency")  # v1: seconds
    end = rec.get("endTime")
    if end:
        latency_ms: float | None = max(
            (timestamp(end, "endTime") - start).total_seconds() * 1000.0, 0.0
        )
    elif isinstance(latency, int | float):
        latency_ms = float(latency) * 1000.0
    else:
        latency_ms = None
    return {
        "event_id": f"langfuse:{oid}",
        "kind": "llm_call",
        "ts": start,
        "customer_id": mp.customer_ids.get(customer, customer),
        "user_id": first(rec, mp.rules("user", USER), TAGS),
        "feature": first(rec, mp.rules("feature", FEATURE), TAGS),
        "session_id": first(rec, mp.rules("session", SESSION), TAGS),
        "task_id": rec.get("traceId") or None,
        "model": str(model),
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "reasoning_tokens": reasoning,
        "latency_ms": latency_ms,
        "status": "error" if str(rec.get("level") or "").upper() == "ERROR" else "ok",
        "reported_cost_usd": _cost(rec),
    }


def _cost(rec: Record) -> Decimal | None:
    details = rec.get("costDetails")
    if isinstance(details, dict) and details:
        if "total" in details:
            return money(details["total"], "costDetails.total")
        parts = [money(v, f"costDetails.{k}") for k, v in details.items()]
        return sum((p for p in parts if p is not None), Decimal(0))
    for key in ("calculatedTotalCost", "totalCost"):
        if rec.get(key) not in (None, ""):
            return money(rec[key], key)
    return None
