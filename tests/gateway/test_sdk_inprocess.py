"""The official SDKs (async clients) through the gateway, in process, to the mock provider.

Expected token counts come from the mock's rule (docs/gateway.md: one token per
whitespace-separated word of the prompt; replies of min(max_tokens, 16) words), worked out here
by hand, not from the gateway's code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.gateway.conftest import Env
from tests.gateway.helpers import an, oa


def test_openai_chat_non_streaming_ledger_equals_usage(make_env: Callable[..., Env]) -> None:
    env = make_env()

    async def main() -> Any:
        c = oa(env)
        r = await c.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "you are terse"},  # 3 words
                {"role": "user", "content": "count the words in this prompt"},  # 6 words
            ],
            max_tokens=5,
            extra_headers={
                "X-Tailguard-Feature": "support",
                "X-Tailguard-Task": "t1",
                "X-Tailguard-Workload": "agent",
                "X-Tailguard-Attempt": "2",
            },
            user="u-42",
        )
        await env.close()
        return r

    r = asyncio.run(main())
    assert r.choices[0].message.content == "w1 w2 w3 w4 w5"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (9, 5)
    [ev] = env.events()
    assert ev["customer_id"] == "acme"
    assert ev["user_id"] == "u-42"
    assert ev["feature"] == "support" and ev["task_id"] == "t1"
    assert ev["workload"] == "agent" and ev["attempt"] == 2
    assert (ev["input_tokens"], ev["output_tokens"], ev["cache_read_tokens"]) == (9, 5, 0)
    assert ev["status"] == "ok" and ev["provider"] == "openai" and ev["model"] == "gpt-4o-mini"
    assert ev["cost_usd"] is not None and not ev["unpriced"]


def test_openai_chat_stream_usage_injected_and_dropped(make_env: Callable[..., Env]) -> None:
    env = make_env()

    async def main() -> tuple[list[Any], Any]:
        c = oa(env)
        chunks = [
            ch
            async for ch in await c.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "one two three four"}],
                max_tokens=7,
                stream=True,
            )
        ]
        second = await c.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "one two three four"}],
            max_tokens=7,
            stream=True,
            stream_options={"include_usage": True},
        )
        last = [ch async for ch in second][-1]
        await env.close()
        return chunks, last

    chunks, last = asyncio.run(main())
    # the client did not ask for usage: no usage-only chunk reaches it
    assert all(ch.choices for ch in chunks)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == "w1 w2 w3 w4 w5 w6 w7"
    # the client that asked gets it; the second identical prompt is a cache hit (4 // 2 = 2)
    assert last.usage.prompt_tokens == 4 and last.usage.completion_tokens == 7
    assert last.usage.prompt_tokens_details.cached_tokens == 2
    evs = env.events()
    assert [(e["input_tokens"], e["output_tokens"], e["cache_read_tokens"]) for e in evs] == [
        (4, 7, 0),
        (4, 7, 2),
    ]


def test_anthropic_messages_cache_tokens_converted(make_env: Callable[..., Env]) -> None:
    env = make_env()
    system = [
        {"type": "text", "text": "a b c d e f g h", "cache_control": {"type": "ephemeral"}},
    ]

    async def main() -> tuple[Any, list[str], Any]:
        c = an(env)
        r1 = await c.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=3,
            system=system,
            messages=[{"role": "user", "content": "hello there"}],
            metadata={"user_id": "u-7"},
        )
        texts: list[str] = []
        async with c.messages.stream(
            model="claude-sonnet-4-6",
            max_tokens=4,
            system=system,
            messages=[{"role": "user", "content": "hello again you"}],
        ) as s:
            async for t in s.text_stream:
                texts.append(t)
            final = await s.get_final_message()
        await env.close()
        return r1, texts, final

    r1, texts, final = asyncio.run(main())
    # first call: 8 cached words written, 2 plain; Anthropic's input_tokens excludes the cache
    assert r1.usage.input_tokens == 2 and r1.usage.cache_creation_input_tokens == 8
    assert "".join(texts) == "w1 w2 w3 w4"
    assert final.usage.cache_read_input_tokens == 8 and final.usage.input_tokens == 3
    e1, e2 = env.events()
    assert (e1["input_tokens"], e1["cache_write_tokens"], e1["cache_read_tokens"]) == (10, 8, 0)
    assert e1["output_tokens"] == 3 and e1["user_id"] == "u-7"
    assert (e2["input_tokens"], e2["cache_write_tokens"], e2["cache_read_tokens"]) == (11, 0, 8)
    assert e2["output_tokens"] == 4
    assert e2["cost_usd"] < e1["cost_usd"]  # cache reads are cheaper than cache writes


def test_user_ids_hashed_and_keys_picked_up_while_running(
    make_env: Callable[..., Env],
) -> None:
    import hashlib
    import hmac

    env = make_env()
    env.gw.cfg.user_hash_key = b"s3cret"  # what user_hash_key_env = "..." loads
    from tailguard.gateway.config import create_key

    late = create_key(env.gw.cfg.keys, "globex", "u-late")  # after the gateway loaded its keys
    env.gw.keyring._checked = 0.0  # as if the check interval had passed

    async def main() -> None:
        await oa(env, late).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Tailguard-Customer": "someone-else"},  # never changes the customer
        )
        await env.close()

    asyncio.run(main())
    [ev] = env.events()
    assert ev["customer_id"] == "globex"
    digest = hmac.new(b"s3cret", b"u-late", hashlib.sha256).hexdigest()[:32]
    assert ev["user_id"] == "h:" + digest
