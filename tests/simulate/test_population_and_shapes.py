"""The mid-size run against the seeds: power-law concentration and recoverable planted shapes.

Every figure is recomputed here from the events file with DuckDB and prices taken from
genai-prices at test time, never read back from ``truth.json`` (which only names the planted
customers, the thing being checked).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import pytest

from tailguard.simulate import SHAPES, SimulationResult
from tailguard.simulate.population import TIERS, build

from .conftest import MID_CUSTOMERS


def _prices(models: list[tuple[str, str]]) -> list[tuple[str, float, float, float, float]]:
    """USD per token (input, output, cache read, cache write) per model, from genai-prices."""
    from genai_prices import Usage, calc_price

    m = 1_000_000
    rows = []
    for provider, model in models:

        def p(**kw: int) -> float:
            price: Decimal = calc_price(Usage(**kw), model, provider_id=provider).total_price  # noqa: B023
            return float(price) / m

        rows.append(
            (
                model,
                p(input_tokens=m),
                p(output_tokens=m),
                p(input_tokens=m, cache_read_tokens=m),
                p(input_tokens=m, cache_write_tokens=m),
            )
        )
    return rows


@pytest.fixture(scope="module")
def metrics(mid_run: SimulationResult) -> dict[str, Any]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_parquet('{mid_run.events_path}')")
    models = con.execute(
        "SELECT DISTINCT provider, model FROM e WHERE kind = 'llm_call' ORDER BY 2"
    ).fetchall()
    con.execute("CREATE TABLE p (model VARCHAR, pi DOUBLE, po DOUBLE, pcr DOUBLE, pcw DOUBLE)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?, ?, ?)", _prices(models))
    rows = con.execute(
        """
        WITH llm AS (
          SELECT e.*, (input_tokens - cache_read_tokens - cache_write_tokens) * pi
                 + cache_read_tokens * pcr + cache_write_tokens * pcw + output_tokens * po AS c
          FROM e JOIN p USING (model) WHERE kind = 'llm_call'),
        a AS (
          SELECT customer_id, sum(c) AS cost,
                 count(*)::DOUBLE / count(DISTINCT session_id) AS long_sessions,
                 avg(input_tokens - cache_read_tokens) AS oversized_prompts,
                 sum(cache_read_tokens)::DOUBLE / sum(input_tokens) AS low_cache_hit,
                 sum(reasoning_tokens)::DOUBLE / sum(output_tokens) AS reasoning_heavy,
                 count(*) FILTER (WHERE attempt > 1) AS retries,
                 count(DISTINCT session_id)::DOUBLE
                   / count(DISTINCT (user_id, CAST(ts AS DATE))) AS high_frequency
          FROM llm GROUP BY 1),
        t AS (SELECT customer_id, count(*) AS tasks,
                     count(*) FILTER (WHERE outcome = 'accepted') AS wins
              FROM e WHERE kind = 'task_outcome' GROUP BY 1),
        tc AS (SELECT customer_id, count(*) AS tools FROM e WHERE kind = 'tool_call' GROUP BY 1)
        SELECT a.customer_id, cost, long_sessions,
               coalesce(tools, 0)::DOUBLE / tasks AS tool_fanout, oversized_prompts,
               retries::DOUBLE / tasks AS failure_magnet, 1 - wins::DOUBLE / tasks AS fail_share,
               high_frequency, low_cache_hit, reasoning_heavy, tasks, wins
        FROM a JOIN t USING (customer_id) LEFT JOIN tc USING (customer_id)
        ORDER BY a.customer_id
        """
    ).fetchall()
    cols = [
        "cost", "long_sessions", "tool_fanout", "oversized_prompts", "failure_magnet",
        "fail_share", "high_frequency", "low_cache_hit", "reasoning_heavy", "tasks", "wins",
    ]  # fmt: skip
    arr = np.array([r[1:] for r in rows], dtype=float)
    return {"ids": [r[0] for r in rows], **{c: arr[:, i] for i, c in enumerate(cols)}}


@pytest.fixture(scope="module")
def weekly(mid_run: SimulationResult) -> list[tuple[float, float]]:
    """(cost per call, cost per resolved task) per full week, tasks dated by their outcome."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_parquet('{mid_run.events_path}')")
    models = con.execute(
        "SELECT DISTINCT provider, model FROM e WHERE kind = 'llm_call' ORDER BY 2"
    ).fetchall()
    con.execute("CREATE TABLE p (model VARCHAR, pi DOUBLE, po DOUBLE, pcr DOUBLE, pcw DOUBLE)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?, ?, ?)", _prices(models))
    return con.execute(
        """
        WITH c AS (
          SELECT task_id, count(*) AS calls,
                 sum((input_tokens - cache_read_tokens - cache_write_tokens) * pi
                     + cache_read_tokens * pcr + cache_write_tokens * pcw + output_tokens * po)
                   AS cost
          FROM e JOIN p USING (model) WHERE kind = 'llm_call' GROUP BY 1),
        o AS (SELECT task_id, ts, outcome FROM e WHERE kind = 'task_outcome')
        SELECT sum(cost) / sum(calls), sum(cost) / count(*) FILTER (WHERE outcome = 'accepted')
        FROM o JOIN c USING (task_id)
        WHERE ts >= TIMESTAMPTZ '2026-01-01' AND ts < TIMESTAMPTZ '2026-01-29'
        GROUP BY floor(epoch(ts - TIMESTAMPTZ '2026-01-01') / (7 * 86400)) ORDER BY 1 DESC
        """
    ).fetchall()


def test_cost_per_call_falls_while_cost_per_resolved_task_rises(
    weekly: list[tuple[float, float]],
) -> None:
    """The cost-per-resolved-task article: per call down about a quarter while per resolved task
    goes up (40% there, over
    a quarter; a month of this window drifts as far, measured +15%: asserted > +10%)."""
    assert len(weekly) == 4
    (call_first, task_first), (call_last, task_last) = weekly[0], weekly[-1]
    assert call_last < 0.85 * call_first
    assert task_last > 1.1 * task_first


def _gini(x: np.ndarray) -> float:
    """Mean absolute difference over twice the mean (the textbook definition, O(n^2))."""
    x = np.asarray(x, dtype=float)
    return float(np.abs(x[:, None] - x[None, :]).mean() / (2 * x.mean()))


def _per_customer_cost(metrics: dict[str, Any]) -> np.ndarray:
    # every customer of customers.csv, zero for those with no events in the window
    cost = np.zeros(MID_CUSTOMERS)
    cost[: len(metrics["cost"])] = metrics["cost"]
    return cost


def test_top_one_percent_holds_30_to_50_percent_of_spend(metrics: dict[str, Any]) -> None:
    cost = np.sort(_per_customer_cost(metrics))[::-1]
    top = cost[: MID_CUSTOMERS // 100].sum() / cost.sum()
    assert 0.30 <= top <= 0.50, top


def test_gini_in_the_range_of_real_per_client_data(metrics: dict[str, Any]) -> None:
    g = _gini(_per_customer_cost(metrics))
    assert 0.75 <= g <= 0.87, g
    # and among customers with any activity
    assert 0.75 <= _gini(metrics["cost"]) <= 0.87


def _tail(metrics: dict[str, Any]) -> np.ndarray:
    """Issue 3's tail: top 5% by cost, or above the p95 of cost per successful task."""
    cost, wins = metrics["cost"], metrics["wins"]
    cpst = np.where(wins > 0, cost / np.maximum(wins, 1), np.inf)
    p95 = np.quantile(cpst[np.isfinite(cpst)], 0.95)
    rank = np.argsort(np.argsort(-cost))
    return (rank < np.ceil(0.05 * MID_CUSTOMERS)) | (cpst > p95)


def _matches(metrics: dict[str, Any], shape: str) -> np.ndarray:
    v = metrics[shape]
    med = np.median(v)
    return v <= med / 3 if shape == "low_cache_hit" else v >= 3 * med


def test_every_shape_is_planted_in_a_handful_of_customers(mid_truth: dict[str, Any]) -> None:
    counts = dict.fromkeys(SHAPES, 0)
    for shapes in mid_truth["shapes"].values():
        for s in shapes:
            counts[s] += 1
    assert all(3 <= c <= 10 for c in counts.values()), counts
    assert any(len(s) == 2 for s in mid_truth["shapes"].values())


@pytest.mark.parametrize("shape", SHAPES)
def test_planted_customers_are_heavier_on_their_metric(
    metrics: dict[str, Any], mid_truth: dict[str, Any], shape: str
) -> None:
    planted = {c for c, s in mid_truth["shapes"].items() if shape in s}
    idx = [i for i, c in enumerate(metrics["ids"]) if c in planted]
    assert len(idx) == len(planted)
    assert _matches(metrics, shape)[idx].all()


def test_planted_customers_land_in_the_cost_tail(
    metrics: dict[str, Any], mid_truth: dict[str, Any]
) -> None:
    """The shape pushes a planted customer into issue 3's tail, where the diagnosis looks: at
    least nine in ten of them (the recall the diagnosis is held to), most on their own cost."""
    tail = _tail(metrics)
    planted = [i for i, c in enumerate(metrics["ids"]) if c in mid_truth["shapes"]]
    assert tail[planted].mean() >= 0.9, tail[planted].mean()


def test_three_times_the_median_recovers_the_planted_truth(
    metrics: dict[str, Any], mid_truth: dict[str, Any]
) -> None:
    """Precision and recall >= 0.9 for the rule of issue 3, judged on customers with >= 20 tasks.

    (Below ~20 tasks a per-customer ratio is mostly noise: one retry storm in two tasks is a 3x
    retry rate. The diagnosis needs a minimum support; see docs/simulator.md.)
    """
    tail = _tail(metrics) & (metrics["tasks"] >= 20)
    tp = fp = fn = 0
    for shape in SHAPES:
        truth = np.array([shape in mid_truth["shapes"].get(c, ()) for c in metrics["ids"]])
        found = _matches(metrics, shape) & tail
        tp += int((found & truth).sum())
        fp += int((found & ~truth).sum())
        fn += int((~found & truth).sum())
    assert tp / (tp + fp) >= 0.9
    assert tp / (tp + fn) >= 0.9


def test_base_population_spread_stays_well_under_three_times(
    metrics: dict[str, Any], mid_truth: dict[str, Any]
) -> None:
    """Unplanted customers with enough activity do not come near the 3x line on any metric."""
    base = np.array([c not in mid_truth["shapes"] for c in metrics["ids"]])
    base &= metrics["tasks"] >= 50
    for shape in SHAPES:
        v = metrics[shape]
        ratio = v[base] / np.median(v)
        if shape == "low_cache_hit":
            assert ratio.min() > 0.5, shape
        else:
            assert ratio.max() < 2.6, (shape, ratio.max())


def test_failure_magnets_also_fail_more_tasks(
    metrics: dict[str, Any], mid_truth: dict[str, Any]
) -> None:
    planted = {c for c, s in mid_truth["shapes"].items() if "failure_magnet" in s}
    idx = [i for i, c in enumerate(metrics["ids"]) if c in planted]
    med = np.median(metrics["fail_share"])
    assert 0.1 < med < 0.35  # about one task in five does not resolve
    assert (metrics["fail_share"][idx] >= 3 * med).all()


def test_median_cache_read_share_is_realistic(metrics: dict[str, Any]) -> None:
    # the cost-allocation guide: 30-40% on common queries; Mooncake's trace: 37% of prompt tokens
    # are a seen prefix
    assert 0.25 <= np.median(metrics["low_cache_hit"]) <= 0.6


def test_paid_plans_sell_a_seat_per_user() -> None:
    """Issue 16: active users outnumbered seats on pro, and enterprise seats were mostly unused.
    Now, on every paid plan, a customer's users (people and API keys) fit in its seats, and an
    enterprise contract's seats are at least 70% held (``population.ENT_SEAT_USE``); a planted
    customer is one or two people on a small team plan."""
    pop = build(2000, 30, 11, dt.date(2026, 1, 1))
    tier = np.array(TIERS)[pop.tier]
    paid = np.isin(tier, ["pro", "team", "enterprise", "custom"])
    assert (pop.users[paid] <= pop.seats[paid]).all()
    ent = tier == "enterprise"
    assert ent.any() and (pop.users[ent] >= 0.7 * pop.seats[ent]).all()
    planted = pop.shapes > 0
    assert (tier[planted] == "team").all() and (pop.users[planted] <= 2).all()
