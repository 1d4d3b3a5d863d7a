"""The simulator writes exactly the guard vocabulary the guard engine writes.

Reports match guard events by ``(action, rule)`` (the routing KPIs count ``deny`` with rule
``hard_limit``); a simulated ledger that spells a rule its own way is silently not counted. The
engine's pairs are collected here by driving the real ``Guard`` (memory store) through each
overage pattern, not copied from a list.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tailguard.guard import Guard, MemoryStore, parse_policy
from tailguard.guard.types import Request
from tailguard.simulate import simulate

T0 = 1_767_225_600.0 + 10 * 86400  # 2026-01-11 00:00 UTC


def _engine_pairs(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (action, rule) the engine logs when a customer of each pattern runs past its
    budget: free hard_cap, pro soft_cap_degrade (past the soft and then the hard limit),
    team payg."""
    policy = parse_policy(
        {
            "guard": {"default_tier": "free"},
            "tiers": {
                "free": {"period": "month", "hard_limit_usd": 1, "overage": "hard_cap"},
                "pro": {
                    "period": "month",
                    "hard_limit_usd": 1,
                    "overage": "soft_cap_degrade",
                    "hard_limit_action": "degrade",
                    "degrade_to": {"gpt-4o": "gpt-4o-mini"},
                },
                "team": {"period": "month", "hard_limit_usd": 1, "overage": "payg"},
            },
            "customers": {"p": {"tier": "pro"}, "t": {"tier": "team"}},
        }
    )
    seen: list[dict[str, Any]] = []
    g = Guard(policy, MemoryStore(tmp_path / "state"), sink=seen.extend, clock=lambda: T0)
    for cust in ("f", "p", "t"):
        for _ in range(8):
            d = g.check(Request(cust, Decimal("0.25"), model="gpt-4o"))
            if d.reservation is not None:
                g.settle(d.reservation, Decimal("0.25"))
    return {(e["action"], e["rule"]) for e in seen}


def test_simulated_guard_events_use_the_engines_rule_names(tmp_path: Path) -> None:
    engine = _engine_pairs(tmp_path)
    # the engine itself logs all four patterns (else the comparison below proves nothing)
    assert {a for a, _ in engine} >= {"soft_threshold", "deny", "degrade", "overage"}
    res = simulate(customers=400, days=31, seed=5, out=tmp_path / "sim", fmt="parquet")
    sim = set(
        duckdb.sql(
            f"SELECT DISTINCT action, rule FROM read_parquet('{res.events_path}') "
            "WHERE kind = 'guard'"
        ).fetchall()
    )
    assert {a for a, _ in sim} >= {"soft_threshold", "deny", "overage"}
    assert sim <= engine, sim - engine
    assert json.loads(res.truth_path.read_text())["customers"] == 400
