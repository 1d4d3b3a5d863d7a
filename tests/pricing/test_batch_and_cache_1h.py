"""Batch calls and Anthropic's 1-hour cache writes, priced at their own rates (issue 11).

Sources (the providers' own price pages; genai-prices carries the same figures):

- Anthropic, https://platform.claude.com/docs/en/about-claude/pricing (model table and "Batch
  processing"): Claude Sonnet 4.5 is $3 base input, $3.75 5-minute cache writes (1.25x), $6
  1-hour cache writes (2x), $0.30 cache hits (0.1x), $15 output per Mtok; "The Batch API allows
  asynchronous processing ... with a 50% discount on both input and output tokens": $1.50 /
  $7.50. Prompt caching (build-with-claude/prompt-caching#pricing): "1-hour cache write tokens
  are 2 times the base input tokens price"; the multipliers stack with the batch discount.
- OpenAI, https://platform.openai.com/docs/pricing (Batch tab) and
  https://platform.openai.com/docs/guides/batch ("50% cost discount compared to synchronous
  APIs"): gpt-4o-mini is $0.15 / $0.60 per Mtok standard, $0.075 / $0.30 in batch.

The Sonnet 4.5 call used throughout, by hand: 10,000 input tokens of which 1,000 cache reads and
3,000 cache writes (2,000 of them 1-hour), 500 output.

    uncached 6,000 x $3     = 18,000
    reads    1,000 x $0.30  =    300
    5-min    1,000 x $3.75  =  3,750
    1-hour   2,000 x $6     = 12,000
    output     500 x $15    =  7,500     total 41,550 per Mtok = $0.04155

At the 5-minute rate for all writes (the old, wrong price) it was 3,000 x 3.75 = 11,250 instead
of 15,750: $0.03705. In batch, every rate halves: $0.020775.

gpt-4o-mini, 1,000,000 input and 100,000 output tokens: $0.15 + $0.06 = $0.21 standard,
$0.105 in batch.

genai-prices models the batch prices from 2026-10-14 on; before that date tailguard applies the
providers' documented 50% itself, so a batch call of 2025 and one of November 2026 cost the same.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.errors import ContractPriceError, PricingError
from tailguard.events.schema import LlmCall
from tailguard.pricing import PriceBook, price_table
from tests.pricing.pricing_helpers import events_table, priced

OLD = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)  # before genai-prices' batch variants
NEW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # genai-prices' batch variants in force

SONNET = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input_tokens": 10_000,
          "cache_read_tokens": 1_000, "cache_write_tokens": 3_000,
          "output_tokens": 500}  # fmt: skip
MINI = {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1_000_000,
        "output_tokens": 100_000}  # fmt: skip


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def _row(base: dict[str, Any], at: dt.datetime, **kw: Any) -> dict[str, Any]:
    return {"kind": "llm_call", "ts": at, **base, **kw}


@pytest.mark.parametrize("at", [OLD, NEW])
def test_one_hour_writes_at_twice_the_input_rate(book: PriceBook, at: dt.datetime) -> None:
    rows = [
        _row(SONNET, at, cache_write_1h_tokens=2_000),
        _row(SONNET, at),  # no 1-hour marker: every write at the 5-minute rate
    ]
    costs = [c for c, _, _ in priced(book, rows)]
    assert costs == [Decimal("0.04155"), Decimal("0.03705")]
    # the direct path (genai-prices' own calc_price) agrees
    direct = book.price(**SONNET, cache_write_1h_tokens=2_000, at=at)
    assert direct.cost_usd == Decimal("0.04155")


def test_one_hour_writes_land_in_the_cache_write_part(book: PriceBook) -> None:
    """cache_write_cost_usd = 1,000 x 3.75 + 2,000 x 6 = 15,750 per Mtok; the parts still add
    up to the cost (18,000 + 300 + 15,750 + 7,500)."""
    t = price_table(book, events_table([_row(SONNET, NEW, cache_write_1h_tokens=2_000)]))
    r = t.to_pylist()[0]
    assert r["cache_write_cost_usd"] == Decimal("0.01575")
    assert (r["input_cost_usd"], r["cache_read_cost_usd"], r["output_cost_usd"]) == (
        Decimal("0.018"),
        Decimal("0.0003"),
        Decimal("0.0075"),
    )
    assert "cache_write_1h_tokens" not in t.column_names  # folded, not stored


@pytest.mark.parametrize("at", [OLD, NEW])
@pytest.mark.parametrize("tier", ["batch", "BATCH"])
def test_batch_calls_at_half_price(book: PriceBook, at: dt.datetime, tier: str) -> None:
    rows = [
        _row(SONNET, at, cache_write_1h_tokens=2_000, service_tier=tier),
        _row(MINI, at, service_tier=tier),
        _row(MINI, at),  # the same call, not in batch, in the same table
        _row(MINI, at, service_tier="standard"),  # Anthropic's name for the standard tier
    ]
    costs = [c for c, _, _ in priced(book, rows)]
    assert costs == [Decimal("0.020775"), Decimal("0.105"), Decimal("0.21"), Decimal("0.21")]
    assert book.price(**MINI, service_tier=tier, at=at).cost_usd == Decimal("0.105")
    direct = book.price(**SONNET, cache_write_1h_tokens=2_000, service_tier=tier, at=at)
    assert direct.cost_usd == Decimal("0.020775")


def test_batch_variant_starts_a_price_window(book: PriceBook) -> None:
    """genai-prices' batch variant starts on 2026-10-14: a batch price resolved after it says
    so (valid_from), and its rates are Anthropic's batch table ($1.50 / $7.50)."""
    mp = book.resolve("claude-sonnet-4-5", provider="anthropic", at=NEW, service_tier="batch")
    assert mp is not None
    assert (mp.input_mtok, mp.output_mtok, mp.service_tier) == (
        Decimal("1.5"),
        Decimal("7.5"),
        "batch",
    )
    assert mp.valid_from == dt.datetime(2026, 10, 14, tzinfo=dt.UTC)
    assert mp.write_1h_rate(10_000) == Decimal("3")


def test_batch_table_spanning_the_variant_start(book: PriceBook) -> None:
    """One table, batch calls on both sides of 2026-10-14: each half price."""
    rows = [_row(MINI, NEW - dt.timedelta(days=30), service_tier="batch"),
            _row(MINI, NEW, service_tier="batch")]  # fmt: skip
    assert [c for c, _, _ in priced(book, rows)] == [Decimal("0.105")] * 2


def test_operator_price_halved_in_batch(tmp_path: Any) -> None:
    """An operator's price for an OpenAI model ($1 / $4 per Mtok) is halved for a batch call,
    the documented discount; its own 1-hour write rate is used when given."""
    path = tmp_path / "p.toml"
    path.write_text(
        '[[model]]\nprovider = "openai"\nmodel = "mine"\ninput_mtok = 1\noutput_mtok = 4\n'
        "cache_write_mtok = 1.25\ncache_write_1h_mtok = 2\n"
    )
    book = PriceBook.load(path)
    base = {"provider": "openai", "model": "mine", "input_tokens": 1_000_000,
            "cache_write_tokens": 1_000_000, "cache_write_1h_tokens": 500_000,
            "output_tokens": 0}  # fmt: skip
    # 500,000 x 1.25 + 500,000 x 2 = 1.625 dollars; half in batch
    costs = [
        c for c, _, _ in priced(book, [_row(base, OLD), _row(base, OLD, service_tier="batch")])
    ]
    assert costs == [Decimal("1.625"), Decimal("0.8125")]
    assert book.price(**base, at=OLD).cost_usd == Decimal("1.625")


def test_one_hour_writes_above_all_writes_are_refused(book: PriceBook) -> None:
    with pytest.raises(ValueError, match="cache_write_1h_tokens exceed cache_write_tokens"):
        LlmCall(event_id="e", ts=OLD, customer_id="c", **SONNET, cache_write_1h_tokens=3_001)
    with pytest.raises(PricingError):
        book.price(**SONNET, cache_write_1h_tokens=3_001, at=OLD)
    # in a table that skipped validation: unpriced, never a made-up price
    ((cost, source, unpriced),) = priced(book, [_row(SONNET, OLD, cache_write_1h_tokens=3_001)])
    assert (cost, source, unpriced) == (None, "unpriced", True)


def test_web_search_price(book: PriceBook) -> None:
    """$10 per 1,000 searches (Anthropic's web search tool pricing), from genai-prices'
    ``web_searches_kcount`` for Sonnet 4.5 and from the documented figure for a model
    genai-prices does not know."""
    assert book.web_search_usd("claude-sonnet-4-5", provider="anthropic", at=NEW) == Decimal("0.01")
    assert book.web_search_usd("no-such-model", provider="anthropic", at=NEW) == Decimal("0.01")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_event_files_carry_the_pricing_inputs(tmp_path: Any, fmt: str) -> None:
    """``cache_write_1h_tokens`` and ``service_tier`` in an event file (each reader) reach the
    price and are not stored: the Sonnet call in batch with its 1-hour writes, $0.020775; a
    1-hour count above the writes is refused by name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tailguard.errors import InputError
    from tailguard.events.schema import INPUT_SCHEMA
    from tailguard.ledger import Ledger
    from tailguard.ledger.ingest import ingest

    good = {"event_id": "e1", "kind": "llm_call", "ts": "2025-08-01T00:00:00+00:00",
            "customer_id": "acme", **SONNET, "cache_write_1h_tokens": 2000,
            "service_tier": "batch"}  # fmt: skip
    bad = {**good, "event_id": "e2", "cache_write_1h_tokens": 3001}
    path = tmp_path / f"ev.{fmt}"
    if fmt == "jsonl":
        import json

        path.write_text("".join(json.dumps(r) + "\n" for r in (good, bad)))
    elif fmt == "csv":
        import csv

        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(good))
            w.writeheader()
            w.writerows([good, bad])
    else:
        rows = [{**r, "ts": dt.datetime.fromisoformat(r["ts"])} for r in (good, bad)]
        fields = [f for f in INPUT_SCHEMA if f.name in good]
        pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields)), path)
    with pytest.raises(InputError) as err:
        ingest([path], tmp_path / "L")
    assert any("cache_write_1h_tokens" in p for p in err.value.problems)
    ingest([path], tmp_path / "L", rejects_path=tmp_path / "rejects.jsonl")
    con = Ledger(tmp_path / "L").connect()
    try:
        got = con.execute("SELECT event_id, cost_usd FROM events").fetchall()
        cols = [d[0] for d in con.execute("SELECT * FROM events LIMIT 0").description]
    finally:
        con.close()
    assert got == [("e1", Decimal("0.020775"))]
    assert "service_tier" not in cols and "cache_write_1h_tokens" not in cols


_MODELS = [("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-haiku-4-5"),
           ("anthropic", "claude-3-5-haiku-latest"), ("openai", "gpt-4o-mini"),
           ("openai", "gpt-4o"), ("openai", "gpt-4.1-mini")]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(_MODELS),
    at=st.sampled_from([OLD, NEW, dt.datetime(2026, 10, 13, 23, 59, tzinfo=dt.UTC)]),
    tier=st.sampled_from([None, "batch", "priority", "flex", "standard"]),
    usage=st.tuples(
        st.integers(0, 400_000),
        st.integers(0, 100),
        st.integers(0, 100),
        st.integers(0, 100),
        st.integers(0, 50_000),
    ),
)
def test_bulk_and_direct_paths_agree(
    book: PriceBook,
    model: tuple[str, str],
    at: dt.datetime,
    tier: str | None,
    usage: tuple[int, int, int, int, int],
) -> None:
    """The bulk path (integer rates probed from genai-prices, joined per row) and the direct
    path (genai-prices' own ``calc_price`` with its price context, or the documented half) give
    the same nano-dollar for any usage, tier and date (Anthropic's priority, a contract price:
    no price on either), on both sides of genai-prices' batch
    variants (2026-10-14) and of Sonnet 4.5's 200k-token tier; with a 1-hour write the cost
    never falls, and batch never costs more than standard."""
    inp, cr_pct, cw_pct, h_pct, out = usage
    cr = inp * cr_pct // 200
    cw = inp * cw_pct // 200
    cw1h = cw * h_pct // 100
    prov, name = model
    kw = {"provider": prov, "model": name, "input_tokens": inp, "output_tokens": out,
          "cache_read_tokens": cr, "cache_write_tokens": cw}  # fmt: skip
    rows = [_row(kw, at, cache_write_1h_tokens=cw1h, service_tier=tier),
            _row(kw, at, service_tier=tier), _row(kw, at, cache_write_1h_tokens=cw1h)]  # fmt: skip
    bulk = [c for c, _, _ in priced(book, rows)]
    if (prov, tier) == ("anthropic", "priority"):  # billed by contract: no price either way
        assert bulk[:2] == [None, None] and bulk[2] is not None
        with pytest.raises(ContractPriceError):
            book.price(**kw, cache_write_1h_tokens=cw1h, service_tier=tier, at=at)
        return
    direct = book.price(**kw, cache_write_1h_tokens=cw1h, service_tier=tier, at=at).cost_usd
    assert bulk[0] == direct
    assert bulk[0] >= bulk[1]  # 1-hour writes cost at least the 5-minute ones
    if tier == "batch":
        assert bulk[0] <= bulk[2]
