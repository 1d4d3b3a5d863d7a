"""The providers' own usage reports: OpenAI's Organization Usage API and Anthropic's Admin API.

Both report aggregate buckets, not calls: one result per time bucket x group (project, API key,
model ...). Each result becomes one aggregate ``llm_call`` row whose ``requests`` column holds
how many model requests it stands for, so every call count of every report (``sum(requests)``)
stays right; the row's ``ts`` is the bucket's start.

- ``openai-usage``: pages of ``GET /v1/organization/usage/completions`` (``{"object": "page",
  "data": [buckets]}``, a list of pages, or a list of buckets); a bucket holds ``start_time``
  (Unix seconds) and ``results`` of ``organization.usage.completions.result``. A flattened
  result with its own ``start_time`` (a table of the buckets, as OpenAI's cookbook prints) is
  read too. Tokens: ``input_tokens`` already includes ``input_cached_tokens`` (the ledger's
  convention), cached tokens are the cache reads; ``num_model_requests`` is ``requests``.
  Customer: ``project_id``, then ``api_key_id``, then ``user_id``, renamed through the map's
  ``customer_ids``. Event id: ``openai-usage:`` + the bucket's start and every group key.
- ``anthropic-usage``: pages of ``GET /v1/organizations/usage_report/messages`` (``{"data":
  [{"starting_at", "ending_at", "results": [...]}], "has_more", "next_page"}``). Tokens:
  ``uncached_input_tokens`` excludes the cache, so input = uncached + cache reads + cache
  writes (``cache_creation.ephemeral_5m_input_tokens`` + ``ephemeral_1h_input_tokens``; the flat
  ``cache_creation_5m_input_tokens`` / ``_1h_`` spellings are read too); cache reads are
  ``cache_read_input_tokens``. The report has **no request count**: a row counts as one request
  (``requests`` null), which undercounts calls; tokens and cost are exact. Customer:
  ``workspace_id``, then ``api_key_id``. Event id: ``anthropic-usage:`` + the bucket's start and
  every group key.

The reports carry no cost: tailguard prices the tokens (``cost_source = price``), and the
provider's invoice is compared with ``tailguard reconcile``. A result without a model (the
report was not grouped by model) cannot be priced and is refused by name, as is one without a
customer (not grouped by project / workspace / API key): re-run the query with ``group_by``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tailguard.importers.convert import Problem, integer, timestamp
from tailguard.importers.mapping import ImportMap, excluded, first
from tailguard.importers.records import Record

OPENAI_CUSTOMER = ("project_id", "api_key_id", "user_id")
OPENAI_KEYS = ("project_id", "api_key_id", "user_id", "model", "batch")
ANTHROPIC_CUSTOMER = ("workspace_id", "api_key_id")
ANTHROPIC_KEYS = ("workspace_id", "api_key_id", "model", "service_tier", "context_window")
_BUCKET_FIELDS = ("start_time", "end_time", "starting_at", "ending_at")


def explode(rec: Record) -> Iterator[tuple[str, Record]]:
    """A bucket's results, each with the bucket's times, named ``results[i]``; a record
    without ``results`` is one flattened result already."""
    results = rec.get("results")
    if not isinstance(results, list):
        yield "", rec
        return
    times = {k: rec[k] for k in _BUCKET_FIELDS if k in rec}
    for i, r in enumerate(results):
        where = f"results[{i}]"
        yield where, ({**times, **r} if isinstance(r, dict) else {"__error__": "not an object"})


def _customer(rec: Record, mp: ImportMap, default: tuple[str, ...]) -> str:
    rules = mp.rules("customer", default)
    found = first(rec, rules, None)
    if found is None:
        raise Problem(
            "customer_id",
            f"no customer found (looked at {', '.join(rules)}): query the report grouped by "
            "one of them",
        )
    return mp.customer_ids.get(found, found)


def _key(prefix: str, start: Any, rec: Record, keys: tuple[str, ...]) -> str:
    return ":".join(
        [prefix, str(start), *("" if rec.get(k) is None else str(rec[k]) for k in keys)]
    )


def _model(rec: Record) -> str:
    model = rec.get("model")
    if not model:
        raise Problem("model", "missing: query the report grouped by model (group_by=model)")
    return str(model)


def convert_openai(rec: Record, mp: ImportMap) -> dict[str, Any] | None:
    """One ``organization.usage.completions.result`` as an aggregate ``llm_call``."""
    if mp.exclude and excluded(rec, mp, None):
        return None
    start = rec.get("start_time")
    ts = timestamp(start, "start_time")
    requests = integer(rec, "num_model_requests", default=None)
    if requests is not None and requests < 1:
        return None  # an empty bucket: no call, nothing to record
    inp = integer(rec, "input_tokens", default=0) or 0
    cached = integer(rec, "input_cached_tokens", default=0) or 0
    return {
        "event_id": _key("openai-usage", start, rec, OPENAI_KEYS),
        "kind": "llm_call",
        "ts": ts,
        "customer_id": _customer(rec, mp, OPENAI_CUSTOMER),
        "user_id": first(rec, mp.rules("user", ("user_id",)), None),
        "feature": first(rec, mp.rules("feature", ()), None),
        "provider": "openai",
        "model": _model(rec),
        "requests": requests,
        "input_tokens": inp,
        "output_tokens": integer(rec, "output_tokens", default=0),
        "cache_read_tokens": cached,
        "cache_write_tokens": 0,
    }


def convert_anthropic(rec: Record, mp: ImportMap) -> dict[str, Any] | None:
    """One result of the messages usage report as an aggregate ``llm_call``."""
    if mp.exclude and excluded(rec, mp, None):
        return None
    start = rec.get("starting_at")
    ts = timestamp(start, "starting_at")
    uncached = integer(rec, "uncached_input_tokens", default=0) or 0
    cache_read = integer(rec, "cache_read_input_tokens", default=0) or 0
    creation = rec.get("cache_creation")
    if isinstance(creation, dict):
        w5 = integer(creation, "ephemeral_5m_input_tokens", default=0) or 0
        w1 = integer(creation, "ephemeral_1h_input_tokens", default=0) or 0
    else:
        w5 = integer(rec, "cache_creation_5m_input_tokens", default=0) or 0
        w1 = integer(rec, "cache_creation_1h_input_tokens", default=0) or 0
    output = integer(rec, "output_tokens", default=0) or 0
    if uncached + cache_read + w5 + w1 + output == 0:
        return None  # an empty bucket: no call, nothing to record
    return {
        "event_id": _key("anthropic-usage", start, rec, ANTHROPIC_KEYS),
        "kind": "llm_call",
        "ts": ts,
        "customer_id": _customer(rec, mp, ANTHROPIC_CUSTOMER),
        "user_id": first(rec, mp.rules("user", ()), None),
        "feature": first(rec, mp.rules("feature", ()), None),
        "provider": "anthropic",
        "model": _model(rec),
        "requests": None,  # the report has no request count: one row, one request
        "input_tokens": uncached + cache_read + w5 + w1,
        "output_tokens": output,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": w5 + w1,
    }
