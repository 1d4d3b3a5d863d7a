"""The pricing inputs the gateway reads from a response (service tier, Anthropic's 1-hour cache
writes, web searches), field names from the providers' API references:
- Anthropic Messages ``usage``: ``cache_creation.ephemeral_1h_input_tokens`` /
  ``ephemeral_5m_input_tokens`` (their sum is ``cache_creation_input_tokens``),
  ``service_tier`` (``standard``, ``priority``, ``batch``), ``server_tool_use.web_search_requests``;
  a stream's ``message_delta`` usage is cumulative.
- OpenAI chat completions / Responses: a top-level ``service_tier`` (``default``, ``flex``,
  ``priority``; a chat stream repeats it on every chunk).
"""

from __future__ import annotations

import json

from tailguard.gateway.usage import (
    MAX_CALL_SEARCHES,
    StreamUsage,
    Usage,
    from_body,
    openai_request_tier,
)


def _sse(obj: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n".encode()


def test_anthropic_stream_tier_1h_writes_and_searches() -> None:
    """message_start: 10 plain, 300 written (200 for an hour), priority; message_delta: 40 out
    and 3 searches. Ledger: input 310, writes 300 of which 200 are 1-hour ones."""
    t = StreamUsage("anthropic")
    start = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        "output_tokens": 1,
        "service_tier": "priority",
    }
    t.feed(_sse({"type": "message_start", "message": {"usage": start}}, "message_start"))
    delta = {"output_tokens": 40, "server_tool_use": {"web_search_requests": 3}}
    t.feed(_sse({"type": "message_delta", "usage": delta}, "message_delta"))
    u = t.usage
    assert (u.input_tokens, u.cache_write_tokens, u.output_tokens) == (310, 300, 40)
    assert u.pricing_inputs() == {"cache_write_1h_tokens": 200, "service_tier": "priority"}
    assert u.web_searches == 3


def test_openai_tier_kept_only_when_it_changes_the_price() -> None:
    """flex and priority are kept; default and auto (standard) are not; any other tier the
    response names (``scale``, OpenAI's Scale Tier, billed by contract units; one added
    later) is kept as given, so pricing leaves the call unpriced instead of pricing it at the
    standard rates. A request is reserved at its own tier only for flex and priority."""
    usage = {"prompt_tokens": 5, "completion_tokens": 2}
    tiers = [
        from_body("openai", json.dumps({"usage": usage, "service_tier": s}).encode()).service_tier
        for s in ("flex", "priority", "default", "auto", "Default", "scale", "")
    ]
    assert tiers == ["flex", "priority", None, None, None, "scale", None]
    asked = [openai_request_tier({"service_tier": s}) for s in ("priority", "scale", "default")]
    assert asked == ["priority", None, None]
    t = StreamUsage("openai")
    chunk = {"choices": [], "usage": usage, "service_tier": "flex"}
    t.feed(_sse(chunk))
    assert t.usage.service_tier == "flex"
    r = StreamUsage("openai")
    done = {
        "type": "response.completed",
        "response": {"usage": {"input_tokens": 3}, "service_tier": "priority"},
    }
    r.feed(_sse(done, "response.completed"))
    assert r.usage.service_tier == "priority" and r.usage.input_tokens == 3


def test_1h_writes_above_the_writes_repaired() -> None:
    """500 1-hour writes among 100 writes: the writes become 500, and input (200) becomes 500."""
    u = Usage(input_tokens=200, cache_write_tokens=100, cache_write_1h_tokens=500, seen=True)
    problems = u.repair()
    assert len(problems) == 2
    assert (u.input_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (500, 500, 500)


def test_search_count_beyond_belief_is_dropped() -> None:
    """Each search becomes an event: a count past MAX_CALL_SEARCHES (a 2^64 from a broken
    upstream) is noise, set to 0 and reported; one at the limit is kept."""
    u = Usage(input_tokens=1, web_searches=2**64, seen=True)
    assert u.repair() == [f"web_searches {2**64} above {MAX_CALL_SEARCHES}"]
    assert u.web_searches == 0
    ok = Usage(input_tokens=1, web_searches=MAX_CALL_SEARCHES, seen=True)
    assert ok.repair() == [] and ok.web_searches == MAX_CALL_SEARCHES


def test_the_noise_limits_are_the_documented_numbers() -> None:
    """The limits themselves, written out (the tests above use the names, so a limit moved by
    one would pass them): 100,000,000 tokens (ten times the largest context window offered,
    10M) and 10,000 searches are kept; one more is noise, set to 0 and reported."""
    at = Usage(input_tokens=100_000_000, output_tokens=1, web_searches=10_000, seen=True)
    assert at.repair() == []
    assert (at.input_tokens, at.web_searches) == (100_000_000, 10_000)
    past = Usage(input_tokens=100_000_001, output_tokens=1, web_searches=10_001, seen=True)
    assert past.repair() == [
        "input_tokens 100000001 above 100000000",
        "web_searches 10001 above 10000",
    ]
    assert (past.input_tokens, past.web_searches) == (0, 0)
