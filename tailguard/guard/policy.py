"""Guard policies: one TOML file of tiers, per-customer overrides and engine settings.

The file has three tables (see ``docs/guard.md`` and ``examples/policy.toml``)::

    [guard]            engine settings: default_tier, fail_mode, graceful, reservation_ttl_s, ...
    [tiers.NAME]       budget, overage pattern, rate limits and ceilings of one tier
    [customers.ID]     a customer's tier and overrides of any tier key
    [kpis.workload.CLASS]  optional: the cost panel's band for a workload class (chat, agent,
                       rag): ``low``, ``high`` and ``alarm`` effective tokens, for a product
                       whose tasks are sized unlike the eight-KPI framework's (the guard
                       ignores it; ``tailguard kpis --policy`` judges by it)

Every value is checked at load and a bad one is refused with ``file: key: reason`` (a
``PolicyError``), because a policy that half-loads would enforce something nobody wrote.
The eight-KPI framework's rule "one overage pattern per tier, never mix two" is enforced:
``overage`` must be exactly one string, and a customer override may not give one customer of a tier
another pattern.

Money is ``Decimal`` (TOML floats are read through ``str`` so ``5.1`` is exactly 5.1). Limits are
resolved per customer into ``Limits``, whose money fields are integer micro-dollars (the unit
the stores count in; see ``tailguard.guard.units``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from tailguard.customers import CustomerInfo
from tailguard.errors import ConfigError
from tailguard.guard.units import MAX_MICRO, MAX_TOKENS, MAX_USD, to_micro
from tailguard.vocabulary import OVERAGES, Overage

Period = Literal["minute", "hour", "day", "month"]
FailMode = Literal["fail_open", "fail_closed"]

PERIODS: tuple[str, ...] = ("minute", "hour", "day", "month")
FAIL_MODES: tuple[str, ...] = ("fail_open", "fail_closed")
HARD_LIMIT_ACTIONS: tuple[str, ...] = ("deny", "degrade")

_INT_KEYS = (
    "hard_limit_tokens",
    "rpm",
    "tpm",
    "user_rpm",
    "max_input_tokens",
    "task_max_llm_calls",
)
_MONEY_KEYS = (
    "hard_limit_usd",
    "task_max_cost_usd",
    "session_max_usd_per_hour",
    "pool_per_seat_usd",
)
TIER_KEYS: frozenset[str] = frozenset(
    (
        *_INT_KEYS,
        *_MONEY_KEYS,
        "period",
        "soft_threshold",
        "overage",
        "hard_limit_action",
        "degrade_to",
        "graceful",
        "fail_mode",
    )
)
CUSTOMER_KEYS: frozenset[str] = TIER_KEYS | {"tier", "seats"}
GUARD_KEYS: frozenset[str] = frozenset(
    (
        "default_tier",
        "fail_mode",
        "graceful",
        "reservation_ttl_s",
        "kill_ttl_s",
        "webhook_url",
        "webhook_timeout_s",
        "probe_interval_s",
    )
)


#: workload classes a policy may give a cost-panel band, and the keys of one band (all required)
KPI_WORKLOADS: tuple[str, ...] = ("chat", "agent", "rag")
KPI_BAND_KEYS: tuple[str, ...] = ("low", "high", "alarm")


class PolicyError(ConfigError):
    """A policy file or table is invalid; the message names the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        # "<file>": the whole file is at fault (missing, not TOML): no key to name
        where = source if key == "<file>" else f"{source}: {key}"
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Settings:
    """Engine-wide settings from ``[guard]``."""

    default_tier: str
    fail_mode: FailMode = "fail_open"
    graceful: bool = False
    #: a reservation not settled or released within this many seconds is refunded (crashed caller)
    reservation_ttl_s: int = 600
    #: a killed session stays killed this long (or until ``Guard.revive``)
    kill_ttl_s: int = 30 * 86400
    webhook_url: str | None = None
    webhook_timeout_s: float = 5.0
    #: while the shared store is down, try it again at most this often
    probe_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Limits:
    """One customer's resolved limits. Money in integer micro-dollars; ``None`` = no limit.

    ``budget_unit`` says what ``hard_limit`` counts: ``"usd"`` (micro-dollars) or ``"tok"``
    (tokens). ``hard_limit`` is ``None`` when the tier has no budget (spend is still metered).
    """

    tier: str
    period: Period
    budget_unit: Literal["usd", "tok"]
    hard_limit: int | None
    soft_limit: int | None
    soft_threshold: Decimal
    overage: Overage
    hard_limit_action: Literal["deny", "degrade"]
    degrade_to: Mapping[str, str]
    rpm: int | None
    tpm: int | None
    user_rpm: int | None
    max_input_tokens: int | None
    task_max_llm_calls: int | None
    task_max_cost: int | None
    session_max_per_hour: int | None
    graceful: bool
    fail_mode: FailMode

    def degrade_model(self, model: str | None, *, to_end: bool = False) -> str | None:
        """The model one step down ``degrade_to`` (or at the end of the chain with ``to_end``)."""
        if model is None:
            return None
        nxt = self.degrade_to.get(model)
        if nxt is None or not to_end:
            return nxt
        seen = {model}
        while nxt in self.degrade_to and nxt not in seen:
            seen.add(nxt)
            nxt = self.degrade_to[nxt]
        return nxt


@dataclass(frozen=True)
class Policy:
    """A validated policy. Build with ``load_policy(path)`` or ``parse_policy(mapping)``."""

    settings: Settings
    tiers: Mapping[str, Mapping[str, Any]]
    customers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "<policy>"
    #: ``[kpis.workload.CLASS]``: class -> (low, high, alarm) effective tokens
    workload_bands: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)

    def limits_for(
        self,
        customer_id: str,
        *,
        info: CustomerInfo | None = None,
        tier: str | None = None,
        seats: int | None = None,
    ) -> Limits:
        """Resolve a customer's limits.

        Tier: the policy's ``[customers.ID].tier``, else ``tier``, else the customers table
        (``info``), else ``default_tier``. Budget: a ``[customers.ID]`` limit, else the
        contracted pool from the customers table, else ``seats × pool_per_seat_usd`` when the
        tier pools, else the tier's ``hard_limit_usd`` / ``hard_limit_tokens``.
        """
        over = self.customers.get(customer_id, {})
        name = over.get("tier") or tier or (info.tier if info else None)
        if name not in self.tiers:
            name = self.settings.default_tier
        merged: dict[str, Any] = {**self.tiers[name], **{k: v for k, v in over.items()}}
        n_seats = over.get("seats", seats if seats is not None else (info.seats if info else None))
        pool_rate: Decimal = merged.get("pool_per_seat_usd", Decimal(0))
        explicit = "hard_limit_usd" in over or "hard_limit_tokens" in over
        unit: Literal["usd", "tok"] = "usd"
        hard: int | None = None
        if "hard_limit_tokens" in merged:
            unit, hard = "tok", int(merged["hard_limit_tokens"])
        elif not explicit and info is not None and info.contracted_pool_usd:
            hard = to_micro(info.contracted_pool_usd)
        elif not explicit and pool_rate > 0:
            hard = to_micro(pool_rate * max(1, n_seats or 1))
        elif "hard_limit_usd" in merged:
            hard = to_micro(merged["hard_limit_usd"])
        if unit == "usd" and hard is not None and hard > MAX_MICRO:
            # seats x rate or a contracted pool past the stores' exact range ($1 billion): a
            # limit nobody can reach in one period, held at the largest one the stores count
            hard = MAX_MICRO
        soft_t: Decimal = merged.get("soft_threshold", Decimal("0.7"))
        soft = None if hard is None else int(Decimal(hard) * soft_t)

        def money(k: str) -> int | None:
            return to_micro(merged[k]) if k in merged else None

        return Limits(
            tier=name,
            period=merged.get("period", "month"),
            budget_unit=unit,
            hard_limit=hard,
            soft_limit=soft,
            soft_threshold=soft_t,
            overage=merged.get("overage", "hard_cap"),
            hard_limit_action=merged.get("hard_limit_action", "deny"),
            degrade_to=merged.get("degrade_to", {}),
            rpm=merged.get("rpm"),
            tpm=merged.get("tpm"),
            user_rpm=merged.get("user_rpm"),
            max_input_tokens=merged.get("max_input_tokens"),
            task_max_llm_calls=merged.get("task_max_llm_calls"),
            task_max_cost=money("task_max_cost_usd"),
            session_max_per_hour=money("session_max_usd_per_hour"),
            graceful=merged.get("graceful", self.settings.graceful),
            fail_mode=merged.get("fail_mode", self.settings.fail_mode),
        )


# --- loading and validation -------------------------------------------------------------------


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a policy TOML file; refuse it whole on the first invalid key."""
    p = Path(path)
    if not p.exists():
        raise PolicyError(str(p), "<file>", "no such file")
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(str(p), "<file>", f"invalid TOML: {exc}") from exc
    return parse_policy(data, source=str(p))


def parse_policy(data: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
    """Validate a policy given as a mapping (the parsed TOML)."""

    def bad(key: str, reason: str) -> PolicyError:
        return PolicyError(source, key, reason)

    for k in data:
        if k not in ("guard", "tiers", "customers", "kpis"):
            raise bad(
                k, "unknown table (expected [guard], [tiers.NAME], [customers.ID], [kpis.workload])"
            )
    tiers_raw = data.get("tiers")
    if not isinstance(tiers_raw, Mapping) or not tiers_raw:
        raise bad("tiers", "at least one [tiers.NAME] table is required")
    tiers = {
        str(name): _check_table(t, f"tiers.{name}", TIER_KEYS, bad) for name, t in tiers_raw.items()
    }
    cust_raw = data.get("customers", {})
    if not isinstance(cust_raw, Mapping):
        raise bad("customers", "must be a table of [customers.ID] tables")
    customers: dict[str, dict[str, Any]] = {}
    for cid, c in cust_raw.items():
        where = f"customers.{cid}"
        cust = _check_table(c, where, CUSTOMER_KEYS, bad)
        if "tier" in cust and cust["tier"] not in tiers:
            raise bad(f"{where}.tier", f"unknown tier {cust['tier']!r} (tiers: {sorted(tiers)})")
        base = tiers.get(cust.get("tier", ""), {})
        if "overage" in cust and "tier" in cust:
            mode = base.get("overage", "hard_cap")
            if cust["overage"] != mode:
                raise bad(
                    f"{where}.overage",
                    f"{cust['overage']!r} differs from tier {cust['tier']!r} ({mode!r}): one "
                    "overage pattern per tier, never mixed; put the customer on a tier with it",
                )
        _check_combined({**base, **cust}, where, bad)
        customers[str(cid)] = cust
    for name, t in tiers.items():
        _check_combined(t, f"tiers.{name}", bad)
    settings = _check_settings(data.get("guard", {}), tiers, bad)
    return Policy(
        settings=settings,
        tiers=tiers,
        customers=customers,
        source=source,
        workload_bands=_check_kpis(data.get("kpis", {}), bad),
    )


def _check_kpis(raw: Any, bad: Any) -> dict[str, tuple[int, int, int]]:
    """``[kpis.workload.CLASS]`` tables: whole numbers of effective tokens, 0 < low < high <
    alarm (a band whose alarm sits inside it could never say "watch" before "act")."""
    if not isinstance(raw, Mapping):
        raise bad("kpis", "must be a table")
    for k in raw:
        if k != "workload":
            raise bad(f"kpis.{k}", "unknown key (known: workload)")
    wl = raw.get("workload", {})
    if not isinstance(wl, Mapping):
        raise bad("kpis.workload", "must be a table of [kpis.workload.CLASS] tables")
    out: dict[str, tuple[int, int, int]] = {}
    for cls, band in wl.items():
        where = f"kpis.workload.{cls}"
        if cls not in KPI_WORKLOADS:
            raise bad(where, f"unknown workload class (known: {', '.join(KPI_WORKLOADS)})")
        if not isinstance(band, Mapping):
            raise bad(where, "must be a table")
        for k in band:
            if k not in KPI_BAND_KEYS:
                raise bad(f"{where}.{k}", f"unknown key (known: {', '.join(KPI_BAND_KEYS)})")
        for k in KPI_BAND_KEYS:
            if k not in band:
                raise bad(f"{where}.{k}", "required (a band is low, high and alarm)")
        low, high, alarm = (_pos_int(band[k], f"{where}.{k}", bad) for k in KPI_BAND_KEYS)
        if not low < high < alarm:
            raise bad(where, f"must have low < high < alarm, got {low}, {high}, {alarm}")
        out[str(cls)] = (low, high, alarm)
    return out


def _check_settings(raw: Any, tiers: Mapping[str, Any], bad: Any) -> Settings:
    if not isinstance(raw, Mapping):
        raise bad("guard", "must be a table")
    for k in raw:
        if k not in GUARD_KEYS:
            raise bad(f"guard.{k}", f"unknown key (known: {', '.join(sorted(GUARD_KEYS))})")
    default = raw.get("default_tier", "free" if "free" in tiers else None)
    if default is None:
        raise bad("guard.default_tier", "required when there is no 'free' tier")
    if default not in tiers:
        raise bad("guard.default_tier", f"unknown tier {default!r} (tiers: {sorted(tiers)})")
    kw: dict[str, Any] = {"default_tier": default}
    if "fail_mode" in raw:
        kw["fail_mode"] = _enum(raw["fail_mode"], FAIL_MODES, "guard.fail_mode", bad)
    if "graceful" in raw:
        kw["graceful"] = _bool(raw["graceful"], "guard.graceful", bad)
    for k in ("reservation_ttl_s", "kill_ttl_s"):
        if k in raw:
            kw[k] = _pos_int(raw[k], f"guard.{k}", bad)
    for k in ("webhook_timeout_s", "probe_interval_s"):
        if k in raw:
            v = raw[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise bad(f"guard.{k}", f"must be a number of seconds > 0, got {v!r}")
            kw[k] = float(v)
    if "webhook_url" in raw:
        url = raw["webhook_url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise bad("guard.webhook_url", f"must be an http(s) URL, got {url!r}")
        kw["webhook_url"] = url
    return Settings(**kw)


def _check_table(raw: Any, where: str, allowed: frozenset[str], bad: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise bad(where, "must be a table")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = f"{where}.{k}"
        if k not in allowed:
            raise bad(key, f"unknown key (known: {', '.join(sorted(allowed))})")
        if k in _INT_KEYS:
            out[k] = _pos_int(v, key, bad)
        elif k in _MONEY_KEYS:
            out[k] = _money(v, key, bad, allow_zero=k == "pool_per_seat_usd")
        elif k == "seats":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > MAX_TOKENS:
                raise bad(key, f"must be a whole number >= 0 and <= {MAX_TOKENS:,}, got {v!r}")
            out[k] = v
        elif k == "tier":
            if not isinstance(v, str):
                raise bad(key, f"must be a tier name, got {v!r}")
            out[k] = v
        elif k == "period":
            out[k] = _enum(v, PERIODS, key, bad)
        elif k == "overage":
            if isinstance(v, list):
                raise bad(
                    key,
                    f"exactly one overage pattern per tier (never mix two), got {v!r}",
                )
            out[k] = _enum(v, OVERAGES, key, bad)
        elif k == "hard_limit_action":
            out[k] = _enum(v, HARD_LIMIT_ACTIONS, key, bad)
        elif k == "fail_mode":
            out[k] = _enum(v, FAIL_MODES, key, bad)
        elif k == "graceful":
            out[k] = _bool(v, key, bad)
        elif k == "soft_threshold":
            d = _money(v, key, bad, allow_zero=False)
            if d > 1:
                raise bad(key, f"must be a fraction of the hard limit in (0, 1], got {v!r}")
            out[k] = d
        elif k == "degrade_to":
            if not isinstance(v, Mapping) or not all(
                isinstance(a, str) and isinstance(b, str) and a and b for a, b in v.items()
            ):
                raise bad(key, 'must be a table of model = "cheaper model" strings')
            for a in v:
                seen, m = {a}, v[a]
                while m in v:
                    if m in seen:
                        raise bad(key, f"degrade chain from {a!r} loops back to {m!r}")
                    seen.add(m)
                    m = v[m]
                if v[a] == a:
                    raise bad(key, f"{a!r} degrades to itself")
            out[k] = dict(v)
    return out


def _check_combined(t: Mapping[str, Any], where: str, bad: Any) -> None:
    """Rules across keys, on a tier or on a tier merged with a customer's overrides."""
    if "hard_limit_usd" in t and "hard_limit_tokens" in t:
        raise bad(f"{where}.hard_limit_tokens", "set hard_limit_usd or hard_limit_tokens, not both")
    if "hard_limit_tokens" in t and t.get("pool_per_seat_usd", 0) > 0:
        raise bad(f"{where}.pool_per_seat_usd", "a pooled tier counts dollars, not tokens")
    mode = t.get("overage", "hard_cap")
    if mode == "soft_cap_degrade" and not t.get("degrade_to"):
        raise bad(f"{where}.degrade_to", "soft_cap_degrade needs a degrade_to model map")
    if "hard_limit_action" in t and mode != "soft_cap_degrade":
        raise bad(f"{where}.hard_limit_action", f"only applies to soft_cap_degrade, not {mode!r}")


def _enum(v: Any, allowed: tuple[str, ...], key: str, bad: Any) -> Any:
    if v not in allowed:
        raise bad(key, f"must be one of {' | '.join(allowed)}, got {v!r}")
    return v


def _bool(v: Any, key: str, bad: Any) -> bool:
    if not isinstance(v, bool):
        raise bad(key, f"must be true or false, got {v!r}")
    return v


def _pos_int(v: Any, key: str, bad: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise bad(key, f"must be a whole number > 0, got {v!r}")
    if v > MAX_TOKENS:  # the stores count exactly only up to 2^53 (tailguard.guard.units)
        raise bad(key, f"must be at most {MAX_TOKENS:,}, got {v!r}")
    return v


def _money(v: Any, key: str, bad: Any, *, allow_zero: bool) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise bad(key, f"must be a number, got {v!r}")
    try:
        d = Decimal(str(v))
    except ArithmeticError as exc:
        raise bad(key, f"must be a number, got {v!r}") from exc
    if not d.is_finite() or d < 0 or (d == 0 and not allow_zero):
        raise bad(key, f"must be a number {'>=' if allow_zero else '>'} 0, got {v!r}")
    if d > MAX_USD:  # the stores count exactly only up to 2^53 micro-dollars
        raise bad(key, f"must be at most {MAX_USD:,} (dollars), got {v!r}")
    return d
