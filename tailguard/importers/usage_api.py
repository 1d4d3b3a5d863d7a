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
  ``cache_read_input_tokens``. The 1-hour writes are also ``cache_write_1h_tokens``, priced at
  their own rate (2x input, not the 5-minute 1.25x). The report has **no request count**: a
  row counts as one request (``requests`` null), which undercounts calls; tokens and cost are
  exact. Customer: ``workspace_id``, then ``api_key_id``. Event id: ``anthropic-usage:`` + the
  bucket's start and every group key. ``server_tool_use.web_search_requests`` becomes that many
  ``tool_call`` events (tool ``web_search``, one per search, ids ``...:web_search:N``) whose
  ``cost_usd`` is the search price (genai-prices' ``web_searches_kcount`` of the model, else
  the documented $10 per 1,000). A result with a count below 0 (or past the ledger's BIGINT) is
  refused whole, one reject line: its searches with its call.

Batch: OpenAI's ``batch: true`` (a result of a query grouped by ``batch``) and Anthropic's
``service_tier: "batch"`` set the event's ``service_tier`` to ``batch``, priced at the batch
rate (half the standard one; see ``PriceBook.resolve``). A report not grouped by batch /
service tier carries no marker: its batch calls are priced at standard rates.

The reports carry no cost: tailguard prices the tokens (``cost_source = price``), and the
provider's invoice is compared with ``tailguard reconcile``. A result without a model (the
report was not grouped by model) cannot be priced and is refused by name, as is one without a
customer (not grouped by project / workspace / API key): re-run the query with ``group_by``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from tailguard.events.searches import web_search_events
from tailguard.importers.convert import Problem, integer, timestamp
from tailguard.importers.mapping import ImportMap, excluded, first
from tailguard.importers.records import Record
from tailguard.pricing import PriceBook

OPENAI_CUSTOMER = ("project_id", "api_key_id", "user_id")
OPENAI_KEYS = ("project_id", "api_key_id", "user_id", "model", "batch")
ANTHROPIC_CUSTOMER = ("workspace_id", "api_key_id")
ANTHROPIC_KEYS = ("workspace_id", "api_key_id", "model", "service_tier", "context_window")
_BUCKET_FIELDS = ("start_time", "end_time", "starting_at", "ending_at")
#: the largest token count the ledger's BIGINT columns hold
_MAX_COUNT = 2**63 - 1


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


@lru_cache(maxsize=1)
def _book() -> PriceBook:
    """genai-prices' own prices (no operator file): what a web search costs."""
    return PriceBook()


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
        "service_tier": _openai_tier(rec),
    }


def _openai_tier(rec: Record) -> str | None:
    """``batch`` for a Batch API result (``batch: true``), else the result's ``service_tier``."""
    b = rec.get("batch")
    if b is True or (isinstance(b, str) and b.strip().lower() == "true"):
        return "batch"
    tier = rec.get("service_tier")
    return str(tier) if tier else None


def convert_anthropic(rec: Record, mp: ImportMap) -> list[dict[str, Any]] | None:
    """One result of the messages usage report as an aggregate ``llm_call`` and one
    ``tool_call`` per server-side web search."""
    if mp.exclude and excluded(rec, mp, None):
        return None
    start = rec.get("starting_at")
    ts = timestamp(start, "starting_at")
    uncached = integer(rec, "uncached_input_tokens", default=0) or 0
    cache_read = integer(rec, "cache_read_input_tokens", default=0) or 0
    creation = rec.get("cache_creation")
    if isinstance(creation, dict):
        w5_key = "cache_creation.ephemeral_5m_input_tokens"
        w1_key = "cache_creation.ephemeral_1h_input_tokens"
        w5 = integer(creation, "ephemeral_5m_input_tokens", default=0) or 0
        w1 = integer(creation, "ephemeral_1h_input_tokens", default=0) or 0
    else:
        w5_key, w1_key = "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens"
        w5 = integer(rec, w5_key, default=0) or 0
        w1 = integer(rec, w1_key, default=0) or 0
    output = integer(rec, "output_tokens", default=0) or 0
    tools = rec.get("server_tool_use")
    searches = integer(tools, "web_search_requests", default=0) if isinstance(tools, dict) else 0
    searches = searches or 0
    # the whole row is refused when one count breaks the rules: the call and its searches
    # together (a search priced beside a call the ledger refused would be a charge for a call
    # whose cost is unknown)
    for name, count in (
        ("uncached_input_tokens", uncached),
        ("cache_read_input_tokens", cache_read),
        (w5_key, w5),
        (w1_key, w1),
        ("output_tokens", output),
        ("server_tool_use.web_search_requests", searches),
    ):
        if count < 0:
            raise Problem(name, f"must be >= 0, got {count}")
    for name, count in (
        ("input_tokens", uncached + cache_read + w5 + w1),
        ("output_tokens", output),
    ):
        if count > _MAX_COUNT:
            raise Problem(name, f"{count} above {_MAX_COUNT}: not a count the ledger holds")
    if uncached + cache_read + w5 + w1 + output + searches == 0:
        return None  # an empty bucket: no call, nothing to record
    key = _key("anthropic-usage", start, rec, ANTHROPIC_KEYS)
    customer = _customer(rec, mp, ANTHROPIC_CUSTOMER)
    model = _model(rec)
    envelope = {
        "ts": ts,
        "customer_id": customer,
        "user_id": first(rec, mp.rules("user", ()), None),
        "feature": first(rec, mp.rules("feature", ()), None),
    }
    events: list[dict[str, Any]] = []
    if uncached + cache_read + w5 + w1 + output:
        tier = rec.get("service_tier")
        events.append(
            {
                "event_id": key,
                "kind": "llm_call",
                **envelope,
                "provider": "anthropic",
                "model": model,
                "requests": None,  # the report has no request count: one row, one request
                "input_tokens": uncached + cache_read + w5 + w1,
                "output_tokens": output,
                "cache_read_tokens": cache_read,
                "cache_write_tokens": w5 + w1,
                "cache_write_1h_tokens": w1,
                "service_tier": str(tier) if tier else None,
            }
        )
    if searches:
        price = _book().web_search_usd(model, provider="anthropic", at=ts)
        events += web_search_events(key, envelope, searches, price)
    return events
