"""Span mapping: each token convention on a span written by hand from its documentation.

Expected values are the ledger's convention (OpenTelemetry GenAI: input includes cache reads
and writes, output includes reasoning), worked out in each test's docstring.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.otel.config import OtelConfig
from tailguard.otel.mapping import Rejected, event_of, kind_of, tokens
from tailguard.otel.otlp import spans_from_json
from tests.otel.otlp_builders import CHILD, TRACE, request, span


def _one(a: dict[str, object], **kw: object) -> object:
    (s,) = spans_from_json(request([span(TRACE, CHILD, None, "llm", a, **kw)]))  # type: ignore[arg-type]
    return s


def _tok(a: dict[str, object], cfg: OtelConfig | None = None) -> dict[str, int]:
    s = _one(a)
    return tokens(s, a.get("gen_ai.provider.name") or a.get("gen_ai.system"), cfg or OtelConfig())  # type: ignore[arg-type]


def test_official_semconv() -> None:
    """semantic-conventions-genai: input_tokens includes cache reads and cache writes
    (cache_read.input_tokens and cache_creation.input_tokens are parts of it), output_tokens
    includes reasoning.output_tokens: taken as they are."""
    t = _tok(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-6",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.cache_read.input_tokens": 600,
            "gen_ai.usage.cache_creation.input_tokens": 300,
            "gen_ai.usage.output_tokens": 200,
            "gen_ai.usage.reasoning.output_tokens": 150,
        }
    )
    assert t == {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_read_tokens": 600,
        "cache_write_tokens": 300,
        "reasoning_tokens": 150,
    }


def test_openllmetry_legacy_names() -> None:
    """OpenLLMetry (traceloop): prompt_tokens = Anthropic input + cache read + cache creation
    (its anthropic instrumentation sums them); cache_read_input_tokens /
    cache_creation_input_tokens are the parts: 1,250 in, of which 1,000 read, 200 written."""
    t = _tok(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-haiku-4-5",
            "gen_ai.usage.prompt_tokens": 1250,
            "gen_ai.usage.completion_tokens": 80,
            "llm.usage.total_tokens": 1330,
            "gen_ai.usage.cache_read_input_tokens": 1000,
            "gen_ai.usage.cache_creation_input_tokens": 200,
        }
    )
    assert (t["input_tokens"], t["cache_read_tokens"], t["cache_write_tokens"]) == (1250, 1000, 200)
    assert t["output_tokens"] == 80


def test_openinference() -> None:
    """OpenInference: llm.token_count.prompt is the whole prompt (prompt_details.cache_read is
    a part of it), completion includes completion_details.reasoning."""
    t = _tok(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o",
            "llm.provider": "openai",
            "llm.token_count.prompt": 300,
            "llm.token_count.completion": 40,
            "llm.token_count.total": 340,
            "llm.token_count.prompt_details.cache_read": 128,
            "llm.token_count.completion_details.reasoning": 12,
        }
    )
    assert t == {
        "input_tokens": 300,
        "output_tokens": 40,
        "cache_read_tokens": 128,
        "cache_write_tokens": 0,
        "reasoning_tokens": 12,
    }


def test_raw_anthropic_usage_is_normalised() -> None:
    """Raw Anthropic usage: input_tokens (50) excludes cache_read (1,000) and cache_creation
    (20): the call read 50 + 1,000 + 20 = 1,070 input tokens. Told by configuration
    (input_excludes_cache), or evident when the cache exceeds the input."""
    a = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-6",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.cache_read.input_tokens": 1000,
        "gen_ai.usage.cache_creation.input_tokens": 20,
        "gen_ai.usage.output_tokens": 7,
    }
    assert _tok(a)["input_tokens"] == 1070  # evident: 1,020 cached > 50 input
    small = dict(a, **{"gen_ai.usage.cache_read.input_tokens": 30})  # 30 + 20 <= 50: ambiguous
    assert _tok(small)["input_tokens"] == 50  # the documented convention: already included
    cfg = OtelConfig(input_excludes_cache=["anthropic"])
    assert _tok(small, cfg)["input_tokens"] == 100  # configured raw: 50 + 30 + 20


def test_call_without_tokens_is_rejected_not_zero() -> None:
    s = _one({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"})
    with pytest.raises(Rejected, match="no token counts"):
        event_of(s, "llm_call", {"customer_id": "acme"}, OtelConfig())  # type: ignore[arg-type]


def test_embeddings_without_output_tokens() -> None:
    t = _tok(
        {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 42,
        }
    )
    assert (t["input_tokens"], t["output_tokens"]) == (42, 0)


def test_kinds() -> None:
    def k(a: dict[str, object]) -> str | None:
        return kind_of(_one(a))  # type: ignore[arg-type]

    assert k({"gen_ai.operation.name": "chat"}) == "llm_call"
    assert k({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm"}) == "tool_call"
    assert k({"openinference.span.kind": "RETRIEVER"}) == "retrieval"
    assert k({"openinference.span.kind": "RERANKER"}) == "retrieval"
    # an agent span carries its children's tokens summed: never a call (no double count)
    assert k({"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 9}) is None
    assert k({"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 9}) is None
    assert k({"http.method": "POST"}) is None


def test_event_fields_cost_status_latency() -> None:
    s = _one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cost": 0.000125,
        },
        start_ms=1500,
        dur_ms=250,
        error=True,
    )
    ev = event_of(s, "llm_call", {"customer_id": "acme", "user_id": None}, OtelConfig())  # type: ignore[arg-type]
    assert ev["event_id"] == f"otel-{TRACE}-{CHILD}"
    assert ev["ts"] == "2026-01-01T00:00:01.500000+00:00"
    assert (ev["latency_ms"], ev["status"], ev["model"]) == (250.0, "error", "gpt-4o-2024-08-06")
    assert ev["cost_usd"] == Decimal("0.000125")  # the attribute's digits, not a float's
    assert "user_id" not in ev


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_000_000_000 * 10**9))
def test_timestamps_exact_to_the_microsecond(ns: int) -> None:
    """The span's start in nanoseconds, truncated to the ledger's microseconds, as datetime
    arithmetic gives it (a float division would be off by one now and then)."""
    from tailguard.otel.mapping import _ts

    want = dt.datetime.fromtimestamp(ns // 10**9, dt.UTC) + dt.timedelta(
        microseconds=(ns // 1000) % 10**6
    )
    assert _ts(ns) == want.isoformat(timespec="microseconds")
