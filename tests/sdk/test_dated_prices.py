"""A dated price reaches a long-running SDK process: the guard reserves and settles each call
at the price in force at the call's own time (the ``ts`` of its event, which the ledger prices
it at), not at the first price it resolved for the model.

The clock is injected where the SDK reads the time of a call (``instrument``'s ``time.time``,
the ``started`` of a call record): the calls are made 30 s before and 30 s after the start of
an operator contract price for gpt-4o, 2027-01-01T00:00Z. Token counts follow the mock's rule
(docs/gateway.md: one token per word of the prompt, a reply of min(max tokens, 16) words).
"""

from __future__ import annotations

import datetime as dt
import time
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from tailguard.guard import Guard, load_policy
from tailguard.sdk import connect
from tests.pricing.pricing_helpers import BOUNDARY
from tests.pricing.pricing_helpers import DATED_GPT4O as PRICES
from tests.sdk.conftest import Mock, ledger_rows

POLICY = """
[guard]
default_tier = "pro"
[tiers.pro]
period = "month"
hard_limit_usd = 100
overage = "hard_cap"
"""


class SpyGuard(Guard):
    """The guard, recording what each call reserved and what it was settled at."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.reserved: list[tuple[Decimal, int, int]] = []
        self.settled: list[Decimal] = []

    def check(self, request: Any) -> Any:
        self.reserved.append(
            (request.estimated_cost_usd, request.input_tokens, request.max_output_tokens)
        )
        return super().check(request)

    def settle(self, reservation: Any, actual_cost_usd: Any, **kw: Any) -> Any:
        self.settled.append(actual_cost_usd)
        return super().settle(reservation, actual_cost_usd, **kw)


def test_a_dated_price_applies_from_its_first_instant(
    mock: Mock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three calls of 3 words in, ``max_tokens=16`` (16 words out), each body of ``n`` bytes
    (the SDK reserves one input token per body byte):

    1. at 23:59:30 (before the boundary), list price: reserved (n x 2.50 + 16 x 10) / 1e6,
       settled (3 x 2.50 + 16 x 10) / 1e6 = $0.0001675;
    2. at 00:00:30 (after), the contract price: reserved (n x 1.25 + 16 x 5) / 1e6, settled
       (3 x 1.25 + 16 x 5) / 1e6 = $0.00008375 (the old SDK kept the list price it resolved
       first: $0.0001675);
    3. at 00:00:40, ``service_tier="flex"``: the operator's standard entry is in force and has
       no flex price, so the call has none (docs/pricing.md); it is reserved at the standard
       price of its time, (n x 1.25 + 16 x 5) / 1e6, and settled at that reservation (never
       $0), recorded unpriced.

    Calls 1 and 2 are settled together after call 2 (one flush): call 1 still at its own
    time's price. The ledger, pricing each event at its ``ts``, charges what was settled.
    """
    now = [0.0]
    monkeypatch.setattr(
        "tailguard.sdk.instrument.time",
        types.SimpleNamespace(time=lambda: now[0], perf_counter=time.perf_counter),
    )
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    tg = connect(ledger=tmp_path / "ledger", default_customer="acme", prices=prices)
    guard = SpyGuard(load_policy(policy), sink=tg.guard_sink)
    c = tg.instrument(
        openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0),
        guard=guard,
        prices=prices,
    )
    b = BOUNDARY.timestamp()
    try:
        now[0] = b - 30
        c.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "a b c"}], max_tokens=16
        )
        now[0] = b + 30
        c.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "d e f"}], max_tokens=16
        )
        tg.flush()
        now[0] = b + 40
        c.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "g h i"}],
            max_tokens=16,
            service_tier="flex",
        )
        tg.flush()
    finally:
        c.close()
        tg.close()

    m = Decimal(1_000_000)
    (r1, n1, o1), (r2, n2, o2), (r3, n3, o3) = guard.reserved
    assert (o1, o2, o3) == (16, 16, 16)
    assert r1 == (n1 * Decimal("2.50") + 16 * 10) / m
    assert r2 == (n2 * Decimal("1.25") + 16 * 5) / m
    assert r3 == (n3 * Decimal("1.25") + 16 * 5) / m
    assert guard.settled == [Decimal("0.0001675"), Decimal("0.00008375"), r3]
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    assert [r["ts"].astimezone(dt.UTC) for r in rows] == [
        BOUNDARY - dt.timedelta(seconds=30),
        BOUNDARY + dt.timedelta(seconds=30),
        BOUNDARY + dt.timedelta(seconds=40),
    ]
    assert [r["cost_usd"] for r in rows] == [Decimal("0.0001675"), Decimal("0.00008375"), None]


def test_the_guard_prices_with_the_handles_price_file(mock: Mock, tmp_path: Path) -> None:
    """``connect(prices=FILE)`` prices the ledger's calls with FILE; a guard instrumented
    without its own ``prices=`` reserves and settles with the same file, so the budget counts
    what the ledger charges. gpt-4o at the operator's $1.25 / $5 (always): 3 words in, 16 out,
    settled (3 x 1.25 + 16 x 5) / 1e6 = $0.00008375 (at the list price, $2.50 / $10, it
    would be $0.0001675); reserved (n x 1.25 + 16 x 5) / 1e6 for a body of n bytes."""
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES.replace('effective_from = "2027-01-01"\n', ""))
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    tg = connect(ledger=tmp_path / "ledger", default_customer="acme", prices=prices)
    guard = SpyGuard(load_policy(policy), sink=tg.guard_sink)
    c = tg.instrument(
        openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0), guard=guard
    )
    try:
        c.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "j k l"}], max_tokens=16
        )
        tg.flush()
    finally:
        c.close()
        tg.close()
    [(r, n, o)] = guard.reserved
    assert o == 16 and r == (n * Decimal("1.25") + 16 * 5) / Decimal(1_000_000)
    assert guard.settled == [Decimal("0.00008375")]
    assert [x["cost_usd"] for x in ledger_rows(tmp_path / "ledger", "llm_call")] == [
        Decimal("0.00008375")
    ]
