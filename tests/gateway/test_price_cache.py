"""The price cache of the gateway and the SDK (``tailguard.pricing.cache``): a price resolved at
a time, kept for its window (and at most an hour), ``None`` for no price, the reservation price
(the tier asked for, else the standard one).

Prices per million tokens: gpt-4o's list price $2.50 / $10 (genai-prices,
platform.openai.com/docs/pricing); the operator file below gives gpt-4o a contract price of
$1.25 / $5 from 2027-01-01 and Claude Sonnet 4.5's priority tier (a contract tier, no list
price) $4.50 / $22.50 from the same day.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.pricing import PriceBook
from tailguard.pricing.cache import PriceCache
from tests.pricing.pricing_helpers import DATED_GPT4O

B = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)

PRICES = (
    DATED_GPT4O
    + """
[[model]]
provider = "anthropic"
model = "claude-sonnet-4-5"
service_tier = "priority"
input_mtok = 4.5
output_mtok = 22.5
effective_from = "2027-01-01"
"""
)


class Counting:
    """A ``PriceBook`` that counts its resolutions."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self.calls = 0

    def resolve(self, *a: Any, **kw: Any) -> Any:
        self.calls += 1
        return self.book.resolve(*a, **kw)

    def change_points(self, *a: Any, **kw: Any) -> Any:
        return self.book.change_points(*a, **kw)


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    p: Path = tmp_path_factory.mktemp("prices") / "prices.toml"
    p.write_text(PRICES)
    return PriceBook.load(p)


def _rates(mp: Any) -> tuple[Decimal, Decimal] | None:
    return None if mp is None else (mp.input_mtok, mp.output_mtok)


def test_a_price_is_kept_for_its_window_and_an_hour_at_most(book: PriceBook) -> None:
    """gpt-4o two hours before the contract price: the list price, valid until the boundary
    but kept an hour (resolution 1, reused 59 min later); at B - 1 s the hour is over
    (resolution 2, still the list price); at B the contract price (3), though less than an hour
    has passed; a call settled late at B - 1 s gets its own time's price (4)."""
    c = Counting(book)
    t = [B - 2 * H]
    cache = PriceCache(c, clock=lambda: t[0])  # type: ignore[arg-type]
    seen = []
    for at in (B - 2 * H, B - H - S, B - S, B, B + H - 2 * S):
        t[0] = at
        seen.append((_rates(cache.price("openai", "gpt-4o")), c.calls))
    seen.append((_rates(cache.price("openai", "gpt-4o", at=B - S)), c.calls))
    assert seen == [
        ((Decimal("2.50"), Decimal("10.00")), 1),
        ((Decimal("2.50"), Decimal("10.00")), 1),
        ((Decimal("2.50"), Decimal("10.00")), 2),
        ((Decimal("1.25"), Decimal("5.0")), 3),
        ((Decimal("1.25"), Decimal("5.0")), 3),
        ((Decimal("2.50"), Decimal("10.00")), 4),
    ]


def test_no_price_is_kept_until_the_next_change_point_or_an_hour(book: PriceBook) -> None:
    """Sonnet 4.5 at priority has no price before its contract entry (resolution 1, reused at
    B - 1 s: the entry starts at B, the next change point) and the entry's price from B (2); an
    unknown model has none, looked up again after an hour (3, 4)."""
    c = Counting(book)
    cache = PriceCache(c)  # type: ignore[arg-type]
    got = []
    for at in (B - 10 * 60 * S, B - S, B):
        got.append(
            (_rates(cache.price("anthropic", "claude-sonnet-4-5", "priority", at=at)), c.calls)
        )
    for at in (B, B + H - S, B + H):
        got.append((cache.price("openai", "no-such-model", at=at), c.calls))
    assert got == [
        (None, 1),
        (None, 1),
        ((Decimal("4.5"), Decimal("22.5")), 2),
        (None, 3),
        (None, 3),
        (None, 4),
    ]


def test_the_reservation_price_is_the_tier_asked_for_else_the_standard_one(
    book: PriceBook,
) -> None:
    """1,000 tokens in, 100 out:

    - gpt-4o at flex before B: genai-prices has no flex variant for it, so flex pays the
      standard list rates: (1000 x 2.50 + 100 x 10) / 1e6 = $0.0035;
    - after B the operator's standard entry is in force and has no flex or priority price
      (docs/pricing.md): both reserve at the standard contract price,
      (1000 x 1.25 + 100 x 5) / 1e6 = $0.00175, though ``price`` gives them none;
    - Sonnet 4.5 at priority after B: its own contract entry, (1000 x 4.5 + 100 x 22.5) / 1e6
      = $0.00675; before B none, so the standard list price ($3 / $15):
      (1000 x 3 + 100 x 15) / 1e6 = $0.0045;
    - an unknown model reserves $0 (token limits still apply).
    """
    cache = PriceCache(book)
    after = B + 60 * S

    def usd(prov: str, model: str, tier: str | None, at: dt.datetime) -> Decimal:
        return cache.reservation_usd(prov, model, tier, input_tokens=1000, output_tokens=100, at=at)

    assert usd("openai", "gpt-4o", "flex", B - S) == Decimal("0.0035")
    assert cache.price("openai", "gpt-4o", "flex", at=after) is None
    assert cache.price("openai", "gpt-4o", "priority", at=after) is None
    assert usd("openai", "gpt-4o", "flex", after) == Decimal("0.00175")
    assert usd("openai", "gpt-4o", "priority", after) == Decimal("0.00175")
    assert usd("openai", "gpt-4o", None, after) == Decimal("0.00175")
    assert usd("anthropic", "claude-sonnet-4-5", "priority", after) == Decimal("0.00675")
    assert usd("anthropic", "claude-sonnet-4-5", "priority", B - S) == Decimal("0.0045")
    assert usd("openai", "no-such-model", None, after) == 0


def test_threads_resolve_a_key_once(book: PriceBook) -> None:
    """Eight threads asking for the same price at the same time: one resolution, one answer."""
    c = Counting(book)
    cache = PriceCache(c)  # type: ignore[arg-type]
    start = threading.Barrier(8)
    out: list[Any] = []

    def ask() -> None:
        start.wait()
        out.extend(cache.price("openai", "gpt-4o", at=B) for _ in range(200))

    ts = [threading.Thread(target=ask) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.calls == 1
    assert len(out) == 1600 and {_rates(mp) for mp in out} == {(Decimal("1.25"), Decimal("5.0"))}


KEYS = [
    ("openai", "gpt-4o", None),
    ("openai", "gpt-4o", "flex"),
    ("openai", "gpt-4o", "batch"),
    ("anthropic", "claude-sonnet-4-5", "priority"),
    ("anthropic", "claude-sonnet-4-5", None),
    ("deepseek", "deepseek-chat", None),  # off-peak prices from 16:30 to 00:30 UTC
    ("openai", "no-such-model", None),
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(KEYS), st.integers(-30 * 3600, 30 * 3600)),
        min_size=1,
        max_size=12,
    )
)
def test_the_cache_answers_as_the_book(
    book: PriceBook, lookups: list[tuple[tuple[str, str, str | None], int]]
) -> None:
    """Lookups in any order, at any time within 30 hours of the boundary (crossing it and
    DeepSeek's daily off-peak boundaries back and forth): the cached price is the one the book
    resolves at that time, window included."""
    cache = PriceCache(book)
    for (prov, model, tier), sec in lookups:
        at = B + sec * S
        assert cache.price(prov, model, tier, at=at) == book.resolve(
            model, provider=prov, at=at, service_tier=tier
        )
