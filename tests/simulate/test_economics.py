"""The mid-size run's economics, fully loaded (ingested with the simulated operator's prices).

Seed 000 and seed 001 are the story: a product whose aggregate looks healthy, a cheap median
customer, a power-law tail, and a few flat-priced customers who cost many times what they pay.
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
        """
        SELECT median(t) FROM (
          SELECT sum(input_tokens + output_tokens) AS t FROM e
          WHERE kind = 'llm_call' AND workload = 'agent' GROUP BY task_id)
        """
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
        SELECT c.customer_id, c.contracted_pool_usd::DOUBLE,
               coalesce(sum(CASE WHEN kind = 'llm_call' THEN cost_usd END), 0)::DOUBLE,
               count(CASE WHEN kind = 'escalation' THEN 1 END),
               count(CASE WHEN kind = 'guard' AND session_id IS NULL THEN 1 END)
        FROM c LEFT JOIN e USING (customer_id) WHERE c.tier = 'free' GROUP BY 1, 2
        """
    ).fetchall()
    months = MID_DAYS / float(DAYS_PER_MONTH)
    return {
        "tier": np.array([r[1] for r in rows]),
        "revenue": np.array([r[2] for r in rows]) * months,
        "cost": np.array([r[3] for r in rows]),
        "llm": np.array([r[4] for r in rows]),
        "wins": np.array([r[5] for r in rows]),
        "agent_tokens_per_task": float(agent),
        "unpriced": unpriced,
        "escalation": esc,
        "free": free,
    }


def test_prices_file_is_written_and_loads(mid_run: SimulationResult) -> None:
    assert mid_run.prices_path.read_text() == demo_prices_toml()
    units = PriceBook.load(mid_run.prices_path).units
    assert units.escalation_minute_usd == Decimal("0.75")
    assert units.tool("web_search") == Decimal("0.01")
    assert units.tool("db_read") == Decimal("0.0001")  # the default
    assert units.retrieval_query_usd == Decimal("0.0004") and units.rerank_usd == Decimal("0.002")


def test_every_cost_is_priced(econ: dict[str, Any]) -> None:
    assert econ["unpriced"] == 0
    cost, minutes = econ["escalation"]
    assert cost == pytest.approx(minutes * ESCALATION_MINUTE_USD, rel=1e-9)


def test_product_cost_is_5_to_15_percent_of_revenue(econ: dict[str, Any]) -> None:
    share = econ["cost"].sum() / econ["revenue"].sum()
    assert 0.05 <= share <= 0.15, share


def test_median_paying_customer_is_cheap(econ: dict[str, Any]) -> None:
    """Seed 002: the median paid user spends 0.5-1.5% of the seat price on raw inference."""
    paid = econ["revenue"] > 0
    llm_share = np.median(econ["llm"][paid] / econ["revenue"][paid])
    assert 0.003 <= llm_share <= 0.02, llm_share


def test_a_few_paying_customers_are_deeply_underwater(econ: dict[str, Any]) -> None:
    paid = econ["revenue"] > 0
    ratio = np.where(paid, econ["cost"] / np.where(paid, econ["revenue"], 1.0), 0.0)
    under = paid & (ratio > 1.0)
    share = under.sum() / paid.sum()
    assert 0.015 <= share <= 0.06, share
    assert 10.0 <= ratio.max() <= 150.0, ratio.max()
    # on flat plans: most of them on pro or team
    assert np.isin(econ["tier"][under], ["pro", "team"]).mean() >= 0.7


def test_the_most_underwater_are_paying_customers(econ: dict[str, Any]) -> None:
    margin = econ["revenue"] - econ["cost"]
    worst = np.argsort(margin, kind="stable")[:10]
    assert (econ["revenue"][worst] > 0).all()
    assert (margin[worst] < 0).all()


def test_heavy_customers_sit_on_every_plan(econ: dict[str, Any]) -> None:
    """Tier is only loosely tied to usage: the top 5% by cost is not all enterprise."""
    top = np.argsort(-econ["cost"], kind="stable")[: len(econ["cost"]) // 20]
    tiers = econ["tier"][top]
    assert (tiers == "pro").mean() >= 0.2
    assert (tiers == "enterprise").mean() <= 0.5


def test_cost_per_successful_task_spreads_like_seed_000(econ: dict[str, Any]) -> None:
    """Seed 000: a $0.30 median, a $5 p95, a $40 p99 across customers."""
    ok = econ["wins"] > 0
    cpst = econ["cost"][ok] / econ["wins"][ok]
    med, p95, p99 = np.percentile(cpst, [50, 95, 99])
    assert 0.10 <= med <= 0.50, med
    assert 5.0 <= p95 / med <= 20.0, p95 / med
    assert 25.0 <= p99 / med <= 150.0, p99 / med
    # and the aggregate (total / wins) sits well above the median: the mean hides the shape
    assert econ["cost"].sum() / econ["wins"].sum() > 1.5 * med


def test_agent_tasks_carry_seed_002_context(econ: dict[str, Any]) -> None:
    assert 8_000 <= econ["agent_tokens_per_task"] <= 20_000


def test_free_tier_stops_at_its_budget(econ: dict[str, Any]) -> None:
    """The free tier's hard cap: sessions after the month's budget are denied (guard ``deny``
    with no session), so a free customer's LLM spend ends within one session of its budget, and
    the free tier has no human escalation."""
    free = econ["free"]
    assert free
    # the window is January 1-30: the budget of the month, prorated to 30 of its 31 days
    over = [(c, pool, llm) for c, pool, llm, _, _ in free if llm > pool * 30 / 31 + 0.05]
    assert not over, over[:3]
    assert sum(esc for *_, esc, _ in free) == 0
    capped = [c for c, *_, denied in free if denied > 0]
    assert 0 < len(capped) <= 0.2 * len(free)
