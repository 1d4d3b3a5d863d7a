"""The guard in the gateway's path: budgets under concurrent clients, 429 and graceful denials
as both SDKs parse them, degrade rewrites the model, a killed session stays refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from tests.gateway.conftest import POLICY, Env
from tests.gateway.helpers import an, oa

MSG = [{"role": "user", "content": "please answer this short question"}]


def test_budget_enforced_under_concurrent_clients(make_env: Callable[..., Env]) -> None:
    limit = Decimal("0.0004")
    env = make_env(policy=POLICY.format(graceful="false", limit=limit))

    async def main() -> tuple[int, int]:
        clients = [oa(env) for _ in range(8)]
        ok = denied = 0

        async def one(i: int) -> None:
            nonlocal ok, denied
            try:
                await clients[i % 8].chat.completions.create(
                    model="gpt-4o-mini", messages=MSG, max_tokens=16
                )
                ok += 1
            except openai.RateLimitError as exc:
                assert "limit" in exc.message.lower()
                denied += 1

        await asyncio.gather(*(one(i) for i in range(120)))
        await env.close()
        return ok, denied

    ok, denied = asyncio.run(main())
    assert ok > 0 and denied > 0 and ok + denied == 120
    calls = env.events()
    assert len(calls) == ok  # one llm_call per upstream call, none for refusals
    assert sum(e["cost_usd"] for e in calls) <= limit  # never past the hard limit
    assert any(g["action"] == "deny" for g in env.events("guard"))


def test_429_denial_parses_in_both_sdks(make_env: Callable[..., Env]) -> None:
    env = make_env(policy=POLICY.format(graceful="false", limit="0.000001"))

    async def main() -> tuple[Any, Any]:
        with pytest.raises(openai.RateLimitError) as e1:
            await oa(env).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        with pytest.raises(anthropic.RateLimitError) as e2:
            await an(env).messages.create(model="claude-haiku-4-5", max_tokens=8, messages=MSG)
        await env.close()
        return e1.value, e2.value

    oe, ae = asyncio.run(main())
    assert oe.status_code == 429 and oe.code == "tailguard_hard_limit"
    assert oe.response.headers["retry-after"].isdigit()
    assert ae.status_code == 429 and ae.body["error"]["type"] == "rate_limit_error"
    assert "limit" in ae.message.lower()
    assert env.events() == []


def test_graceful_denial_is_a_well_formed_completion(make_env: Callable[..., Env]) -> None:
    env = make_env(policy=POLICY.format(graceful="true", limit="0.000001"))

    async def main() -> list[str]:
        o, a = oa(env), an(env)
        r1 = await o.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        s = await o.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
        t2 = "".join([ch.choices[0].delta.content or "" async for ch in s])
        r3 = await a.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=MSG)
        async with a.messages.stream(model="claude-haiku-4-5", max_tokens=8, messages=MSG) as st:
            t4 = "".join([t async for t in st.text_stream])
        r5 = await o.responses.create(model="gpt-4o-mini", input="hi")
        await env.close()
        return [r1.choices[0].message.content or "", t2, r3.content[0].text, t4, r5.output_text]

    texts = asyncio.run(main())
    assert all("limit" in t.lower() for t in texts), texts
    assert len(set(texts)) == 1
    assert env.events() == []


def test_degrade_rewrites_the_model(make_env: Callable[..., Env]) -> None:
    policy = """
[guard]
default_tier = "pro"
[tiers.pro]
period = "month"
hard_limit_usd = 10
soft_threshold = 0.00005
overage = "soft_cap_degrade"
degrade_to = { "gpt-4o" = "gpt-4o-mini" }
"""
    env = make_env(policy=policy)

    async def main() -> list[str]:
        c = oa(env)
        out = []
        for _ in range(8):
            r = await c.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=4)
            out.append(r.model)
        await env.close()
        return out

    models = asyncio.run(main())
    assert models[0] == "gpt-4o" and models[-1] == "gpt-4o-mini"
    assert [e["model"] for e in env.events()] == models
    assert any(g["action"] == "degrade" for g in env.events("guard"))


def test_killed_session_stays_refused(make_env: Callable[..., Env]) -> None:
    policy = POLICY.format(graceful="false", limit="100") + "session_max_usd_per_hour = 0.0001\n"
    env = make_env(policy=policy)

    async def main() -> tuple[int, str | None, bool]:
        c = oa(env)
        ok = 0
        code = None
        for _ in range(50):
            try:
                await c.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=MSG,
                    max_tokens=16,
                    extra_headers={"X-Tailguard-Session": "s-loop"},
                )
                ok += 1
            except openai.RateLimitError as exc:
                code = exc.code
                break
        with pytest.raises(openai.RateLimitError) as again:
            await c.chat.completions.create(
                model="gpt-4o-mini", messages=MSG, extra_headers={"X-Tailguard-Session": "s-loop"}
            )
        assert again.value.code == "session_killed"
        other = await c.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, extra_headers={"X-Tailguard-Session": "s-new"}
        )
        await env.close()
        return ok, code, bool(other.choices)

    ok, code, other_ok = asyncio.run(main())
    assert ok >= 1 and code == "session_killed" and other_ok
    assert any(g["action"] == "kill" for g in env.events("guard"))
