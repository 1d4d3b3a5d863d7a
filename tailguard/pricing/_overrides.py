"""The operator's price file: model prices, negotiated discounts and non-token unit costs.

An operator file adds what genai-prices cannot know: a self-hosted model, a negotiated discount, a
price change on a known date, and what a tool call, a retrieval or a minute of a human costs.
It is TOML (see ``docs/pricing.md``)::

    [[model]]                       # adds or overrides one model's price (several = a history)
    provider = "openai"             # optional: match this provider only
    model = "gpt-4o"                # exact name as the application logs it
    input_mtok = 2.5                # USD per million tokens
    output_mtok = 10.0
    cache_read_mtok = 1.25          # optional; missing -> input price
    cache_write_mtok = 3.125        # optional; missing -> input price
    cache_write_1h_mtok = 5.0       # optional: 1-hour cache writes; missing -> cache_write_mtok
    effective_from = "2025-01-01"   # optional (UTC midnight); missing -> always
    discount = 0.0                  # optional, 0..1, applied to every price of the entry
    service_tier = "priority"       # optional: the tier this price is for; missing -> standard

    [[discount]]                    # a discount on genai-prices' own prices
    provider = "anthropic"          # required
    model = "claude-sonnet-4-5"     # optional; missing -> every model of the provider
    discount = 0.15
    effective_from = "2025-06-01"   # optional

    [units]
    tool_call_usd = { default = 0.0, web_search = 0.01 }   # or a bare number: the default
    retrieval_query_usd = 0.0004
    rerank_usd = 0.001
    escalation_minute_usd = 0.75

A ``[[model]]`` price is for one service tier (``service_tier``; missing: the standard tier), so
a contract price (Anthropic's ``priority``, OpenAI's ``scale``: no list price anywhere) is one
more entry of the model; each tier has its own entries and history (``PriceBook.resolve``).

Every mistake is a ``ConfigError`` that names the file, the entry and the key. Numbers are read
as ``Decimal`` through the TOML float's shortest repr (or from a string, for exact digits).
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tailguard.errors import ConfigError
from tailguard.vocabulary import SERVICE_TIERS

_MODEL_KEYS = frozenset(
    {
        "provider",
        "model",
        "input_mtok",
        "output_mtok",
        "cache_read_mtok",
        "cache_write_mtok",
        "cache_write_1h_mtok",
        "effective_from",
        "discount",
        "service_tier",
    }
)
_DISCOUNT_KEYS = frozenset({"provider", "model", "discount", "effective_from"})
_UNIT_KEYS = frozenset(
    {"tool_call_usd", "retrieval_query_usd", "rerank_usd", "escalation_minute_usd"}
)
_TOP_KEYS = frozenset({"model", "discount", "units"})


@dataclass(frozen=True, slots=True)
class UnitCosts:
    """What the non-token events cost, in USD.

    ``tool_call_usd`` maps a tool name to its price per call; the key ``"default"`` prices every
    tool not listed. Without an operator file everything is zero (and priced as ``unit``): these
    costs are the operator's own, genai-prices has no opinion on them.
    """

    tool_call_usd: dict[str, Decimal] = field(default_factory=lambda: {"default": Decimal(0)})
    retrieval_query_usd: Decimal = Decimal(0)
    rerank_usd: Decimal = Decimal(0)
    escalation_minute_usd: Decimal = Decimal(0)

    def tool(self, name: str | None) -> Decimal:
        """The price of one call to ``name`` (the default price when it is not listed)."""
        if name is not None and name in self.tool_call_usd:
            return self.tool_call_usd[name]
        return self.tool_call_usd.get("default", Decimal(0))


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One ``[[model]]`` entry, validated. Prices are USD per million tokens, before discount."""

    model: str
    provider: str | None
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal
    cache_write_mtok: Decimal
    effective_from: dt.datetime | None
    discount: Decimal
    #: position in the file (1-based), for messages and stable tie-breaking
    index: int
    #: Anthropic's 1-hour cache writes (``None``: priced as ``cache_write_mtok``)
    cache_write_1h_mtok: Decimal | None = None
    #: the service tier this price is for, as ``tier_name`` gives it (``None``: standard)
    service_tier: str | None = None


@dataclass(frozen=True, slots=True)
class DiscountEntry:
    """One ``[[discount]]`` entry: a discount on genai-prices' prices for a provider or model."""

    provider: str
    model: str | None
    discount: Decimal
    effective_from: dt.datetime | None
    index: int


@dataclass(frozen=True, slots=True)
class OverrideFile:
    """The parsed operator file."""

    path: str | None
    models: tuple[ModelEntry, ...] = ()
    discounts: tuple[DiscountEntry, ...] = ()
    units: UnitCosts = field(default_factory=UnitCosts)


def load_overrides(path: str | os.PathLike[str]) -> OverrideFile:
    """Read and validate an operator price file; any problem is a ``ConfigError`` naming it."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: price file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read price file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    return parse_overrides(data, source=str(p))


def parse_overrides(data: dict[str, Any], *, source: str) -> OverrideFile:
    """Validate the decoded TOML of a price file. ``source`` names the file in every message."""
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {sorted(unknown)[0]!r} "
            f"(expected [[model]], [[discount]] and [units])"
        )
    raw_models = data.get("model", [])
    if not isinstance(raw_models, list):
        raise ConfigError(f"{source}: 'model' must be an array of tables: write [[model]]")
    models = tuple(_model_entry(raw, i, source) for i, raw in enumerate(raw_models, 1))
    seen: dict[tuple[str | None, str, str | None, dt.datetime | None], int] = {}
    for m in models:
        key = (m.provider, m.model, m.service_tier, m.effective_from)
        if key in seen:
            raise ConfigError(
                f"{source}: [[model]] #{m.index} (model {m.model!r}): duplicates entry "
                f"#{seen[key]} (same provider, model, service_tier "
                f"({m.service_tier or 'standard'}) and effective_from)"
            )
        seen[key] = m.index

    raw_discounts = data.get("discount", [])
    if not isinstance(raw_discounts, list):
        raise ConfigError(f"{source}: 'discount' must be an array of tables: write [[discount]]")
    discounts = tuple(_discount_entry(raw, i, source) for i, raw in enumerate(raw_discounts, 1))

    units = _units(data.get("units", {}), source)
    return OverrideFile(path=source, models=models, discounts=discounts, units=units)


def _model_entry(raw: Any, index: int, source: str) -> ModelEntry:
    where = f"{source}: [[model]] #{index}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    if isinstance(raw.get("model"), str):
        where += f" (model {raw['model']!r})"
    _no_unknown_keys(raw, _MODEL_KEYS, where)
    model = _required_str(raw, "model", where)
    provider = _optional_str(raw, "provider", where)
    for key in ("input_mtok", "output_mtok"):
        if key not in raw:
            raise ConfigError(f"{where}: {key}: required (USD per million tokens)")
    input_mtok = _money(raw["input_mtok"], "input_mtok", where)
    return ModelEntry(
        model=model,
        provider=provider.lower() if provider else None,
        input_mtok=input_mtok,
        output_mtok=_money(raw["output_mtok"], "output_mtok", where),
        cache_read_mtok=_money(raw.get("cache_read_mtok", input_mtok), "cache_read_mtok", where),
        cache_write_mtok=_money(raw.get("cache_write_mtok", input_mtok), "cache_write_mtok", where),
        effective_from=_when(raw.get("effective_from"), "effective_from", where),
        discount=_discount(raw.get("discount", 0), where),
        index=index,
        cache_write_1h_mtok=(
            _money(raw["cache_write_1h_mtok"], "cache_write_1h_mtok", where)
            if "cache_write_1h_mtok" in raw
            else None
        ),
        service_tier=_service_tier(raw, where),
    )


def tier_name(service_tier: str | None) -> str | None:
    """A service tier as pricing reads it: lower case; empty, ``standard``, ``default`` and
    ``auto`` (OpenAI's and Anthropic's names for the standard tier) are ``None``."""
    if not service_tier:
        return None
    t = service_tier.strip().lower()
    return None if t in ("", "standard", "default", "auto") else t


def _service_tier(raw: dict[str, Any], where: str) -> str | None:
    """The entry's ``service_tier`` (``None``: standard); a name not in ``SERVICE_TIERS`` is an
    error listing them, never a price for no tier at all."""
    if "service_tier" not in raw:
        return None
    value = raw["service_tier"]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f'{where}: service_tier: must be a tier name such as "priority", got {value!r}'
        )
    tier = tier_name(value)
    if tier is not None and tier not in SERVICE_TIERS:
        raise ConfigError(
            f"{where}: service_tier: unknown tier {value!r} (known: {', '.join(SERVICE_TIERS)})"
        )
    return tier


def _discount_entry(raw: Any, index: int, source: str) -> DiscountEntry:
    where = f"{source}: [[discount]] #{index}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _no_unknown_keys(raw, _DISCOUNT_KEYS, where)
    provider = _required_str(raw, "provider", where)
    if "discount" not in raw:
        raise ConfigError(f"{where}: discount: required (a fraction between 0 and 1)")
    return DiscountEntry(
        provider=provider.lower(),
        model=_optional_str(raw, "model", where),
        discount=_discount(raw["discount"], where),
        effective_from=_when(raw.get("effective_from"), "effective_from", where),
        index=index,
    )


def _units(raw: Any, source: str) -> UnitCosts:
    where = f"{source}: [units]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _no_unknown_keys(raw, _UNIT_KEYS, where)
    tools_raw = raw.get("tool_call_usd", {})
    if isinstance(tools_raw, dict):
        tools = {
            str(name): _money(v, f"tool_call_usd.{name}", where) for name, v in tools_raw.items()
        }
    else:
        tools = {"default": _money(tools_raw, "tool_call_usd", where)}
    tools.setdefault("default", Decimal(0))
    return UnitCosts(
        tool_call_usd=tools,
        retrieval_query_usd=_money(raw.get("retrieval_query_usd", 0), "retrieval_query_usd", where),
        rerank_usd=_money(raw.get("rerank_usd", 0), "rerank_usd", where),
        escalation_minute_usd=_money(
            raw.get("escalation_minute_usd", 0), "escalation_minute_usd", where
        ),
    )


def _no_unknown_keys(raw: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _required_str(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key}: required, a non-empty string")
    return value.strip()


def _optional_str(raw: dict[str, Any], key: str, where: str) -> str | None:
    if key not in raw:
        return None
    return _required_str(raw, key, where)


def _decimal(value: Any, key: str, where: str) -> Decimal:
    """A TOML number or numeric string as an exact Decimal (floats via their shortest repr)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {key}: must be a number, got {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ConfigError(f"{where}: {key}: must be a number, got {value!r}") from exc
    elif isinstance(value, Decimal):
        d = value
    else:
        raise ConfigError(f"{where}: {key}: must be a number, got {value!r}")
    if not d.is_finite():
        raise ConfigError(f"{where}: {key}: must be a finite number, got {value!r}")
    return d


def _money(value: Any, key: str, where: str) -> Decimal:
    d = _decimal(value, key, where)
    if d < 0:
        raise ConfigError(f"{where}: {key}: must be >= 0, got {value!r}")
    return d


def _discount(value: Any, where: str) -> Decimal:
    d = _decimal(value, "discount", where)
    if not Decimal(0) <= d <= Decimal(1):
        raise ConfigError(f"{where}: discount: must be between 0 and 1, got {value!r}")
    return d


def _when(value: Any, key: str, where: str) -> dt.datetime | None:
    """A date (UTC midnight) or a datetime (naive = UTC) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(
                f"{where}: {key}: not an ISO 8601 date or datetime: {value!r}"
            ) from exc
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise ConfigError(f"{where}: {key}: must be a date such as 2025-01-01, got {value!r}")
