"""Enforcement without a gateway: ``tg.instrument(client, policy=...)`` denies with
``tailguard.BudgetExceeded``, degrades by rewriting the model, answers gracefully when the tier
says so, and settles each reservation with the call's real cost."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest

import tailguard
from tailguard.sdk import Tailguard
from tests.sdk.conftest import Mock, ledger_rows

MSG = [{"role": "user", "content": "a b c"}]

HARD = """
[guard]
default_tier = "free"
graceful = {graceful}
[tiers.free]
period = "month"
hard_limit_usd = 0.002
overage = "hard_cap"
"""

DEGRADE = """
[guard]
default_tier = "pro"
[tiers.pro]
period = "month"
hard_limit_usd = 0.004
soft_threshold = 0.3
overage = "soft_cap_degrade"
hard_limit_action = "deny"
degrade_to = {{ "gpt-4o" = "gpt-4o-mini" }}
"""


def _policy(tmp: Path, text: str, **kw: object) -> Path:
    p = tmp / "policy.toml"
    p.write_text(text.format(**kw))
    return p


def test_deny_raises_budget_exceeded(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    c = tg.instrument(
        openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0),
        policy=_policy(tmp_path, HARD, graceful="false"),
    )
    allowed = 0
    with tg.task(customer="acme"), pytest.raises(tailguard.BudgetExceeded) as info:
        for _ in range(200):
            c.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=16)
            allowed += 1
            tg.flush()  # settles the reservation with the real cost
    assert info.value.decision.action == "deny"
    # gpt-4o: $2.50 / $10 per million. A call is reserved at ~100 body bytes of input and 16
    # output tokens (~$0.00041) and settles at 3 in + 16 out = $0.0001675: settled, the
    # $0.002 cap lets ~10 calls through; never settled, the reservations alone would stop it
    # after 4 or 5
    assert allowed >= 8
    tg.flush()
    calls = ledger_rows(tmp_path / "ledger", "llm_call")
    guards = ledger_rows(tmp_path / "ledger", "guard")
    assert len(calls) == allowed  # the denied call was never sent, nor recorded as a call
    assert [g["action"] for g in guards][-1] == "deny"
    # a hard cap: what was spent, priced by the ledger, never passes the limit
    assert 0 < sum(r["cost_usd"] for r in calls) <= Decimal("0.002")


def test_graceful_answer_instead_of_an_exception(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    a = tg.instrument(
        anthropic.Anthropic(base_url=mock.url, api_key="k", max_retries=0),
        policy=_policy(tmp_path, HARD, graceful="true"),
    )
    texts = []
    with tg.task(customer="acme"):
        for _ in range(200):
            m = a.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=MSG)
            tg.flush()
            texts.append(m.content[0].text)
            if not texts[-1].startswith("w1"):
                break
    assert not texts[-1].startswith("w1")  # the last answer explains the cap, no exception
    assert len(ledger_rows(tmp_path / "ledger", "llm_call")) == len(texts) - 1


def test_degrade_rewrites_the_model(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    async def main() -> list[str]:
        c = tg.instrument(
            openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0),
            policy=_policy(tmp_path, DEGRADE),
        )
        models = []
        async with tg.task(customer="acme"):
            for _ in range(200):
                r = await c.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=16)
                tg.flush()
                models.append(r.model)  # the mock answers with the model it was asked for
                if r.model == "gpt-4o-mini":
                    break
        await c.close()
        return models

    models = asyncio.run(main())
    assert models[0] == "gpt-4o" and models[-1] == "gpt-4o-mini"
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    assert [r["model"] for r in rows] == models
    assert "degrade" in {g["action"] for g in ledger_rows(tmp_path / "ledger", "guard")}


def test_graceful_stream_shows_no_usage_chunk_it_did_not_ask_for(
    mock: Mock, tg: Tailguard, tmp_path: Path
) -> None:
    c = tg.instrument(
        openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0),
        policy=_policy(tmp_path, HARD, graceful="true"),
    )
    with tg.task(customer="acme"):
        for _ in range(200):
            chunks = list(
                c.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=16, stream=True)
            )
            tg.flush()
            text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            if not text.startswith("w1"):
                break
    assert not text.startswith("w1")  # refused, gracefully
    assert all(ch.choices and ch.usage is None for ch in chunks)
