"""The price book: which price applies to a model at an instant, and what a usage costs there.

Two sources, in this order:

1. the operator's file (``[[model]]`` entries): exact model name, optional provider, an optional
   ``effective_from`` and an optional ``service_tier`` (missing: standard); several entries for
   one model and tier are a price history, each tier with its own;
2. genai-prices' bundled snapshot (never fetched at run time), matched with genai-prices' own
   rules (aliases, dated names, provider fallbacks), effective-dated by its own constraints and
   reduced by any ``[[discount]]`` entry.

``PriceBook.price`` prices one call the direct way (genai-prices' ``calc_price`` for its models),
which is also the reference the bulk path is tested against. ``PriceBook.resolve`` returns the
price as a ``ModelPrice`` whose rates are *derived from genai-prices' own arithmetic* by probing it
with unit usages (so decomposition and tier rules are genai-prices', not a copy of them), along
with the window in which that price holds, so a bulk caller resolves once per (provider, model,
window) and joins.

Token convention: OpenTelemetry's ``input_tokens`` includes cache reads and cache writes, which is
also genai-prices' ``Usage`` convention (its ``input_tokens`` is the aggregate and the cache counts
are descendants subtracted from it), so usages pass through unchanged.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from genai_prices import Usage
from genai_prices import data_snapshot as _gp_snapshot
from genai_prices import types as gp

from tailguard.errors import (
    ArgumentError,
    ContractPriceError,
    NoTierPriceError,
    PricingError,
    UnknownModelError,
)
from tailguard.pricing._money import MTOK, round_usd
from tailguard.pricing._overrides import (
    DiscountEntry,
    ModelEntry,
    OverrideFile,
    UnitCosts,
    load_overrides,
    tier_name,
)
from tailguard.vocabulary import SERVICE_TIERS

Source = Literal["override", "genai-prices"]
_ONE = Decimal(1)
_M = 1_000_000


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that replace the base rates when a call's total input tokens exceed a threshold.

    genai-prices' tiers are cliffs: above the threshold *every* token of the unit pays the tier
    rate (Anthropic's and Google's long-context prices).
    """

    above_input_tokens: int
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal
    cache_write_mtok: Decimal
    #: Anthropic's 1-hour cache writes (``None``: the 5-minute ``cache_write_mtok``)
    cache_write_1h_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price of one model at one provider over one validity window, after discount.

    Rates are USD per million tokens: ``input_mtok`` for uncached input, ``cache_read_mtok`` and
    ``cache_write_mtok`` for cached input, ``output_mtok`` for output (reasoning included);
    ``request_usd`` is a flat fee per call (rare in genai-prices, zero for overrides). ``tiers``
    hold context-length prices. The price holds for ``valid_from <= ts < valid_until``
    (``None`` = unbounded). ``cache_write_1h_mtok`` prices Anthropic's 1-hour cache writes
    (``None``: as the 5-minute ones). ``service_tier`` is the tier the rates are for (``None``:
    standard; ``"batch"``: the Batch APIs, see ``PriceBook.resolve``).
    """

    provider: str | None
    model: str
    source: Source
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal
    cache_write_mtok: Decimal
    request_usd: Decimal = Decimal(0)
    discount: Decimal = Decimal(0)
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    tiers: tuple[PriceTier, ...] = ()
    cache_write_1h_mtok: Decimal | None = None
    service_tier: str | None = None

    def write_1h_rate(self, input_tokens: int) -> Decimal:
        """The 1-hour cache write rate per Mtok for a call with ``input_tokens``."""
        for tier in reversed(self.tiers):
            if input_tokens > tier.above_input_tokens:
                w = tier.cache_write_1h_mtok
                return tier.cache_write_mtok if w is None else w
        w = self.cache_write_1h_mtok
        return self.cache_write_mtok if w is None else w

    def rates(self, input_tokens: int) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(input, cache_read, cache_write, output) per Mtok for a call with ``input_tokens``."""
        for tier in reversed(self.tiers):
            if input_tokens > tier.above_input_tokens:
                return (
                    tier.input_mtok,
                    tier.cache_read_mtok,
                    tier.cache_write_mtok,
                    tier.output_mtok,
                )
        return self.input_mtok, self.cache_read_mtok, self.cache_write_mtok, self.output_mtok

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> Decimal:
        """The exact (unrounded) cost of one call; ``input_tokens`` includes the cache tokens,
        ``cache_write_tokens`` includes the 1-hour writes ``cache_write_1h_tokens``."""
        p_in, p_cr, p_cw, p_out = self.rates(input_tokens)
        uncached = input_tokens - cache_read_tokens - cache_write_tokens
        return (
            uncached * p_in
            + cache_read_tokens * p_cr
            + (cache_write_tokens - cache_write_1h_tokens) * p_cw
            + cache_write_1h_tokens * self.write_1h_rate(input_tokens)
            + output_tokens * p_out
        ) / MTOK + self.request_usd


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """The cost of one call. ``cost_usd`` is rounded half-even to 1e-9 USD (one nano-dollar).

    ``input_cost_usd`` and ``output_cost_usd`` are the parts, each rounded on its own, so they may
    differ from ``cost_usd`` by a nano-dollar; ``cost_usd`` is the one the ledger stores.
    """

    cost_usd: Decimal
    provider: str | None
    model: str
    source: Source
    input_cost_usd: Decimal
    output_cost_usd: Decimal
    discount: Decimal
    at: dt.datetime


class PriceBook:
    """Prices from genai-prices' bundled snapshot, with the operator's overrides on top."""

    units: UnitCosts

    def __init__(self, overrides: OverrideFile | None = None) -> None:
        self._overrides = overrides or OverrideFile(path=None)
        self.units = self._overrides.units
        self.path = self._overrides.path
        by_model: dict[str, list[ModelEntry]] = {}
        for entry in self._overrides.models:
            by_model.setdefault(entry.model, []).append(entry)
        self._by_model = by_model
        self._snapshot = _gp_snapshot.get_snapshot()
        self._lookup = lru_cache(maxsize=4096)(self._lookup_uncached)
        # probed rates per (genai-prices price object, provider, model, discount): a window
        # that repeats a price (DeepSeek's daily off-peak) costs no new genai-prices calls
        self._probed: dict[
            tuple[int, str, str, Decimal, str | None], tuple[gp.ModelPrice, ModelPrice]
        ] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> PriceBook:
        """A book from an operator file (``None``: genai-prices only)."""
        return cls(load_overrides(path) if path is not None else None)

    # ------------------------------------------------------------------ resolve
    def resolve(
        self,
        model: str,
        *,
        provider: str | None = None,
        at: dt.datetime | None = None,
        service_tier: str | None = None,
    ) -> ModelPrice | None:
        """The price that applies to ``model`` at ``at`` (default now), or ``None`` if unknown.

        ``service_tier``: the tier the call was served at (``"batch"`` for OpenAI's Batch API
        and Anthropic's Message Batches; ``"flex"``, ``"priority"`` ...). genai-prices' own
        variant for that tier is used where one is in force at ``at``; a batch call without one
        (genai-prices models batch prices only from 2026-10-14, and not for every model) pays
        half the standard rates at OpenAI and Anthropic, both providers' documented batch
        discount. ``flex`` and ``priority`` without a variant pay the standard rates, except a
        tier billed by contract (``CONTRACT_TIERS``: Anthropic's priority), which has no price
        (``None``), as a tier not in ``SERVICE_TIERS`` has none: never the standard one.

        Operator ``[[model]]`` prices are per tier (``service_tier``; missing: standard): a call
        at a tier with an entry in force pays that entry (a contract price for Anthropic's
        priority or OpenAI's scale is such an entry). A call at a tier without one, of a model
        whose standard entry is in force, pays that entry only at batch (halved at OpenAI and
        Anthropic); at any other tier it has no price, never another tier's. A model without
        operator entries in force for the call falls through to genai-prices.
        """
        at = _utc(at)
        prov = provider.lower() if provider else None
        tier = _tier(service_tier)
        if not _known(tier):
            return None
        points = self.change_points(model, provider=prov, start=at, end=at, service_tier=tier)
        valid_from = max((p for p in points if p <= at), default=None)
        valid_until = min((p for p in points if p > at), default=None)
        entry, standard = self._operator_entry(model, prov, at, tier)
        if entry is not None:
            mp = _override_price(entry, valid_from, valid_until)
            if standard and _pays_half(tier, prov or entry.provider):
                mp = _halved(mp)
            return replace(mp, service_tier=tier)
        if standard:  # a standard operator price, and the tier is not batch: no price
            return None
        found = self._lookup(model, prov)
        if found is None:
            return None
        gp_provider, gp_model = found
        discount = self._discount(model, gp_model.id, prov, gp_provider.id, at)
        gp_price = gp_model.get_prices(at)
        ctx = _variant_context(gp_model, tier, at)
        variant = ctx is not None
        if not variant and _by_contract(tier, gp_provider.id):
            return None
        half = not variant and _pays_half(tier, gp_provider.id)
        key = (id(gp_price), gp_provider.id, gp_model.id, discount, tier if variant else None)
        cached = self._probed.get(key)
        if cached is None or cached[0] is not gp_price:
            probe_price = gp_model.get_prices(at, ctx) if variant else gp_price
            probed = _probe(
                probe_price, provider=gp_provider.id, model=gp_model.id, discount=discount
            )
            self._probed[key] = cached = (gp_price, probed)
        mp = cached[1]
        if half:
            mp = _halved(mp)
        return replace(
            mp,
            valid_from=valid_from,
            valid_until=valid_until,
            service_tier=tier if (variant or half) else None,
        )

    def change_points(
        self,
        model: str,
        *,
        provider: str | None,
        start: dt.datetime,
        end: dt.datetime,
        service_tier: str | None = None,
    ) -> list[dt.datetime]:
        """Instants in or around ``[start, end]`` at which this model's price may change.

        Start dates of every override, discount and genai-prices conditional price, plus the daily
        boundaries of time-of-day prices (DeepSeek's off-peak hours) for the days from ``start``
        - 1 to ``end`` + 1; for a ``service_tier``, the start dates of genai-prices' variants
        for that tier too. Consecutive points bound the windows of a constant price.
        """
        prov = provider.lower() if provider else None
        points: set[dt.datetime] = set()
        for entry in self._by_model.get(model, ()):
            if entry.effective_from and _provider_ok(entry.provider, prov):
                points.add(entry.effective_from)
        found = self._lookup(model, prov)
        if found is not None:
            gp_provider, gp_model = found
            for d in self._overrides.discounts:
                if d.effective_from and _discount_matches(
                    d, model, gp_model.id, prov, gp_provider.id
                ):
                    points.add(d.effective_from)
            if isinstance(gp_model.prices, list):
                for cond in gp_model.prices:
                    c = cond.constraint
                    if isinstance(c, gp.StartDateConstraint):
                        points.add(
                            dt.datetime(
                                c.start_date.year,
                                c.start_date.month,
                                c.start_date.day,
                                tzinfo=dt.UTC,
                            )
                        )
                    elif isinstance(c, gp.TimeOfDateConstraint):
                        points.update(_daily(c, start, end))
            ctx = _context(_tier(service_tier))
            for v in gp_model.price_variants or () if ctx is not None else ():
                c = v.constraint
                if _when_matches(v.when, ctx) and isinstance(c, gp.StartDateConstraint):
                    d = c.start_date
                    points.add(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC))
        return sorted(points)

    # ------------------------------------------------------------------ price
    def price(
        self,
        *,
        model: str,
        provider: str | None = None,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        service_tier: str | None = None,
        at: dt.datetime | None = None,
    ) -> PriceQuote:
        """Price one call at its own time; raises ``UnknownModelError`` when no price matches.

        ``input_tokens`` includes ``cache_read_tokens`` and ``cache_write_tokens`` (OpenTelemetry
        GenAI convention); ``cache_write_tokens`` includes the 1-hour writes
        ``cache_write_1h_tokens``; ``output_tokens`` includes reasoning tokens.
        ``service_tier`` as in ``resolve``; one not in ``SERVICE_TIERS`` raises
        ``ArgumentError`` (``service_tier``) and one billed by contract ``ContractPriceError``,
        never the standard price.
        """
        _check_usage(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
        if not 0 <= cache_write_1h_tokens <= cache_write_tokens:
            raise PricingError(
                f"cache_write_1h_tokens ({cache_write_1h_tokens}) must be between 0 and "
                f"cache_write_tokens ({cache_write_tokens}): the 1-hour writes are part of them"
            )
        at = _utc(at)
        prov = provider.lower() if provider else None
        tier = _tier(service_tier)
        if not _known(tier):
            raise ArgumentError(
                "service_tier",
                f"{service_tier!r} is not a service tier tailguard can price "
                f"(known: {', '.join(SERVICE_TIERS)})",
            )
        entry, standard = self._operator_entry(model, prov, at, tier)
        if entry is None and standard:  # a standard operator price; the tier has none
            assert tier is not None
            std = self._override(model, prov, at, None)
            std_provider = prov or (std.provider if std is not None else None)
            if _by_contract(tier, std_provider):
                raise ContractPriceError(model, std_provider or "", tier)
            raise NoTierPriceError(
                f"{model!r}: the operator price (the [[model]] entry) is the standard "
                f"tier's, and a {tier} call has no price there, so the call is unpriced. "
                f"Price the tier with an entry of its own, e.g.\n{_tier_hint(model, prov, tier)}"
                f"For a negotiated discount use a [[discount]] entry, which applies to "
                f"genai-prices' price of every tier, or send the call's cost as cost_usd."
            )
        if entry is not None:
            mp = _override_price(entry, None, None)
            if standard and _pays_half(tier, prov or entry.provider):
                mp = _halved(mp)
            uncached = input_tokens - cache_read_tokens - cache_write_tokens
            inp = (
                uncached * mp.input_mtok
                + cache_read_tokens * mp.cache_read_mtok
                + (cache_write_tokens - cache_write_1h_tokens) * mp.cache_write_mtok
                + cache_write_1h_tokens * mp.write_1h_rate(input_tokens)
            ) / MTOK
            out = output_tokens * mp.output_mtok / MTOK
            return PriceQuote(
                cost_usd=round_usd(inp + out),
                provider=entry.provider or prov,
                model=entry.model,
                source="override",
                input_cost_usd=round_usd(inp),
                output_cost_usd=round_usd(out),
                discount=entry.discount,
                at=at,
            )
        found = self._lookup(model, prov)
        if found is None:
            raise UnknownModelError(model, provider)
        gp_provider, gp_model = found
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            cache_write_1h_tokens=cache_write_1h_tokens,
        )
        ctx = _variant_context(gp_model, tier, at)
        if ctx is None and tier is not None and _by_contract(tier, gp_provider.id):
            raise ContractPriceError(model, gp_provider.id, tier)
        calc = gp_model.calc_price(
            usage, gp_provider, genai_request_timestamp=at, price_context=ctx
        )
        discount = self._discount(model, gp_model.id, prov, gp_provider.id, at)
        keep = _ONE - discount
        if ctx is None and _pays_half(tier, gp_provider.id):
            keep *= BATCH_FACTOR
        return PriceQuote(
            cost_usd=round_usd(calc.total_price * keep),
            provider=gp_provider.id,
            model=gp_model.id,
            source="genai-prices",
            input_cost_usd=round_usd(calc.input_price * keep),
            output_cost_usd=round_usd(calc.output_price * keep),
            discount=discount,
            at=at,
        )

    def web_search_usd(
        self, model: str | None, *, provider: str | None, at: dt.datetime | None = None
    ) -> Decimal:
        """The price of one server-side web search of ``model`` at ``at``.

        genai-prices' ``web_searches_kcount`` for the model where it has one (per 1,000
        searches), else Anthropic's and OpenAI's documented $10 per 1,000 searches
        (``WEB_SEARCH_USD``), less any ``[[discount]]`` of the model.
        """
        at = _utc(at)
        prov = provider.lower() if provider else None
        found = self._lookup(model, prov) if model else None
        if found is None:
            return WEB_SEARCH_USD
        gp_provider, gp_model = found
        per_k = getattr(gp_model.get_prices(at), "web_searches_kcount", None)
        if not isinstance(per_k, Decimal):
            return WEB_SEARCH_USD
        discount = self._discount(model or "", gp_model.id, prov, gp_provider.id, at)
        return per_k / 1000 * (_ONE - discount)

    # ------------------------------------------------------------------ internals
    def _operator_entry(
        self, model: str, provider: str | None, at: dt.datetime, tier: str | None
    ) -> tuple[ModelEntry | None, bool]:
        """The operator entry that prices a call at ``tier`` (``tier_name``'s form) and whether
        it is the standard tier's entry standing in for it.

        ``(entry, False)``: the tier's own entry in force (the standard's for a standard call);
        ``(entry, True)``: no entry of the tier, the standard one prices a batch call (halved
        where ``_pays_half``); ``(None, True)``: no entry of the tier, a standard one is in
        force, so the call has no operator price and must not fall through to genai-prices
        (the operator's price is not its price, nor is the standard one); ``(None, False)``:
        no operator entry in force for the call, genai-prices applies.
        """
        own = self._override(model, provider, at, tier)
        if own is not None or tier is None:
            return own, False
        std = self._override(model, provider, at, None)
        if std is None:
            return None, False
        return (std, True) if tier == BATCH else (None, True)

    def _override(
        self, model: str, provider: str | None, at: dt.datetime, tier: str | None
    ) -> ModelEntry | None:
        """The override entry of ``tier`` (``None``: standard) in force: latest
        ``effective_from`` <= ``at``; on a tie the entry naming the provider wins over a
        provider-less one, then the later entry in the file."""
        best: ModelEntry | None = None
        best_key: tuple[dt.datetime, int, int] | None = None
        for entry in self._by_model.get(model, ()):
            if entry.service_tier != tier or not _provider_ok(entry.provider, provider):
                continue
            if entry.effective_from is not None and entry.effective_from > at:
                continue
            key = (
                entry.effective_from or dt.datetime.min.replace(tzinfo=dt.UTC),
                1 if entry.provider is not None and entry.provider == provider else 0,
                entry.index,
            )
            if best_key is None or key > best_key:
                best, best_key = entry, key
        return best

    def _discount(
        self,
        model: str,
        gp_model_id: str,
        provider: str | None,
        gp_provider_id: str,
        at: dt.datetime,
    ) -> Decimal:
        """The ``[[discount]]`` in force: a model-specific entry beats a provider-wide one; then
        the latest ``effective_from`` <= ``at``; then the later entry in the file."""
        best: DiscountEntry | None = None
        best_key: tuple[int, dt.datetime, int] | None = None
        for d in self._overrides.discounts:
            if not _discount_matches(d, model, gp_model_id, provider, gp_provider_id):
                continue
            if d.effective_from is not None and d.effective_from > at:
                continue
            key = (
                1 if d.model is not None else 0,
                d.effective_from or dt.datetime.min.replace(tzinfo=dt.UTC),
                d.index,
            )
            if best_key is None or key > best_key:
                best, best_key = d, key
        return best.discount if best is not None else Decimal(0)

    def _lookup_uncached(
        self, model: str, provider: str | None
    ) -> tuple[gp.Provider, gp.ModelInfo] | None:
        """genai-prices' own matching; an unknown provider or model is ``None`` (unpriced)."""
        try:
            return self._snapshot.find_provider_model(model, None, provider, None)
        except LookupError:
            return None


def _provider_ok(entry_provider: str | None, provider: str | None) -> bool:
    """An entry without a provider matches any; one with a provider matches that provider and
    events that do not say which provider served them."""
    return entry_provider is None or provider is None or entry_provider == provider


#: one server-side web search: "$10 per 1,000 searches" (Anthropic, platform.claude.com/docs/
#: en/agents-and-tools/tool-use/web-search-tool#usage-and-pricing; OpenAI's web search tool
#: call is priced the same), used where genai-prices has no ``web_searches_kcount``
WEB_SEARCH_USD = Decimal("0.01")

#: the service tier of OpenAI's Batch API and Anthropic's Message Batches
BATCH = "batch"
#: providers whose documented batch price is half the standard one, for every model and token
#: type: OpenAI ("Batch API ... 50% discount", platform.openai.com/docs/guides/batch) and
#: Anthropic ("Message Batches API usage is charged at 50% of the standard API prices",
#: platform.claude.com/docs/en/build-with-claude/batch-processing#pricing)
BATCH_HALF_PROVIDERS = frozenset({"openai", "anthropic"})
BATCH_FACTOR = Decimal("0.5")


_tier = tier_name

#: (provider, tier) pairs billed by contract, not a list price: Anthropic's Priority Tier is
#: drawn from a capacity commitment ("Available only to organizations with an existing capacity
#: commitment", platform.claude.com/docs/en/api/service-tiers; genai-prices has no variant for
#: it). A call there is unpriced unless genai-prices gets a variant for it or the operator's
#: file has a ``[[model]]`` entry for the tier (the contract's price)
CONTRACT_TIERS = frozenset({("anthropic", "priority"), ("openai", "scale")})
#: tiers billed by contract wherever they are named: OpenAI's Scale Tier ("token units"
#: bought upfront, priced per unit and day, for a minimum of 30 days: openai.com/api-scale-tier)
#: has no per-token list price, at OpenAI or at a provider that passes OpenAI's answer through
CONTRACT_ONLY = frozenset({"scale"})


def _by_contract(tier: str | None, provider: str | None) -> bool:
    """A tier its provider bills by contract (``CONTRACT_TIERS``, ``CONTRACT_ONLY``): no list
    price."""
    return tier in CONTRACT_ONLY or (provider, tier) in CONTRACT_TIERS


def _tier_hint(model: str, provider: str | None, tier: str) -> str:
    """The ``[[model]]`` lines that would price ``model`` at ``tier`` (a line each)."""
    prov = f'  provider = "{provider}"\n' if provider else ""
    return (
        f'  [[model]]\n{prov}  model = "{model}"\n  service_tier = "{tier}"\n'
        f"  input_mtok = 1.0\n  output_mtok = 2.0\n"
    )


def _known(tier: str | None) -> bool:
    """Whether pricing knows the tier (``_tier``'s result): the standard one or a name in
    ``SERVICE_TIERS``; any other has no price tailguard can vouch for."""
    return tier is None or tier in SERVICE_TIERS


def _context(tier: str | None) -> dict[str, str] | None:
    """genai-prices' price context for a tier: batch is its ``processing`` key."""
    if tier is None:
        return None
    return {"processing": "batch"} if tier == BATCH else {"service_tier": tier}


def _when_matches(when: dict[str, str], ctx: dict[str, str]) -> bool:
    return all(ctx.get(k) == v for k, v in when.items())


def _pays_half(tier: str | None, provider: str | None) -> bool:
    """A batch call at a provider whose documented batch price is half the standard one, where
    no genai-prices variant prices it (the caller checks that: ``_variant_context``)."""
    return tier == BATCH and provider in BATCH_HALF_PROVIDERS


def _variant_context(
    gp_model: gp.ModelInfo, tier: str | None, at: dt.datetime
) -> dict[str, str] | None:
    """genai-prices' price context for ``tier`` when it has a variant for it in force at
    ``at``, else ``None`` (the standard prices, halved for a batch call by ``_pays_half``)."""
    ctx = _context(tier)
    return ctx if ctx is not None and _variant_active(gp_model, ctx, at) else None


def _variant_active(gp_model: gp.ModelInfo, ctx: dict[str, str], at: dt.datetime) -> bool:
    """Whether genai-prices has a price variant for ``ctx`` in force at ``at``."""
    for v in gp_model.price_variants or ():
        if _when_matches(v.when, ctx) and (v.constraint is None or v.constraint.active(at)):
            return True
    return False


def _halved(mp: ModelPrice) -> ModelPrice:
    """Every rate of ``mp`` at half (the documented batch price where no variant exists)."""
    h = BATCH_FACTOR

    def w(x: Decimal | None) -> Decimal | None:
        return None if x is None else x * h

    return replace(
        mp,
        input_mtok=mp.input_mtok * h,
        output_mtok=mp.output_mtok * h,
        cache_read_mtok=mp.cache_read_mtok * h,
        cache_write_mtok=mp.cache_write_mtok * h,
        cache_write_1h_mtok=w(mp.cache_write_1h_mtok),
        request_usd=mp.request_usd * h,
        tiers=tuple(
            replace(
                t,
                input_mtok=t.input_mtok * h,
                output_mtok=t.output_mtok * h,
                cache_read_mtok=t.cache_read_mtok * h,
                cache_write_mtok=t.cache_write_mtok * h,
                cache_write_1h_mtok=w(t.cache_write_1h_mtok),
            )
            for t in mp.tiers
        ),
    )


def _discount_matches(
    d: DiscountEntry, model: str, gp_model_id: str, provider: str | None, gp_provider_id: str
) -> bool:
    if d.provider not in (provider, gp_provider_id):
        return False
    return d.model is None or d.model in (model, gp_model_id)


def _override_price(
    entry: ModelEntry, valid_from: dt.datetime | None, valid_until: dt.datetime | None
) -> ModelPrice:
    keep = _ONE - entry.discount
    return ModelPrice(
        provider=entry.provider,
        model=entry.model,
        source="override",
        input_mtok=entry.input_mtok * keep,
        output_mtok=entry.output_mtok * keep,
        cache_read_mtok=entry.cache_read_mtok * keep,
        cache_write_mtok=entry.cache_write_mtok * keep,
        cache_write_1h_mtok=(
            None if entry.cache_write_1h_mtok is None else entry.cache_write_1h_mtok * keep
        ),
        discount=entry.discount,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _probe(
    price: gp.ModelPrice,
    *,
    provider: str,
    model: str,
    discount: Decimal,
) -> ModelPrice:
    """Per-Mtok rates of a genai-prices price, read off genai-prices' own ``calc_price``.

    Within one tier band the cost is affine in (uncached, cache read, cache write, output)
    tokens, so a few probe usages recover the exact Decimal rates, whatever price keys and
    decomposition rules the model uses. Tier bands come from the thresholds of its
    ``TieredPrices``; each band is probed with an input count inside it.
    """

    def f(inp: int, out: int = 0, cr: int = 0, cw: int = 0, cw1h: int = 0) -> Decimal:
        usage = Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_tokens=cr,
            cache_write_tokens=cw,
            cache_write_1h_tokens=cw1h,
        )
        return price.calc_price(usage)["total_price"]

    thresholds = sorted(
        {
            t.start
            for v in price.__dict__.values()
            if isinstance(v, gp.TieredPrices)
            for t in v.tiers
        }
    )
    base = f(0)

    def band(n: int) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        if n == 0:  # a band that only holds input_tokens == 0: input rates never apply
            zero = Decimal(0)
            return zero, zero, zero, f(0, _M) - base, zero
        p_in = (f(n) - base) * _M / n
        p_cr = (f(n, cr=n) - base) * _M / n
        p_cw = (f(n, cw=n) - base) * _M / n
        p_out = f(n, _M) - f(n)
        p_cw1h = (f(n, cw=n, cw1h=n) - base) * _M / n
        return p_in, p_cr, p_cw, p_out, p_cw1h

    keep = _ONE - discount
    first = band(thresholds[0] if thresholds else _M)
    if thresholds and thresholds[0] == 0:
        b1 = band(1)  # unused input rates: show the next band's
        first = (*b1[:3], first[3], b1[4])
    tiers = tuple(
        PriceTier(t, *(r * keep for r in _order(b[:4])), cache_write_1h_mtok=b[4] * keep)
        for t in thresholds
        for b in (band(t + 1),)
    )
    b_in, b_cr, b_cw, b_out, b_cw1h = first
    return ModelPrice(
        provider=provider,
        model=model,
        source="genai-prices",
        input_mtok=b_in * keep,
        output_mtok=b_out * keep,
        cache_read_mtok=b_cr * keep,
        cache_write_mtok=b_cw * keep,
        cache_write_1h_mtok=b_cw1h * keep,
        request_usd=base * keep,
        discount=discount,
        tiers=tiers,
    )


def _order(
    r: tuple[Decimal, Decimal, Decimal, Decimal],
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """(in, cache_read, cache_write, out) -> PriceTier's (in, out, cache_read, cache_write)."""
    return r[0], r[3], r[1], r[2]


def _daily(c: gp.TimeOfDateConstraint, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    out: list[dt.datetime] = []
    day = start.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    last = end.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    while day <= last:
        for t in (c.start_time, c.end_time):
            tt = t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)
            out.append(dt.datetime.combine(day, tt).astimezone(dt.UTC))
        day += dt.timedelta(days=1)
    return out


def _utc(at: dt.datetime | None) -> dt.datetime:
    """``at`` as an aware UTC datetime; ``None`` is now and a naive datetime is taken as UTC."""
    if at is None:
        return dt.datetime.now(dt.UTC)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _check_usage(inp: int, out: int, cr: int, cw: int) -> None:
    for name, v in (
        ("input_tokens", inp),
        ("output_tokens", out),
        ("cache_read_tokens", cr),
        ("cache_write_tokens", cw),
    ):
        if v < 0:
            raise PricingError(f"{name} must be >= 0, got {v}")
    if cr + cw > inp:
        raise PricingError(
            f"cache_read_tokens + cache_write_tokens ({cr + cw}) exceed input_tokens ({inp}): "
            "input_tokens must include cache tokens (OpenTelemetry convention)"
        )
