"""Service tiers, Anthropic's 1-hour cache writes and web searches, through the official SDKs,
the gateway (in process) and the mock provider, priced by hand.

Token counts follow the mock's rule (docs/gateway.md: one token per word of the prompt; a reply
of min(max tokens, 16) words; a ``gpt-5`` model also reasons 2 tokens per reply word, counted in
the output). Prices, per million tokens:

- Claude Sonnet 4.5 (platform.claude.com/docs/en/about-claude/pricing): input $3, 5-minute
  cache writes $3.75, 1-hour cache writes $6, cache hits $0.30, output $15; web search $10 per
  1,000 searches ($0.01 each).
- GPT-5 mini (platform.openai.com/docs/pricing, Standard / Flex / Priority): input $0.25 /
  $0.125 / $0.45, output $2.00 / $1.00 / $3.60.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from typing import Any

import openai
import pytest

from tests.gateway.conftest import POLICY, Env
from tests.gateway.helpers import (
    SYSTEM_1H_5M,
    WEB_SEARCH_TOOLS,
    an,
    capture_checks,
    capture_events,
    oa,
)


def test_anthropic_1h_cache_writes_tier_and_web_searches(make_env: Callable[..., Env]) -> None:
    """Call 1 (non-streamed): 2 plain words, 8 words cached for an hour, 4 for 5 minutes, 3
    words out, 2 searches: (2 x 3 + 4 x 3.75 + 8 x 6 + 3 x 15) / 1e6 = 114 / 1e6 = $0.000114
    (at the 5-minute rate for all 12 writes it would be $0.000096).
    Call 2 (streamed, served at priority): 3 plain words, the 12 cached words read back, 4 out,
    2 searches: unpriced, as Anthropic bills its Priority Tier by contract (a capacity
    commitment, no list price; at the standard rates it would be (3 x 3 + 12 x 0.30 + 4 x 15)
    / 1e6 = $0.0000726, a silent wrong number); the guard keeps what it reserved for it.
    Each search: a tool_call of $0.01."""
    env = make_env()
    seen = capture_events(env)

    async def main() -> tuple[Any, Any]:
        c = an(env)
        r1 = await c.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=3,
            system=SYSTEM_1H_5M,
            tools=WEB_SEARCH_TOOLS,
            messages=[{"role": "user", "content": "hello there"}],
        )
        env.mock.anthropic_tier = "priority"
        async with c.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=4,
            system=SYSTEM_1H_5M,
            tools=WEB_SEARCH_TOOLS,
            messages=[{"role": "user", "content": "hello again you"}],
        ) as s:
            final = await s.get_final_message()
        await env.close()
        return r1, final

    r1, final = asyncio.run(main())
    # what the provider said, as the SDK reads it
    assert r1.usage.cache_creation.ephemeral_1h_input_tokens == 8
    assert r1.usage.server_tool_use.web_search_requests == 2
    assert final.usage.cache_read_input_tokens == 12 and final.usage.service_tier == "priority"
    e1, e2 = env.events()
    assert (e1["input_tokens"], e1["cache_write_tokens"], e1["output_tokens"]) == (14, 12, 3)
    assert e1["cost_usd"] == Decimal("0.000114")
    assert (e2["input_tokens"], e2["cache_read_tokens"], e2["output_tokens"]) == (15, 12, 4)
    assert (e2["cost_usd"], e2["cost_source"], e2["unpriced"]) == (None, "unpriced", True)
    searches = env.events("tool_call")
    assert len(searches) == 4
    assert {(t["tool"], t["tool_kind"], t["cost_usd"]) for t in searches} == {
        ("web_search", "read", Decimal("0.01"))
    }
    assert all(t["customer_id"] == "acme" for t in searches)
    # the pricing inputs the gateway handed over (not stored by the ledger)
    calls = [e for e in seen if e["kind"] == "llm_call"]
    assert [(e["cache_write_1h_tokens"], e["service_tier"]) for e in calls] == [
        (8, "standard"),
        (0, "priority"),
    ]
    # the gateway's own price agrees: 114 + 4 x 10,000 (/1e6), nothing for the priority tokens
    assert sum(env.gw.metrics.spend.values()) == float(Decimal("0.040114"))


def test_searches_of_a_call_with_invalid_usage_are_unpriced(make_env: Callable[..., Env]) -> None:
    """The provider reports 2**64 input tokens (beyond belief: the usage is repaired and the
    call recorded ``usage_invalid``, unpriced) and 2 web searches: the searches are recorded,
    2 tool calls, unpriced and marked ``usage_invalid`` like their call (they were $0.01 each,
    a price for a call whose cost is unknown); the gateway's metered spend stays 0."""
    env = make_env()
    env.mock.fault = "huge"

    async def main() -> None:
        await an(env).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=3,
            tools=WEB_SEARCH_TOOLS,
            messages=[{"role": "user", "content": "hello there"}],
        )
        await env.close()

    asyncio.run(main())
    (call,) = env.events()
    assert (call["status"], call["cost_usd"], call["unpriced"]) == ("usage_invalid", None, True)
    searches = env.events("tool_call")
    assert [(t["tool"], t["status"], t["cost_usd"], t["cost_source"]) for t in searches] == [
        ("web_search", "usage_invalid", None, "unpriced")
    ] * 2
    assert sum(env.gw.metrics.spend.values()) == 0


def test_a_priority_call_keeps_its_reservation(make_env: Callable[..., Env]) -> None:
    """An Anthropic call served at priority has no price (a contract tier): the guard keeps
    the worst case it reserved (at Sonnet 4.5's standard $3 / $15 per Mtok: the input bound,
    the body's bytes, x 3 + 7 output tokens x 15, rounded up to the micro-dollar) instead of
    settling $0, which would let a priority customer spend without limit."""
    env = make_env(policy=POLICY.format(graceful="false", limit="10"))
    env.mock.anthropic_tier = "priority"
    asked = capture_checks(env)

    async def main() -> None:
        await an(env).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=7,
            messages=[{"role": "user", "content": "hello there"}],
        )

    asyncio.run(main())
    (req,) = asked
    assert req.max_output_tokens == 7
    micro = req.input_tokens * 3 + 7 * 15  # tokens x USD per Mtok = micro-dollars
    assert env.gw.guard.status("acme")["spent"] == Decimal(micro).scaleb(-6)
    asyncio.run(env.close())
    (call,) = env.events()
    assert (call["cost_usd"], call["unpriced"]) == (None, True)


def test_openai_flex_and_priority_priced_at_their_tier(make_env: Callable[..., Env]) -> None:
    """gpt-5-mini, 5 calls (output = 3 x reply words: words + 2 reasoning tokens each):
    1. chat, flex, 4 words in, 5 out -> 15: (4 x 0.125 + 15 x 1.00) / 1e6 = $0.0000155
    2. chat stream, priority, 3 in, 2 out -> 6: (3 x 0.45 + 6 x 3.60) / 1e6 = $0.00002295
    3. responses, default (standard), 5 in, 4 out -> 12: (5 x 0.25 + 12 x 2) / 1e6 = $0.00002525
    4. responses stream, priority, 2 in, 3 out -> 9: (2 x 0.45 + 9 x 3.60) / 1e6 = $0.0000333
    5. chat, auto (standard), 6 in, 1 out -> 3: (6 x 0.25 + 3 x 2) / 1e6 = $0.0000075"""
    env = make_env()
    seen = capture_events(env)

    async def main() -> list[Any]:
        c = oa(env)
        r1 = await c.chat.completions.create(
            model="gpt-5-mini",
            messages=[{"role": "user", "content": "one two three four"}],
            max_completion_tokens=5,
            service_tier="flex",
        )
        chunks = [
            ch
            async for ch in await c.chat.completions.create(
                model="gpt-5-mini",
                messages=[{"role": "user", "content": "alpha beta gamma"}],
                max_completion_tokens=2,
                service_tier="priority",
                stream=True,
            )
        ]
        r3 = await c.responses.create(
            model="gpt-5-mini", input="a b c d e", max_output_tokens=4, service_tier="default"
        )
        async with c.responses.stream(
            model="gpt-5-mini", input="x y", max_output_tokens=3, service_tier="priority"
        ) as s:
            r4 = await s.get_final_response()
        r5 = await c.chat.completions.create(
            model="gpt-5-mini",
            messages=[{"role": "user", "content": "six words are in this prompt"}],
            max_completion_tokens=1,
            service_tier="auto",
        )
        await env.close()
        return [r1, chunks[-1], r3, r4, r5]

    r1, last, r3, r4, r5 = asyncio.run(main())
    tiers = [r.service_tier for r in (r1, last, r3, r4, r5)]
    assert tiers == ["flex", "priority", "default", "priority", "default"]
    evs = env.events()
    assert [(e["input_tokens"], e["output_tokens"]) for e in evs] == [
        (4, 15),
        (3, 6),
        (5, 12),
        (2, 9),
        (6, 3),
    ]
    assert [e["cost_usd"] for e in evs] == [
        Decimal("0.0000155"),
        Decimal("0.00002295"),
        Decimal("0.00002525"),
        Decimal("0.0000333"),
        Decimal("0.0000075"),
    ]
    # "default" and "auto" are the standard tier: no marker handed to pricing
    assert [e["service_tier"] for e in seen] == ["flex", "priority", None, "priority", None]
    assert env.events("tool_call") == []


def test_priority_request_reserved_at_priority_rates(make_env: Callable[..., Env]) -> None:
    """A $0.03 hard cap, gpt-5-mini, 10,000 output tokens asked for. The reservation (input
    bound = body bytes, a few hundred) at standard rates: 10,000 x $2.00 / 1e6 = $0.020 plus
    under $0.0002 of input, within the cap; at priority rates 10,000 x $3.60 / 1e6 = $0.036 is
    over it, so the priority request is refused before it leaves and the same request at the
    standard tier goes through."""
    env = make_env(policy=POLICY.format(graceful="false", limit="0.03"))

    async def main() -> str:
        c = oa(env)
        ask = {
            "model": "gpt-5-mini",
            "messages": [{"role": "user", "content": "one two"}],
            "max_completion_tokens": 10_000,
        }
        with pytest.raises(openai.RateLimitError):
            await c.chat.completions.create(**ask, service_tier="priority")
        r = await c.chat.completions.create(**ask)
        await env.close()
        return r.service_tier

    assert asyncio.run(main()) == "default"
    assert env.mock.requests == 1  # the priority request never reached the provider
    [ev] = env.events()
    assert ev["status"] == "ok"


def test_a_tier_without_a_price_is_reserved_at_the_standard_rates(
    make_env: Callable[..., Env], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """gpt-5-mini priced by the operator at $0.20 / $1.60 per Mtok (its standard tier); a
    request asking for priority has no price at that tier. It is reserved at the standard
    operator price (input bound x 0.2 + 5 output tokens x 1.6, micro-dollars), never $0; the
    call is recorded unpriced and the guard keeps that reservation."""
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[[model]]\nprovider = "openai"\nmodel = "gpt-5-mini"\ninput_mtok = 0.2\n'
        "output_mtok = 1.6\n"
    )
    monkeypatch.setenv("TAILGUARD_PRICES", str(prices))
    env = make_env(policy=POLICY.format(graceful="false", limit="10"))
    asked = capture_checks(env)

    async def main() -> None:
        await oa(env).chat.completions.create(
            model="gpt-5-mini",
            messages=[{"role": "user", "content": "one two"}],
            max_completion_tokens=5,
            service_tier="priority",
        )

    asyncio.run(main())
    (req,) = asked
    expected = Decimal(req.input_tokens * 2 + 5 * 16).scaleb(-7)  # x 0.2 and x 1.6 per Mtok
    assert req.estimated_cost_usd == expected > 0
    # the guard counts micro-dollars, rounded up
    assert env.gw.guard.status("acme")["spent"] == expected.quantize(Decimal("1e-6"), ROUND_CEILING)
    asyncio.run(env.close())
    (call,) = env.events()
    assert (call["cost_usd"], call["unpriced"]) == (None, True)
