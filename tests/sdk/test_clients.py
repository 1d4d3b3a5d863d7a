"""The official openai and anthropic SDKs through ``tg.instrument`` against the mock provider:
the ledger's tokens equal what the client saw, and what the mock's rule gives by hand.

The mock's rule (``tailguard.gateway.mock``): input = words of every text; output = ``min(max
tokens, 16)`` words; reasoning models (``o*``) add ``2 × output`` reasoning tokens, counted in
the output; Anthropic's ``input_tokens`` excludes cache writes / reads, which the ledger adds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
import openai

from tailguard.sdk import Tailguard
from tests.sdk.conftest import Mock, ledger_rows

MSG = [{"role": "user", "content": "one two three four five"}]  # 5 words


def _oa(mock: Mock, tg: Tailguard) -> openai.OpenAI:
    return tg.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="sk-x", max_retries=0))


def test_openai_sync_every_endpoint(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    c = _oa(mock, tg)
    seen: list[tuple[int, int, int]] = []  # (input, output, reasoning) as the client saw them
    with tg.task(customer="acme", user="u-1", feature="support", workload="agent"):
        r = c.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
        seen.append((r.usage.prompt_tokens, r.usage.completion_tokens, 0))
        # a stream whose caller asked for usage sees the usage chunk
        chunks = list(
            c.chat.completions.create(
                model="gpt-4o-mini",
                messages=MSG,
                max_tokens=4,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        u = chunks[-1].usage
        assert u is not None
        seen.append((u.prompt_tokens, u.completion_tokens, 0))
        # one that did not ask never sees it (the tap requested it and cut it out)
        plain = list(
            c.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=6, stream=True)
        )
        assert all(ch.usage is None for ch in plain)
        assert all(ch.choices for ch in plain)  # no usage-only chunk slipped through
        assert "".join(ch.choices[0].delta.content or "" for ch in plain) == "w1 w2 w3 w4 w5 w6"
        seen.append((5, 6, 0))  # by the mock's rule: 5 words in, min(6, 16) out
        r2 = c.responses.create(model="o4-mini", input="a b c", max_output_tokens=2)
        seen.append(
            (
                r2.usage.input_tokens,
                r2.usage.output_tokens,
                r2.usage.output_tokens_details.reasoning_tokens,
            )
        )
        with c.responses.stream(model="gpt-4o", input="a b c d", max_output_tokens=5) as s:
            final = s.get_final_response()
        seen.append((final.usage.input_tokens, final.usage.output_tokens, 0))
        e = c.embeddings.create(model="text-embedding-3-small", input=["x y", "z"])
        seen.append((e.usage.prompt_tokens, 0, 0))
    tg.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    assert [(r["input_tokens"], r["output_tokens"], r["reasoning_tokens"]) for r in rows] == seen
    # and by hand: the responses call on a reasoning model: 2 out + 2 x 2 reasoning
    assert seen == [(5, 3, 0), (5, 4, 0), (5, 6, 0), (3, 6, 4), (4, 5, 0), (3, 0, 0)]
    assert {r["customer_id"] for r in rows} == {"acme"}
    assert {r["feature"] for r in rows} == {"support"}
    assert {r["workload"] for r in rows} == {"agent"}
    assert {r["status"] for r in rows} == {"ok"}
    assert [r["model"] for r in rows][:3] == ["gpt-4o-mini"] * 3
    assert all(r["provider"] == "openai" for r in rows)
    assert len({r["task_id"] for r in rows}) == 1


def test_openai_cached_prompt(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    c = _oa(mock, tg)
    msg = [{"role": "user", "content": "cached prompt of exactly eight words right here"}]
    with tg.task(customer="acme"):
        c.chat.completions.create(model="gpt-4o", messages=msg, max_tokens=1)
        r = c.chat.completions.create(model="gpt-4o", messages=msg, max_tokens=1)
    tg.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    # the second time the mock reports cached = 8 // 2 = 4, included in the 8 input tokens
    assert r.usage.prompt_tokens_details.cached_tokens == 4
    assert [(x["input_tokens"], x["cache_read_tokens"]) for x in rows] == [(8, 0), (8, 4)]


def test_openai_async_stream_and_not(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    async def main() -> list[tuple[int, int]]:
        c = tg.instrument(
            openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="sk-x", max_retries=0)
        )
        out = []
        async with tg.task(customer="beta", feature="chat"):
            r = await c.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=2)
            out.append((r.usage.prompt_tokens, r.usage.completion_tokens))
            s = await c.chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=7, stream=True
            )
            text = ""
            async for ch in s:
                assert ch.usage is None and ch.choices
                text += ch.choices[0].delta.content or ""
            assert text.split() == [f"w{i}" for i in range(1, 8)]
            out.append((5, 7))  # the mock's rule; the client was not shown usage
        await c.close()
        return out

    seen = asyncio.run(main())
    tg.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == seen == [(5, 2), (5, 7)]
    assert {r["customer_id"] for r in rows} == {"beta"}


def _anthropic_messages(words: str) -> list[dict[str, object]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": words, "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "and two"},
            ],
        }
    ]


def test_anthropic_sync_and_async_cache_conversion(
    mock: Mock, tg: Tailguard, tmp_path: Path
) -> None:
    a = tg.instrument(anthropic.Anthropic(base_url=mock.url, api_key="sk-x", max_retries=0))
    ctx = "a long shared context of nine words right here"  # 9 words, cache_control
    seen: list[tuple[int, int, int, int]] = []
    with tg.task(customer="gamma", feature="rag", workload="rag"):
        m = a.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=_anthropic_messages(ctx)
        )
        u = m.usage
        seen.append(
            (
                u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens,
                u.output_tokens,
                u.cache_read_input_tokens,
                u.cache_creation_input_tokens,
            )
        )
        with a.messages.stream(
            model="claude-haiku-4-5", max_tokens=4, messages=_anthropic_messages(ctx)
        ) as st:
            fin = st.get_final_message()
        u = fin.usage
        seen.append(
            (
                u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens,
                u.output_tokens,
                u.cache_read_input_tokens,
                u.cache_creation_input_tokens,
            )
        )

    async def main() -> None:
        aa = tg.instrument(
            anthropic.AsyncAnthropic(base_url=mock.url, api_key="sk-x", max_retries=0)
        )
        async with tg.task(customer="gamma"):
            m = await aa.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=3,
                messages=[{"role": "user", "content": "x y"}],
            )
            assert (m.usage.input_tokens, m.usage.output_tokens) == (2, 3)
            s = await aa.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=2,
                messages=[{"role": "user", "content": "x y z"}],
                stream=True,
            )
            async for _ in s:
                pass
        await aa.close()

    asyncio.run(main())
    tg.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    got = [
        (r["input_tokens"], r["output_tokens"], r["cache_read_tokens"], r["cache_write_tokens"])
        for r in rows
    ]
    # by hand: first call writes the 9 cached words (+2 plain), second reads them
    assert seen == [(11, 5, 0, 9), (11, 4, 9, 0)]
    assert got == [*seen, (2, 3, 0, 0), (3, 2, 0, 0)]
    assert {r["provider"] for r in rows} == {"anthropic"}


def test_client_on_plain_httpx(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    """A client given its own ``httpx`` (not ``httpx2``) pool is tapped the same way."""
    import httpx

    async def main() -> int:
        c = tg.instrument(
            openai.AsyncOpenAI(
                base_url=mock.url + "/v1",
                api_key="k",
                max_retries=0,
                http_client=httpx.AsyncClient(),
            )
        )
        async with tg.task(customer="delta"):
            s = await c.chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=3, stream=True
            )
            n = sum([1 async for ch in s if ch.choices])
        await c.close()
        return n

    assert asyncio.run(main()) == 5  # role chunk, 3 words, finish chunk: no usage-only chunk
    tg.flush()
    (row,) = ledger_rows(tmp_path / "ledger", "llm_call")
    assert (row["customer_id"], row["input_tokens"], row["output_tokens"]) == ("delta", 5, 3)
