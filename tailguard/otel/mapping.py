"""Spans into ledger events: which spans are LLM calls, tool calls, retrievals; their tokens in
the ledger's convention.

Kinds, by the attribute each convention uses to say what a span is: OpenTelemetry GenAI's
``gen_ai.operation.name`` (chat, text_completion, generate_content, embeddings -> ``llm_call``;
execute_tool -> ``tool_call``; retrieval -> ``retrieval``), OpenInference's
``openinference.span.kind`` (LLM, EMBEDDING; TOOL; RETRIEVER, RERANKER), OpenLLMetry's
``llm.request.type`` (chat, completion, embedding). The table of every attribute read is in
``docs/otel.md``; the names are the tuples below, first present wins.

Agent and chain spans (``invoke_agent``, ``AGENT``, ``CHAIN``) are never calls even when they
carry token counts: those are their children's, summed, and would be counted twice. Every other
span is read only for attribution (a parent span that carries the customer).

Tokens: the ledger's convention is OpenTelemetry's (input includes cache reads and writes,
output includes reasoning). All three conventions document input as including the cache.
Raw Anthropic usage does not (its ``input_tokens`` is the uncached rest): for a provider
listed in ``[otel] input_excludes_cache`` the cache tokens are added, and whenever cache
reads + writes exceed the input the source evidently excluded them and they are added too
(likewise reasoning above output). A call span without token counts is rejected with the
reason, never priced as zero; without a model likewise. A cost attribute
(``gen_ai.usage.cost``, ``llm.usage.cost``, ``gen_ai.cost.usd``) is kept as the reported
cost; tailguard prices the call as any other.

Ids: ``otel-<trace id>-<span id>``, so a replayed export is never counted twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from tailguard.otel.config import OtelConfig
from tailguard.otel.otlp import Span

_UTC = dt.UTC

LLM_OPS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
EMBED_OPS = frozenset({"embeddings"})
NOT_CALLS = frozenset({"invoke_agent", "create_agent"})
OI_LLM = frozenset({"LLM", "EMBEDDING"})
OI_NOT_CALLS = frozenset({"AGENT", "CHAIN", "GUARDRAIL", "EVALUATOR"})
OPENLLMETRY_TYPES = frozenset({"chat", "completion", "embedding"})

INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens")
INPUT += ("llm.token_count.prompt",)
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
OUTPUT += ("llm.usage.completion_tokens", "llm.token_count.completion")
CACHE_READ = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
REASONING = (
    "gen_ai.usage.reasoning.output_tokens",
    "llm.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
)
MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
MODEL += ("embedding.model_name", "llm.response.model", "llm.request.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
COST = ("gen_ai.usage.cost", "llm.usage.cost", "gen_ai.cost.usd", "gen_ai.usage.cost_usd")
TOOL = ("gen_ai.tool.name", "tool.name")


#: every attribute the mapping reads (the decoders keep only these and the attribution names)
CALL_ATTRIBUTES = frozenset(
    {
        "gen_ai.operation.name",
        "openinference.span.kind",
        "llm.request.type",
        "tailguard.tool_kind",
        "tailguard.queries",
        "tailguard.reranks",
        *INPUT,
        *OUTPUT,
        *CACHE_READ,
        *CACHE_WRITE,
        *REASONING,
        *MODEL,
        *PROVIDER,
        *COST,
        *TOOL,
    }
)


def wanted_attributes(cfg: OtelConfig) -> frozenset[str]:
    """The attribute names worth decoding: the mapping's and the configured attribution's."""
    return CALL_ATTRIBUTES | frozenset(cfg.attribution_names())


class Rejected(Exception):
    """A call span that cannot become an event (the message says why)."""


def kind_of(span: Span) -> str | None:
    """``llm_call``, ``tool_call``, ``retrieval`` or None (a span read only for attribution)."""
    a = span.attrs
    op = a.get("gen_ai.operation.name")
    oi = a.get("openinference.span.kind")
    if op == "execute_tool" or oi == "TOOL":
        return "tool_call"
    if op in ("retrieval", "retrieve") or oi in ("RETRIEVER", "RERANKER"):
        return "retrieval"
    if op in NOT_CALLS or oi in OI_NOT_CALLS:
        return None
    if op in LLM_OPS or oi in OI_LLM or a.get("llm.request.type") in OPENLLMETRY_TYPES:
        return "llm_call"
    return None


def _first(a: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        v = a.get(n)
        if v is not None:
            return v
    return None


def _count(a: dict[str, Any], names: tuple[str, ...], span: Span) -> int | None:
    v = _first(a, names)
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise Rejected(f"span {span.name!r}: token count {v!r} is not a whole number >= 0")
    return v


def tokens(span: Span, provider: str | None, cfg: OtelConfig) -> dict[str, int]:
    """The span's tokens in the ledger's convention (see the module docstring)."""
    a = span.attrs
    inp = _count(a, INPUT, span)
    out = _count(a, OUTPUT, span)
    embedding = (
        a.get("gen_ai.operation.name") in EMBED_OPS
        or a.get("openinference.span.kind") == "EMBEDDING"
        or a.get("llm.request.type") == "embedding"
    )
    if inp is None or (out is None and not embedding):
        raise Rejected(
            f"span {span.name!r} ({span.trace_id}/{span.span_id}): no token counts "
            "(input and output); not recorded, never priced as zero"
        )
    out = out or 0
    cr = _count(a, CACHE_READ, span) or 0
    cw = _count(a, CACHE_WRITE, span) or 0
    rs = _count(a, REASONING, span) or 0
    if (provider is not None and provider in cfg.input_excludes_cache) or cr + cw > inp:
        inp += cr + cw
    if rs > out:
        out += rs
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "reasoning_tokens": rs,
    }


_SECONDS: dict[int, str] = {}


def _ts(ns: int) -> str:
    """ISO 8601 UTC, exact to the microsecond (the ledger's resolution): integer arithmetic,
    no float round trip. Spans of a batch share their seconds: the date part is cached."""
    sec, rest = divmod(ns, 1_000_000_000)
    base = _SECONDS.get(sec)
    if base is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        base = _SECONDS[sec] = dt.datetime.fromtimestamp(sec, _UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{rest // 1000:06d}+00:00"


def event_of(span: Span, kind: str, who: dict[str, str | None], cfg: OtelConfig) -> dict[str, Any]:
    """The event of one call span, attributed with ``who`` (customer_id, user_id, ...)."""
    a = span.attrs
    ev: dict[str, Any] = {
        "event_id": f"otel-{span.trace_id}-{span.span_id}",
        "kind": kind,
        "ts": _ts(span.start_ns),
        **{k: v for k, v in who.items() if v is not None},
    }
    latency = (span.end_ns - span.start_ns) / 1e6 if span.end_ns >= span.start_ns else None
    status = "error" if span.status_code == 2 else "ok"
    if kind == "llm_call":
        model = _first(a, MODEL)
        if not isinstance(model, str) or not model:
            raise Rejected(f"span {span.name!r} ({span.trace_id}/{span.span_id}): no model")
        prov = _first(a, PROVIDER)
        provider = str(prov).lower() if prov is not None else None
        ev.update(model=model, provider=provider, **tokens(span, provider, cfg), status=status)
        if latency is not None:
            ev["latency_ms"] = latency
    elif kind == "tool_call":
        tk = a.get("tailguard.tool_kind")
        ev.update(
            tool=str(_first(a, TOOL) or span.name or "tool"),
            tool_kind=tk if tk in ("read", "write") else cfg.tool_kind,
            status=status,
        )
        if latency is not None:
            ev["latency_ms"] = latency
    else:
        rerank = a.get("openinference.span.kind") == "RERANKER"
        q = _count(a, ("tailguard.queries",), span)
        r = _count(a, ("tailguard.reranks",), span)
        ev.update(
            queries=(0 if rerank else 1) if q is None else q,
            reranks=(1 if rerank else 0) if r is None else r,
        )
    cost = _first(a, COST)
    if cost is not None:
        try:
            c = Decimal(str(cost))  # the attribute's own digits, not a binary float expansion
        except InvalidOperation:
            raise Rejected(f"span {span.name!r}: cost {cost!r} is not a number") from None
        if c.is_finite() and c >= 0:
            ev["cost_usd"] = c
    return ev


_MAX_INT = 2**63 - 1
_MAX_MONEY = Decimal("999999999.999999999")
_IDS = ("customer_id", "model", "tool")


def check(ev: dict[str, Any]) -> str | None:
    """The event schema's rules that span attributes can break, checked in Python (the full
    msgspec round trip costs more than the rest of a span's mapping); None when valid. The
    others (token relations, money sign, timestamps) hold by construction in ``event_of``."""
    from tailguard.events.schema import WORKLOADS

    for f in _IDS:
        v = ev.get(f)
        if v is not None and not 1 <= len(v) <= 512:
            return f"{f} must be 1 to 512 characters"
    w = ev.get("workload")
    if w is not None and w not in WORKLOADS:
        return f"workload must be one of {', '.join(WORKLOADS)}, got {w!r}"
    for f in ("input_tokens", "output_tokens", "queries", "reranks"):
        v = ev.get(f)
        if v is not None and v > _MAX_INT:
            return f"{f} {v} does not fit a 64-bit integer"
    c = ev.get("cost_usd")
    if c is not None and c > _MAX_MONEY:
        return f"cost_usd {c} is over the ledger's bound"
    return None
