"""Operator prices per service tier: ``service_tier`` on a ``[[model]]`` entry.

Anthropic's ``priority`` and OpenAI's ``scale`` are billed by contract (no list price, none in
genai-prices), so without an operator entry for the tier such a call is unpriced. An entry with
``service_tier`` prices it; each tier has its own entries (and history); a tier without an entry
never borrows another tier's price (batch keeps its documented rule: the standard entry at half,
at OpenAI and Anthropic).

Prices used, USD per million tokens:

- Claude Sonnet 4.5 list (platform.claude.com/docs/en/about-claude/pricing, and genai-prices):
  $3 in, $15 out, batch half. The contract price the tests define for its priority tier, 1.5x
  list: $4.50 in, $22.50 out, $0.45 cache read, $5.625 cache write, $9 1-hour cache write.
- gpt-5-mini, an operator's negotiated prices: standard $0.20 / $1.60, priority $0.40 / $3.20,
  a batch entry of its own $0.09 / $0.72.
- gpt-4o at the Scale Tier, a contract the tests define: $2.20 in, $1.10 cache read, $8.80 out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.errors import (
    ArgumentError,
    ConfigError,
    ContractPriceError,
    NoTierPriceError,
    PricingError,
)
from tailguard.pricing import PriceBook
from tests.pricing.pricing_helpers import priced

AT = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)

SONNET_PRIORITY = """
[[model]]
provider = "anthropic"
model = "claude-sonnet-4-5"
service_tier = "priority"
input_mtok = 4.5
output_mtok = 22.5
cache_read_mtok = 0.45
cache_write_mtok = 5.625
cache_write_1h_mtok = 9
"""

#: 10,000 in, 500 out
SONNET = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input_tokens": 10_000,
          "output_tokens": 500}  # fmt: skip


def _args(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("kind", "ts")}


def test_a_priority_sonnet_call_at_the_contract_price(
    price_file: Callable[[str], Path],
) -> None:
    """Priority, 10,000 in and 500 out, at the contract's $4.50 / $22.50:

        10,000 x 4.50 = 45,000 micro-dollars
           500 x 22.50 = 11,250
                  total  56,250 = $0.05625

    With 6,000 of the input read from cache and 2,000 written (500 of them for an hour):

        uncached  2,000 x 4.50  =  9,000
        read      6,000 x 0.45  =  2,700
        5-minute  1,500 x 5.625 =  8,437.5
        1-hour      500 x 9     =  4,500
        output      500 x 22.50 = 11,250
                         total    35,887.5 micro-dollars = $0.0358875

    The same calls at the standard tier keep genai-prices' list price (10,000 x 3 + 500 x 15 =
    $0.0375), and at batch its half ($0.01875): the priority entry says nothing of them. Without
    a provider on the event the entry (provider "anthropic") still applies. Scalar and bulk
    paths say the same."""
    book = PriceBook.load(price_file(SONNET_PRIORITY))
    cached = {**SONNET, "cache_read_tokens": 6_000, "cache_write_tokens": 2_000,
              "cache_write_1h_tokens": 500}  # fmt: skip
    rows = [
        {"kind": "llm_call", "ts": AT, **SONNET, "service_tier": "priority"},
        {"kind": "llm_call", "ts": AT, **cached, "service_tier": "Priority"},
        {"kind": "llm_call", "ts": AT, **SONNET},
        {"kind": "llm_call", "ts": AT, **SONNET, "service_tier": "batch"},
        {"kind": "llm_call", "ts": AT, **SONNET, "provider": None, "service_tier": "priority"},
    ]
    expected = [
        Decimal("0.05625"),
        Decimal("0.0358875"),
        Decimal("0.0375"),
        Decimal("0.01875"),
        Decimal("0.05625"),
    ]
    assert priced(book, rows) == [(c, "price", False) for c in expected]
    for row, cost in zip(rows, expected, strict=True):
        assert book.price(**_args(row), at=AT).cost_usd == cost
    quote = book.price(**SONNET, service_tier="priority", at=AT)
    assert (quote.source, quote.input_cost_usd, quote.output_cost_usd) == (
        "override",
        Decimal("0.045"),
        Decimal("0.01125"),
    )
    mp = book.resolve("claude-sonnet-4-5", provider="anthropic", at=AT, service_tier="priority")
    assert mp is not None
    assert (mp.service_tier, mp.source, mp.input_mtok, mp.output_mtok) == (
        "priority",
        "override",
        Decimal("4.5"),
        Decimal("22.5"),
    )
    assert mp.write_1h_rate(10_000) == Decimal(9)


def test_without_the_entry_the_contract_tier_stays_unpriced() -> None:
    """The same priority call with genai-prices alone: unpriced, never $0.0375."""
    book = PriceBook()
    rows = [{"kind": "llm_call", "ts": AT, **SONNET, "service_tier": "priority"}]
    assert priced(book, rows) == [(None, "unpriced", True)]
    with pytest.raises(ContractPriceError) as err:
        book.price(**SONNET, service_tier="priority", at=AT)
    # the message shows the entry that would price it
    assert 'service_tier = "priority"' in str(err.value)
    assert 'model = "claude-sonnet-4-5"' in str(err.value)


def test_openai_scale_at_the_contract_price(price_file: Callable[[str], Path]) -> None:
    """OpenAI's Scale Tier, gpt-4o, 12,000 in (8,000 cached) and 800 out, at the contract's
    $2.20 / $1.10 / $8.80:

        4,000 x 2.20 + 8,000 x 1.10 + 800 x 8.80 = 8,800 + 8,800 + 7,040
                                                = 24,640 micro-dollars = $0.02464

    Without the entry (another model, gpt-4o-mini, at scale) the call is unpriced, a contract
    price: never the standard $0.15 / $0.60."""
    book = PriceBook.load(
        price_file(
            '[[model]]\nprovider = "openai"\nmodel = "gpt-4o"\nservice_tier = "scale"\n'
            "input_mtok = 2.2\ncache_read_mtok = 1.1\noutput_mtok = 8.8\n"
        )
    )
    call = {"provider": "openai", "model": "gpt-4o", "input_tokens": 12_000,
            "cache_read_tokens": 8_000, "output_tokens": 800}  # fmt: skip
    mini = {**call, "model": "gpt-4o-mini"}
    rows = [
        {"kind": "llm_call", "ts": AT, **call, "service_tier": "scale"},
        {"kind": "llm_call", "ts": AT, **mini, "service_tier": "scale"},
    ]
    assert priced(book, rows) == [(Decimal("0.02464"), "price", False), (None, "unpriced", True)]
    assert book.price(**call, service_tier="scale", at=AT).cost_usd == Decimal("0.02464")
    with pytest.raises(ContractPriceError, match="scale tier: contract price"):
        book.price(**mini, service_tier="scale", at=AT)


GPT5_MINI = """
[[model]]
provider = "openai"
model = "gpt-5-mini"
input_mtok = 0.2
output_mtok = 1.6

[[model]]
provider = "openai"
model = "gpt-5-mini"
service_tier = "priority"
input_mtok = 0.4
output_mtok = 3.2
"""


def test_a_tier_without_an_entry_never_borrows_another_tiers_price(
    price_file: Callable[[str], Path],
) -> None:
    """gpt-5-mini with a standard and a priority entry, 4,000 in and 900 out:

        standard  4,000 x 0.20 + 900 x 1.60 =   800 + 1,440 = $0.00224
        batch     the standard entry at half (OpenAI's documented discount) = $0.00112
        priority  4,000 x 0.40 + 900 x 3.20 = 1,600 + 2,880 = $0.00448
        flex      no entry: unpriced (neither the standard nor the priority price, nor
                  genai-prices' flex list price: the operator priced this model)
        scale     no entry: unpriced (a contract tier)

    With a batch entry of its own ($0.09 / $0.72) batch pays it as written, not halved:
    4,000 x 0.09 + 900 x 0.72 = 360 + 648 = $0.001008."""
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    call = {"provider": "openai", "model": "gpt-5-mini", "input_tokens": 4_000,
            "output_tokens": 900}  # fmt: skip
    tiers = [None, "batch", "priority", "flex", "scale"]
    rows = [{"kind": "llm_call", "ts": at, **call, "service_tier": t} for t in tiers]
    book = PriceBook.load(price_file(GPT5_MINI))
    assert priced(book, rows) == [
        (Decimal("0.00224"), "price", False),
        (Decimal("0.00112"), "price", False),
        (Decimal("0.00448"), "price", False),
        (None, "unpriced", True),
        (None, "unpriced", True),
    ]
    with pytest.raises(NoTierPriceError) as err:
        book.price(**call, service_tier="flex", at=at)
    assert 'service_tier = "flex"' in str(err.value)  # says how to price it
    with pytest.raises(ContractPriceError):
        book.price(**call, service_tier="scale", at=at)
    assert book.resolve("gpt-5-mini", provider="openai", at=at, service_tier="flex") is None

    own_batch = GPT5_MINI + (
        '[[model]]\nprovider = "openai"\nmodel = "gpt-5-mini"\nservice_tier = "batch"\n'
        "input_mtok = 0.09\noutput_mtok = 0.72\n"
    )
    book = PriceBook.load(price_file(own_batch))
    assert priced(book, rows[1:2]) == [(Decimal("0.001008"), "price", False)]
    assert book.price(**call, service_tier="batch", at=at).cost_usd == Decimal("0.001008")


def test_each_tier_has_its_own_history(price_file: Callable[[str], Path]) -> None:
    """The priority contract starts on 2026-01-01 at $4.50 / $22.50 and is renegotiated on
    2026-07-01 to $4.20 / $21.00, with a 10% discount from then. 10,000 in, 500 out:

        2025-12-31  no priority entry in force yet: genai-prices, a contract tier: unpriced
        2026-03-01  45,000 + 11,250 = 56,250 micro-dollars            = $0.05625
        2026-08-01  (42,000 + 10,500) x 0.9 = 52,500 x 0.9 = 47,250   = $0.04725

    The standard calls of the same days stay at genai-prices' $0.0375: the priority history
    does not start or end a standard price."""
    book = PriceBook.load(
        price_file(
            '[[model]]\nmodel = "claude-sonnet-4-5"\nservice_tier = "priority"\n'
            "input_mtok = 4.5\noutput_mtok = 22.5\neffective_from = 2026-01-01\n"
            '[[model]]\nmodel = "claude-sonnet-4-5"\nservice_tier = "priority"\n'
            "input_mtok = 4.2\noutput_mtok = 21\neffective_from = 2026-07-01\ndiscount = 0.1\n"
        )
    )
    days = [dt.datetime(2025, 12, 31, 23, tzinfo=dt.UTC), dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
            dt.datetime(2026, 8, 1, tzinfo=dt.UTC)]  # fmt: skip
    rows = [{"kind": "llm_call", "ts": d, **SONNET, "service_tier": "priority"} for d in days]
    rows += [{"kind": "llm_call", "ts": d, **SONNET} for d in days]
    assert priced(book, rows) == [
        (None, "unpriced", True),
        (Decimal("0.05625"), "price", False),
        (Decimal("0.04725"), "price", False),
        *[(Decimal("0.0375"), "price", False)] * 3,
    ]
    assert book.price(**SONNET, service_tier="priority", at=days[2]).cost_usd == Decimal("0.04725")
    mp = book.resolve("claude-sonnet-4-5", at=days[1], service_tier="priority")
    assert mp is not None
    assert (mp.valid_from, mp.valid_until) == (
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
    )


# ----------------------------------------------------------------------------- the file
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # the same model and tier twice
            '[[model]]\nmodel = "m"\nservice_tier = "priority"\ninput_mtok = 1\noutput_mtok = 2\n'
            '[[model]]\nmodel = "m"\nservice_tier = "priority"\ninput_mtok = 3\noutput_mtok = 4\n',
            "[[model]] #2 (model 'm'): duplicates entry #1 (same provider, model, service_tier "
            "(priority) and effective_from)",
        ),
        (  # "standard" is the tier an entry without service_tier has; case does not matter
            '[[model]]\nmodel = "m"\ninput_mtok = 1\noutput_mtok = 2\n'
            '[[model]]\nmodel = "m"\nservice_tier = "Standard"\ninput_mtok = 3\noutput_mtok = 4\n',
            "[[model]] #2 (model 'm'): duplicates entry #1 (same provider, model, service_tier "
            "(standard) and effective_from)",
        ),
        (
            '[[model]]\nmodel = "m"\nservice_tier = "SCALE"\ninput_mtok = 1\noutput_mtok = 2\n'
            '[[model]]\nmodel = "m"\nservice_tier = "scale"\ninput_mtok = 3\noutput_mtok = 4\n',
            "[[model]] #2 (model 'm'): duplicates entry #1 (same provider, model, service_tier "
            "(scale) and effective_from)",
        ),
        (
            '[[model]]\nmodel = "m"\nservice_tier = "premium"\ninput_mtok = 1\noutput_mtok = 2\n',
            "[[model]] #1 (model 'm'): service_tier: unknown tier 'premium' "
            "(known: standard, default, auto, batch, flex, priority, scale)",
        ),
        (
            '[[model]]\nmodel = "m"\nservice_tier = 1\ninput_mtok = 1\noutput_mtok = 2\n',
            "[[model]] #1 (model 'm'): service_tier: must be a tier name such as \"priority\", "
            "got 1",
        ),
        (
            '[[model]]\nmodel = "m"\nservice_tier = " "\ninput_mtok = 1\noutput_mtok = 2\n',
            "[[model]] #1 (model 'm'): service_tier: must be a tier name such as \"priority\", "
            "got ' '",
        ),
    ],
)
def test_bad_tiers_in_the_file(price_file: Callable[[str], Path], text: str, message: str) -> None:
    path = price_file(text)
    with pytest.raises(ConfigError) as err:
        PriceBook.load(path)
    assert str(err.value) == f"{path}: {message}"


def test_one_entry_per_tier_is_not_a_duplicate(price_file: Callable[[str], Path]) -> None:
    """The same model, provider and date at five tiers (standard twice spelled differently
    would be a duplicate, above) loads: five entries."""
    text = "".join(
        f'[[model]]\nmodel = "m"\n{tier}input_mtok = 1\noutput_mtok = 2\n'
        for tier in ("", 'service_tier = "batch"\n', 'service_tier = "flex"\n',
                     'service_tier = "priority"\n', 'service_tier = "scale"\n')
    )  # fmt: skip
    book = PriceBook.load(price_file(text))
    tiers = [
        mp.service_tier if mp is not None else "none"
        for t in (None, "batch", "flex", "priority", "scale", "default")
        for mp in (book.resolve("m", at=AT, service_tier=t),)
    ]
    assert tiers == [None, "batch", "flex", "priority", "scale", None]


def test_the_example_price_file() -> None:
    """``examples/prices.toml`` loads; its Sonnet 4.5 priority entry is the one above, so the
    priority call costs $0.05625 and the standard one genai-prices' $0.0375 less the file's
    15% Anthropic discount: 37,500 x 0.85 = 31,875 micro-dollars."""
    path = Path(__file__).resolve().parents[2] / "examples" / "prices.toml"
    book = PriceBook.load(path)
    assert book.price(**SONNET, service_tier="priority", at=AT).cost_usd == Decimal("0.05625")
    assert book.price(**SONNET, at=AT).cost_usd == Decimal("0.031875")


def test_the_price_file_of_the_docs(tmp_path: Path) -> None:
    """docs/pricing.md's example file loads and gives its "From Python" figures: the priority
    entry prices the priority call ($0.05625, as above) and Sonnet 4.5's standard input rate is
    genai-prices' $3 less the file's 15% discount, $2.55."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "pricing.md").read_text()
    block = doc.split("```toml\n# prices.toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "prices.toml"
    path.write_text(block)
    book = PriceBook.load(path)
    assert book.price(**SONNET, service_tier="priority", at=AT).cost_usd == Decimal("0.05625")
    mp = book.resolve("claude-sonnet-4-5", at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert mp is not None and mp.input_mtok == Decimal("2.55")


# ----------------------------------------------------------------------------- property
class Entry(NamedTuple):
    """One ``[[model]]`` of ``acme-x`` as the reference below reads it."""

    tier: str | None
    provider: str | None
    since: dt.datetime | None
    rates: tuple[str, str, str, str, str]  # in, out, cache read, cache write, 1-hour write
    discount: str


def _d(y: int, m: int) -> dt.datetime:
    return dt.datetime(y, m, 1, tzinfo=dt.UTC)


#: acme-x is unknown to genai-prices: its price is the operator's entries alone
ACME = [
    # the same date: for an OpenAI call the entry naming the provider wins, though first
    Entry(None, "openai", _d(2025, 1), ("1.1", "2.2", "0.3", "1.1", "1.1"), "0"),
    Entry(None, None, _d(2025, 1), ("1", "2", "0.25", "1.25", "2"), "0"),
    Entry(None, None, _d(2026, 1), ("0.8", "1.6", "0.2", "1", "1.6"), "0.05"),
    Entry("priority", None, _d(2025, 6), ("3", "9", "0.3", "3.75", "6"), "0"),
    Entry("priority", None, _d(2026, 3), ("2.7", "8.1", "0.27", "3.375", "5.4"), "0.1"),
    Entry("scale", "openai", None, ("2.2", "8.8", "1.1", "2.2", "2.2"), "0"),
    Entry("batch", None, _d(2025, 9), ("0.4", "0.8", "0.1", "0.5", "0.8"), "0"),
]


def _toml(e: Entry) -> str:
    i, o, cr, cw, w1h = e.rates
    lines = ["[[model]]", 'model = "acme-x"', f'input_mtok = "{i}"', f'output_mtok = "{o}"',
             f'cache_read_mtok = "{cr}"', f'cache_write_mtok = "{cw}"',
             f'cache_write_1h_mtok = "{w1h}"', f'discount = "{e.discount}"']  # fmt: skip
    if e.tier:
        lines.append(f'service_tier = "{e.tier}"')
    if e.provider:
        lines.append(f'provider = "{e.provider}"')
    if e.since:
        lines.append(f"effective_from = {e.since.date().isoformat()}")
    return "\n".join(lines) + "\n"


PROPERTY_FILE = "".join(_toml(e) for e in ACME) + SONNET_PRIORITY + GPT5_MINI + (
    '[[model]]\nprovider = "openai"\nmodel = "gpt-4o"\nservice_tier = "scale"\n'
    'input_mtok = 2.2\ncache_read_mtok = 1.1\noutput_mtok = 8.8\n'
    '[[discount]]\nprovider = "anthropic"\ndiscount = 0.15\n'
)  # fmt: skip


def _reference(provider: str | None, tier: str | None, ts: dt.datetime, u: dict[str, int]) -> Any:
    """acme-x's cost by the rules of docs/pricing.md, written apart from the code: the call's
    tier (case-insensitive; standard, default and auto are the standard tier) picks the entries
    of that tier whose provider is absent, the event's, or the event has none, in force at
    ``ts`` (latest ``effective_from``; on a tie the one naming the event's provider, then the
    later in the file); none of the tier
    and a standard one in force: batch pays the standard one, halved at OpenAI and Anthropic,
    any other tier nothing; nothing matched: genai-prices, which does not know acme-x."""
    t = (tier or "standard").lower()
    t_key = None if t in ("standard", "default", "auto") else t
    if t_key not in (None, "batch", "flex", "priority", "scale"):
        return None

    def in_force(k: str | None) -> Entry | None:
        ok = [
            (e.since or dt.datetime.min.replace(tzinfo=dt.UTC), e.provider == provider, i, e)
            for i, e in enumerate(ACME)
            if e.tier == k
            and (e.provider is None or provider is None or e.provider == provider)
            and (e.since is None or e.since <= ts)
        ]
        return max(ok)[3] if ok else None

    factor = Decimal(1)
    entry = in_force(t_key)
    if entry is None and t_key == "batch":
        entry = in_force(None)
        if entry is not None and (provider or entry.provider) in ("openai", "anthropic"):
            factor = Decimal("0.5")
    if entry is None:
        return None
    p_in, p_out, p_cr, p_cw, p_1h = (Decimal(r) for r in entry.rates)
    uncached = u["input_tokens"] - u["cache_read_tokens"] - u["cache_write_tokens"]
    total = (
        uncached * p_in
        + u["cache_read_tokens"] * p_cr
        + (u["cache_write_tokens"] - u["cache_write_1h_tokens"]) * p_cw
        + u["cache_write_1h_tokens"] * p_1h
        + u["output_tokens"] * p_out
    )
    exact = total / 1_000_000 * (1 - Decimal(entry.discount)) * factor
    return exact.quantize(Decimal("1e-9"), rounding=ROUND_HALF_EVEN)


CALLS = [
    ("acme-x", None),
    ("acme-x", "openai"),
    ("acme-x", "anthropic"),
    ("acme-x", "acme"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-sonnet-4-5", None),
    ("gpt-5-mini", "openai"),
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
]
#: each date a price of the file starts, the second before it and a day after it, and one
#: instant inside each of the two years (random seconds cluster at the start of the range)
INSTANTS = sorted(
    {d + off for d in (_d(2025, 1), _d(2025, 6), _d(2025, 9), _d(2026, 1), _d(2026, 3))
     for off in (dt.timedelta(0), dt.timedelta(seconds=-1), dt.timedelta(days=1))}
    | {dt.datetime(2025, 7, 15, 12, tzinfo=dt.UTC), dt.datetime(2026, 8, 1, tzinfo=dt.UTC)}
)  # fmt: skip
TIERS = [None, "standard", "Default", "auto", "batch", "flex", "priority", "PRIORITY", "scale",
         "bogus"]  # fmt: skip


@st.composite
def calls(draw: st.DrawFn) -> dict[str, Any]:
    model, provider = draw(st.sampled_from(CALLS))
    inp = draw(st.one_of(st.integers(1, 5_000), st.integers(0, 400_000)))
    cr = draw(st.integers(0, inp))
    cw = draw(st.integers(0, inp - cr))
    seconds = draw(st.integers(0, 2 * 365 * 86_400))
    ts = draw(
        st.one_of(
            st.sampled_from(INSTANTS),
            st.just(dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)),
        )
    )
    return {
        "kind": "llm_call",
        "ts": ts,
        "model": model,
        "provider": provider,
        "service_tier": draw(st.sampled_from(TIERS)),
        "input_tokens": inp,
        "cache_read_tokens": cr,
        "cache_write_tokens": cw,
        "cache_write_1h_tokens": draw(st.integers(0, cw)),
        "output_tokens": draw(st.integers(0, 60_000)),
    }


@pytest.fixture(scope="module")
def tier_book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path = tmp_path_factory.mktemp("tiers") / "prices.toml"
    path.write_text(PROPERTY_FILE)
    return PriceBook.load(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(calls(), min_size=10, max_size=40))
def test_bulk_and_scalar_paths_agree_on_every_tier(
    tier_book: PriceBook, rows: list[dict[str, Any]]
) -> None:
    """``price_table`` (ingest's vectorised path) and ``PriceBook.price`` give the same cost,
    or both no price, for random calls, tiers and dates over a file with entries per tier
    (histories, discounts, provider-specific entries, a contract tier with and without an
    entry); for acme-x, priced by the file alone, both equal the reference above."""
    got = priced(tier_book, rows)
    for row, (cost, source, unpriced) in zip(rows, got, strict=True):
        try:
            expected = tier_book.price(**_args(row), at=row["ts"]).cost_usd
        except (PricingError, ArgumentError):
            expected = None
        assert cost == expected, row
        assert (source, unpriced) == (("unpriced", True) if cost is None else ("price", False))
        if row["model"] == "acme-x":
            usage = {k: row[k] for k in row if k.endswith("_tokens")}
            assert cost == _reference(row["provider"], row["service_tier"], row["ts"], usage), row
