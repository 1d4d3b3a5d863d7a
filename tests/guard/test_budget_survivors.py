"""Budget rules the mutation run of planning.py / deciding.py showed untested (issue 19).

Both stores (the ``make_guard`` fixture runs each test on the memory store and on a real
redis-server). The clock starts at 2026-11-10 12:00:15 UTC (conftest.T0); every figure below is
worked out by hand in the test's docstring.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from tailguard.guard import Request

UTC = dt.UTC


def _ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_payg_token_overage_is_rounded_to_the_micro_dollar(make_guard, events):
    """A 1,000-token payg budget. Call 1: 900 tokens for $0.009, under the limit. Call 2: 300
    tokens for $0.001235 takes the count to 1,200: 200 tokens past the limit, priced at this
    call's own $0.001235 / 300 tokens: 0.001235 x 200 / 300 = $0.000823333..., rounded to the
    micro-dollar: $0.000823 (to ten micro-dollars it would read $0.00082)."""
    g = make_guard({"hard_limit_tokens": 1000, "overage": "payg"})
    s1 = g.settle(g.check(Request("acme", D("0.01"))).reservation, D("0.009"), input_tokens=900)
    assert (s1.spent, s1.overage_usd) == (D(900), D(0))
    s2 = g.settle(g.check(Request("acme", D("0.01"))).reservation, D("0.001235"), input_tokens=300)
    assert (s2.spent, s2.overage_usd, s2.unit) == (D(1200), D("0.000823"), "tok")
    assert [e["amount_usd"] for e in events if e["action"] == "overage"] == [D("0.000823")]


def test_budget_counter_outlives_its_month_by_seven_days(make_guard):
    """The November budget key ends with the month (2026-12-01 00:00 UTC) and is kept seven
    more days (2026-12-08 00:00 UTC) so a finished month stays readable; a task counter lives
    seven days from the check (2026-11-17 12:00:15 UTC)."""
    g = make_guard({"hard_limit_usd": 10, "overage": "hard_cap", "task_max_cost_usd": 1})
    r = g.check(Request("acme", D("0.01"), task_id="t1")).reservation
    assert r is not None
    (bkey, bamt, bunit, bexp), (tkey, tamt, tunit, texp) = r.items
    assert (bkey.endswith(":b:usd:month:2026-11"), bamt, bunit) == (True, 10_000, "usd")
    assert bexp == _ms(2026, 12, 8)
    assert (tkey.endswith(":t:t1"), tamt, tunit, texp) == (
        True,
        10_000,
        "usd",
        _ms(2026, 11, 17, 12, 0, 15),
    )


def test_day_budget_period(make_guard, clock):
    """A $1 daily budget spent at 12:00:15 is denied until midnight: 11:59:45 = 43,185 s; the
    message names the reset, 2026-11-11 00:00 UTC; the next day starts empty."""
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap", "period": "day"})
    g.settle(g.check(Request("acme", D("1"))).reservation, D("1"))
    st = g.status("acme")
    assert (st["period_start"], st["period_end"]) == (
        dt.datetime(2026, 11, 10, tzinfo=UTC),
        dt.datetime(2026, 11, 11, tzinfo=UTC),
    )
    deny = g.check(Request("acme", D("0.000001")))
    assert (deny.rule, deny.retry_after) == ("hard_limit", 43_185)
    assert "dayly AI usage limit ($1.00). It resets on 2026-11-11 00:00 UTC" in (deny.message or "")
    clock.advance(43_185)
    assert g.check(Request("acme", D("1"))).allowed


def test_month_budget_deny_waits_for_the_month_end(make_guard):
    """$1 monthly, spent: from 2026-11-10 12:00:15 to 2026-12-01 00:00 is 20 days 11:59:45 =
    20 x 86,400 + 43,185 = 1,771,185 s."""
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap"})
    g.settle(g.check(Request("acme", D("0.4"))).reservation, D("1"))
    deny = g.check(Request("acme", D("0.000001")))
    assert (deny.rule, deny.retry_after) == ("hard_limit", 1_771_185)
    assert "resets on 2026-12-01 00:00 UTC" in (deny.message or "")


def test_session_velocity_counts_half_the_previous_hour_at_half_past(make_guard, clock):
    """$1 an hour per session. Two sessions spend $0.60 each in the 12:00 hour. At 13:30 half
    the previous hour is still in the sliding window: (3,600,000 - 1,800,000) x 10,000 //
    3,600,000 = 5,000 basis points, so $0.30 counts. A $0.70 call makes $1.00, not over $1:
    allowed. A $0.71 call makes $1.01: the session is killed."""
    g = make_guard({"hard_limit_usd": 100, "overage": "hard_cap", "session_max_usd_per_hour": 1})
    for s in ("s1", "s2"):
        d = g.check(Request("acme", D("0.60"), session_id=s))
        g.settle(d.reservation, D("0.60"))
    clock.advance(5_385)  # 12:00:15 -> 13:30:00
    assert g.check(Request("acme", D("0.70"), session_id="s1")).allowed
    kill = g.check(Request("acme", D("0.71"), session_id="s2"))
    assert (kill.action, kill.rule) == ("kill", "session_velocity")
    assert "over $1.00 an hour" in (kill.message or "")
    again = g.check(Request("acme", D("0.01"), session_id="s2"))
    assert (again.action, again.rule) == ("kill", "session_killed")


def test_task_dollars_count_the_actual_cost_at_settle(make_guard):
    """A $0.05 task ceiling. Call 1 reserves $0.04 and costs $0.01. Call 2: 0.01 + 0.04 =
    0.05, not over: allowed; it costs $0.03, so the task has spent $0.04. Call 3: 0.04 + 0.02
    = 0.06 > 0.05: denied, naming the ceiling."""
    g = make_guard({"hard_limit_usd": 10, "overage": "hard_cap", "task_max_cost_usd": "0.05"})
    g.settle(g.check(Request("acme", D("0.04"), task_id="t")).reservation, D("0.01"))
    d2 = g.check(Request("acme", D("0.04"), task_id="t"))
    assert d2.allowed
    g.settle(d2.reservation, D("0.03"))
    d3 = g.check(Request("acme", D("0.02"), task_id="t"))
    assert (d3.action, d3.rule, d3.retry_after) == ("deny", "task_max_cost_usd", None)
    assert "cost limit ($0.0500)" in (d3.message or "")  # 4 places below $1 (tailguard.money)


def test_token_window_is_corrected_by_the_actual_tokens(make_guard):
    """3,000 tokens a minute. Call 1 reserves 1,000 + 1,000 = 2,000 tokens and uses 500 + 300
    = 800: the window is corrected to 800. Call 2 (2,000 more): 2,800, allowed (4,000 without
    the correction). Call 3 (200 + 100 = 300): 3,100 > 3,000: denied, retry in 45 s (12:00:15
    to 12:01:00)."""
    g = make_guard({"hard_limit_usd": 10, "overage": "hard_cap", "tpm": 3000})

    def req(i: int, o: int) -> Request:
        return Request("acme", D("0.01"), input_tokens=i, max_output_tokens=o)

    d1 = g.check(req(1000, 1000))
    g.settle(d1.reservation, D("0.01"), input_tokens=500, output_tokens=300)
    assert g.check(req(1000, 1000)).allowed
    d3 = g.check(req(200, 100))
    assert (d3.action, d3.rule, d3.retry_after) == ("deny", "tpm", 45)
    assert "3,000 tokens a minute" in (d3.message or "")


def test_token_budget_counts_estimated_then_actual_tokens(make_guard):
    """A 1,000-token hard cap. Call 1 reserves 600 + 300 = 900 tokens, uses 500. Call 2
    reserves 400 + 100 = 500: 500 + 500 = 1,000, not over: allowed, settled at 500 (1,000
    spent). Call 3, one token: denied, the limit named in tokens."""
    g = make_guard({"hard_limit_tokens": 1000, "overage": "hard_cap"})

    def req(i: int, o: int) -> Request:
        return Request("acme", D("0.01"), input_tokens=i, max_output_tokens=o)

    s1 = g.settle(g.check(req(600, 300)).reservation, D("0.01"), input_tokens=500)
    assert s1.spent == D(500)
    d2 = g.check(req(400, 100))
    assert d2.allowed
    assert g.settle(d2.reservation, D("0.01"), input_tokens=400, output_tokens=100).spent == D(1000)
    d3 = g.check(req(1, 0))
    assert (d3.action, d3.rule) == ("deny", "hard_limit")
    assert "(1,000 tokens)" in (d3.message or "")


def test_degrade_at_the_soft_limit_and_to_the_end_past_the_hard_one(make_guard, events):
    """$1 budget, soft threshold 0.5 ($0.50), degrade past the hard limit too. Spent $0.50
    exactly reaches the soft limit: the next call degrades one step (gpt-4o -> gpt-4o-mini).
    At $0.90 spent a $0.10 call makes $1.00, not past the hard limit: one step still. A $0.11
    call makes $1.01: past it, to the end of the chain (gpt-3.5), rule hard_limit."""
    g = make_guard(
        {
            "hard_limit_usd": 1,
            "soft_threshold": "0.5",
            "overage": "soft_cap_degrade",
            "hard_limit_action": "degrade",
            "degrade_to": {"gpt-4o": "gpt-4o-mini", "gpt-4o-mini": "gpt-3.5"},
        }
    )

    def check(usd: str):
        return g.check(Request("acme", D(usd), model="gpt-4o"))

    under = check("0.49")  # 0 + 0.49 < 0.50
    assert (under.action, under.model, under.rule) == ("allow", "gpt-4o", None)
    g.release(under.reservation)
    at_soft = check("0.50")  # 0 + 0.50 >= 0.50
    assert (at_soft.action, at_soft.model, at_soft.rule) == (
        "degrade",
        "gpt-4o-mini",
        "soft_threshold",
    )
    g.settle(at_soft.reservation, D("0.90"))
    at_hard = check("0.10")
    assert (at_hard.action, at_hard.model, at_hard.rule) == (
        "degrade",
        "gpt-4o-mini",
        "soft_threshold",
    )
    g.release(at_hard.reservation)
    past = check("0.11")
    assert (past.action, past.model, past.rule) == ("degrade", "gpt-3.5", "hard_limit")


def test_rate_deny_half_a_second_before_the_minute_waits_one_second(make_guard, clock):
    """1 request a minute. At 12:00:59.5 the window ends in 0.5 s: retry after 1 s (rounded up
    to whole seconds, never 0); at 12:00:15 it ends in 45 s."""
    g = make_guard({"hard_limit_usd": 10, "overage": "hard_cap", "rpm": 1})
    assert g.check(Request("acme", D("0.01"))).allowed
    d = g.check(Request("acme", D("0.01")))
    assert (d.rule, d.retry_after) == ("rpm", 45)
    assert "1 requests a minute for your account. Try again in 45 seconds." in (d.message or "")
    clock.advance(44.5)
    assert (g.check(Request("acme", D("0.01"))).retry_after) == 1


def test_budget_deny_half_a_second_before_the_period_ends_waits_one_second(make_guard, clock):
    """A $1 budget by the minute, spent at 12:00:15. At 12:00:59.5 the period ends in 0.5 s:
    retry after 1 s (rounded up, never more)."""
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap", "period": "minute"})
    g.settle(g.check(Request("acme", D("1"))).reservation, D("1"))
    clock.advance(44.5)
    d = g.check(Request("acme", D("0.01")))
    assert (d.rule, d.retry_after) == ("hard_limit", 1)
