"""Budget rules the mutation run of planning.py / deciding.py showed untested (issue 19).

Both stores (the ``make_guard`` fixture runs each test on the memory store and on a real
redis-server). The clock starts at 2026-11-10 12:00:15 UTC (conftest.T0); every figure below is
worked out by hand in the test's docstring.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal as D

from tailguard.guard import Guard, Request, parse_policy
from tailguard.guard.deciding import STAT_NAMES

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
    message names the reset, 2026-11-11 00:00 UTC, and says "daily" (it said "dayly"); the next
    day starts empty."""
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap", "period": "day"})
    g.settle(g.check(Request("acme", D("1"))).reservation, D("1"))
    st = g.status("acme")
    assert (st["period_start"], st["period_end"]) == (
        dt.datetime(2026, 11, 10, tzinfo=UTC),
        dt.datetime(2026, 11, 11, tzinfo=UTC),
    )
    deny = g.check(Request("acme", D("0.000001")))
    assert (deny.rule, deny.retry_after) == ("hard_limit", 43_185)
    assert "daily AI usage limit ($1.00). It resets on 2026-11-11 00:00 UTC" in (deny.message or "")
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


def _stats(**nonzero: int) -> dict[str, int]:
    """The guard's counters: every one 0 but those named."""
    return {k: nonzero.get(k, 0) for k in STAT_NAMES}


def test_every_decision_is_counted_once_and_leaves_its_event(make_guard, events):
    """$10 a month, soft threshold 50% ($5), hard cap, a session may spend $3 an hour.

    1. $1 in session s1: allowed, settled at $1 (the budget and s1's hour: $1).
    2. $4.50, no session: 1 + 4.5 = 5.5 >= 5 crosses the soft limit: allowed with an alert;
       released.
    3. $20: 1 + 20 > 10: denied at the hard limit.
    4. $2.50 in s1: s1's hour would be 1 + 2.5 = 3.5 > 3: killed; the kill event carries what
       the session had spent, $1.
    5. $0.01 in s1: the session stays killed (a deny event, rule session_killed).
    Counters: 5 checks, 2 allowed, 1 denied, 2 killed, 1 settle, 1 release, 1 soft threshold;
    nothing else. Every event is stamped with the clock, 2026-11-10 12:00:15 UTC."""
    g = make_guard(
        {
            "hard_limit_usd": 10,
            "soft_threshold": "0.5",
            "overage": "hard_cap",
            "session_max_usd_per_hour": 3,
        }
    )
    g.settle(g.check(Request("acme", D("1"), session_id="s1")).reservation, D("1"))
    alerted = g.check(Request("acme", D("4.5")))
    assert alerted.allowed
    g.release(alerted.reservation)
    assert g.check(Request("acme", D("20"))).rule == "hard_limit"
    assert g.check(Request("acme", D("2.5"), session_id="s1")).rule == "session_velocity"
    assert g.check(Request("acme", D("0.01"), session_id="s1")).rule == "session_killed"
    assert g.stats == _stats(
        checks=5, allow=2, deny=1, kill=2, settles=1, releases=1, soft_threshold=1
    )
    assert events.actions() == [
        ("soft_threshold", "soft_threshold"),
        ("deny", "hard_limit"),
        ("kill", "session_velocity"),
        ("deny", "session_killed"),
    ]
    assert {e["ts"] for e in events} == {"2026-11-10T12:00:15+00:00"}
    assert [e["amount_usd"] for e in events] == [None, None, D(1), None]


def test_degrades_are_counted(make_guard):
    """$1, soft threshold 50%, degrade past the soft limit: $0.30 allowed (0.30 < 0.50) and
    settled; $0.30 more makes 0.60 >= 0.50: degraded, and the soft limit's one alert."""
    g = make_guard(
        {
            "hard_limit_usd": 1,
            "soft_threshold": "0.5",
            "overage": "soft_cap_degrade",
            "degrade_to": {"gpt-4o": "gpt-4o-mini"},
        }
    )
    g.settle(g.check(Request("acme", D("0.3"), model="gpt-4o")).reservation, D("0.3"))
    assert g.check(Request("acme", D("0.3"), model="gpt-4o")).action == "degrade"
    assert g.stats == _stats(checks=2, allow=1, degrade=1, settles=1, soft_threshold=1)


def test_a_failing_sink_is_counted_and_never_fails_the_call(make_store, clock):
    """A sink that raises: the deny is still returned, and each lost event counted (two
    denies of a $2 call on a $1 budget: two sink errors)."""

    def broken(_batch: list[dict]) -> None:
        raise OSError("disk full")

    pol = parse_policy({"guard": {"default_tier": "t"}, "tiers": {"t": {"hard_limit_usd": 1}}})
    g = Guard(pol, make_store(), sink=broken, clock=clock)
    for _ in range(2):
        assert g.check(Request("acme", D("2"))).rule == "hard_limit"
    assert g.stats == _stats(checks=2, deny=2, sink_errors=2)


def test_payg_overage_is_stamped_at_settle_and_only_for_payg(make_guard, events, clock):
    """payg, $1: call 1 settles $0.80 (no overage); a quarter second later call 2 settles
    $0.50: 1.30 - max(1, 0.80) = $0.30 past the limit, its event stamped 12:00:15.250 (the
    settle's time, not the check's). A hard_cap tier settled past its limit by an
    under-estimate ($0.90 reserved, $1.50 spent) has spent $1.50 and no overage; a payg tier
    with no hard limit has none either."""
    g = make_guard({"hard_limit_usd": 1, "overage": "payg"})
    s1 = g.settle(g.check(Request("acme", D("0.5"))).reservation, D("0.8"))
    assert (s1.spent, s1.overage_usd) == (D("0.8"), D(0))
    d2 = g.check(Request("acme", D("0.1")))
    clock.advance(0.25)
    s2 = g.settle(d2.reservation, D("0.5"))
    assert (s2.spent, s2.overage_usd, s2.unit) == (D("1.3"), D("0.3"), "usd")
    (ev,) = [e for e in events if e["action"] == "overage"]
    assert (ev["ts"], ev["amount_usd"], ev["rule"]) == (
        "2026-11-10T12:00:15.250000+00:00",
        D("0.3"),
        "payg",
    )
    assert g.stats["overage"] == 1
    capped = make_guard({"hard_limit_usd": 1, "overage": "hard_cap"})
    s = capped.settle(capped.check(Request("capped", D("0.9"))).reservation, D("1.5"))
    assert (s.spent, s.overage_usd) == (D("1.5"), D(0))
    unlimited = make_guard({"overage": "payg"})
    s = unlimited.settle(unlimited.check(Request("free", D("5"))).reservation, D("7"))
    assert (s.spent, s.overage_usd) == (D("7"), D(0))
    assert capped.stats["overage"] == 0 and unlimited.stats["overage"] == 0
    assert unlimited.stats["internal_errors"] == 0
    assert [e["action"] for e in events].count("overage") == 1


def test_soft_threshold_webhook_in_tokens(hook, make_guard):
    """A 1,000-token budget with a 50% soft threshold (500 tokens). A call of 400 + 200 =
    600 tokens crosses it: the webhook gets the counts in tokens (whole numbers, not
    dollars), the month's label and the clock's time."""
    url = f"http://127.0.0.1:{hook.server_port}/alert"
    g = make_guard(
        {"hard_limit_tokens": 1000, "soft_threshold": "0.5", "overage": "hard_cap"},
        guard={"webhook_url": url},
    )
    assert g.check(Request("acme", D("0.01"), input_tokens=400, max_output_tokens=200)).allowed
    g.alerter.close()
    assert hook.got == [
        {
            "kind": "tailguard.soft_threshold",
            "customer_id": "acme",
            "tier": "t",
            "scope": "customer",
            "period": "month:2026-11",
            "unit": "tok",
            "used": 600,
            "soft_limit": 500,
            "hard_limit": 1000,
            "soft_threshold": "0.5",
            "overage": "hard_cap",
            "ts": "2026-11-10T12:00:15+00:00",
        }
    ]


def test_velocity_counter_lives_two_hours_and_weighs_the_last_by_the_millisecond(make_guard, clock):
    """$1 an hour per session. At 12:00:15 sessions s1 and s2 each make a $1 call, allowed (1
    is not over 1); a velocity counter is its hour's (12:00) and expires at 14:00 UTC (it is
    read as the previous hour until then). At 13:00:00.000 all of the previous hour counts,
    3,600,000 x 10,000 // 3,600,000 = 10,000 basis points: s1's $1, so a $0 call makes exactly
    $1: allowed (10,001 points would count $1.0001: killed), and $0.000001 makes $1.000001:
    killed (9,999 points would count $0.9999: allowed). At 13:30:00.000 half counts,
    (3,600,000 - 1,800,000) x 10,000 // 3,600,000 = 5,000 points: $0.50; a $0.50 call makes
    exactly $1: allowed (released); $0.500001 makes $1.000001: s2 is killed. (4,999 points
    would count $0.4999.)"""
    g = make_guard({"hard_limit_usd": 100, "overage": "hard_cap", "session_max_usd_per_hour": 1})
    for s in ("s1", "s2"):
        d = g.check(Request("acme", D("1"), session_id=s))
        assert d.allowed
        vkey, amount, unit, expire = d.reservation.items[0]
        assert (vkey.endswith(f":v:{s}:498420"), amount, unit) == (True, 1_000_000, "usd")
        assert expire == _ms(2026, 11, 10, 14)
        g.settle(d.reservation, D("1"))
    clock.t = _ms(2026, 11, 10, 13) / 1000
    on_the_hour = g.check(Request("acme", D("0"), session_id="s1"))
    assert on_the_hour.allowed
    g.release(on_the_hour.reservation)
    past = g.check(Request("acme", D("0.000001"), session_id="s1"))
    assert (past.action, past.rule) == ("kill", "session_velocity")
    clock.t = _ms(2026, 11, 10, 13, 30) / 1000
    half = g.check(Request("acme", D("0.5"), session_id="s2"))
    assert half.allowed
    g.release(half.reservation)
    over = g.check(Request("acme", D("0.500001"), session_id="s2"))
    assert (over.action, over.rule) == ("kill", "session_velocity")


def test_rate_windows_expire_at_the_end_of_the_next_minute(make_guard):
    """5 requests a minute for the account, 2 per user, 3,000 tokens a minute: a check at
    12:00:15 counts in the 12:00 windows (minute 1,794,312,015,000 // 60,000 = 29,905,200),
    each kept until 12:02:00 UTC; the call counts once in each request window and its 100 +
    50 = 150 tokens in the token window."""
    g = make_guard(
        {"hard_limit_usd": 10, "overage": "hard_cap", "rpm": 5, "user_rpm": 2, "tpm": 3000}
    )
    d = g.check(Request("acme", D("0.01"), input_tokens=100, max_output_tokens=50, user_id="u"))
    end = _ms(2026, 11, 10, 12, 2)
    # (key, limit, amount, expire_ms): a Rate's shape
    assert [tuple(r) for r in d.reservation.rates] == [
        ("tg:{acme}:rm:29905200", 5, 1, end),
        ("tg:{acme}:u:u:29905200", 2, 1, end),
        ("tg:{acme}:tm:29905200", 3000, 150, end),
    ]


def test_a_settle_with_output_tokens_only(make_guard):
    """A 1,000-token budget settled with 300 output tokens and no input count: 300 tokens,
    the missing input counting 0 (not 1); then 200 input tokens and no output count: 500;
    then one token of each: 502 (a count of 1 is a token, not "none")."""
    g = make_guard({"hard_limit_tokens": 1000, "overage": "hard_cap"})
    s1 = g.settle(g.check(Request("acme", D("0.01"))).reservation, D("0.01"), output_tokens=300)
    assert s1.spent == D(300)
    s2 = g.settle(g.check(Request("acme", D("0.01"))).reservation, D("0.01"), input_tokens=200)
    assert s2.spent == D(500)
    one = g.check(Request("acme", D("0.01")))
    assert g.settle(one.reservation, D("0.01"), input_tokens=1, output_tokens=1).spent == D(502)


def test_a_kill_lasts_kill_ttl(make_guard, clock, store_kind):
    """kill_ttl_s = 60. $1 an hour; the session spends $0.90, then asks for $0.20 (1.10 > 1):
    killed at 12:00:15. 59 s later it is still killed; 61 s later the flag has expired and a
    $0.05 call (0.90 + 0.05 <= 1) is allowed. (Redis is handed the flag's time to live as a
    duration and expires it by its own clock, which the test's clock does not move: the last
    step is the memory store's.)"""
    g = make_guard(
        {"hard_limit_usd": 100, "overage": "hard_cap", "session_max_usd_per_hour": 1},
        guard={"kill_ttl_s": 60},
    )
    g.settle(g.check(Request("acme", D("0.9"), session_id="s")).reservation, D("0.9"))
    assert g.check(Request("acme", D("0.2"), session_id="s")).rule == "session_velocity"
    clock.advance(59)
    assert g.check(Request("acme", D("0.05"), session_id="s")).rule == "session_killed"
    if store_kind == "memory":
        clock.advance(2)
        assert g.check(Request("acme", D("0.05"), session_id="s")).allowed


def test_december_budget_resets_on_new_year(make_guard, clock):
    """At 2026-12-31 23:59:00 UTC a spent $1 monthly budget is denied for 60 s, until
    2027-01-01 00:00 UTC; the counter is December's, kept until 2027-01-08; January starts
    empty."""
    clock.t = _ms(2026, 12, 31, 23, 59) / 1000
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap"})
    d = g.check(Request("acme", D("1")))
    bkey, _amt, _unit, bexp = d.reservation.items[0]
    assert (bkey.endswith(":b:usd:month:2026-12"), bexp) == (True, _ms(2027, 1, 8))
    g.settle(d.reservation, D("1"))
    deny = g.check(Request("acme", D("0.01")))
    assert (deny.rule, deny.retry_after) == ("hard_limit", 60)
    assert "It resets on 2027-01-01 00:00 UTC" in (deny.message or "")
    clock.advance(60)
    assert g.check(Request("acme", D("1"))).allowed


def test_the_rate_window_turns_on_the_minute(make_guard, clock):
    """1 request a minute. 12:00:15 allowed; 12:00:59.999 still the same minute: denied;
    12:01:00.000 a new minute: allowed."""
    g = make_guard({"hard_limit_usd": 10, "overage": "hard_cap", "rpm": 1})
    assert g.check(Request("acme", D("0.01"))).allowed
    clock.t = _ms(2026, 11, 10, 12, 0, 59, 999_000) / 1000
    assert g.check(Request("acme", D("0.01"))).rule == "rpm"
    clock.t = _ms(2026, 11, 10, 12, 1) / 1000
    assert g.check(Request("acme", D("0.01"))).allowed


def test_the_slow_road_accepts_every_bound(make_guard):
    """A request with ``seats`` (or an int estimate) is checked field by field
    (``why_invalid``): 0 and 10^12 tokens, a $1,000,000,000 estimate, 0 seats and an int
    estimate are all in range (a payg tier with no limit allows them); -1 seats, 10^12 + 1
    tokens and $1,000,000,001 are not, each named."""
    g = make_guard({"overage": "payg"})
    top = 10**12
    ok = [
        Request("acme", D(1_000_000_000), input_tokens=0, max_output_tokens=top, seats=2),
        Request("acme", D("0.01"), input_tokens=top, max_output_tokens=0, seats=0),
        Request("acme", 1),
    ]
    for r in ok:
        d = g.check(r)
        assert d.allowed, (r, d.message)
        g.release(d.reservation)
    bad = {
        "seats must be a whole number >= 0, got -1": Request("acme", D(1), seats=-1),
        "input_tokens must be a whole number from 0 to 1,000,000,000,000, got 1000000000001": (
            Request("acme", D(1), input_tokens=top + 1, seats=1)
        ),
        "estimated_cost_usd must be from 0 to 1,000,000,000 dollars, got 1000000001": (
            Request("acme", D(1_000_000_001))
        ),
    }
    for msg, r in bad.items():
        d = g.check(r)
        assert (d.rule, d.message) == ("invalid_request", f"This request was not sent: {msg}.")


def test_an_id_keys_cannot_hold_is_hashed_the_same_by_every_replica(make_guard):
    """Every replica (and every version in a rolling deploy) must name a customer's counters
    alike. An id with a character keys cannot hold (a newline) is named by its SHA-256's first
    32 hex digits (128 bits), "h:" before them: computed here with hashlib."""
    g = make_guard({"hard_limit_usd": 10, "overage": "hard_cap"})
    d = g.check(Request("ac\nme", D("0.01")))
    digest = hashlib.sha256(b"ac\nme").hexdigest()[:32]
    assert d.reservation.items[0][0] == f"tg:{{h:{digest}}}:b:usd:month:2026-11"
    assert g.check(Request("acme", D("0.01"))).reservation.items[0][0] == (
        "tg:{acme}:b:usd:month:2026-11"
    )
