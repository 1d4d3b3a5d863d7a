"""PriceBook: operator overrides, effective dating, discounts, cache tokens, rounding.

Every expected value is worked out by hand in a comment (or taken from a public price change),
never read back from the code under test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.errors import ConfigError, PricingError, UnknownModelError
from tailguard.pricing import PriceBook

UTC = dt.UTC

ACME = """
[[model]]
provider = "acme"
model = "acme-70b"
input_mtok = 2.5
output_mtok = 10.0
cache_read_mtok = 1.25
cache_write_mtok = 3.125
"""


def test_hand_computed_override(price_file: Callable[[str], Path]) -> None:
    book = PriceBook.load(price_file(ACME))
    q = book.price(
        model="acme-70b",
        provider="acme",
        input_tokens=12_000,  # includes 3,000 cache reads and 1,000 cache writes
        output_tokens=850,
        cache_read_tokens=3_000,
        cache_write_tokens=1_000,
        at=dt.datetime(2025, 3, 1, tzinfo=UTC),
    )
    # uncached input  8,000 x 2.50  / 1e6 = 0.020000
    # cache read      3,000 x 1.25  / 1e6 = 0.003750
    # cache write     1,000 x 3.125 / 1e6 = 0.003125
    # output            850 x 10.0  / 1e6 = 0.008500
    # total                                 0.035375
    assert q.cost_usd == Decimal("0.035375000")
    assert q.input_cost_usd == Decimal("0.026875000")
    assert q.output_cost_usd == Decimal("0.008500000")
    assert (q.provider, q.model, q.source) == ("acme", "acme-70b", "override")


def test_missing_cache_prices_fall_back_to_input_price(price_file: Callable[[str], Path]) -> None:
    book = PriceBook.load(price_file('[[model]]\nmodel = "m"\ninput_mtok = 4\noutput_mtok = 8\n'))
    q = book.price(
        model="m",
        input_tokens=1_000,
        output_tokens=0,
        cache_read_tokens=600,
        cache_write_tokens=400,
    )
    # every input token at 4 $/Mtok whether cached or not: 1,000 x 4 / 1e6 = 0.004
    assert q.cost_usd == Decimal("0.004")
    mp = book.resolve("m")
    assert mp is not None
    assert mp.cache_read_mtok == mp.cache_write_mtok == mp.input_mtok == Decimal(4)


def test_override_matches_provider_and_wins_over_genai_prices(
    price_file: Callable[[str], Path],
) -> None:
    book = PriceBook.load(
        price_file(
            '[[model]]\nprovider = "openai"\nmodel = "gpt-4o"\ninput_mtok = 1\noutput_mtok = 1\n'
        )
    )
    at = dt.datetime(2025, 5, 1, tzinfo=UTC)
    usage = {"input_tokens": 1_000_000, "output_tokens": 0, "at": at}
    # the override: 1M x 1 $/Mtok = 1.00, for provider openai, "OpenAI" and no provider at all
    for prov in ("openai", "OpenAI", None):
        q = book.price(model="gpt-4o", provider=prov, **usage)
        assert (q.cost_usd, q.source) == (Decimal(1), "override")
    # a name the override does not spell exactly goes to genai-prices: gpt-4o at 2.50 $/Mtok
    q = book.price(model="gpt-4o-2024-08-06", provider="openai", **usage)
    assert (q.cost_usd, q.source, q.model) == (Decimal("2.5"), "genai-prices", "gpt-4o")
    # another provider's model of the same name is not overridden (azure serves gpt-4o too)
    q = book.price(model="gpt-4o", provider="azure", **usage)
    assert q.source == "genai-prices"


def test_override_history_prices_each_call_at_its_own_date(
    price_file: Callable[[str], Path],
) -> None:
    book = PriceBook.load(
        price_file(
            """
[[model]]
model = "acme-70b"
input_mtok = 1.0
output_mtok = 2.0
effective_from = 2025-01-01
[[model]]
model = "acme-70b"
input_mtok = 0.5
output_mtok = 1.0
effective_from = "2025-02-15"
"""
        )
    )

    def cost(at: dt.datetime) -> Decimal:
        return book.price(
            model="acme-70b", input_tokens=1_000_000, output_tokens=1_000_000, at=at
        ).cost_usd

    # 1M in + 1M out: 1.0 + 2.0 = 3.0 before the change, 0.5 + 1.0 = 1.5 from 2025-02-15 00:00 UTC
    assert cost(dt.datetime(2025, 2, 14, 23, 59, 59, tzinfo=UTC)) == Decimal(3)
    assert cost(dt.datetime(2025, 2, 15, tzinfo=UTC)) == Decimal("1.5")
    # 2025-02-15 00:30 in UTC+1 is still 2025-02-14 in UTC
    assert cost(dt.datetime(2025, 2, 15, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == 3
    # before the first entry the model has no price at all
    with pytest.raises(UnknownModelError):
        cost(dt.datetime(2024, 12, 31, tzinfo=UTC))
    mp = book.resolve("acme-70b", at=dt.datetime(2025, 1, 20, tzinfo=UTC))
    assert mp is not None
    assert mp.valid_from == dt.datetime(2025, 1, 1, tzinfo=UTC)
    assert mp.valid_until == dt.datetime(2025, 2, 15, tzinfo=UTC)


def test_genai_prices_effective_dating() -> None:
    # OpenAI cut o3 from $10/$40 to $2/$8 per Mtok on 2025-06-10 (public price change)
    book = PriceBook.load()
    before = book.price(
        model="o3",
        provider="openai",
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        at=dt.datetime(2025, 6, 9, 12, tzinfo=UTC),
    )
    after = book.price(
        model="o3",
        provider="openai",
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        at=dt.datetime(2025, 6, 10, tzinfo=UTC),
    )
    assert before.cost_usd == Decimal(50)
    assert after.cost_usd == Decimal(10)
    mp = book.resolve("o3", provider="openai", at=dt.datetime(2025, 6, 9, tzinfo=UTC))
    assert mp is not None and mp.valid_until == dt.datetime(2025, 6, 10, tzinfo=UTC)


def test_discounts(price_file: Callable[[str], Path]) -> None:
    book = PriceBook.load(
        price_file(
            ACME.replace("cache_write_mtok = 3.125", "cache_write_mtok = 3.125\ndiscount = 0.2")
            + """
[[discount]]
provider = "openai"
discount = 0.1
[[discount]]
provider = "openai"
model = "gpt-4o-mini"
discount = 0.5
effective_from = "2025-07-01"
"""
        )
    )
    q = book.price(
        model="acme-70b",
        provider="acme",
        input_tokens=12_000,
        output_tokens=850,
        cache_read_tokens=3_000,
        cache_write_tokens=1_000,
    )
    # the hand-computed 0.035375 less 20%: 0.035375 x 0.8 = 0.0283
    assert q.cost_usd == Decimal("0.0283")
    assert q.discount == Decimal("0.2")
    # provider-wide 10% on genai-prices' gpt-4o: 1M input x 2.50 x 0.9 = 2.25
    q = book.price(model="gpt-4o", provider="openai", input_tokens=1_000_000, output_tokens=0)
    assert q.cost_usd == Decimal("2.25")
    # the model-specific 50% on gpt-4o-mini ($0.15/Mtok input) from 2025-07-01 only:
    # 1M x 0.15 x 0.9 = 0.135 before, 1M x 0.15 x 0.5 = 0.075 after
    june = dt.datetime(2025, 6, 30, tzinfo=UTC)
    july = dt.datetime(2025, 7, 1, tzinfo=UTC)
    kw = {"model": "gpt-4o-mini", "provider": "openai", "input_tokens": 1_000_000}
    assert book.price(output_tokens=0, at=june, **kw).cost_usd == Decimal("0.135")
    assert book.price(output_tokens=0, at=july, **kw).cost_usd == Decimal("0.075")
    mp = book.resolve("gpt-4o-mini", provider="openai", at=july)
    assert mp is not None and mp.input_mtok == Decimal("0.075")


def test_cache_tokens_with_genai_prices() -> None:
    # claude-3-5-sonnet: $3 input, $0.30 cache read, $3.75 cache write, $15 output per Mtok
    q = PriceBook.load().price(
        model="claude-3-5-sonnet-latest",
        provider="anthropic",
        input_tokens=100_000,
        cache_read_tokens=80_000,
        cache_write_tokens=15_000,
        output_tokens=2_000,
        at=dt.datetime(2025, 3, 1, tzinfo=UTC),
    )
    # 5,000 x 3 + 80,000 x 0.30 + 15,000 x 3.75 + 2,000 x 15 = 15,000 + 24,000 + 56,250 + 30,000
    # = 125,250 micro-dollars = 0.12525 USD
    assert q.cost_usd == Decimal("0.12525")


def test_context_tier_is_a_cliff() -> None:
    # claude-sonnet-4-5: $3/$15 up to 200k input tokens, $6/$22.50 for the whole call above
    book = PriceBook.load()
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    at_edge = book.price(
        model="claude-sonnet-4-5", input_tokens=200_000, output_tokens=1_000, at=at
    )
    above = book.price(model="claude-sonnet-4-5", input_tokens=200_001, output_tokens=1_000, at=at)
    assert at_edge.cost_usd == Decimal("0.615")  # 200,000 x 3 + 1,000 x 15 = 615,000 µ$
    assert above.cost_usd == Decimal("1.222506")  # 200,001 x 6 + 1,000 x 22.5 = 1,222,506 µ$


def test_rounding_is_half_even_to_a_nano_dollar(price_file: Callable[[str], Path]) -> None:
    # 0.0005 $/Mtok = 0.5 nano-dollar per token: ties at every odd token count
    book = PriceBook.load(
        price_file('[[model]]\nmodel = "tiny"\ninput_mtok = 0.0005\noutput_mtok = 0\n')
    )
    costs = [book.price(model="tiny", input_tokens=n, output_tokens=0).cost_usd for n in (1, 3, 5)]
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 nano-dollars
    assert costs == [Decimal("0E-9"), Decimal("2E-9"), Decimal("2E-9")]


def test_unknown_model() -> None:
    book = PriceBook.load()
    assert book.resolve("in-house-model-v0") is None
    with pytest.raises(UnknownModelError, match="in-house-model-v0") as err:
        book.price(model="in-house-model-v0", input_tokens=1, output_tokens=1)
    assert err.value.exit_code == 3
    assert "[[model]]" in str(err.value)  # says how to add it
    # a provider genai-prices does not know is not guessed from the model name
    assert book.resolve("gpt-4o", provider="my-proxy") is None


def test_bad_usage_is_a_pricing_error() -> None:
    with pytest.raises(PricingError, match="exceed input_tokens"):
        PriceBook.load().price(
            model="gpt-4o", input_tokens=10, output_tokens=0, cache_read_tokens=11
        )


def test_units(price_file: Callable[[str], Path]) -> None:
    book = PriceBook.load(
        price_file(
            "[units]\ntool_call_usd = { default = 0.002, web_search = 0.01 }\n"
            'retrieval_query_usd = "0.0004"\nrerank_usd = 0.001\nescalation_minute_usd = 0.75\n'
        )
    )
    assert book.units.tool("web_search") == Decimal("0.01")
    assert book.units.tool("crm") == Decimal("0.002")
    assert book.units.retrieval_query_usd == Decimal("0.0004")
    assert book.units.escalation_minute_usd == Decimal("0.75")
    # a bare number is the default price of every tool
    assert PriceBook.load(price_file("[units]\ntool_call_usd = 0.5\n")).units.tool("x") == Decimal(
        "0.5"
    )
    # no file: every unit cost is zero
    assert PriceBook.load().units.tool("web_search") == 0


OK_ENTRY = '[[model]]\nmodel = "m"\ninput_mtok = 1\noutput_mtok = 1\n'


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (
            '[[model]]\nmodel = "m"\ninput_mtok = -1\noutput_mtok = 1\n',
            "[[model]] #1 (model 'm')",
            "input_mtok: must be >= 0",
        ),
        (
            '[[model]]\nmodel = "m"\ninput_mtok = 1\noutput_mtok = 1\ndiscount = 1.5\n',
            "[[model]] #1",
            "discount: must be between 0 and 1",
        ),
        (
            OK_ENTRY + 'effective_from = "2025-13-01"\n',
            "[[model]] #1",
            "effective_from: not an ISO 8601",
        ),
        (
            '[[model]]\nmodel = "m"\ninptu_mtok = 1\noutput_mtok = 1\n',
            "[[model]] #1",
            "unknown key 'inptu_mtok'",
        ),
        ('[[model]]\nmodel = "m"\ninput_mtok = 1\n', "[[model]] #1", "output_mtok: required"),
        ("[[model]]\ninput_mtok = 1\noutput_mtok = 1\n", "[[model]] #1", "model: required"),
        (
            '[[model]]\nmodel = "m"\ninput_mtok = "cheap"\noutput_mtok = 1\n',
            "[[model]] #1",
            "input_mtok: must be a number",
        ),
        (
            '[[model]]\nmodel = "m"\ninput_mtok = 1\noutput_mtok = nan\n',
            "[[model]] #1",
            "output_mtok: must be a finite number",
        ),
        (
            OK_ENTRY + OK_ENTRY.replace("= 1", "= 2"),
            "[[model]] #2 (model 'm')",
            "duplicates entry #1",
        ),
        ('[[discount]]\nmodel = "m"\ndiscount = 0.1\n', "[[discount]] #1", "provider: required"),
        (
            '[[discount]]\nprovider = "openai"\ndiscount = -0.1\n',
            "[[discount]] #1",
            "discount: must be between 0 and 1",
        ),
        ("[units]\nrerank_usd = -0.001\n", "[units]", "rerank_usd: must be >= 0"),
        (
            "[units]\ntool_call_usd = { web_search = true }\n",
            "[units]",
            "tool_call_usd.web_search: must be a number",
        ),
        ("[units]\nescalation_usd = 1\n", "[units]", "unknown key 'escalation_usd'"),
        ("[prices]\nx = 1\n", "", "unknown key 'prices'"),
        ("[[model]\n", "", "invalid TOML"),
    ],
)
def test_bad_override_file_names_file_entry_and_key(
    price_file: Callable[[str], Path], text: str, where: str, reason: str
) -> None:
    path = price_file(text)
    with pytest.raises(ConfigError) as err:
        PriceBook.load(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ")
    assert where in msg
    assert reason in msg


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="price file not found"):
        PriceBook.load(tmp_path / "nope.toml")
