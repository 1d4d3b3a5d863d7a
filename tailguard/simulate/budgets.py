"""The simulated product's tier budgets: the guard policy its customers run under.

``examples/policy.toml`` states the same numbers for the guard (a test checks that the two agree
customer by customer), so that the simulated ledger holds the decisions the real guard would
have logged under that policy: the free tier's hard cap, pro's degradation past the soft
threshold and its hard cap, the team, enterprise and usage-based tiers' pay-as-you-go overage.

Why these numbers: the eight-KPI framework gives the relative shape (a soft threshold at 70% of
the hard cap, exactly one overage pattern per tier) and the bands the panel judges them by: the
90th-percentile user approaching, but not at, the soft threshold; the 99th-percentile user at or
under the hard cap where the cap must hold; 5-15% of free customers at the hard cap; 5-15% of
pooled workspaces paying overage. Its absolute token bands (free 50k, pro 500k) fit its product,
not this one ("absolute numbers vary by product"); the amounts are set where the demo's product
(``tailguard demo``, its last month) lands in those bands: free 4M tokens (the p90 free account
at 60-90% of its soft threshold, about one free account in ten capped), pro $20 a seat (the seat
price: a seat never costs more LLM spend than it pays; the p99 pro user under it) and denied at
the cap, team $17 a seat (the p90 team user under its soft share on every seed tried, about one
workspace in twelve paying overage). A pooled budget is shared by the customer's users, whose use is
heavy-tailed (``model.USER_SIGMA``), so the per-user bands, not the customer's median, set the
amounts: the median paying customer uses a few percent of its pool. Team pools are per seat
(the framework's "pool 3M x seats"), so a workspace's pool grows with what it pays; enterprise
and usage-based pools are contracted per customer (``contracted_pool_usd``), sized from the
customer's expected LLM spend and never under $12 a seat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailguard.vocabulary import OVERAGES

#: ``TierBudget.overage`` codes: indices into ``OVERAGES`` (``tailguard.vocabulary``)
HARD_CAP, SOFT_CAP_DEGRADE, PAYG = (
    OVERAGES.index(o) for o in ("hard_cap", "soft_cap_degrade", "payg")
)


@dataclass(frozen=True)
class TierBudget:
    """One tier's monthly budget rule (the keys of a ``[tiers.NAME]`` table)."""

    overage: int  # index into OVERAGES
    soft_threshold: float
    hard_limit_tokens: int | None = None  # per customer, input + output tokens
    pool_per_seat_usd: float | None = None  # per seat of the customer, USD
    contracted: bool = False  # the customer's contracted pool (customers.csv), USD
    deny_at_hard_limit: bool = True  # soft_cap_degrade: deny at the hard limit, or degrade on


#: the density (``simulate(density=...)``) the amounts below are set for: the demo's, the
#: calibrated activity. A product whose users are more active sizes its budgets up with them, so
#: at another density every amount scales by ``density / REFERENCE_DENSITY``.
REFERENCE_DENSITY = 1.0

#: free, pro, team, enterprise, custom (the order of ``population.TIERS``)
TIER_BUDGETS: tuple[TierBudget, ...] = (
    TierBudget(HARD_CAP, 0.7, hard_limit_tokens=4_000_000),
    TierBudget(SOFT_CAP_DEGRADE, 0.7, pool_per_seat_usd=20.0),
    TierBudget(PAYG, 0.7, pool_per_seat_usd=17.0),
    TierBudget(PAYG, 0.8, contracted=True),
    TierBudget(PAYG, 0.7, contracted=True),
)

#: enterprise and usage-based pools: this many times the customer's expected monthly LLM spend
#: (a contract sized on the customer's typical month; its heavier months cross it)
CONTRACT_HEADROOM = (0.7, 1.8)
#: and never below this per seat (a contract covers every seat it sells)
CONTRACT_FLOOR_PER_SEAT_USD = 12.0


#: the cost panel's per-task bands for the simulated product (``[kpis.workload.CLASS]``: low,
#: high, alarm effective tokens): its design's sizes (docs/simulator.md, "Token sizes"), the
#: eight-KPI framework's shape kept (alarm about twice the top of the band); examples/policy.toml
#: says why each is where it is. They do not scale with density: a task's size is not activity.
WORKLOAD_BANDS: dict[str, tuple[int, int, int]] = {
    "chat": (1_000, 6_000, 15_000),
    "agent": (80_000, 300_000, 600_000),
    "rag": (4_000, 20_000, 40_000),
}


def scale(density: float) -> float:
    """The factor on every budget amount at ``density``."""
    return density / REFERENCE_DENSITY


def monthly_budget(
    tier: np.ndarray, seats: np.ndarray, contracted_pool_usd: np.ndarray, density: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's monthly budget and whether it counts tokens (else USD)."""
    k = scale(density)
    budget = np.zeros(len(tier))
    tokens = np.zeros(len(tier), dtype=bool)
    for t, b in enumerate(TIER_BUDGETS):
        m = tier == t
        if b.hard_limit_tokens is not None:
            budget[m] = round(b.hard_limit_tokens * k)
            tokens[m] = True
        elif b.pool_per_seat_usd is not None:
            budget[m] = per_seat_usd(b, density) * seats[m]
        else:
            budget[m] = contracted_pool_usd[m]
    return budget, tokens


def per_seat_usd(b: TierBudget, density: float) -> float:
    """A pooled tier's dollars per seat at ``density`` (whole cents)."""
    return round((b.pool_per_seat_usd or 0.0) * scale(density), 2)


def policy_toml(tiers: tuple[str, ...], downgrade: dict[str, str], density: float) -> str:
    """The guard policy of the simulated product (``docs/guard.md`` format): the budgets above,
    one ``[tiers.NAME]`` table each, with ``downgrade`` as pro's degrade map. ``simulate()``
    writes it as ``policy.toml`` beside the events (``tailguard kpis --policy``)."""
    lines = [
        "# tailguard simulate: the simulated product's guard policy (docs/guard.md).",
        "# The same budgets as tailguard/simulate/budgets.py and examples/policy.toml.",
        "[guard]",
        f'default_tier = "{tiers[0]}"',
    ]
    degrade = ", ".join(f'"{k}" = "{v}"' for k, v in downgrade.items())
    for name, b in zip(tiers, TIER_BUDGETS, strict=True):
        lines += ["", f"[tiers.{name}]", 'period = "month"']
        if b.hard_limit_tokens is not None:
            lines.append(f"hard_limit_tokens = {round(b.hard_limit_tokens * scale(density))}")
        elif b.pool_per_seat_usd is not None:
            lines.append(f"pool_per_seat_usd = {per_seat_usd(b, density)!r}")
        lines.append(f"soft_threshold = {b.soft_threshold!r}")
        lines.append(f'overage = "{OVERAGES[b.overage]}"')
        if b.overage == SOFT_CAP_DEGRADE:
            action = "deny" if b.deny_at_hard_limit else "degrade"
            lines += [f'hard_limit_action = "{action}"', f"degrade_to = {{ {degrade} }}"]
    for cls, (low, high, alarm) in WORKLOAD_BANDS.items():
        lines += [
            "",
            f"[kpis.workload.{cls}]",
            f"low = {low}",
            f"high = {high}",
            f"alarm = {alarm}",
        ]
    return "\n".join(lines) + "\n"
