"""The gateway reserves and settles a call at the price in force now, from the cache it shares
with the SDK (``tailguard.pricing.cache``): a dated operator price applies from its first
instant, with a clock injected into that cache. gpt-4o's list price is $2.50 / $10 per Mtok
(genai-prices, platform.openai.com/docs/pricing); the operator's contract price, $1.25 / $5,
starts 2027-01-01T00:00Z. Token counts follow the mock's rule (docs/gateway.md: one token per
word of the prompt, a reply of min(max tokens, 16) words).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from tailguard.pricing import PriceBook
from tailguard.pricing.cache import PriceCache
from tests.gateway.conftest import POLICY, Env
from tests.gateway.helpers import capture_checks, capture_events, oa
from tests.pricing.pricing_helpers import BOUNDARY
from tests.pricing.pricing_helpers import DATED_GPT4O as PRICES


def test_a_dated_price_applies_from_its_first_instant(
    make_env: Callable[..., Env], tmp_path: Path
) -> None:
    """Two calls of 3 words in and ``max_tokens=16`` (16 words out), ``n`` input tokens
    reserved (the body's bytes):

    1. 30 s before the boundary: reserved (n x 2.50 + 16 x 10) / 1e6, settled
       (3 x 2.50 + 16 x 10) / 1e6 = $0.0001675;
    2. 30 s after: reserved (n x 1.25 + 16 x 5) / 1e6, settled (3 x 1.25 + 16 x 5) / 1e6 =
       $0.00008375.
    """
    env = make_env(policy=POLICY.format(graceful="false", limit=100))
    p = tmp_path / "prices.toml"
    p.write_text(PRICES)
    now = [BOUNDARY - dt.timedelta(seconds=30)]
    env.gw.book = PriceBook.load(p)
    env.gw._prices = PriceCache(env.gw.book, clock=lambda: now[0])
    asked = capture_checks(env)
    events = capture_events(env)
    settled: list[Decimal] = []
    settle = env.gw.guard.asettle

    async def spy(r: Any, actual: Decimal, **kw: Any) -> Any:
        settled.append(actual)
        return await settle(r, actual, **kw)

    env.gw.guard.asettle = spy

    async def main() -> None:
        c = oa(env)
        for text in ("a b c", "d e f"):
            await c.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": text}], max_tokens=16
            )
            now[0] = BOUNDARY + dt.timedelta(seconds=30)
        await c.close()
        await env.close()

    asyncio.run(main())
    m = Decimal(1_000_000)
    q1, q2 = asked
    assert (q1.max_output_tokens, q2.max_output_tokens) == (16, 16)
    assert q1.estimated_cost_usd == (q1.input_tokens * Decimal("2.50") + 16 * 10) / m
    assert q2.estimated_cost_usd == (q2.input_tokens * Decimal("1.25") + 16 * 5) / m
    assert settled == [Decimal("0.0001675"), Decimal("0.00008375")]
    # the event is stamped at the instant it was priced at, so the ledger, which prices an
    # event at its ts, charges what the guard settled (the ts was a second now() before)
    calls = [e for e in events if e["kind"] == "llm_call"]
    assert [dt.datetime.fromisoformat(e["ts"]) for e in calls] == [
        BOUNDARY - dt.timedelta(seconds=30),
        BOUNDARY + dt.timedelta(seconds=30),
    ]
    charged = [
        env.gw.book.price(
            model="gpt-4o",
            provider="openai",
            at=dt.datetime.fromisoformat(e["ts"]),
            input_tokens=e["input_tokens"],
            output_tokens=e["output_tokens"],
        ).cost_usd
        for e in calls
    ]
    assert charged == settled
