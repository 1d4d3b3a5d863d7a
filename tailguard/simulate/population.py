"""The customer population: who exists, how much each uses, on which tier, and who is planted.

Everything here is per customer (small arrays), drawn once from one generator so that the event
generation that follows can run chunk by chunk without changing any customer's attributes.

Why activity is drawn *stratified*: the top-1% share of a heavy-tailed sample is dominated by a
handful of draws, so plain i.i.d. sampling makes the concentration figures jump from seed to seed.
Customer ``i`` instead gets the quantile ``(perm[i] + U) / n`` of the real per-client distribution
(one draw per stratum, Latin-hypercube style): every seed reproduces the real shape, and the seed
only decides who is where.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from tailguard.errors import ArgumentError
from tailguard.simulate import params
from tailguard.vocabulary import SEGMENTS as SEGMENTS
from tailguard.vocabulary import SHAPES as SHAPES
from tailguard.vocabulary import TIERS as TIERS

#: the workloads the simulator generates (tailguard.vocabulary.WORKLOADS but ``other``)
WORKLOADS: tuple[str, ...] = ("chat", "agent", "rag")
#: bit per shape in ``Population.shapes``
SHAPE_BIT: dict[str, int] = {s: 1 << i for i, s in enumerate(SHAPES)}

#: The metric a diagnosis should use for each shape (per customer, over the whole period).
SHAPE_METRICS: dict[str, str] = {
    "long_sessions": "llm_calls / distinct session_id (all attempts counted)",
    "tool_fanout": "tool_call events / distinct task_id",
    "oversized_prompts": "mean of (input_tokens - cache_read_tokens) over llm_call events",
    "failure_magnet": "llm_call events with attempt > 1 / distinct task_id "
    "(also: share of task_outcome not accepted)",
    "high_frequency": "distinct session_id / distinct (user_id, UTC date of ts) pairs",
    "low_cache_hit": "sum(cache_read_tokens) / sum(input_tokens) <= 1/3 of the median customer's",
    "reasoning_heavy": "sum(reasoning_tokens) / sum(output_tokens)",
}

#: Pairs of shapes that may share a customer: their metrics do not interfere (a long session read
#: with a cold cache would also look like an oversized prompt, so that pair is excluded).
#: The first pair is the one a small population gets: automation with deep reasoning on an
#: uncapped plan is a customer of its own (a third of a year's spend of 1,000 customers), so
#: it comes last.
COMPATIBLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("oversized_prompts", "failure_magnet"),
    ("high_frequency", "failure_magnet"),
    ("long_sessions", "reasoning_heavy"),
    ("high_frequency", "reasoning_heavy"),
)

#: Calibration (see docs/simulator.md): the real per-client log-spread is scaled by this factor
#: because tier pricing (cheap models on small customers) adds its own spread on top of activity.
SPREAD = 0.8
#: sessions per 30 days of the median customer
MEDIAN_SESSIONS_30D = 5.0
#: Estimated LLM USD per session of the base population by tier (free, pro, team, enterprise,
#: custom), measured on simulated data (seed 7, 240 customers x 365 days from 2025-12-01,
#: density 1, unplanted customers, ingested with genai-prices and prices.toml); sizes the
#: contracted pools (which count LLM spend, like the guard).
COST_PER_SESSION = np.array([0.024, 0.214, 0.204, 0.216, 0.223])
#: the same, fully loaded (with the unit costs of prices.py: tools, retrieval, escalations);
#: sizes the usage-based commits
FULL_COST_PER_SESSION = np.array([0.028, 0.275, 0.259, 0.255, 0.291])
#: share of customers whose LLM calls carry a provider-reported ``cost_usd``
REPORTED_COST_SHARE = 0.05
#: customers per shape planted, as a share of the population
PLANTED_SHARE = 0.005
#: tiers of planted customers (pro, team, enterprise): flat plans, mostly small ones
PLANTED_TIER_P = np.array([0.0, 1.0, 0.0])
#: log-spread of the per-customer difficulty (share of tasks that fail)
DIFFICULTY_SIGMA = 0.7
#: share of customers signing up inside the window, per 30 days of it
NEW_PER_30D = 0.02
#: per-user activity of the cohort that signed up in the year before the window ends, against
#: older customers (the eight-KPI framework: newer cohorts run 20-40% higher per-user cost)
COHORT_UPLIFT = 1.3
#: mean sessions per active user-day in the base population (1 + Binomial(4, 0.3))
SESSIONS_PER_USER_DAY = 2.2
#: share of an enterprise contract's seats held by active users (a contract is sized on the
#: people who use the product; hand-set)
ENT_SEAT_USE = (0.7, 1.0)
#: share of days the mean user of a customer is active on (sets how many users a customer
#: has for its activity: a heavy customer is heavy because many people use it; hand-set)
USER_DAY_SHARE = (0.06, 0.2)
#: seats sold per user on pro, team and enterprise plans (a few unused seats; hand-set)
SPARE_SEATS = (1.0, 1.3)
#: users (people and API keys) of a customer by plan, whatever its traffic: log-uniform between
#: these bounds, the upper one excluded (free, pro, team, enterprise, custom; hand-set: a pro plan
#: is a person or a small group, a team plan a department, an enterprise contract a company)
PLAN_USERS = np.array([[1, 2], [1, 6], [3, 17], [18, 46], [1, 2]], dtype=float)
#: share of the least active customer's sessions routed to the budget sibling of the plan's model
#: (falling quadratically to none for the most active; hand-set)
BUDGET_MODEL_SHARE = 0.25
#: share of agent sessions in the least and the most active customer's mix (linear in the
#: activity quantile between them); the rest is chat and rag, 55:45
AGENT_SHARE = (0.15, 0.75)


@dataclass(frozen=True)
class Population:
    """Per-customer attributes, index ``i`` = customer ``i``."""

    seed: int
    start: dt.date
    days: int
    customer_id: list[str]
    name: list[str]
    tier: np.ndarray  # int8 index into TIERS
    segment: np.ndarray  # int8 index into SEGMENTS
    level: np.ndarray  # relative activity (median customer = 1)
    p_budget: np.ndarray  # share of sessions on the budget sibling model
    sessions: np.ndarray  # expected sessions over the period (before planted shapes)
    users: np.ndarray  # number of users (principals)
    user_active: np.ndarray  # mean probability a user is active on a given day
    mix: np.ndarray  # (n, 3) workload probabilities chat/agent/rag
    signup_day: np.ndarray  # days relative to start (negative: before the window)
    signup_date: list[dt.date]
    seats: np.ndarray
    mrr_usd: np.ndarray
    pool_usd: np.ndarray  # contracted pool in USD (customers.csv; 0 = none, the tier's budget)
    tz_hours: np.ndarray  # local offset of the customer's working day
    p_hit: np.ndarray  # probability a follow-up turn reads the previous prompt from cache
    p_sys: np.ndarray  # probability a session's first call reads the system prompt from cache
    shapes: np.ndarray  # bitmask of SHAPE_BIT
    reports_cost: np.ndarray  # bool: calls arrive with a provider-reported cost_usd
    difficulty: np.ndarray  # scales the share of tasks that fail (1 = the base rates)
    budget: np.ndarray  # monthly guard budget (budgets.py): USD, or tokens where budget_tokens
    budget_tokens: np.ndarray  # bool

    @property
    def n(self) -> int:
        return len(self.customer_id)

    def shape_names(self, i: int) -> list[str]:
        return [s for s in SHAPES if self.shapes[i] & SHAPE_BIT[s]]


def activity_quantile(u: np.ndarray) -> np.ndarray:
    """Log activity (relative to the median) at quantile ``u`` of the real per-client shape."""
    body = np.asarray(params.ACTIVITY_LOGZ)
    probs = np.linspace(0.0, params.ACTIVITY_BODY_TOP, len(body))
    top = params.ACTIVITY_BODY_TOP
    z = np.interp(np.minimum(u, top), probs, body)
    tail = u > top
    z[tail] = body[-1] + np.log((1 - top) / (1 - u[tail])) / params.ACTIVITY_TAIL_ALPHA
    return z


_ADJ = (
    "Acme", "Blue", "Bright", "Cedar", "Delta", "Ember", "Fern", "Granite", "Harbor", "Iris",
    "Juniper", "Kite", "Lumen", "Maple", "North", "Onyx", "Pine", "Quartz", "River", "Summit",
    "Tidal", "Umber", "Vale", "Willow", "Zephyr",
)  # fmt: skip
_NOUN = (
    "Analytics", "Labs", "Health", "Logistics", "Legal", "Retail", "Robotics", "Capital",
    "Media", "Systems", "Foods", "Energy", "Travel", "Insurance", "Learning", "Security",
)  # fmt: skip
_SUFFIX = ("Inc", "LLC", "GmbH", "Ltd", "Co", "SA", "AB", "BV")


def build(n: int, days: int, seed: int, start: dt.date, *, density: float = 1.0) -> Population:
    """Draw the population of ``n`` customers for a window of ``days`` days from ``start``.

    ``density`` scales how often each user is active (1 = the calibrated product, what the demo
    runs); the users, seats and plans do not change with it, so a lower density is a cheaper
    product against the same revenue (for benchmarks that need fewer events, not for economics).
    """
    if density <= 0:
        raise ArgumentError("density", "density must be positive")
    rng = np.random.default_rng([seed, 0])
    width = max(4, len(str(n - 1)))
    ids = [f"cus_{i:0{width}d}" for i in range(n)]
    names = [
        f"{_ADJ[a]} {_NOUN[b]} {_SUFFIX[c]}"
        for a, b, c in zip(
            rng.integers(0, len(_ADJ), n),
            rng.integers(0, len(_NOUN), n),
            rng.integers(0, len(_SUFFIX), n),
            strict=True,
        )
    ]

    # --- activity: stratified draw from the real per-client shape --------------------------
    u = (rng.permutation(n) + rng.uniform(0.0, 1.0, n)) / n
    u = np.minimum(u, 1.0 - 0.25 / n)  # trim the last stratum: no unbounded single draw
    level = np.exp(SPREAD * activity_quantile(u))
    q = u  # the customer's quantile of activity

    # --- tier: only loosely tied to activity --------------------------------------------
    # Plans are bought by company size and procurement, not by usage: the heaviest customers
    # are more often on bigger plans, but a third of the top 5% sit on a pro plan (the
    # cost-concentration article: "who is paying us $40 a month and costing us $4,000?").
    bands = np.array([0.5, 0.8, 0.95, 1.0])
    probs = np.array(
        [
            [0.35, 0.455, 0.18, 0.005, 0.01],
            [0.15, 0.51, 0.31, 0.015, 0.015],
            [0.08, 0.44, 0.38, 0.06, 0.04],
            [0.05, 0.30, 0.45, 0.12, 0.08],
        ]
    )
    band = np.searchsorted(bands, q, side="left").clip(0, 3)
    tier = _categorical(rng, probs[band]).astype(np.int8)
    # at least ~3 sessions a month: a customer row with no activity at all is a churned account
    sessions = np.maximum(MEDIAN_SESSIONS_30D * level, 3.0) * days / 30.0
    # --- users: enough principals for the activity, the mean user active on 6-20% of days ---
    frac = rng.uniform(*USER_DAY_SHARE, n)
    users = np.maximum(1, np.ceil(sessions / (days * SESSIONS_PER_USER_DAY * frac))).astype(
        np.int64
    )

    # workload mix: heavier customers run more agents (the per-customer economics essay: the
    # heavy-tail tenant is the one whose tasks fan out)
    agent = AGENT_SHARE[0] + (AGENT_SHARE[1] - AGENT_SHARE[0]) * q
    mean_mix = np.stack([(1.0 - agent) * 0.55, agent, (1.0 - agent) * 0.45], axis=1)
    mix = np.array([rng.dirichlet(40.0 * m) for m in mean_mix]).reshape(n, 3)
    # light customers run more of their sessions on the budget sibling of their plan's model
    # (a small account tries the product on the cheap default; heavy ones pick the frontier
    # model for their agents): the per-customer economics essay's cheap median customer
    p_budget = BUDGET_MODEL_SHARE * (1.0 - q) ** 2

    # --- cohorts: signup over the previous two years, a few inside the window ---------------
    signup_day = -np.floor(rng.exponential(240.0, n)).astype(np.int64) - 1
    # a steady trickle of signups inside the window (NEW_PER_30D a month, at most half the
    # customers), each with at least a month of history when the window is long
    new = rng.random(n) < min(0.5, NEW_PER_30D * days / 30.0)
    signup_day[new] = rng.integers(0, max(1, days - 30 if days > 60 else days // 2), new.sum())
    signup_day = np.maximum(signup_day, -1500)
    signup_date = [start + dt.timedelta(days=int(d)) for d in signup_day]

    tz = rng.choice(
        np.array([-8.0, -5.0, 0.0, 1.0, 5.5, 9.0]), n, p=[0.25, 0.3, 0.15, 0.15, 0.05, 0.1]
    )
    p_hit = rng.uniform(0.6, 0.9, n)
    p_sys = rng.uniform(0.5, 0.8, n)

    # planted customers are chosen by activity; they sit on flat plans, mostly small ones (the
    # shape, not the plan, sets their cost): these are the customers who pay $40 and cost $4,000
    shapes = _plant(rng, sessions, n)
    planted = shapes > 0
    tier[planted] = rng.choice(
        np.array([1, 2, 3], dtype=np.int8), int(planted.sum()), p=PLANTED_TIER_P
    )
    # automation (near-constant traffic) runs on a small team plan
    auto = (shapes & SHAPE_BIT["high_frequency"]) > 0
    tier[auto] = 2
    low = (shapes & SHAPE_BIT["low_cache_hit"]) > 0
    p_hit[low] = rng.uniform(0.0, 0.04, low.sum())
    p_sys[low] = rng.uniform(0.0, 0.04, low.sum())

    # per-user activity: the event density, and the newer cohort (signed up in the year before
    # the window ends) uses the product more (the eight-KPI framework: newer cohorts run 20-40%
    # higher per-user cost than year-old ones)
    young = signup_day > days - 365
    scale = density * np.where(young, COHORT_UPLIFT, 1.0)
    sessions = sessions * scale

    seg_of_tier = np.array([0, 0, 1, 2, 3])
    segment = seg_of_tier[tier].astype(np.int8)
    # a fifth of pro customers are mid-market, some team customers are small businesses
    segment[(tier == 1) & (rng.random(n) < 0.2)] = 1
    segment[(tier == 2) & (rng.random(n) < 0.3)] = 0

    # how hard the customer's work is for the product: scales the share of tasks that do not
    # resolve (and so escalate to a human); "failure-heavy" customers without a retry storm
    difficulty = np.clip(rng.lognormal(0.0, DIFFICULTY_SIGMA, n), 0.3, 5.0)

    # --- commercial terms ----------------------------------------------------------------
    # Seats are bought for the people of the company who use the product: each paid plan sells
    # at least a seat per user, and a user is a person (or an API key) of a company whose size
    # the plan reflects (``PLAN_USERS``), whatever its traffic; the customer's activity is spread
    # over them, a few heavy users carrying most of it (``model.USER_SIGMA``). A planted
    # customer is one or a few people whose automation does the calling, on a small flat plan:
    # the customers who pay $40 and cost $4,000.
    pro, team, ent, cus = tier == 1, tier == 2, tier == 3, tier == 4
    lo_u, hi_u = PLAN_USERS[tier, 0], PLAN_USERS[tier, 1]
    size = np.floor(lo_u * (hi_u / lo_u) ** rng.random(n)).astype(np.int64)
    users = np.maximum(users, size)
    users[planted & (tier == 1)] = 1
    users[planted & (tier == 2)] = np.minimum(users[planted & (tier == 2)], 2)
    users[planted & (tier == 3)] = np.minimum(users[planted & (tier == 3)], 3)
    seats = users.copy()
    seats[tier == 0] = 1  # a free plan sells no seats: one budget for the whole account
    spare = rng.uniform(*SPARE_SEATS, n)
    seats[pro | team] = np.ceil(users[pro | team] * spare[pro | team]).astype(np.int64)
    seats[team] = np.maximum(seats[team], 3)
    seats[ent] = np.maximum(25, np.ceil(users[ent] * spare[ent])).astype(np.int64)
    # an enterprise contract is sized on the people who use it: most seats are held
    held = np.ceil(seats[ent] * rng.uniform(*ENT_SEAT_USE, int(ent.sum())))
    users[ent] = np.maximum(users[ent], held).astype(np.int64)
    seats[cus] = users[cus]  # usage-based: a seat is a person on the account
    # the mean user's chance to be active on a day (the final sessions over the final users)
    user_active = sessions / (users * days * SESSIONS_PER_USER_DAY)
    per_seat = np.array([0.0, 20.0, 30.0, 45.0, 0.0])
    mrr = seats * per_seat[tier]
    mrr[ent] = np.maximum(mrr[ent], 1500.0) * rng.uniform(0.8, 1.3, int(ent.sum()))
    # usage-based: a monthly commit sized so expected cost is 10-30% of it (the cost-allocation
    # guide)
    expected = sessions * 30.0 / days * FULL_COST_PER_SESSION[tier]
    mrr[cus] = np.maximum(100.0, expected[cus] / rng.uniform(0.1, 0.3, int(cus.sum())))
    mrr = np.round(mrr, 2)

    # a few customers' calls come through a gateway that logs the provider-reported cost
    reports_cost = rng.random(n) < REPORTED_COST_SHARE
    pool = np.zeros(n)  # filled in by budgets()
    return Population(
        seed=seed,
        start=start,
        days=days,
        customer_id=ids,
        name=names,
        tier=tier,
        segment=segment,
        level=level,
        p_budget=p_budget,
        sessions=sessions,
        users=users,
        user_active=user_active,
        mix=mix,
        signup_day=signup_day,
        signup_date=signup_date,
        seats=seats,
        mrr_usd=mrr,
        pool_usd=pool,
        tz_hours=tz,
        p_hit=p_hit,
        p_sys=p_sys,
        shapes=shapes,
        reports_cost=reports_cost,
        difficulty=difficulty,
        budget=np.zeros(n),  # filled in by budgets()
        budget_tokens=np.zeros(n, dtype=bool),
    )


def planted_per_shape(n: int) -> int:
    """How many customers carry each shape: a handful (10 per 2,000), at least one (the demo's
    240 customers carry one of each: six customers, a pair among them)."""
    return max(1, round(n * PLANTED_SHARE))


def _plant(rng: np.random.Generator, q: np.ndarray, n: int) -> np.ndarray:  # q: activity
    """Choose the planted customers among the upper-middle of activity (top 1-4%).

    Planted customers are active enough that their per-customer metrics are averages over many
    sessions (so a diagnosis can read them), and not so large that they were in the tail anyway:
    the shape itself is what pushes them into the cost tail.
    """
    shapes = np.zeros(n, dtype=np.int64)
    k = planted_per_shape(n)
    order = np.argsort(-q)
    lo = int(np.floor(0.01 * n))
    hi = min(n, max(int(np.ceil(0.04 * n)), lo + 8 * k))
    cand = order[lo:hi]
    # low_cache_hit and tool_fanout add the least LLM cost (a cache discount lost; tool calls
    # that are priced per call at ingest), so they are planted in the most active third of the
    # candidates; the other shapes make their own way to the tail
    for s, top in (("low_cache_hit", 2 * k), ("tool_fanout", 4 * k)):
        strong = [c for c in rng.permutation(cand[:top]) if shapes[c] == 0]
        for c in strong[:k]:
            shapes[c] |= SHAPE_BIT[s]
    pool = [c for c in rng.permutation(cand) if shapes[c] == 0]
    n_pairs = max(1, k // 3) if n >= 100 else 0
    pairs = [COMPATIBLE_PAIRS[i % len(COMPATIBLE_PAIRS)] for i in range(n_pairs)]
    need = dict.fromkeys(SHAPES, k)
    need["low_cache_hit"] = need["tool_fanout"] = 0
    for a, b in pairs:
        if not pool:
            break
        c = pool.pop()
        shapes[c] |= SHAPE_BIT[a] | SHAPE_BIT[b]
        need[a] -= 1
        need[b] -= 1
    for s in SHAPES:
        for _ in range(need[s]):
            if not pool:
                break
            shapes[pool.pop()] |= SHAPE_BIT[s]
    return shapes


def _categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One categorical draw per row of the probability matrix ``p``."""
    c = np.cumsum(p, axis=1)
    c[:, -1] = 1.0
    return (rng.random((len(p), 1)) > c).sum(axis=1)
