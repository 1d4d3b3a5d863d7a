"""Diagnosis: which customers are in the cost tail, *why* (the shape of their usage), what to do.

The per-customer economics essay says a heavy-tail customer is nearly always one of a few shapes,
each with its own fix; the cost-allocation guide adds the signals and the rule "3x the plan median".
This module turns that into a report in two halves, like every report here (DESIGN.md):

1. **One engine query** (``METRICS_SQL``, one GROUP BY customer, portable SQL: CASE inside the
   aggregates, no FILTER / QUALIFY) computes every per-customer metric a shape is read from.
2. **Python over the small result** (one row per customer): the medians, the tail, the ratios,
   the shapes and the levers.

The shapes and the metric each is read from (the same metrics the simulator plants, see
``tailguard.simulate.population.SHAPE_METRICS``):

==================  ===========================================================================
shape               metric (per customer, over the window)
==================  ===========================================================================
long_sessions       llm_call events / distinct sessions (calls per session, retries counted)
tool_fanout         tool_call events / distinct tasks
oversized_prompts   mean opening prompt: per session, its smallest LLM input (context only
                    grows, so this is the first prompt), averaged over sessions
failure_magnet      retries (llm_call with attempt > 1) / distinct tasks
high_frequency      distinct sessions / distinct (user, UTC day of the session's start)
low_cache_hit       sum(cache_read_tokens) / sum(input_tokens)      (inverted: low is bad)
reasoning_heavy     sum(reasoning_tokens) / sum(output_tokens)
==================  ===========================================================================

Why the opening prompt for ``oversized_prompts``: mean input per call also grows with long
sessions (the history is re-sent) and mean *uncached* input also grows with a cold cache, so
both leak other shapes into this one (measured: long-session and low-cache customers at 3.0-3.3x
on 0.8M-13M simulated events). A session's smallest prompt is what the user sends before any
history accumulates, cached or not: planted oversized customers sit at >= 6.9x the median and
no other customer above 2.8x.

A customer *matches* a shape when it is in the tail, has at least ``min_tasks`` tasks (a customer
with two tasks, one of which retried twice, has a "3x retry rate" that means nothing), and its
metric is at least ``ratio`` times the median customer's (for ``low_cache_hit``: at most ``1 /
ratio`` of it). The median is taken over the customers with at least ``min_tasks`` tasks and a
defined metric: the "typical customer" of the cost-allocation guide, not the long head of trial
accounts.

The tail (issue 3): the top ``top_pct``% of customers by cost (``ceil(n x pct / 100)``, at
least one), plus every customer whose cost per successful task is above the ``cpst_quantile``
of that figure over customers with at least one success (linear interpolation).

Ratios are floats (evidence, not money): shapes are decided on the unrounded values and the
evidence reports them unrounded (``ratio``, ``value``, ``median``, ``cost_share``): JSON and CSV
carry every digit, only the terminal rounds. Costs are the engine's exact Decimal sums; cost per
successful task is their quotient at Decimal's 28 significant digits (default context,
half-even), never rounded to micro-dollars.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from tailguard.analytics.context import QueryContext, as_context, using
from tailguard.analytics.customers import margin_figures
from tailguard.analytics.period import Window, bounded, require_events
from tailguard.errors import ArgumentError, ConfigError
from tailguard.topk import top_count
from tailguard.vocabulary import SHAPES

#: shape -> (metric name, what it is, inverted?)
SHAPE_METRIC: dict[str, tuple[str, str, bool]] = {
    "long_sessions": ("llm_calls_per_session", "LLM calls / distinct sessions", False),
    "tool_fanout": ("tool_calls_per_task", "tool calls / distinct tasks", False),
    "oversized_prompts": (
        "opening_prompt_tokens",
        "mean over sessions of the session's smallest LLM input (its opening prompt)",
        False,
    ),
    "failure_magnet": ("retries_per_task", "LLM retries (attempt > 1) / distinct tasks", False),
    "high_frequency": (
        "sessions_per_user_day",
        "distinct sessions / distinct (user, UTC day)",
        False,
    ),
    "low_cache_hit": ("cache_hit_rate", "cache-read tokens / input tokens", True),
    "reasoning_heavy": ("reasoning_share", "reasoning tokens / output tokens", False),
}


@dataclass(frozen=True)
class Lever:
    """One corrective action, with where it comes from (so a reader can check the reasoning)."""

    name: str
    why: str
    source: str


LEVERS: dict[str, Lever] = {
    "fresh_task_ux": Lever(
        "fresh-task UX nudge",
        "nudge long conversations toward starting a fresh task (helps most)",
        "the per-customer economics essay",
    ),
    "context_truncation": Lever(
        "context truncation",
        "truncate or summarise old turns so later turns stop paying for the whole history",
        "the per-customer economics essay",
    ),
    "prompt_caching": Lever(
        "prompt caching",
        "cache the stable prefix so repeated context is billed at the cache-read rate",
        "the per-customer economics essay",
    ),
    "step_ceiling": Lever(
        "per-task step ceiling",
        "cap tool calls / steps per task: bounds the worst case of a looping agent",
        "the per-customer economics essay; the eight-KPI framework",
    ),
    "tool_fix": Lever(
        "targeted prompt or tool fix",
        "fix the prompt or tool this customer's data sends into a loop (shifts the median)",
        "the per-customer economics essay",
    ),
    "token_aware_ui": Lever(
        "token-aware UI",
        "show the cost of attaching a large document before the user sends it",
        "the per-customer economics essay",
    ),
    "prompt_ceiling": Lever(
        "per-prompt ceiling",
        "a hard ceiling on input tokens per prompt (composes with the token-aware UI)",
        "the per-customer economics essay",
    ),
    "prompt_optimization": Lever(
        "prompt optimisation",
        "remove redundant context from the prompt template",
        "the cost-allocation guide",
    ),
    "retrieval_tool_fix": Lever(
        "retrieval / tool robustness fix",
        "fix the failure path this cohort's data triggers (retrieval or one tool)",
        "the per-customer economics essay",
    ),
    "retry_budget": Lever(
        "retry and dollar ceiling per task",
        "cap attempts and dollars per task so a retry storm ends early",
        "the per-customer economics essay (per-task dollar cap), DESIGN.md policy",
    ),
    "tenant_cap": Lever(
        "per-tenant usage cap",
        "cap at 150-200% of the tier median's usage, with an upgrade prompt",
        "the cost-allocation guide (action 1); the per-customer economics essay",
    ),
    "rate_limit": Lever(
        "per-tenant rate limit",
        "tokens or sessions per minute per tenant",
        "the per-customer economics essay",
    ),
    "usage_pricing": Lever(
        "usage-based pricing",
        "included credits + overage, so price tracks cost",
        "the cost-allocation guide (action 2)",
    ),
    "cache_aware_ux": Lever(
        "cache-aware UX",
        "steer toward sessions and prompt shapes the cache can amortise",
        "the per-customer economics essay",
    ),
    "feature_cache": Lever(
        "feature-level caching",
        "cache the outputs of this customer's common query patterns",
        "the cost-allocation guide (action 4)",
    ),
    "model_cascade": Lever(
        "model cascade",
        "route routine requests to a smaller model; keep the reasoning model for hard ones",
        "the per-customer economics essay; the cost-allocation guide (action 4)",
    ),
    "reasoning_budget": Lever(
        "reasoning-trace budget",
        "cap reasoning effort / tokens per request",
        "the eight-KPI framework",
    ),
    "repricing": Lever(
        "cohort repricing at renewal",
        "price the workload shape that costs more (higher tier, usage component)",
        "the cost-allocation guide (action 3); the per-customer economics essay",
    ),
}

#: levers per shape, best first (the order the seeds give)
SHAPE_LEVERS: dict[str, tuple[str, ...]] = {
    "long_sessions": ("fresh_task_ux", "context_truncation", "prompt_caching"),
    "tool_fanout": ("step_ceiling", "tool_fix"),
    "oversized_prompts": ("prompt_ceiling", "token_aware_ui", "prompt_optimization"),
    "failure_magnet": ("retrieval_tool_fix", "retry_budget"),
    "high_frequency": ("tenant_cap", "rate_limit", "usage_pricing"),
    "low_cache_hit": ("cache_aware_ux", "feature_cache", "model_cascade"),
    "reasoning_heavy": ("model_cascade", "reasoning_budget", "repricing"),
}
#: a tail customer that matches no shape is expensive by plain volume
VOLUME_LEVERS: tuple[str, ...] = ("tenant_cap", "usage_pricing")

#: the cost-allocation guide's alert threshold of inference cost as % of MRR, by segment
MRR_ALERT_PCT: dict[str, float] = {
    "smb": 35.0,
    "mid_market": 30.0,
    "enterprise": 25.0,
    "usage_based": 50.0,
}


@dataclass(frozen=True)
class DiagnoseConfig:
    """Thresholds (``[diagnose]`` in the config TOML; see docs/diagnosis.md)."""

    top_pct: float = 5.0
    cpst_quantile: float = 0.95
    min_tasks: int = 20
    ratio: float = 3.0
    #: per-shape ratio overrides, e.g. {"failure_magnet": 4.0}
    ratios: dict[str, float] = field(default_factory=dict)

    def ratio_for(self, shape: str) -> float:
        return float(self.ratios.get(shape, self.ratio))

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> DiagnoseConfig:
        """Build from the ``[diagnose]`` table; unknown keys are errors, not silently ignored."""
        known = {"top_pct", "cpst_quantile", "min_tasks", "ratio", "shapes"}
        extra = set(data) - known
        if extra:
            raise ConfigError(f"[diagnose]: unknown key(s) {', '.join(sorted(extra))}")
        cfg = cls()
        try:
            kw: dict[str, Any] = {}
            if "top_pct" in data:
                kw["top_pct"] = float(data["top_pct"])
            if "cpst_quantile" in data:
                kw["cpst_quantile"] = float(data["cpst_quantile"])
            if "min_tasks" in data:
                kw["min_tasks"] = int(data["min_tasks"])
            if "ratio" in data:
                kw["ratio"] = float(data["ratio"])
            ratios: dict[str, float] = {}
            for shape, sub in (data.get("shapes") or {}).items():
                if shape not in SHAPES:
                    raise ConfigError(f"[diagnose.shapes]: unknown shape {shape!r}")
                if not isinstance(sub, dict) or set(sub) - {"ratio"}:
                    raise ConfigError(f"[diagnose.shapes.{shape}]: only 'ratio' is allowed")
                if "ratio" in sub:
                    ratios[shape] = float(sub["ratio"])
            kw["ratios"] = ratios
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[diagnose]: {exc}") from None
        cfg = replace(cfg, **kw)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not 0 < self.top_pct <= 100:
            raise ConfigError("[diagnose] top_pct must be in (0, 100]")
        if not 0 < self.cpst_quantile <= 1:
            raise ConfigError("[diagnose] cpst_quantile must be in (0, 1]")
        if self.min_tasks < 0:
            raise ConfigError("[diagnose] min_tasks must be >= 0")
        for s in SHAPES:
            if self.ratio_for(s) <= 1:
                raise ConfigError(f"[diagnose] ratio for {s} must be > 1")


def load_config(path: str | None = None) -> DiagnoseConfig:
    """The ``[diagnose]`` table of the config file (``--config``, ``TAILGUARD_CONFIG``, or
    ``./tailguard.toml``), or the defaults."""
    from tailguard.config import load_file

    data = load_file(path).get("diagnose", {})
    if not isinstance(data, dict):
        raise ConfigError("[diagnose] must be a table")
    return DiagnoseConfig.from_mapping(data)


#: The engine half: every per-customer metric in one statement. Sessions and user-days come from
#: a per-session pre-aggregation (``s``: far fewer rows than events), so the distinct (user, day)
#: pairs are counted over sessions rather than by building a string per event (3x faster at 13M
#: events). A session's day is the UTC day of its first event in the window, computed from the
#: epoch (no time-zone arithmetic). Distinct tasks and successful tasks come the same way from a
#: per-(customer, task) pre-aggregation (``t``): the number of its groups and of those with an
#: accepted outcome are exactly ``count(DISTINCT task_id)`` and ``count(DISTINCT CASE ... accepted
#: THEN task_id END)`` (NULL task ids excluded from both), and cost 0.9 CPU s at 10M events where
#: the two DISTINCT aggregates inside ``m`` cost 2.9 (issue 12: the customer page diagnoses one
#: customer but needs this whole population pass for the medians and the tail). Portable SQL:
#: CTEs, CASE inside aggregates, LEFT JOINs.
METRICS_SQL = """
WITH s AS (
  SELECT customer_id, session_id, min(user_id) AS user_id,
    floor(min({epoch}) / 86400) AS day,
    min(CASE WHEN kind = 'llm_call' THEN input_tokens END) AS opening_input
  FROM events
  WHERE session_id IS NOT NULL AND {where}
  GROUP BY customer_id, session_id
), u AS (
  SELECT customer_id, count(*) AS sessions, sum(opening_input) AS opening_input,
    count(opening_input) AS llm_sessions
  FROM s GROUP BY customer_id
), ud AS (
  SELECT customer_id, count(*) AS user_days
  FROM (SELECT DISTINCT customer_id, user_id, day FROM s WHERE user_id IS NOT NULL) p
  GROUP BY customer_id
), t AS (
  SELECT customer_id, task_id,
    max(CASE WHEN kind = 'task_outcome' AND outcome = 'accepted' THEN 1 END) AS won
  FROM events
  WHERE task_id IS NOT NULL AND {where}
  GROUP BY customer_id, task_id
), tc AS (
  SELECT customer_id, count(*) AS tasks_seen, count(won) AS successful_tasks
  FROM t GROUP BY customer_id
), m AS (
  SELECT
    customer_id,
    sum(cost_usd) AS cost_usd,
    sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END) AS llm_calls,
    sum(CASE WHEN kind = 'tool_call' THEN 1 ELSE 0 END) AS tool_calls,
    sum(CASE WHEN kind = 'llm_call' THEN input_tokens END) AS input_tokens,
    sum(CASE WHEN kind = 'llm_call' THEN cache_read_tokens END) AS cache_read_tokens,
    sum(CASE WHEN kind = 'llm_call' THEN output_tokens END) AS output_tokens,
    sum(CASE WHEN kind = 'llm_call' THEN reasoning_tokens END) AS reasoning_tokens,
    sum(CASE WHEN kind = 'llm_call' AND attempt > 1 THEN 1 ELSE 0 END) AS retries
  FROM events
  WHERE {where}
  GROUP BY customer_id
)
SELECT m.*, coalesce(tc.tasks_seen, 0) AS tasks_seen,
  coalesce(tc.successful_tasks, 0) AS successful_tasks,
  coalesce(u.sessions, 0) AS sessions, u.opening_input, u.llm_sessions,
  coalesce(ud.user_days, 0) AS user_days
FROM m
LEFT JOIN tc ON m.customer_id = tc.customer_id
LEFT JOIN u ON m.customer_id = u.customer_id
LEFT JOIN ud ON m.customer_id = ud.customer_id
"""


def _div(num: Any, den: Any) -> float | None:
    if num is None or not den:
        return None
    return float(num) / float(den)


def derive_metrics(agg: dict[str, Any]) -> dict[str, float | None]:
    """The seven shape metrics of one customer from its aggregated row (None when undefined)."""
    tasks = agg.get("tasks_seen") or 0
    return {
        "llm_calls_per_session": _div(agg.get("llm_calls"), agg.get("sessions")),
        "tool_calls_per_task": _div(agg.get("tool_calls"), tasks),
        "opening_prompt_tokens": _div(agg.get("opening_input"), agg.get("llm_sessions")),
        "retries_per_task": _div(agg.get("retries"), tasks),
        "sessions_per_user_day": _div(agg.get("sessions"), agg.get("user_days")),
        "cache_hit_rate": _div(agg.get("cache_read_tokens"), agg.get("input_tokens")),
        "reasoning_share": _div(agg.get("reasoning_tokens"), agg.get("output_tokens")),
    }


def customer_metrics(con: Any, win: Window) -> list[dict[str, Any]]:
    """One row per customer with activity in ``win``: the aggregates and the shape metrics."""
    where, params = win.sql()
    # {where} appears three times (in ``s``, ``t`` and ``m``): its parameters are passed thrice
    epoch = as_context(con).epoch_seconds("ts")
    cur = con.execute(METRICS_SQL.format(where=where, epoch=epoch), params * 3)
    cols = [d[0] for d in cur.description]
    rows = []
    for r in cur.fetchall():
        agg = dict(zip(cols, r, strict=True))
        agg["cost_usd"] = agg["cost_usd"] if agg["cost_usd"] is not None else Decimal(0)
        wins = agg["successful_tasks"] or 0
        agg["cost_per_successful_task"] = agg["cost_usd"] / wins if wins else None
        agg.update(derive_metrics(agg))
        rows.append(agg)
    rows.sort(key=lambda a: a["customer_id"])
    return rows


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, DuckDB quantile_cont)."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def medians(rows: list[dict[str, Any]], cfg: DiagnoseConfig) -> dict[str, float | None]:
    """The median customer's value of each shape metric, over customers with enough tasks."""
    out: dict[str, float | None] = {}
    eligible = [r for r in rows if (r["tasks_seen"] or 0) >= cfg.min_tasks]
    for metric, _, _ in SHAPE_METRIC.values():
        vals = [r[metric] for r in eligible if r[metric] is not None]
        out[metric] = statistics.median(vals) if vals else None
    return out


def tail(rows: list[dict[str, Any]], cfg: DiagnoseConfig) -> dict[str, list[str]]:
    """The tail customers and why each is in it: ``{customer_id: ["top_cost", "high_cpst"]}``."""
    why: dict[str, list[str]] = {}
    if not rows:
        return why
    k = top_count(len(rows), cfg.top_pct)
    by_cost = sorted(rows, key=lambda r: (-r["cost_usd"], r["customer_id"]))
    for r in by_cost[:k]:
        if r["cost_usd"] > 0:
            why.setdefault(r["customer_id"], []).append("top_cost")
    cpst = [float(r["cost_per_successful_task"]) for r in rows if r["cost_per_successful_task"]]
    if cpst:
        cut = _quantile(cpst, cfg.cpst_quantile)
        for r in rows:
            v = r["cost_per_successful_task"]
            if v is not None and float(v) > cut:
                why.setdefault(r["customer_id"], []).append("high_cpst")
    return why


def match_shapes(
    row: dict[str, Any], med: dict[str, float | None], cfg: DiagnoseConfig
) -> list[dict[str, Any]]:
    """The shapes one customer matches, strongest first, each with its evidence."""
    found = []
    for shape in SHAPES:
        metric, desc, inverted = SHAPE_METRIC[shape]
        v, m = row[metric], med[metric]
        if v is None or m is None:
            continue
        thr = cfg.ratio_for(shape)
        if inverted:
            # low is bad: strength is how many times *smaller* than the median
            if m <= 0:
                continue
            ratio = v / m
            hit = v <= m / thr
            strength = (m / v) if v > 0 else math.inf
        else:
            # a median of zero (e.g. no reasoning at all): any use is a match, ratio null
            ratio = (math.inf if v > 0 else 1.0) if m <= 0 else v / m
            hit = ratio >= thr
            strength = ratio
        if hit:
            found.append(
                {
                    "shape": shape,
                    "metric": metric,
                    "definition": desc,
                    "value": v,
                    "median": m,
                    "ratio": ratio if math.isfinite(ratio) else None,
                    "threshold": (1 / thr) if inverted else thr,
                    "direction": "<=" if inverted else ">=",
                    "_strength": strength,
                }
            )
    found.sort(key=lambda e: -e["_strength"])
    for e in found:
        del e["_strength"]
    return found


def rank_levers(
    shapes: list[str], *, cost_pct_of_mrr: float | None = None, segment: str | None = None
) -> list[dict[str, Any]]:
    """Levers for a customer, ranked: its strongest shape's levers first, in the seeds' order.

    A lever that fits several shapes is listed once (at its best rank) with every shape it serves.
    Repricing is added last when the customer's cost is above the cost-allocation guide's alert
    share of MRR for its segment: the per-customer economics essay's order is instrument, fix the
    median, then cap or re-price.
    """
    order: list[str] = []
    serves: dict[str, list[str]] = {}
    plan = [(s, SHAPE_LEVERS[s]) for s in shapes] or [("volume", VOLUME_LEVERS)]
    for s, levers in plan:
        for key in levers:
            if key not in serves:
                order.append(key)
                serves[key] = []
            serves[key].append(s)
    alert = MRR_ALERT_PCT.get(segment or "")
    if cost_pct_of_mrr is not None and alert is not None and cost_pct_of_mrr > alert:
        if "repricing" not in serves:
            order.append("repricing")
            serves["repricing"] = []
        serves["repricing"].append(f"cost {cost_pct_of_mrr:.0f}% of MRR > {alert:.0f}%")
    return [
        {
            "rank": i + 1,
            "lever": key,
            "name": LEVERS[key].name,
            "why": LEVERS[key].why,
            "for": serves[key],
            "source": LEVERS[key].source,
        }
        for i, key in enumerate(order)
    ]


def diagnose(
    ledger: Any,
    win: Window | None = None,
    *,
    window: Window | None = None,
    config: DiagnoseConfig | None = None,
    customer: str | None = None,
    population: Population | None = None,
) -> list[dict[str, Any]]:
    """The diagnosis of the tail (``_diagnose`` has the fields).

    ``ledger``: a ``QueryContext``, a ``Ledger`` or its directory, or an open connection (the
    old form); the window is ``window=`` (or the second argument, the old form), default every
    day the ledger holds events. ``population``: what ``population()`` returned for the same
    ledger content, window and config (the dashboard keeps it: every customer page of a window
    then skips the population pass); None computes it.
    """
    with using(ledger) as ctx:
        return _diagnose(
            ctx, window or win or Window(), config=config, customer=customer, population=population
        )


@dataclass(frozen=True)
class Population:
    """What one customer's verdict needs from every customer of the window (issue 12): the
    shapes' medians and the tail are relative to the population, so a single customer's
    diagnosis needs this pass; everything else (evidence, levers, money) is that customer's
    own. Computed by ``population()``; ``diagnose(population=...)`` reuses it."""

    #: per-customer metrics (``customer_metrics``), by customer id
    rows: dict[str, dict[str, Any]]
    medians: dict[str, float | None]
    tail: dict[str, list[str]]
    total: Decimal
    rank: dict[str, int]
    dims: dict[str, dict[str, Any]]
    allocated: dict[str, Decimal]
    stated: Window
    months: Any
    config: DiagnoseConfig


def population(
    ledger: Any, win: Window | None = None, *, config: DiagnoseConfig | None = None
) -> Population:
    """The population pass of ``diagnose`` over ``win`` (``Population``)."""
    with using(ledger) as ctx:
        return _population(ctx, win or Window(), config or DiagnoseConfig())


def _population(con: QueryContext, win: Window, cfg: DiagnoseConfig) -> Population:
    from tailguard.finops.allocation import allocated_by_customer

    stated = bounded(con, win)
    rows = customer_metrics(con, win)
    rank = {
        r["customer_id"]: i + 1
        for i, r in enumerate(sorted(rows, key=lambda r: (-r["cost_usd"], r["customer_id"])))
    }
    return Population(
        rows={r["customer_id"]: r for r in rows},
        medians=medians(rows, cfg),
        tail=tail(rows, cfg),
        total=sum((r["cost_usd"] for r in rows), Decimal(0)),
        rank=rank,
        dims=_dims(con),
        allocated=allocated_by_customer(
            getattr(con, "con", con), stated.first_day, stated.last_day
        ),
        stated=stated,
        months=stated.months(),
        config=cfg,
    )


def _diagnose(
    con: QueryContext,
    win: Window,
    *,
    config: DiagnoseConfig | None = None,
    customer: str | None = None,
    population: Population | None = None,
) -> list[dict[str, Any]]:
    """Diagnose the tail (or one ``customer``, tail or not), most expensive first.

    Each item: ``customer_id``, ``rank`` (by cost, 1 = most expensive), ``cost_usd``,
    ``cost_share``, ``cost_per_successful_task``, ``tasks``, ``in_tail`` (reasons), ``shapes``
    (names, strongest first), ``evidence`` (one object per shape), ``levers`` (ranked), and
    ``judged`` (False when the customer has fewer than ``min_tasks`` tasks: no shape is named),
    the window's ``revenue_usd``, ``cost_pct_of_mrr`` and ``gross_margin_usd``
    (``customers.margin_figures``: the same figures as ``report customers``), ``allocated_usd``
    (the customer's share of the invoice's unattributed remainder over the window's days, as
    ``tailguard reconcile --allocate`` stored it: beside ``cost_usd``, never in it, as in
    ``report customers``; 0 when nothing was allocated), and the window itself as
    ``window_start`` / ``window_end`` (UTC days, end included; an open window is bounded to the
    days its events span).

    The population pass (``Population``: every customer's metrics, the medians, the tail) is
    the same for the whole run and for one customer; the evidence and levers are worked out
    only for the customers listed.

    ``NoDataError`` when the window holds no events, or none of ``customer``'s: a customer with
    no events is not diagnosed as costing nothing.
    """
    cfg = config or DiagnoseConfig()
    if customer is not None:
        require_events(con, win, customer=customer)
    if population is not None and population.config != cfg:
        raise ArgumentError("population", "computed with another config than this run's")
    pop = population or _population(con, win, cfg)
    if customer is not None:
        chosen = [pop.rows[customer]] if customer in pop.rows else []
    else:
        chosen = [r for cid, r in pop.rows.items() if cid in pop.tail]
    out = []
    for r in sorted(chosen, key=lambda r: pop.rank[r["customer_id"]]):
        cid = r["customer_id"]
        judged = (r["tasks_seen"] or 0) >= cfg.min_tasks
        evidence = match_shapes(r, pop.medians, cfg) if judged else []
        shapes = [e["shape"] for e in evidence]
        d = pop.dims.get(cid, {})
        money = margin_figures(r["cost_usd"], d.get("mrr_usd"), pop.months)
        pct = money["cost_pct_of_mrr"]
        out.append(
            {
                "customer_id": cid,
                "rank": pop.rank[cid],
                "tier": d.get("tier"),
                "segment": d.get("segment"),
                "cost_usd": r["cost_usd"],
                "allocated_usd": pop.allocated.get(cid, Decimal(0)),
                "cost_share": float(r["cost_usd"] / pop.total) if pop.total else None,
                "cost_per_successful_task": r["cost_per_successful_task"],
                "tasks": int(r["tasks_seen"] or 0),
                "successful_tasks": int(r["successful_tasks"] or 0),
                **money,
                "in_tail": pop.tail.get(cid, []),
                "judged": judged,
                "shapes": shapes,
                "evidence": evidence,
                # an unjudged customer (too few tasks) gets no lever: nothing is known yet
                "levers": (
                    rank_levers(shapes, cost_pct_of_mrr=pct, segment=d.get("segment"))
                    if judged
                    else []
                ),
                "window_start": pop.stated.first_day,
                "window_end": pop.stated.last_day,
            }
        )
    return out


def _dims(con: Any) -> dict[str, dict[str, Any]]:
    return {
        r[0]: {"tier": r[1], "segment": r[2], "mrr_usd": r[3]}
        for r in con.execute("SELECT customer_id, tier, segment, mrr_usd FROM customers").fetchall()
    }
