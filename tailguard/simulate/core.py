"""``simulate()``: build the population, generate events chunk by chunk, write the three files.

Files written to ``out``:

- ``events.jsonl`` or ``events.parquet``: the events (columns of ``INPUT_COLUMNS``; ``cost_usd``
  left null because pricing happens at ingest);
- ``customers.csv``: the customer dimension (``tailguard customers import`` reads it);
- ``truth.json``: what was planted (shapes per customer) and the figures the simulator expects
  (top-1% share, Gini of estimated LLM spend), for tests and for the diagnosis to be scored on.

Memory is bounded by one chunk (``CHUNK_CUSTOMERS`` customers), plus a few per-customer totals.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tailguard.customers import COLUMNS as CUSTOMER_COLUMNS
from tailguard.errors import ArgumentError
from tailguard.simulate import catalog as cat
from tailguard.simulate.budgets import (
    CONTRACT_FLOOR_PER_SEAT_USD,
    CONTRACT_HEADROOM,
    TIER_BUDGETS,
    monthly_budget,
    per_seat_usd,
    policy_toml,
    scale,
)
from tailguard.simulate.columns import KIND_LLM, KIND_OUT, KINDS, llm_cost, unit_cost
from tailguard.simulate.model import generate
from tailguard.simulate.population import (
    COST_PER_SESSION,
    SEGMENTS,
    SHAPE_METRICS,
    SHAPES,
    SPREAD,
    TIERS,
    Population,
    build,
)
from tailguard.simulate.prices import demo_prices_toml

#: customers per chunk; fixed, because each chunk has its own random stream (determinism)
CHUNK_CUSTOMERS = 256
DEFAULT_START = dt.date(2026, 1, 1)
Format = Literal["jsonl", "parquet"]


@dataclass(frozen=True)
class SimulationResult:
    """Paths written and what they hold."""

    events_path: Path
    customers_path: Path
    truth_path: Path
    prices_path: Path
    policy_path: Path  # the guard policy the simulated customers ran under (budgets.py)
    customers: int
    days: int
    seed: int
    events: int
    events_by_kind: dict[str, int]
    sessions: int
    tasks: int
    top1_share: float
    gini: float

    def load_into(self, ledger: Any) -> Any:
        """Ingest the events, priced with the simulated operator's ``prices.toml``, and import
        the customers: the one way a simulation becomes a ledger (demo, benches, tests).

        ``ledger`` is a ``Ledger`` or its directory; returns the ``IngestResult``.
        """
        from tailguard.ledger import Ledger, ingest, read_customers_csv
        from tailguard.pricing import PriceBook

        led = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
        res = ingest([self.events_path], led, prices=PriceBook.load(self.prices_path))
        led.write_customers(read_customers_csv(self.customers_path))
        return res


def simulate(
    *,
    customers: int,
    days: int,
    seed: int,
    out: Path | str,
    fmt: Format = "jsonl",
    start: dt.date = DEFAULT_START,
    trend: bool = True,
    density: float = 1.0,
) -> SimulationResult:
    """Simulate ``customers`` customers for ``days`` days and write the files into ``out``.

    Deterministic: the same arguments give byte-identical files. ``trend`` plants the
    cost-per-resolved-task article's drift over the window (cost per call falls while cost per
    resolved task rises).
    """
    if customers < 1:
        raise ArgumentError("customers", "customers must be at least 1")
    if days < 1:
        raise ArgumentError("days", "days must be at least 1")
    if fmt not in ("jsonl", "parquet"):
        raise ArgumentError("fmt", f"unknown format {fmt!r}: choose jsonl or parquet")
    from tailguard.simulate.output import JsonlSink, ParquetSink, to_table

    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    pop = build(customers, days, seed, start, density=density)
    _set_budgets(pop, np.random.default_rng([seed, 1]), density)

    events_path = outdir / f"events.{fmt}"
    sink = ParquetSink(events_path) if fmt == "parquet" else JsonlSink(events_path)
    cost = np.zeros(customers)  # estimated LLM spend
    full = np.zeros(customers)  # estimated fully loaded spend (with the unit costs of prices.py)
    tasks_c = np.zeros(customers)
    wins_c = np.zeros(customers)
    by_kind = np.zeros(len(KINDS), dtype=np.int64)
    n_events = n_sessions = n_tasks = 0
    try:
        for ci, lo in enumerate(range(0, customers, CHUNK_CUSTOMERS)):
            cust = np.arange(lo, min(lo + CHUNK_CUSTOMERS, customers))
            chunk = generate(
                pop, cust, np.random.default_rng([seed, 2, ci]), trend=1.0 if trend else 0.0
            )
            c = chunk.cols
            llm = np.flatnonzero(c["kind"] == KIND_LLM)
            llm_usd = np.bincount(c["cust"][llm], weights=llm_cost(c, llm), minlength=customers)
            cost += llm_usd
            full += llm_usd + np.bincount(c["cust"], weights=unit_cost(c), minlength=customers)
            outc = c["kind"] == KIND_OUT
            tasks_c += np.bincount(c["cust"][outc], minlength=customers)
            wins_c += np.bincount(c["cust"][outc & (c["outcome"] == 0)], minlength=customers)
            by_kind += np.bincount(c["kind"], minlength=len(KINDS))
            table = to_table(
                chunk,
                seed=seed,
                customer_ids=pop.customer_id,
                start=start,
                event_offset=n_events,
                session_offset=n_sessions,
                task_offset=n_tasks,
            )
            sink.write(table)
            n_events += len(chunk)
            n_sessions += chunk.n_sessions
            n_tasks += chunk.n_tasks
    finally:
        sink.close()

    customers_path = outdir / "customers.csv"
    _write_customers(pop, customers_path)
    prices_path = outdir / "prices.toml"
    prices_path.write_text(demo_prices_toml())
    policy_path = outdir / "policy.toml"
    policy_path.write_text(policy_toml(TIERS, cat.DOWNGRADE_TO, density))
    top1, top01, gini = concentration(full)
    truth_path = outdir / "truth.json"
    truth = _truth(pop, full, tasks_c, wins_c, top1, top01, gini)
    truth["est_total_llm_cost_usd"] = round(float(cost.sum()), 2)
    truth.update(
        events=n_events,
        events_by_kind={k: int(v) for k, v in zip(KINDS, by_kind, strict=True)},
        sessions=n_sessions,
        tasks=n_tasks,
        format=fmt,
        trend=trend,
    )
    truth_path.write_text(json.dumps(truth, indent=1, sort_keys=False) + "\n")
    return SimulationResult(
        events_path=events_path,
        customers_path=customers_path,
        truth_path=truth_path,
        prices_path=prices_path,
        policy_path=policy_path,
        customers=customers,
        days=days,
        seed=seed,
        events=n_events,
        events_by_kind=truth["events_by_kind"],
        sessions=n_sessions,
        tasks=n_tasks,
        top1_share=top1,
        gini=gini,
    )


def concentration(values: np.ndarray) -> tuple[float, float, float]:
    """(top-1% share, top-0.1% share, Gini) of per-customer totals; the top k% counted as the
    reports count it (tailguard.topk: ceil, at least one)."""
    from tailguard.topk import top_count

    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0, 0.0, 0.0
    top1 = x[-top_count(n, 1) :].sum() / total
    top01 = x[-top_count(n, 0.1) :].sum() / total
    i = np.arange(1, n + 1)
    gini = float(2.0 * np.sum(i * x) / (n * total) - (n + 1) / n)
    return float(top1), float(top01), gini


def _set_budgets(pop: Population, rng: np.random.Generator, density: float) -> None:
    """Contracted pools and monthly guard budgets per customer (``budgets.py``).

    Team: the per-seat pool times the seats (written as ``contracted_pool_usd``, so a workspace's
    pool grows with what it pays). Enterprise and usage-based: a contracted pool of
    ``CONTRACT_HEADROOM`` times the customer's expected monthly LLM spend, in whole dollars. Free
    and pro carry no contracted pool: the tier's budget applies.
    """
    expected = pop.sessions * 30.0 / pop.days * COST_PER_SESSION[pop.tier]
    pool = pop.pool_usd
    for t, b in enumerate(TIER_BUDGETS):
        m = pop.tier == t
        if b.pool_per_seat_usd is not None and t == TIERS.index("team"):
            pool[m] = per_seat_usd(b, density) * pop.seats[m]
        elif b.contracted:
            # sized on the expected spend, never below a floor per seat sold
            lo, hi = CONTRACT_HEADROOM
            pool[m] = np.round(
                np.maximum(
                    expected[m] * rng.uniform(lo, hi, int(m.sum())),
                    CONTRACT_FLOOR_PER_SEAT_USD * scale(density) * pop.seats[m],
                )
            )
    budget, tokens = monthly_budget(pop.tier, pop.seats, pool, density)
    pop.budget[:] = budget
    pop.budget_tokens[:] = tokens


def _write_customers(pop: Population, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CUSTOMER_COLUMNS)  # the header `tailguard customers import` reads
        for i in range(pop.n):
            w.writerow(
                [
                    pop.customer_id[i],
                    pop.name[i],
                    TIERS[pop.tier[i]],
                    SEGMENTS[pop.segment[i]],
                    f"{pop.mrr_usd[i]:.2f}",
                    int(pop.seats[i]),
                    f"{pop.pool_usd[i]:.2f}" if pop.pool_usd[i] > 0 else "",
                    pop.signup_date[i].isoformat(),
                ]
            )


def _truth(
    pop: Population,
    cost: np.ndarray,
    tasks: np.ndarray,
    wins: np.ndarray,
    top1: float,
    top01: float,
    gini: float,
) -> dict[str, object]:
    n = pop.n
    shapes = {pop.customer_id[i]: pop.shape_names(i) for i in np.flatnonzero(pop.shapes)}
    order = np.argsort(-cost, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    top5 = rank < max(1, int(np.ceil(0.05 * n)))
    cpst = np.where(wins > 0, cost / np.maximum(wins, 1), np.inf)
    p95 = float(np.quantile(cpst[np.isfinite(cpst)], 0.95)) if np.isfinite(cpst).any() else 0.0
    planted = {
        pop.customer_id[i]: {
            "shapes": pop.shape_names(i),
            "tier": TIERS[pop.tier[i]],
            "est_cost_usd": round(float(cost[i]), 4),
            "cost_rank": int(rank[i]) + 1,
            "top5pct_by_cost": bool(top5[i]),
            "est_cost_per_successful_task": None
            if not np.isfinite(cpst[i])
            else round(float(cpst[i]), 4),
            "above_p95_cost_per_successful_task": bool(cpst[i] > p95),
        }
        for i in np.flatnonzero(pop.shapes)
    }
    return {
        "seed": pop.seed,
        "customers": n,
        "days": pop.days,
        "start": pop.start.isoformat(),
        "shapes": shapes,
        "shape_metrics": SHAPE_METRICS,
        "shape_names": list(SHAPES),
        "diagnosis_rule": "a customer matches a shape when its metric is >= 3x the median "
        "customer's (low_cache_hit: <= 1/3 of the median); judge customers with at least 20 tasks",
        "top1_share": round(top1, 4),
        "top01_share": round(top01, 4),
        "gini": round(gini, 4),
        "spend_basis": "estimated fully loaded spend: LLM calls at the genai-prices snapshot in "
        "tailguard/simulate/params.py plus tools, retrieval and escalations at the unit prices "
        "of prices.toml",
        "est_total_cost_usd": round(float(cost.sum()), 2),
        "p95_cost_per_successful_task": round(p95, 4),
        "planted": planted,
        "calibration": {"activity_spread": SPREAD, "models": list(cat.MODELS)},
    }
