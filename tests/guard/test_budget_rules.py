"""Budget rules the mutation run of issue 19 showed untested, on both stores.

Minute and hour budget periods, payg overage counted in tokens, the task step counter added at
settle, and the rule a hard-limit deny names when a session velocity limit is also set. The
clock starts at 2026-11-10 12:00:15 UTC (conftest.T0); every figure is worked out in comments.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from tailguard.guard import Request

UTC = dt.UTC


def _at(h: int, m: int) -> dt.datetime:
    return dt.datetime(2026, 11, 10, h, m, tzinfo=UTC)


@pytest.mark.parametrize(
    "period,start,end,wait,adjective",
    [
        ("minute", _at(12, 0), _at(12, 1), 45, "per-minute"),  # 12:00:15 -> 12:01:00 is 45 s
        ("hour", _at(12, 0), _at(13, 0), 3585, "hourly"),  # 12:00:15 -> 13:00:00: 59 min 45 s
    ],
)
def test_short_budget_periods(make_guard, clock, period, start, end, wait, adjective):
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap", "period": period})
    g.settle(g.check(Request("acme", D("1"))).reservation, D("1"))  # the $1 budget spent
    st = g.status("acme")
    assert (st["period_start"], st["period_end"], st["spent"]) == (start, end, D("1"))
    deny = g.check(Request("acme", D("0.01")))
    assert (deny.rule, deny.retry_after) == ("hard_limit", wait)
    assert f"your plan's {adjective} AI usage limit ($1.00)" in (deny.message or "")
    clock.advance(wait)  # the next period starts empty
    assert g.check(Request("acme", D("1"))).allowed
    assert g.status("acme")["spent"] == D("0")


def test_payg_overage_in_tokens(make_guard, events):
    """A 1,000-token payg budget. Call 1: 800 tokens for $0.08, no overage. Call 2: 400 tokens
    for $0.04 takes the count to 1,200: 200 tokens past the limit, priced at the call's own
    $0.04 / 400 tokens = $0.0001 a token, so $0.02 of overage. Call 3: 100 tokens for $0.03,
    all past the limit: $0.03."""
    g = make_guard({"hard_limit_tokens": 1000, "overage": "payg"})
    s1 = g.settle(
        g.check(Request("acme", D("0.1"))).reservation,
        D("0.08"),
        input_tokens=500,
        output_tokens=300,
    )
    assert (s1.spent, s1.overage_usd, s1.unit) == (D(800), D(0), "tok")
    s2 = g.settle(
        g.check(Request("acme", D("0.1"))).reservation,
        D("0.04"),
        input_tokens=100,
        output_tokens=300,
    )
    assert (s2.spent, s2.overage_usd) == (D(1200), D("0.02"))
    s3 = g.settle(g.check(Request("acme", D("0.1"))).reservation, D("0.03"), input_tokens=100)
    assert (s3.spent, s3.overage_usd) == (D(1300), D("0.03"))
    assert [e["amount_usd"] for e in events if e["action"] == "overage"] == [D("0.02"), D("0.03")]


def test_task_steps_count_at_settle_not_at_release(make_guard):
    """Two model calls per task. A released call (the upstream failed) is not a step; two
    settled calls are, so the third check of the task is denied."""
    g = make_guard({"hard_limit_usd": 10, "overage": "hard_cap", "task_max_llm_calls": 2})
    g.release(g.check(Request("acme", D("0.01"), task_id="t1")).reservation)
    for _ in range(2):
        d = g.check(Request("acme", D("0.01"), task_id="t1"))
        assert d.allowed
        g.settle(d.reservation, D("0.01"))
    third = g.check(Request("acme", D("0.01"), task_id="t1"))
    assert (third.action, third.rule) == ("deny", "task_max_llm_calls")
    assert "limit of 2 model calls" in (third.message or "")
    assert g.check(Request("acme", D("0.01"), task_id="t2")).allowed  # another task


def test_hard_limit_deny_names_the_budget_when_velocity_is_set(make_guard, events):
    """With a session velocity limit the velocity counter is checked first (index 0) and the
    budget second: a $2 call on a $1 budget, well under $100/hour, is a budget deny (not a
    kill, and not named after the velocity rule)."""
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap", "session_max_usd_per_hour": 100})
    d = g.check(Request("acme", D("2"), session_id="s1"))
    assert (d.action, d.rule) == ("deny", "hard_limit")
    assert "monthly AI usage limit ($1.00)" in (d.message or "")
    assert events.actions() == [("deny", "hard_limit")]
    # the session is not killed by it; and a settle reports the budget's spend (0.30 + 0.50),
    # not the session's trailing hour (0.50)
    g.settle(g.check(Request("acme", D("0.30"))).reservation, D("0.30"))
    ok = g.check(Request("acme", D("0.50"), session_id="s1"))
    assert ok.allowed
    assert g.settle(ok.reservation, D("0.50")).spent == D("0.80")
