"""The mid-size run's economics, fully loaded (ingested with the simulated operator's prices).

The per-customer economics essay ("Per-customer economics: the whole-system unit number hides
which customers are setting your money on fire"), the cost-allocation guide ("Allocating AI
Inference Costs Back to Individual Customers") and the cost-concentration article are the story:
a product whose aggregate looks healthy (inference a few percent of MRR), a cheap median
customer, a power-law tail, and a few flat-priced customers who cost many times what they pay.
The targets are ratios per customer, so they hold on this month of 2,000 customers as on the
demo's year of 240 (both at the calibrated activity, density 1).
Every figure is computed here from the ledger's priced events and ``customers.csv`` with DuckDB,
never read from ``truth.json``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from tailguard.analytics.period import DAYS_PER_MONTH
from tailguard.ledger import Ledger, ingest
from tailguard.pricing import PriceBook
from tailguard.simulate import SimulationResult
from tailguard.simulate.prices import ESCALATION_MINUTE_USD, demo_prices_toml

from .conftest import MID_DAYS


@pytest.fixture(scope="module")
def ledger(mid_run: SimulationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    led = Ledger(tmp_path_factory.mktemp("econ") / "ledger")
    ingest([mid_run.events_path], led, prices=PriceBook.load(mid_run.prices_path))
    return led.path


@pytest.fixture(scope="module")
def econ(ledger: Path, mid_run: SimulationResult) -> dict[str, Any]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_parquet('{ledger}/segments/*.parquet')")
    con.execute(f"CREATE VIEW c AS SELECT * FROM read_csv('{mid_run.customers_path}')")
    rows = con.execute(
        """
        WITH a AS (
          SELECT customer_id, sum(cost_usd)::DOUBLE AS cost,
                 sum(CASE WHEN kind = 'llm_call' THEN cost_usd ELSE 0 END)::DOUBLE AS llm,
                 count(DISTINCT CASE WHEN kind = 'task_outcome' AND outcome = 'accepted'
                                     THEN task_id END) AS wins
          FROM e GROUP BY 1)
        SELECT c.customer_id, c.tier, c.mrr_usd::DOUBLE, coalesce(cost, 0), coalesce(llm, 0),
               coalesce(wins, 0)
        FROM c LEFT JOIN a USING (customer_id) ORDER BY 1
        """
    ).fetchall()
    agent = con.execute(
        "SELECT median(input_tokens) FROM e WHERE kind = 'llm_call' AND workload = 'agent'"
    ).fetchone()[0]
    unpriced = con.execute(
        "SELECT count(*) FROM e WHERE kind <> 'guard' AND kind <> 'task_outcome' "
        "AND cost_usd IS NULL"
    ).fetchone()[0]
    esc = con.execute(
        "SELECT sum(cost_usd)::DOUBLE, sum(minutes) FROM e WHERE kind = 'escalation'"
    ).fetchone()
    free = con.execute(
        """
        SELECT c.customer_id,
               coalesce(sum(CASE WHEN kind = 'llm_call' THEN input_tokens + output_tokens END), 0),
               count(CASE WHEN kind = 'escalation' THEN 1 END),
               count(CASE WHEN kind = 'guard' AND session_id IS NULL THEN 1 END)
        FROM c LEFT JOIN e USING (customer_id) WHERE c.tier = 'free' GROUP BY 1
        """
    ).fetchall()
    by_kind = dict(con.execute("SELECT kind, sum(cost_usd)::DOUBLE FROM e GROUP BY 1").fetchall())
    tasks = dict(
        con.execute(
            "SELECT outcome = 'accepted', count(*) FROM e WHERE kind = 'task_outcome' GROUP BY 1"
        ).fetchall()
    )
    llm_calls = con.execute("SELECT count(*) FROM e WHERE kind = 'llm_call'").fetchone()[0]
    escalations = con.execute("SELECT count(*) FROM e WHERE kind = 'escalation'").fetchone()[0]
    # spend of each task (every kind that carries a task), by whether it ended accepted
    failed_spend = con.execute(
        """
        WITH o AS (SELECT task_id, outcome FROM e WHERE kind = 'task_outcome')
        SELECT sum(e.cost_usd)::DOUBLE FROM e JOIN o USING (task_id)
        WHERE e.kind <> 'task_outcome' AND o.outcome <> 'accepted'
        """
    ).fetchone()[0]
    months = MID_DAYS / float(DAYS_PER_MONTH)
    return {
        "tier": np.array([r[1] for r in rows]),
        "revenue": np.array([r[2] for r in rows]) * months,
        "cost": np.array([r[3] for r in rows]),
        "llm": np.array([r[4] for r in rows]),
        "wins": np.array([r[5] for r in rows]),
        "agent_input_per_call": float(agent),
        "unpriced": unpriced,
        "escalation": esc,
        "free": free,
        "by_kind": by_kind,
        "tasks_accepted": tasks.get(True, 0),
        "tasks_failed": tasks.get(False, 0),
        "llm_calls": llm_calls,
        "escalation_events": escalations,
        "failed_spend": failed_spend,
    }


def test_prices_file_is_written_and_loads(mid_run: SimulationResult) -> None:
    assert mid_run.prices_path.read_text() == demo_prices_toml()
    units = PriceBook.load(mid_run.prices_path).units
    assert units.escalation_minute_usd == Decimal("0.5")
    assert units.tool("web_search") == Decimal("0.01")
    assert units.tool("db_read") == Decimal("0.0001")  # the default
    assert units.retrieval_query_usd == Decimal("0.0004") and units.rerank_usd == Decimal("0.002")


def test_every_cost_is_priced(econ: dict[str, Any]) -> None:
    assert econ["unpriced"] == 0
    cost, minutes = econ["escalation"]
    assert cost == pytest.approx(minutes * ESCALATION_MINUTE_USD, rel=1e-9)


def test_llm_calls_are_the_main_cost_line(econ: dict[str, Any]) -> None:
    """LLM spend is the main line and a human escalation a minority of it.

    The per-customer economics essay calls escalation the most expensive line item *per item* in
    many products: one escalation here costs about $0.50 against under a cent per LLM call. In
    aggregate, a product
    that resolves most tasks itself spends mostly on its model calls; bands: LLM calls over half
    of fully loaded spend, escalations 5-30%, tools and retrieval together under a fifth.
    """
    k = econ["by_kind"]
    total = sum(v for v in k.values() if v)
    assert k["llm_call"] / total >= 0.55, k
    assert 0.05 <= k["escalation"] / total <= 0.30, k
    assert (k["tool_call"] + k["retrieval"]) / total <= 0.2, k
    # and per item, an escalation costs far more than a call (the per-customer economics essay's
    # "most expensive line")
    escalations = econ["escalation_events"]
    assert k["escalation"] / escalations > 50 * k["llm_call"] / econ["llm_calls"]


def test_cost_per_resolved_task_is_several_times_cost_per_call(econ: dict[str, Any]) -> None:
    """The cost-per-resolved-task article: computed honestly (all spend over accepted outcomes),
    cost per resolved task is "typically three to eight times what the API math suggested", the
    API math being the vendor's billed unit, the call. Here: fully loaded spend / accepted tasks
    against LLM spend / LLM calls.

    An agentic product sits at the top of that range or a little above it: about half the
    sessions are agent tasks of 3-7 steps (mean 4.5) plus a planning call and retries, so a task
    makes 3-6 calls, of which about four in five resolve, and spend beyond the calls (mostly
    human escalation) adds a fifth to a quarter: 3-6 / 0.8 x 1.2-1.3 = 4.5-10. Asserted: 3-10.
    """
    k = econ["by_kind"]
    total = sum(v for v in k.values() if v)
    per_resolved = total / econ["tasks_accepted"]
    per_call = k["llm_call"] / econ["llm_calls"]
    assert 3.0 <= per_resolved / per_call <= 10.0, per_resolved / per_call


def test_failure_cost_share_is_plausible(econ: dict[str, Any]) -> None:
    """The cost-per-resolved-task article's failure cost share (spend of tasks that did not end
    accepted / all spend).

    No source gives a number; the band follows from the task mix: a failed task carries its
    retries and escalations, so failures cost at least their share of tasks (about a fifth),
    and a product whose aggregate looks healthy (the per-customer economics essay) spends most on
    work that is accepted: at most half.
    """
    k = econ["by_kind"]
    total = sum(v for v in k.values() if v)
    share = econ["failed_spend"] / total
    failed_tasks = econ["tasks_failed"] / (econ["tasks_failed"] + econ["tasks_accepted"])
    assert 0.1 <= failed_tasks <= 0.35, failed_tasks
    assert failed_tasks <= share <= 0.5, (failed_tasks, share)


def test_aggregate_cost_to_revenue_looks_healthy(econ: dict[str, Any]) -> None:
    """The per-customer economics essay's trap: the aggregate looks fine. The eight-KPI
    framework's panel sets where "fine" is for a seat-priced product: the median paid
    user at 0.5-1.5% of the seat price and a tenant's cost at 3-8% of its ARR (12% funds the
    feature off margin), so the aggregate of a healthy panel sits in single digits, under the
    cost-allocation guide's segment targets (15-20% of MRR; its 24% is its example of a ratio
    that only looks healthy). Asserted: fully loaded cost 3-15% of revenue over the window."""
    share = econ["cost"].sum() / econ["revenue"].sum()
    assert 0.03 <= share <= 0.15, share


def test_median_paying_customer_is_cheap(econ: dict[str, Any]) -> None:
    """The average hides the tail: the median paying customer's LLM spend is well inside the
    cost-allocation guide's target for its segment (under 15-20% of MRR) and under the aggregate
    share, which the heavy customers pull up. (The eight-KPI framework's 0.5-1.5% of a seat is a
    chat product's figure; an agentic product's median customer spends several times that.)"""
    paid = econ["revenue"] > 0
    llm_share = np.median(econ["llm"][paid] / econ["revenue"][paid])
    aggregate = econ["llm"][paid].sum() / econ["revenue"][paid].sum()
    assert 0.005 <= llm_share <= 0.15, llm_share
    assert llm_share < 0.75 * aggregate, (llm_share, aggregate)


def test_a_few_paying_customers_are_deeply_underwater(econ: dict[str, Any]) -> None:
    paid = econ["revenue"] > 0
    ratio = np.where(paid, econ["cost"] / np.where(paid, econ["revenue"], 1.0), 0.0)
    under = paid & (ratio > 1.0)
    share = under.sum() / paid.sum()
    # the cost-allocation guide's example: 5% of customers at negative gross margin on inference
    # alone, on a product whose inference is 24% of MRR; at this product's single-digit aggregate
    # fewer cross their price (the planted flat-plan customers, and no organic one: a seat is
    # bought per user). Asserted 1-8%
    assert 0.01 <= share <= 0.08, share
    assert 3.0 <= ratio.max() <= 150.0, ratio.max()
    # on flat plans: most of them on pro or team
    assert np.isin(econ["tier"][under], ["pro", "team"]).mean() >= 0.7


def test_the_most_underwater_are_paying_customers(econ: dict[str, Any]) -> None:
    margin = econ["revenue"] - econ["cost"]
    worst = np.argsort(margin, kind="stable")[:10]
    assert (econ["revenue"][worst] > 0).all()
    assert (margin[worst] < 0).all()


def test_heavy_customers_sit_on_every_plan(econ: dict[str, Any]) -> None:
    """Tier is only loosely tied to usage: the top 5% by cost is not all enterprise, and pro
    customers reach it (with many seats: pro's cap, $20 a seat, holds each one's spend, and the
    planted customers sit on team and enterprise plans)."""
    top = np.argsort(-econ["cost"], kind="stable")[: len(econ["cost"]) // 20]
    tiers = econ["tier"][top]
    assert (tiers == "pro").mean() >= 0.1
    assert (tiers == "enterprise").mean() <= 0.5


def test_cost_per_successful_task_spreads_across_customers(econ: dict[str, Any]) -> None:
    """The per-customer economics essay: the per-customer distribution of cost per successful task
    is right-skewed and the aggregate sits above the median (its illustration: $0.74 aggregate,
    $0.30 median, $5 p95, $40 p99: p95 about 17x and p99 about 130x the median).

    A resolved agent task of 3-7 steps at 15-90k input tokens on a Sonnet-class model costs
    $0.10-0.60 at list prices with half the input read from cache, a chat answer on a small
    model a cent, and escalations add $3 each to about one task in a hundred: the median
    customer lands at $0.10-0.40 a win. Asserted: the median in that band, p95 >= 3x and
    p99 >= 10x it, and the aggregate above the median.
    """
    ok = econ["wins"] > 0
    cpst = econ["cost"][ok] / econ["wins"][ok]
    med, p95, p99 = np.percentile(cpst, [50, 95, 99])
    assert 0.10 <= med <= 0.40, med
    assert p95 / med >= 3.0, p95 / med
    assert p99 / med >= 10.0, p99 / med
    # and the aggregate (total / wins) sits above the median: the mean hides the shape
    assert econ["cost"].sum() / econ["wins"].sum() > 1.2 * med


def test_agent_calls_carry_a_2026_agents_context(econ: dict[str, Any]) -> None:
    """An agent step sends its tool definitions, the task and every tool result so far: 10-60k
    input tokens at the median call (docs/simulator.md), growing step by step."""
    assert 10_000 <= econ["agent_input_per_call"] <= 60_000


def test_free_tier_stops_at_its_budget(econ: dict[str, Any], mid_run: SimulationResult) -> None:
    """The free tier's hard cap (input + output tokens a month, the policy the simulation wrote):
    a session that would take the month past the budget is denied (guard ``deny`` with no
    session), so a free customer's tokens end at or under its budget (the guard reserves a call
    before it runs); the free tier has no escalation."""
    import tomllib

    policy = tomllib.loads(mid_run.policy_path.read_text())
    budget = policy["tiers"]["free"]["hard_limit_tokens"]
    assert budget == 4_000_000  # the demo's budget (budgets.py, examples/policy.toml)
    free = econ["free"]
    assert free
    over = [(c, tok) for c, tok, _, _ in free if tok > budget]
    assert not over, over[:3]
    assert sum(esc for _, _, esc, _ in free) == 0
    capped = [c for c, *_, denied in free if denied > 0]
    assert 0 < len(capped) <= 0.25 * len(free)
