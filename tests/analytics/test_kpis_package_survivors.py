"""The eight-KPI panel on a ledger shaped for the mutation survivors of the ``tailguard/analytics/
kpis`` package (issue 19): a projection that lands exactly on the soft cap, a pool used just
under the 30% right-size line, a new cohort exactly 40% dearer per user than the returning one.

Each test names the mutant it catches (``scripts/mutation tailguard/analytics/kpis --match
...``) and was checked to fail against it. Built the one way TESTING.md describes (events
through the real ingest, customers under the production header: ``tests/analytics/helpers.py``).

Ledger: February 2026 judged as of the 14th (14 of 28 days elapsed: projections × 2, pools
prorated × 1/2), policy ``SOFT_HALF`` of ``test_kpis_survivors`` (soft threshold 50% in every
tier; team: $10 a seat). Every LLM call on Feb 1 (feature chat), one user per customer; N1
also makes one free tool call (feature search) on Feb 2.

    customer  tier        segment     MRR   seats pool  signup      spend
    N1        team        mid_market  1000  14    -     2025-06-01  $35.00   (new)
    R1        team        mid_market  1000  10    200   2024-06-01  $29.50   (year-old)
    R2        enterprise  enterprise  5000  50    -     2024-06-01  $20.50   (year-old)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tailguard.analytics.context import QueryContext
from tailguard.analytics.kpis import kpis
from tailguard.analytics.kpis.routing import RATE_BANDS
from tailguard.analytics.kpis.tables import build, panel_period, resolve_caps
from tailguard.guard.policy import parse_policy
from tailguard.ledger import Ledger, ingest
from tests.analytics.helpers import Events, day, make_ledger, metric

SOFT_HALF = {
    "guard": {"default_tier": "free"},
    "tiers": {
        "free": {
            "period": "month",
            "hard_limit_usd": 1,
            "soft_threshold": 0.5,
            "overage": "hard_cap",
        },
        "team": {
            "period": "month",
            "pool_per_seat_usd": 10,
            "soft_threshold": 0.5,
            "overage": "payg",
        },
        "enterprise": {
            "period": "month",
            "hard_limit_usd": 5000,
            "soft_threshold": 0.5,
            "overage": "payg",
        },
    },
}

CSV = (
    "N1,N1,team,mid_market,1000,14,,2025-06-01\n"
    "R1,R1,team,mid_market,1000,10,200,2024-06-01\n"
    "R2,R2,enterprise,enterprise,5000,50,,2024-06-01\n"
)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    tmp_path: Path = tmp_path_factory.mktemp("kpis_package_survivors")
    e = Events()
    e.llm("N1", "n1u", day(1), "35.00")
    e.llm("R1", "r1u", day(1), "29.50")
    e.llm("R2", "r2u", day(1), "20.50")
    e.rows.append(
        {
            "event_id": "tool1",
            "kind": "tool_call",
            "ts": day(2),
            "customer_id": "N1",
            "user_id": "n1u",
            "feature": "search",
            "tool": "lookup",
            "tool_kind": "read",
            "cost_usd": "0",
        }
    )
    return make_ledger(tmp_path, e.rows, CSV)


@pytest.fixture(scope="module")
def report(ledger: Ledger) -> dict[str, Any]:
    return kpis(
        ledger, period="2026-02", as_of=dt.date(2026, 2, 14), policy=parse_policy(SOFT_HALF)
    )


def test_a_projection_exactly_at_the_soft_cap_is_watched(report: dict[str, Any]) -> None:
    """N1's cap: 14 seats × $10 = $140, soft $70. Pace 35 / 14 = 2.5 a day (exact), projected
    2.5 × 28 = 70: at the soft cap, so watch ("projected at 50% of cap"); the cap itself is
    reached on day ceil(140 / 2.5) = 56 > 28: not projected to hit this month. R1 (cap: its pool
    of 200) 29.5 × 2 = 59 of 200 and R2 41 of 5000 are ok. Catches ``>= -> > @ elif projected
    >= cap.soft`` (budget.py: N1 would be ok)."""
    m = metric(report, "tier_budget_utilization", "median_projected_pct")
    assert [(r["customer_id"], r["status"], r["message"]) for r in m["at_risk"]] == [
        ("N1", "watch", "projected at 50% of cap at month end")
    ]
    (n1,) = m["at_risk"]
    assert (n1["projected_pct"], n1["projected_hit_date"], n1["hit_date"]) == (50, None, None)


def test_a_pool_just_under_the_right_size_line(report: dict[str, Any]) -> None:
    """Pools prorated to half the month: R1 29.50 / (200 × 1/2) = 29.5% < 30: right size; N1
    (no contracted pool: its cap, $140) 35 / 70 = 50%: neither; R2 (the policy's $5000) 20.5 /
    2500 = 0.82%: right size. Catches ``30 -> 29 @ flag = ... u < 30`` (per_tenant.py: R1 would
    be no candidate)."""
    pool = metric(report, "per_tenant_cost", "pool_utilization")
    assert [(x["customer_id"], x["utilization_pct"]) for x in pool["right_size"]] == [
        ("R1", pytest.approx(29.5, rel=1e-12)),
        ("R2", pytest.approx(0.82, rel=1e-12)),
    ]
    assert pool["value"] == {
        "upgrade_candidates": 0,
        "right_size_candidates": 2,
        "pooled_customers": 3,
    }


def test_a_cohort_drift_of_exactly_forty_percent(report: dict[str, Any]) -> None:
    """New cohort (signed up after 2025-02-14): N1, $35 for 1 user; year-old (after 2024-02-15,
    by 2025-02-14): R1 + R2, $50 for 2 users = 25 a user. Drift (35 / 25 - 1) × 100 = 40%: the
    band [20, 40]'s upper edge, ok. Catches ``40 -> 41 @ [20, 40]`` (the band stated) and
    ``40 -> 39`` in the status."""
    coh = metric(report, "per_user_cost", "cohort_drift")
    assert (coh["new_users"], coh["returning_users"]) == (1, 2)
    assert coh["value"] == 40
    assert coh["band"] == [20, 40]
    assert coh["status"] == "ok"


def test_a_tool_call_is_not_an_llm_call(report: dict[str, Any]) -> None:
    """Features: chat $85 over 3 LLM calls, search $0 over one tool call and no LLM call. Usage
    shares are of LLM calls: chat 3 / 3 = 100%, search 0%. chat has 100% of spend, not 3 × 100:
    watch. Catches ``SQL 0 -> 1`` in feature.py's ``ELSE 0 END) AS calls`` (the tool call would
    count: chat 75%, search 25%)."""
    f = metric(report, "top_feature_concentration", "top_feature_spend_share")
    assert [(x["feature"], x["spend_share_pct"], x["usage_share_pct"]) for x in f["features"]] == [
        ("chat", 100, 100),
        ("search", 0, 0),
    ]
    assert f["status"] == "watch"


def test_the_panel_month_caps_and_tables_by_hand(ledger: Ledger) -> None:
    """As of Feb 14: 14 of 28 days. Caps under ``SOFT_HALF``: N1 14 seats × $10 = $140 (soft
    70), R1 its contracted pool $200 (soft 100, 10 seats), R2 the tier's $5000 (soft 2500, 50
    seats). The month, each cap and the tables built from them are frozen values: one panel's
    tables are built once and read by every KPI, none can change them under the others.
    Catches ``True -> False @ @dataclass(frozen=True)`` on Panel, Cap, PanelTables and the
    routing bands (RateBand)."""
    with QueryContext.open(ledger) as ctx:
        p = panel_period(ctx, "2026-02", dt.date(2026, 2, 14))
        caps = resolve_caps(ctx, parse_policy(SOFT_HALF))
        t = build(ctx, p, caps, parts=["caps"])
    assert (p.elapsed_days, p.month_days) == (14, 28)
    assert {c: (k.tier, k.hard, k.soft, k.seats) for c, k in caps.items()} == {
        "N1": ("team", 140, 70, 14),
        "R1": ("team", 200, 100, 10),
        "R2": ("enterprise", 5000, 2500, 50),
    }
    for obj, field in (
        (p, "elapsed_days"),
        (caps["N1"], "hard"),
        (t, "days"),
        (RATE_BANDS["payg"], "alarm"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


def test_a_user_who_spent_nothing_is_not_counted_for_concentration(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """One customer, C1 (pro, 20 seats), in February: user b0 spends $80, b1..b19 $1 each (20
    paying users, $99); z0 makes one free call, o0 only reports a task outcome (no cost at
    all: a user cost of 0, not null and not 1) and g0 only meets the guard on Feb 3 (denied at
    the hard limit, degraded twice by the soft cap and once failing open): not a user of the
    product, no row in the users table. Two free customers (the tier's $1 cap, hard_cap) spend
    $0.10 each on Feb 1; F1 is denied by a velocity rule on Feb 2, F2 at the hard limit on Feb 3;
    F3 makes no call at all, denied at the hard limit on Feb 4 (its first request). F1's user u0
    makes one call of a model no price list has (unpriced: cost null, no tokens).
    Top-user concentration counts paying users
    only: 20 >= the 20 needed, top 5% = ceil(20 / 20) = 1 user: 80 / 99 = 80.81% > 70: flagged.
    Counting z0 or o0 would make 21 or 22 users, the top 2 of them, 81 / 99 or more.

    Pro's budget in tokens here (22,000 a month, soft 50%: 11,000; per user of 20 seats: soft
    550, hard 1,100). Every LLM call is 1,000 input + 100 output = 1,100 tokens: b0..b19 and z0
    1,100 each, o0 0. p90 of the 22 users' tokens / 550: position 0.9 × 21 = 18.9 of the sorted
    (0, 1100 × 21) is 1,100: 200% of the soft cap; p99 1,100 / 1,100 = 100% of the hard cap.
    The customer's month: 21 LLM calls, 21 × 1,100 = 23,100 tokens (the outcome and the guard
    decisions carry none) >= 22,000 on Feb 1: cap hit that day, 105% used. Degraded: the soft
    cap's two, not the fail-open one: 2 of 21 LLM calls = 9.52%. Free users (soft cap $1 × 0.7
    = 0.70 a seat): f1 0.10, f2 0.10, u0 0 (its null cost counts as 0): p90 at position 1.8 of
    (0, 0.10, 0.10) = 0.10 -> 0.10 / 0.70 = 14.29%. Free tier: only F2 was denied
    at the hard limit (a velocity deny is not the cap), F2 and F3: 2 of 3 active customers (a
    request the guard denied is activity) = 66.67%.

    The events arrive in two ingests (b0..b9, then the rest), so a customer's day is summed over
    two segments' roll-ups: C1 spent 80 + 9 × 1 in the first and 10 × 1 in the second, $99 in
    all (the largest customers: C1 $99, F1 and F2 $0.10). Each figure from the roll-ups (the
    default) and from the events alone (``use_rollup =
    False``: the queries over the events). Catches ``SQL > -> >=`` in per_tenant.py's ``WHERE
    cost > 0``, ``SQL 0 -> 1`` in the users table's ``coalesce(sum(cost_usd), 0) AS cost`` (u0
    would have spent $1: p90 0.82 / 0.70) and ``SQL + -> -``
    in its tokens (1,000 - 100 = 900 a call: 163.6%), and ``SQL quoted value changed`` in its
    ``kind <> 'guard'`` (g0 would be a 23rd pro user); in the customer × day table, ``SQL 0 ->
    1`` in ``ELSE 0 END) AS tokens`` and ``AS calls`` (the outcome and the guard decisions would
    add a token and a call each), the quoted kinds and actions of its calls and degraded
    counts, the fail-open rule (``<> -> =``), and the capped count's ``action = 'deny'`` and
    ``AND rule = 'hard_limit'``, the ``'guard'`` of its routed count (F3 would not be active)
    and its ``GROUP BY 1, 2``; in the daily roll-up's customer × day query, ``SQL sum ->
    max`` on its spend, tokens and calls (a day in two segments is two rows) and ``SQL 0 -> 1``
    in its ``coalesce(sum(input_tokens), 0)`` (C1's days with no LLM call) and in its guard
    rows' ``ELSE 0 END) AS capped`` (F1's velocity deny would be a cap)."""
    e = Events()
    e.llm("C1", "b0", day(1), "80.00")
    for i in range(1, 20):
        e.llm("C1", f"b{i}", day(1), "1.00")
    e.llm("C1", "z0", day(1), "0")
    e.rows.append(
        {
            "event_id": "o0",
            "kind": "task_outcome",
            "ts": day(2),
            "customer_id": "C1",
            "user_id": "o0",
            "task_id": "t0",
            "outcome": "accepted",
        }
    )
    e.guard("C1", "g0", day(3), "deny", "hard_limit")
    e.guard("C1", "g0", day(3), "degrade", "soft_cap")
    e.guard("C1", "g0", day(3), "degrade", "soft_cap")
    for f in ("F1", "F2"):
        e.llm(f, f.lower(), day(1), "0.10")
    e.guard("F1", "f1", day(2), "deny", "velocity")
    e.rows.append(  # an LLM call no price list knows: unpriced, its cost null (not 0, not 1)
        {
            "event_id": "u0",
            "kind": "llm_call",
            "ts": day(2),
            "customer_id": "F1",
            "user_id": "u0",
            "provider": "acme",
            "model": "in-house-v0",
            "input_tokens": 0,
            "output_tokens": 0,
        }
    )
    e.guard("F2", "f2", day(3), "deny", "hard_limit")
    e.guard("F3", "f3", day(4), "deny", "hard_limit")
    e.guard("C1", "g0", day(3), "degrade", "fail_open:store_unavailable")
    # two ingests, two segments: C1's Feb 1 is two rows of the daily roll-up (b0..b9, the rest)
    tmp = tmp_path_factory.mktemp("crowd")
    led = make_ledger(tmp, e.rows[:10], CROWD_CSV)
    second = tmp / "second.jsonl"
    second.write_text("".join(json.dumps(r) + "\n" for r in e.rows[10:]))
    ingest([second], led)
    for use_rollup in (True, False):  # the roll-ups (the default), then the events alone
        with QueryContext.open(led) as ctx:
            if not use_rollup:
                ctx.use_rollup = False
            rep = kpis(
                ctx, period="2026-02", as_of=dt.date(2026, 2, 28), policy=parse_policy(TOKENS)
            )
        _check_crowd(rep)


def _check_crowd(rep: dict[str, Any]) -> None:
    """The crowd ledger's figures (the test's docstring)."""
    conc = metric(rep, "per_tenant_cost", "top_user_concentration")
    assert conc["judged"] == 1 and conc["status"] == "watch"
    assert [(c["customer_id"], c["users"], c["top5pct_share"]) for c in conc["flagged"]] == [
        ("C1", 20, pytest.approx(8000 / 99, rel=1e-12))
    ]
    soft = metric(rep, "per_user_cost", "top_decile_vs_soft_cap")
    assert soft["value"]["pro"] == pytest.approx(200, rel=1e-12)
    assert [t["users"] for t in soft["tiers"] if t["tier"] == "pro"] == [22]
    hard = metric(rep, "per_user_cost", "top_percentile_vs_hard_cap")
    assert hard["value"]["pro"] == pytest.approx(100, rel=1e-12)
    (c1,) = metric(rep, "tier_budget_utilization", "median_projected_pct")["at_risk"]
    assert (c1["used"], c1["actual_pct"], c1["hit_date"]) == (
        23100,
        pytest.approx(105, rel=1e-12),
        dt.date(2026, 2, 1),
    )
    top = metric(rep, "per_tenant_cost", "top20_share")["top_customers"]
    assert [(c["customer_id"], c["cost_usd"]) for c in top] == [
        ("C1", 99),
        ("F1", Decimal("0.1")),
        ("F2", Decimal("0.1")),
    ]
    (pro,) = metric(rep, "soft_cap_degradation_rate", "soft_cap_degradation_rate")["tiers"]
    assert (pro["tier"], pro["llm_calls"]) == ("pro", 21)
    assert pro["rate_pct"] == pytest.approx(200 / 21, rel=1e-12)
    assert soft["value"]["free"] == pytest.approx(10 / 0.7, rel=1e-12)
    (free,) = metric(rep, "overage_routing_rate", "overage_routing_rate")["tiers"]
    assert (free["tier"], free["active_customers"]) == ("free", 3)
    assert free["rate_pct"] == pytest.approx(200 / 3, rel=1e-12)


CROWD_CSV = (
    "C1,C1,pro,smb,50,20,,2020-01-01\n"
    "F1,F1,free,smb,0,1,,2020-01-01\n"
    "F2,F2,free,smb,0,1,,2020-01-01\n"
    "F3,F3,free,smb,0,1,,2020-01-01\n"
)

#: a token budget for pro (C1's tier)
TOKENS = {
    "guard": {"default_tier": "free"},
    "tiers": {
        "free": {"period": "month", "hard_limit_usd": 1, "overage": "hard_cap"},
        "pro": {
            "period": "month",
            "hard_limit_tokens": 22000,
            "soft_threshold": 0.5,
            "overage": "soft_cap_degrade",
            "degrade_to": {"big": "small"},
        },
    },
}


def test_nineteen_paying_users_are_too_few(tmp_path_factory: pytest.TempPathFactory) -> None:
    """C2 in February: 19 users spend $1 each and z0 makes a free call. 19 paying users are
    fewer than the 20 top-user concentration needs: no customer judged (no_data), however many
    users spent nothing. Catches ``SQL > -> >=`` in the ``WHERE cost > 0`` of the query that
    picks the customers to rank (z0 would make C2 a 20-user customer)."""
    e = Events()
    for i in range(19):
        e.llm("C2", f"b{i}", day(1), "1.00")
    e.llm("C2", "z0", day(1), "0")
    led = make_ledger(tmp_path_factory.mktemp("few"), e.rows, "C2,C2,pro,smb,50,20,,2020-01-01\n")
    rep = kpis(led, period="2026-02", as_of=dt.date(2026, 2, 28), policy=None)
    conc = metric(rep, "per_tenant_cost", "top_user_concentration")
    assert (conc["judged"], conc["flagged"], conc["status"]) == (0, [], "no_data")
