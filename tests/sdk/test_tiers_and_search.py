"""The SDK records and guards a call as the gateway does: the service tier, Anthropic's 1-hour
cache writes, web searches, and a call it cannot price.

Token counts follow the mock's rule (docs/gateway.md: one token per word of the prompt; a reply
of min(max tokens, 16) words; a ``gpt-5`` model also reasons 2 tokens per reply word). Prices
per million tokens: Claude Sonnet 4.5 input $3, 5-minute cache writes $3.75, 1-hour writes $6,
cache hits $0.30, output $15, a web search $0.01 (platform.claude.com/docs/en/about-claude/
pricing); GPT-5 mini standard $0.25 / $2.00, flex $0.125 / $1.00 (platform.openai.com/docs/
pricing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import tailguard
from tailguard.guard import Guard, load_policy
from tailguard.sdk import Tailguard, connect
from tests.gateway.conftest import POLICY, Env, make_env  # noqa: F401  (make_env: a fixture)
from tests.gateway.helpers import SYSTEM_1H_5M, WEB_SEARCH_TOOLS, an, capture_events, oa
from tests.sdk.conftest import Mock, ledger_rows

#: fields of an event that name the call rather than describe it (ids, time, who)
_ENVELOPE = {"event_id", "ts", "customer_id", "user_id", "feature", "task_id", "session_id",
             "workload", "latency_ms"}  # fmt: skip


@pytest.fixture
def sdk(tmp_path: Path) -> Iterator[tuple[Tailguard, list[dict[str, Any]]]]:
    """An SDK handle on its own ledger (the gateway's is ``tmp_path/ledger``) and the events it
    hands to its sink (with the pricing inputs, which the ledger reads and does not store)."""
    h = connect(ledger=tmp_path / "sdk-ledger", default_customer="acme")
    seen: list[dict[str, Any]] = []
    send = h.recorder.sink.send

    def spy(events: list[dict[str, Any]]) -> None:
        seen.extend(events)
        send(events)

    h.recorder.sink.send = spy  # type: ignore[method-assign]
    yield h, seen
    h.close()


def _strip(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k not in _ENVELOPE} for e in events]


def _cost(path: Path) -> list[Decimal | None]:
    return [r["cost_usd"] for r in ledger_rows(path, "llm_call")]


def test_same_response_same_event_and_cost_as_the_gateway(
    mock: Mock,
    sdk: tuple[Tailguard, list[dict[str, Any]]],
    make_env: Callable[..., Env],  # noqa: F811
    tmp_path: Path,
) -> None:
    """Four calls through the SDK and through the gateway, the same mock answers:

    1. Anthropic, 2 plain words, 8 words cached for 1 hour and 4 for 5 minutes, 3 out, 2
       searches: (2 x 3 + 4 x 3.75 + 8 x 6 + 3 x 15) / 1e6 = $0.000114 (all 12 writes at the
       5-minute rate, what the SDK recorded before: $0.000096), and 2 tool_calls of $0.01;
    2. the same, streamed: 2 plain words and the 12 cached words read back, 3 out:
       (2 x 3 + 12 x 0.30 + 3 x 15) / 1e6 = $0.0000546, 2 searches;
    3. OpenAI gpt-5-mini chat at flex, 4 words in, 5 out + 10 reasoning = 15:
       (4 x 0.125 + 15 x 1.00) / 1e6 = $0.0000155, half the standard $0.000031;
    4. call 1 again at priority (a contract tier, cache read back, 2 searches): unpriced, as
       the gateway leaves it; its searches keep their price.
    """
    h, seen = sdk
    env = make_env()
    gw_seen = capture_events(env)
    msg = {"role": "user", "content": "hello there"}
    chat = {
        "model": "gpt-5-mini",
        "messages": [{"role": "user", "content": "one two three four"}],
        "max_completion_tokens": 5,
        "service_tier": "flex",
    }
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 3, "system": SYSTEM_1H_5M,
           "tools": WEB_SEARCH_TOOLS, "messages": [msg]}  # fmt: skip

    a = h.instrument(anthropic.Anthropic(base_url=mock.url, api_key="k", max_retries=0))
    o = h.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0))
    try:
        a.messages.create(**ask)
        with a.messages.stream(**ask) as s:
            s.get_final_message()
        o.chat.completions.create(**chat)
        mock.app.anthropic_tier = "priority"
        a.messages.create(**ask)
    finally:
        mock.app.anthropic_tier = "standard"
        a.close()
        o.close()
    h.flush()

    async def through_gateway() -> None:
        c, g = an(env), oa(env)
        await c.messages.create(**ask)
        async with c.messages.stream(**ask) as s:
            await s.get_final_message()
        await g.chat.completions.create(**chat)
        env.mock.anthropic_tier = "priority"
        await c.messages.create(**ask)
        await env.close()

    asyncio.run(through_gateway())

    assert _strip(seen) == _strip(gw_seen)
    calls = [e for e in seen if e["kind"] == "llm_call"]
    assert [(c["cache_write_1h_tokens"], c["service_tier"]) for c in calls] == [
        (8, "standard"),
        (0, "standard"),
        (0, "flex"),
        (0, "priority"),
    ]
    searches = [e for e in seen if e["kind"] == "tool_call"]
    assert len(searches) == 6
    assert {(t["tool"], Decimal(t["cost_usd"])) for t in searches} == {
        ("web_search", Decimal("0.01"))
    }
    assert searches[0]["event_id"] == calls[0]["event_id"] + ":web_search:0"
    want = [Decimal("0.000114"), Decimal("0.0000546"), Decimal("0.0000155"), None]
    assert _cost(tmp_path / "sdk-ledger") == want
    assert _cost(tmp_path / "ledger") == want


CAP = """
[guard]
default_tier = "free"
graceful = false
[tiers.free]
period = "month"
hard_limit_usd = 0.002
overage = "hard_cap"
"""


def test_a_call_without_a_price_keeps_its_reservation(
    mock: Mock, tg: Tailguard, tmp_path: Path
) -> None:
    """A $0.002 hard cap; Claude Sonnet 4.5, "a b c", max_tokens 80. Reserved: the body's
    bytes (about 90; asserted under 166) x $3 + 80 x $15 = $0.0012 + under $0.0005: between
    $0.0012 and $0.0017, below the cap.

    - at priority (a contract tier, no price) the call settles at that reservation, so a
      second one (twice the reservation: over $0.0024) is denied; settled at $0 (the old code)
      it went through;
    - at the standard tier the call settles at its cost, 3 in x 3 + 16 out x 15 = $0.000249,
      and the second call ($0.000249 + at most $0.0017 = under $0.002) is allowed.
    """
    p = tmp_path / "policy.toml"
    p.write_text(CAP)
    guard = Guard(load_policy(p), sink=tg.guard_sink)
    asked: list[Any] = []
    check = guard.check

    def spy(req: Any) -> Any:
        asked.append(req)
        return check(req)

    guard.check = spy  # type: ignore[method-assign]
    a = tg.instrument(
        anthropic.Anthropic(base_url=mock.url, api_key="k", max_retries=0), guard=guard
    )
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 80,
           "messages": [{"role": "user", "content": "a b c"}]}  # fmt: skip

    mock.app.anthropic_tier = "priority"
    try:
        with tg.task(customer="prio"):
            a.messages.create(**ask)
            tg.flush()  # settles
            with pytest.raises(tailguard.BudgetExceeded) as info:
                a.messages.create(**ask)
    finally:
        mock.app.anthropic_tier = "standard"
    assert info.value.decision.action == "deny"
    assert len(asked) == 2  # the second call was asked for and refused, never sent
    r = asked[0]
    assert r.input_tokens < 166 and r.max_output_tokens == 80
    est = Decimal(r.input_tokens) * 3 / 10**6 + Decimal("0.0012")
    assert r.estimated_cost_usd == est
    spent = guard.status("prio")["spent"]
    assert spent == est.quantize(Decimal("1e-6"), rounding=ROUND_CEILING)

    with tg.task(customer="std"):
        a.messages.create(**ask)
        tg.flush()
        assert guard.status("std")["spent"] == Decimal("0.000249")
        a.messages.create(**ask)  # allowed: the first one cost less than it reserved
    a.close()
    tg.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    assert [x["customer_id"] for x in rows] == ["prio", "std", "std"]
    assert [x["cost_usd"] for x in rows] == [None, Decimal("0.000249"), Decimal("0.000249")]


def test_a_denied_anthropic_call_raises_budget_exceeded_once(
    mock: Mock, tg: Tailguard, tmp_path: Path
) -> None:
    """max_tokens 200 x $15 / 1e6 = $0.003 alone is over the $0.002 cap: denied at once. The
    anthropic SDK (2.x) wraps any exception from its transport in APIConnectionError and
    retries it (``max_retries``, 2 by default): the caller must see ``BudgetExceeded`` and the
    guard be asked once, with one deny event, not three."""
    p = tmp_path / "policy.toml"
    p.write_text(CAP)
    a = tg.instrument(anthropic.Anthropic(base_url=mock.url, api_key="k"), policy=p)
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 200,
           "messages": [{"role": "user", "content": "a b c"}]}  # fmt: skip
    with tg.task(customer="big"), pytest.raises(tailguard.BudgetExceeded) as info:
        a.messages.create(**ask)
    a.close()
    assert info.value.decision.action == "deny"
    tg.flush()
    assert [g["action"] for g in ledger_rows(tmp_path / "ledger", "guard")] == ["deny"]
    assert ledger_rows(tmp_path / "ledger", "llm_call") == []
