"""One conformance suite, run on both stores (memory and a real redis-server).

Every expected value is worked out by hand in the comments. The clock starts at
2026-11-10 12:00:15 UTC (conftest.T0).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import msgspec

from tailguard.events.schema import Guard as GuardEvent
from tailguard.guard import Request

HARD_CAP = {"hard_limit_usd": 1.0, "overage": "hard_cap"}


def req(est: str = "0.30", **kw: Any) -> Request:
    kw.setdefault("model", "gpt-4o")
    return Request("acme", D(est), **kw)


def test_hard_cap_reserves_then_denies(make_guard, events):
    g = make_guard(HARD_CAP)
    ds = [g.check(req("0.30")) for _ in range(4)]
    # 0.30 + 0.30 + 0.30 = 0.90 reserved; a fourth 0.30 would make 1.20 > 1.00
    assert [d.action for d in ds] == ["allow", "allow", "allow", "deny"]
    deny = ds[3]
    assert deny.rule == "hard_limit" and deny.reservation is None
    # 2026-11-10 12:00:15 -> 2026-12-01 00:00:00 = 20 d 11 h 59 m 45 s = 1,771,185 s
    assert deny.retry_after == 1_771_185
    assert "monthly AI usage limit ($1.00)" in (deny.message or "")
    assert "2026-12-01 00:00 UTC" in (deny.message or "")
    for d in ds[:3]:
        g.settle(d.reservation, D("0.25"))
    # settled 0.75; 0.75 + 0.30 = 1.05 > 1.00 denied, 0.75 + 0.25 = 1.00 allowed (equal is in)
    assert g.check(req("0.30")).action == "deny"
    last = g.check(req("0.25"))
    assert last.action == "allow"
    s = g.settle(last.reservation, D("0.25"))
    assert s.spent == D("1.00") and s.overage_usd == 0
    assert g.check(req("0.000001")).action == "deny"
    assert ("deny", "hard_limit") in events.actions()
    for e in events:  # every event is a valid ledger guard event
        msgspec.json.decode(msgspec.json.encode(e), type=GuardEvent)


def test_release_refunds_and_settle_is_once(make_guard):
    g = make_guard(HARD_CAP)
    a = g.check(req("0.60"))
    assert g.check(req("0.60")).action == "deny"  # 0.60 + 0.60 > 1.00
    g.release(a.reservation)
    b = g.check(req("0.60"))
    assert b.action == "allow"  # the refund made room
    g.settle(b.reservation, D("0.50"))
    g.settle(b.reservation, D("0.50"))  # a second settle of one reservation is ignored
    g.release(b.reservation)
    assert g.status("acme")["spent"] == D("0.50")


def test_crashed_caller_reservation_expires(make_guard, clock):
    g = make_guard(HARD_CAP, guard={"reservation_ttl_s": 60})
    lost = g.check(req("0.90"))  # never settled: the caller crashed
    assert lost.action == "allow"
    assert g.check(req("0.20")).action == "deny"  # 0.90 + 0.20 > 1.00
    clock.advance(61)  # past the 60 s ttl: the next check refunds it
    d = g.check(req("0.20"))
    assert d.action == "allow"
    g.settle(d.reservation, D("0.20"))
    # a late settle of the expired reservation still counts the money that was spent
    g.settle(lost.reservation, D("0.70"))
    st = g.status("acme")
    assert st["spent"] == D("0.90") and st["reserved"] == 0  # 0.20 + 0.70


def test_soft_threshold_alerts_once_per_period(make_guard, events, clock):
    g = make_guard(
        {"hard_limit_usd": 10, "soft_threshold": 0.5, "overage": "hard_cap", "period": "day"}
    )
    for _ in range(4):  # 4 x $1.50 = 6.00; the soft limit is $5.00: crossed at the 4th
        g.settle(g.check(req("1.50")).reservation, D("1.50"))
    assert events.actions() == [("soft_threshold", "soft_threshold")]
    g.settle(g.check(req("1.50")).reservation, D("1.50"))  # still above: no second alert
    assert len(events) == 1
    clock.advance(86_400)  # the next day is a new period
    for _ in range(4):
        g.settle(g.check(req("1.50")).reservation, D("1.50"))
    assert events.actions() == [("soft_threshold", "soft_threshold")] * 2


def test_soft_cap_degrade_then_deny(make_guard, events):
    tier = {
        "hard_limit_usd": 1.0,
        "overage": "soft_cap_degrade",
        "degrade_to": {"gpt-4o": "gpt-4o-mini", "gpt-4o-mini": "gpt-4.1-nano"},
    }
    g = make_guard(tier)
    # soft limit 0.70: 0.30 -> allow (0.30), 0.30 -> allow (0.60), 0.30 -> 0.90 >= 0.70 degrade
    d = [g.check(req("0.30")) for _ in range(3)]
    assert [(x.action, x.model) for x in d] == [
        ("allow", "gpt-4o"),
        ("allow", "gpt-4o"),
        ("degrade", "gpt-4o-mini"),
    ]
    assert d[2].rule == "soft_threshold"
    deny = g.check(req("0.30"))  # 1.20 > 1.00 and hard_limit_action defaults to deny
    assert deny.action == "deny" and deny.rule == "hard_limit"
    assert ("degrade", "soft_threshold") in events.actions()
    ev = next(e for e in events if e["action"] == "degrade")
    assert ev["model"] == "gpt-4o-mini"


def test_soft_cap_degrade_further_at_the_hard_limit(make_guard):
    tier = {
        "hard_limit_usd": 1.0,
        "overage": "soft_cap_degrade",
        "hard_limit_action": "degrade",
        "degrade_to": {"gpt-4o": "gpt-4o-mini", "gpt-4o-mini": "gpt-4.1-nano"},
    }
    g = make_guard(tier)
    g.settle(g.check(req("0.90")).reservation, D("0.90"))
    d = g.check(req("0.30"))  # 1.20 > 1.00: to the end of the chain, gpt-4.1-nano
    assert (d.action, d.model, d.rule) == ("degrade", "gpt-4.1-nano", "hard_limit")


def test_payg_meters_overage(make_guard, events):
    g = make_guard({"hard_limit_usd": 1.0, "overage": "payg"})
    g.settle(g.check(req("0.80")).reservation, D("0.80"))
    d = g.check(req("0.60"))
    assert d.action == "allow"  # payg never denies on the budget
    s = g.settle(d.reservation, D("0.50"))  # 0.80 + 0.50 = 1.30: 0.30 over the limit
    assert (s.spent, s.overage_usd) == (D("1.30"), D("0.30"))
    s2 = g.settle(g.check(req("0.20")).reservation, D("0.20"))  # wholly over: 0.20
    assert s2.overage_usd == D("0.20")
    over = [e for e in events if e["action"] == "overage"]
    assert [e["amount_usd"] for e in over] == [D("0.30"), D("0.20")]


def test_rate_limits(make_guard):
    g = make_guard({"overage": "payg", "rpm": 3, "user_rpm": 2, "tpm": 1000})
    assert g.check(req(user_id="u1")).allowed
    assert g.check(req(user_id="u1")).allowed
    d = g.check(req(user_id="u1"))  # u1's third request in the minute
    # 15 s into the minute: 45 s to the next window
    assert (d.action, d.rule, d.retry_after) == ("deny", "user_rpm", 45)
    assert g.check(req(user_id="u2")).allowed  # the customer's 3rd
    d = g.check(req(user_id="u3"))
    assert (d.action, d.rule) == ("deny", "rpm")


def test_tpm_counts_estimates_then_actuals(make_guard, clock):
    g = make_guard({"overage": "payg", "tpm": 1000})
    a = g.check(req(input_tokens=300, max_output_tokens=500))  # 800 of 1000
    assert a.allowed
    assert g.check(req(input_tokens=100, max_output_tokens=200)).rule == "tpm"  # 1100
    g.settle(a.reservation, D("0.01"), input_tokens=300, output_tokens=100)  # 800 -> 400
    assert g.check(req(input_tokens=100, max_output_tokens=200)).allowed  # 700
    clock.advance(60)
    assert g.check(req(input_tokens=500, max_output_tokens=500)).allowed  # new window


def test_max_input_tokens(make_guard, events):
    g = make_guard({"overage": "payg", "max_input_tokens": 1000})
    assert g.check(req(input_tokens=1000)).allowed
    d = g.check(req(input_tokens=1001))
    assert (d.action, d.rule, d.retry_after) == ("deny", "max_input_tokens", None)
    assert "1,001 tokens, the limit is 1,000" in (d.message or "")
    assert events.actions() == [("deny", "max_input_tokens")]


def test_task_step_and_dollar_ceilings(make_guard):
    g = make_guard({"overage": "payg", "task_max_llm_calls": 3, "task_max_cost_usd": 1.0})
    ok = [g.check(req("0.10", task_id="t1")) for _ in range(3)]
    assert all(d.allowed for d in ok)
    assert g.check(req("0.10", task_id="t1")).rule == "task_max_llm_calls"  # 4th step
    g.release(ok[0].reservation)  # a call that never happened is not a step
    assert g.check(req("0.10", task_id="t1")).allowed
    assert g.check(req("0.10", task_id="t2")).allowed  # another task
    big = g.check(req("0.90", task_id="t3"))
    g.settle(big.reservation, D("0.90"))
    d = g.check(req("0.20", task_id="t3"))  # 0.90 + 0.20 > 1.00
    assert (d.action, d.rule, d.retry_after) == ("deny", "task_max_cost_usd", None)


def test_session_velocity_kill_stays_killed(make_guard, events, clock):
    g = make_guard({"overage": "payg", "session_max_usd_per_hour": 5})
    for _ in range(4):  # $4.00 in the session's hour
        g.settle(g.check(req("1.00", session_id="s1")).reservation, D("1.00"))
    d = g.check(req("1.50", session_id="s1"))  # 4.00 + 1.50 > 5.00: runaway
    assert (d.action, d.rule) == ("kill", "session_velocity")
    assert ("kill", "session_velocity") in events.actions()
    clock.advance(3 * 3600)  # hours later, and a cheap call: still killed
    d = g.check(req("0.01", session_id="s1"))
    assert (d.action, d.rule) == ("kill", "session_killed")
    assert g.check(req("0.01", session_id="s2")).allowed  # other sessions are fine
    assert g.revive("acme", "s1")
    assert g.check(req("0.01", session_id="s1")).allowed


def test_session_velocity_slides_over_the_previous_hour(make_guard, clock):
    g = make_guard({"overage": "payg", "session_max_usd_per_hour": 5})
    clock.t = clock.t - clock.t % 3600 + 3000  # 12:50:00
    g.settle(g.check(req("4.00", session_id="s")).reservation, D("4.00"))
    clock.advance(1200)  # 13:10:00, 1/6 into the new hour: 5/6 of the $4.00 still counts
    # estimate 4.00 x 8333 bp = 3.3332; + 1.50 = 4.8332 <= 5: allowed, + 1.70 = 5.0332: kill
    assert g.check(req("1.50", session_id="s")).allowed
    assert g.check(req("0.20", session_id="s")).action == "kill"  # 4.8332 reserved + 0.20


def test_token_budget(make_guard):
    g = make_guard({"hard_limit_tokens": 1000, "overage": "hard_cap"})
    a = g.check(req("0.01", input_tokens=400, max_output_tokens=400))
    assert a.allowed  # 800 tokens reserved
    assert g.check(req("0.01", input_tokens=100, max_output_tokens=200)).action == "deny"
    s = g.settle(a.reservation, D("0.01"), input_tokens=400, output_tokens=100)
    assert s.spent == 500 and s.unit == "tok"
    assert g.check(req("0.01", input_tokens=100, max_output_tokens=400)).allowed  # 1000


def test_customer_overrides_and_pool(make_guard):
    from tailguard.guard import CustomerInfo

    g = make_guard(
        {"pool_per_seat_usd": 9, "overage": "payg"},
        customers={"big": {"hard_limit_usd": 500}},
    )
    g.customers = {
        "acme": CustomerInfo(seats=25),
        "corp": CustomerInfo(contracted_pool_usd=D("1234.5")),
    }
    assert g.status("acme")["hard_limit"] == D("225")  # 25 seats x $9
    assert g.status("corp")["hard_limit"] == D("1234.5")
    assert g.status("big")["hard_limit"] == D("500")
    assert g.status("nobody")["hard_limit"] == D("9")  # unknown seats count as one


def test_status_projects_the_cap_hit(make_guard, clock):
    g = make_guard({"hard_limit_usd": 100, "overage": "hard_cap"})
    clock.t = clock.t - 9 * 86400 - 12 * 3600 - 15  # 2026-11-01 00:00:00, start of month
    clock.advance(10 * 86400)  # 2026-11-11 00:00:00: ten days in
    g.settle(g.check(req("40")).reservation, D("40"))
    st = g.status("acme")
    # $40 in 10 days = $4/day: $60 left takes 15 more days -> 2026-11-26 00:00 UTC
    assert st["projected_cap_hit"].isoformat() == "2026-11-26T00:00:00+00:00"
    # 30-day month at $4/day
    assert st["projected_period_spend"] == D("120")
    assert (st["headroom"], st["utilization"]) == (D("60"), D("0.4000"))


def test_async_api_matches(make_guard):
    g = make_guard(HARD_CAP)

    async def run() -> list[str]:
        out = []
        for _ in range(4):
            d = await g.acheck(req("0.30"))
            out.append(d.action)
            if d.allowed:
                await g.asettle(d.reservation, D("0.30"))
        r = await g.acheck(req("0.05"))
        await g.arelease(r.reservation)
        if hasattr(g.store, "aclose"):
            await g.store.aclose()
        return out

    assert asyncio.run(run()) == ["allow", "allow", "allow", "deny"]  # 0.90 + 0.30 > 1.00
    assert g.status("acme")["spent"] == D("0.90")


def test_overspend_is_bounded_by_under_estimates(make_guard):
    """The documented bound when actual costs exceed their estimates."""
    g = make_guard(HARD_CAP)
    a, b = g.check(req("0.50")), g.check(req("0.50"))  # 1.00 reserved: full
    assert g.check(req("0.01")).action == "deny"
    g.settle(a.reservation, D("0.70"))  # each call cost 0.20 more than its estimate
    g.settle(b.reservation, D("0.70"))
    # spent 1.40: over the $1.00 limit by 0.40 = the sum of the two under-estimates, no more
    assert g.status("acme")["spent"] == D("1.40")
    assert g.check(req("0.01")).action == "deny"


def test_status_refunds_expired_reservations(make_guard, clock):
    """A caller that crashed never settles: its $0.30 is reserved for reservation_ttl_s (600 s),
    then refunded. ``status`` must show that without waiting for the customer's next check:
    reserved $0.30 and headroom $0.70 before, reserved $0 and headroom $1.00 after."""
    g = make_guard(HARD_CAP)
    assert g.check(req("0.30")).allowed
    st = g.status("acme")
    assert (st["reserved"], st["headroom"]) == (D("0.30"), D("0.70"))
    clock.advance(601)
    st = g.status("acme")
    assert (st["reserved"], st["headroom"], st["spent"]) == (D("0"), D("1"), D("0"))
