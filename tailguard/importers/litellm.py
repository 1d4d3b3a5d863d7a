"""LiteLLM's spend logs (``LiteLLM_SpendLogs`` rows, as a table dump or ``/spend/logs`` output).

One row per request, its id ``request_id`` (the event id is ``litellm:<request_id>``, so a
re-import changes nothing). Field meanings from the table's Prisma schema:

- ``prompt_tokens`` / ``completion_tokens``: the OpenAI usage of the call, which already counts
  cached prompt tokens in the prompt and reasoning in the completion: the ledger's convention,
  kept as is. Cache reads and writes, when the row's ``metadata.usage_object`` carries them
  (``prompt_tokens_details.cached_tokens``, ``cache_creation_input_tokens``), are split out;
- ``spend``: LiteLLM's own cost in dollars, kept as ``reported_cost_usd``;
- ``startTime`` / ``endTime``: a Prisma ``DateTime``, stored in UTC (a dump without a zone is
  read as UTC); latency is their difference unless ``request_duration_ms`` is given;
- ``status``: ``failure`` is an error, anything else (``success``, absent) ok;
- customer: ``end_user``, then ``metadata.user_api_key_end_user_id``, then a ``customer:``
  request tag, then ``team_id``; user ``user``; session ``session_id``.
"""

from __future__ import annotations

from typing import Any

from tailguard.importers.convert import Problem, integer, money, timestamp
from tailguard.importers.mapping import ImportMap, excluded, first, lookup
from tailguard.importers.records import Record

CUSTOMER = ("end_user", "metadata.user_api_key_end_user_id", "tag:customer", "team_id")
USER = ("user",)
FEATURE: tuple[str, ...] = ()
SESSION = ("session_id",)
TAGS = "request_tags"


def convert(rec: Record, mp: ImportMap) -> dict[str, Any] | None:
    """One spend-log row as an ``llm_call``; ``None`` when the map excludes it."""
    if mp.exclude and excluded(rec, mp, TAGS):
        return None
    rid = rec.get("request_id")
    if not rid:
        raise Problem("request_id", "missing required field")
    start = timestamp(rec.get("startTime"), "startTime", naive_is_utc=True)
    customer = first(rec, mp.rules("customer", CUSTOMER), TAGS)
    if customer is None:
        looked = ", ".join(mp.rules("customer", CUSTOMER))
        raise Problem("customer_id", f"no customer found (looked at {looked})")
    model = rec.get("model") or rec.get("model_group")
    if not model:
        raise Problem("model", "missing required field")
    prompt = integer(rec, "prompt_tokens", default=0)
    completion = integer(rec, "completion_tokens", default=0)
    cache_read = _usage_int(rec, "metadata.usage_object.prompt_tokens_details.cached_tokens")
    cache_write = _usage_int(rec, "metadata.usage_object.cache_creation_input_tokens")
    duration = rec.get("request_duration_ms")
    if duration not in (None, ""):
        latency: float | None = float(integer(rec, "request_duration_ms") or 0)
    elif rec.get("endTime"):
        end = timestamp(rec.get("endTime"), "endTime", naive_is_utc=True)
        latency = max((end - start).total_seconds() * 1000.0, 0.0)
    else:
        latency = None
    status = str(rec.get("status") or "").lower()
    return {
        "event_id": f"litellm:{rid}",
        "kind": "llm_call",
        "ts": start,
        "customer_id": mp.customer_ids.get(customer, customer),
        "user_id": first(rec, mp.rules("user", USER), TAGS),
        "feature": first(rec, mp.rules("feature", FEATURE), TAGS),
        "session_id": first(rec, mp.rules("session", SESSION), TAGS),
        "provider": rec.get("custom_llm_provider") or None,
        "model": str(model),
        "input_tokens": prompt,
        "output_tokens": completion,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "latency_ms": latency,
        "status": "error" if status == "failure" else "ok",
        "reported_cost_usd": money(rec.get("spend"), "spend"),
    }


def _usage_int(rec: Record, path: str) -> int:
    v = lookup(rec, path, None)
    if v is None:
        return 0
    try:
        return int(v)
    except ValueError:
        raise Problem(path, f"not an integer: {v!r}") from None
