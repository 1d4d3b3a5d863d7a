"""The guard under real Redis faults (issue 16 F11, F12, F13): killed, hung, restarted.

Every fault is real: the test's own ``redis-server`` is stopped, frozen with SIGSTOP or
restarted on its port. Amounts are worked out by hand in each docstring; "the ledger" is the
sum of what the callers settled, which Redis must equal once it has caught up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.guard import Guard, RedisStore, Request
from tests.guard.conftest import policy

CAP = {"hard_limit_usd": "0.01", "overage": "hard_cap"}


def _settle_all(g: Guard, n: int, usd: str) -> tuple[int, list[str | None]]:
    """Fire ``n`` checks of ``usd`` each, settle the allowed ones at their estimate."""
    allowed, rules = 0, []
    for _ in range(n):
        d = g.check(Request("acme", D(usd)))
        rules.append(d.rule)
        if d.allowed:
            allowed += 1
            g.settle(d.reservation, D(usd))
    return allowed, rules


def test_fail_open_two_replicas_stay_within_the_bound(private_redis, clock):
    """F11. Cap $0.01. Before the outage Redis holds $0.0075 and replicas A and B both saw it:
    the headroom is $0.0025. Bound (docs/guard.md): limit + (N − 1) × headroom = 0.01 + 1 ×
    0.0025 = $0.0125 for A and B; replica C never saw the customer and must not add a cent
    (before the fix it started from $0 and spent the whole $0.01 again: $0.0225 in all)."""
    pol = policy(CAP, {"fail_mode": "fail_open", "probe_interval_s": 0.05})
    a, b, c = (Guard(pol, RedisStore(private_redis.url, timeout_s=0.3), clock=clock) for _ in "abc")
    assert _settle_all(a, 3, "0.0025")[0] == 3  # $0.0075 settled; A saw 0.0050 + 0.0025
    assert b.check(Request("acme", D("0.003"))).rule == "hard_limit"  # B saw 0.0075 (denied)
    private_redis.stop(save=True)

    n_a, _ = _settle_all(a, 10, "0.0005")
    n_b, _ = _settle_all(b, 10, "0.0005")
    n_c, rules_c = _settle_all(c, 10, "0.0005")
    # each of A and B: 0.0075 + k × 0.0005 <= 0.01  ->  k = 5
    assert (n_a, n_b, n_c) == (5, 5, 0)
    assert set(rules_c) == {"guard_unavailable"}
    ledger = D("0.0075") + (n_a + n_b + n_c) * D("0.0005")
    assert ledger == D("0.0125")  # exactly the bound, not above

    private_redis.start()  # the outage spend is re-synced, once
    time.sleep(0.1)
    for g in (a, b):
        g.release(g.check(Request("acme", D("0"))).reservation)
    assert a.status("acme")["spent"] == ledger
    for g in (a, b, c):
        g.close()


def test_hung_redis_counts_each_settle_once_and_leaves_no_reservation(private_redis, clock):
    """F12. Redis frozen (SIGSTOP) mid-run, two gateways. On gateway 1 the settle of d1
    ($0.004) times out, and is sent again by the probe (times out again): both copies sit in
    Redis' socket buffers and run when it resumes. On gateway 2 the check of d2 times out: it
    too runs late, reserving $0.01 in Redis; d2 is served on gateway 2's local store and settled
    at $0.003. Redis must end with exactly the ledger, 0.004 + 0.003 = $0.007, and nothing
    reserved. Before the fix Redis ended at $0.011 (the late settle plus a re-sync of the same
    $0.004) with the late check's $0.01 still reserved."""
    pol = policy(
        {"hard_limit_usd": 1, "overage": "hard_cap"},
        {"fail_mode": "fail_open", "probe_interval_s": 0.05},
    )
    g1, g2 = (Guard(pol, RedisStore(private_redis.url, timeout_s=0.3), clock=clock) for _ in "12")
    d1 = g1.check(Request("acme", D("0.01")))
    g2.release(g2.check(Request("acme", D("0.01"))).reservation)  # gateway 2 has seen acme
    assert d1.allowed
    assert private_redis.proc is not None
    pid = private_redis.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        g1.settle(d1.reservation, D("0.004"))  # times out: sent, not answered
        time.sleep(0.06)
        assert g1.check(Request("acme", D("0"))).allowed  # the probe resends it: times out
        d2 = g2.check(Request("acme", D("0.01")))  # times out: sent, not answered
        assert d2.allowed and d2.reservation is not None and d2.reservation.local
        g2.settle(d2.reservation, D("0.003"))
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(0.2)  # Redis runs what was queued; the next checks probe and catch up
    for g in (g1, g2):
        d3 = g.check(Request("acme", D("0")))
        assert d3.reservation is not None and not d3.reservation.local
        g.release(d3.reservation)
    st = g1.status("acme")
    assert (st["spent"], st["reserved"]) == (D("0.007"), D("0"))
    g1.close()
    g2.close()


def test_hung_redis_async_twin(private_redis, clock):
    """F12 through ``acheck`` / ``asettle`` / ``arelease``: the same figures as above. A call
    reserved in Redis before the hang and released during it leaves nothing reserved either."""
    pol = policy(
        {"hard_limit_usd": 1, "overage": "hard_cap"},
        {"fail_mode": "fail_open", "probe_interval_s": 0.05},
    )
    g = Guard(pol, RedisStore(private_redis.url, timeout_s=0.3), clock=clock)
    assert private_redis.proc is not None
    pid = private_redis.proc.pid

    async def scenario() -> dict:
        d1 = await g.acheck(Request("acme", D("0.01")))
        d0 = await g.acheck(Request("acme", D("0.02")))  # released during the hang
        os.kill(pid, signal.SIGSTOP)
        try:
            await g.asettle(d1.reservation, D("0.004"))  # times out: sent, not answered
            await g.arelease(d0.reservation)
            await asyncio.sleep(0.06)
            d2 = await g.acheck(Request("acme", D("0.01")))  # probe times out; local
            assert d2.allowed and d2.reservation is not None and d2.reservation.local
            await g.asettle(d2.reservation, D("0.003"))
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(0.2)
        d3 = await g.acheck(Request("acme", D("0.001")))
        assert d3.reservation is not None and not d3.reservation.local
        await g.arelease(d3.reservation)
        await g.store.aclose()  # type: ignore[attr-defined]
        return g.status("acme")

    st = asyncio.run(scenario())
    assert (st["spent"], st["reserved"]) == (D("0.007"), D("0"))
    g.close()


def test_replayed_settle_is_applied_once(private_redis, clock):
    """F12, the rule itself: a settle sent twice under one id adds its $0.25 once."""
    store = RedisStore(private_redis.url)
    g = Guard(policy({"hard_limit_usd": 1, "overage": "hard_cap"}), store, clock=clock)
    d = g.check(Request("acme", D("0.50")))
    r = d.reservation
    assert r is not None
    g.settle(r, D("0.25"))
    from tailguard.guard.stores.base import SettleItem

    again = [SettleItem(k, amt, 250_000, exp) for k, amt, _u, exp in r.items]
    store.settle(r.res_key, r.member, again, [], int(clock() * 1000), r.id)
    assert g.status("acme")["spent"] == D("0.25")
    g.close()


def test_restart_while_idle_does_not_deny(private_redis, clock):
    """F13. Redis restarted while the gateway was idle: every pooled connection is dead. The
    first call on each must reconnect and succeed; before the fix 10/10 fail_closed calls were
    denied (``guard_unavailable``) with Redis up."""
    pol = policy({"hard_limit_usd": 10, "overage": "hard_cap"}, {"fail_mode": "fail_closed"})
    g = Guard(pol, RedisStore(private_redis.url), clock=clock)

    async def burst(n: int) -> list[str]:
        ds = await asyncio.gather(*(g.acheck(Request("acme", D("0.01"))) for _ in range(n)))
        return [d.action for d in ds]

    async def scenario() -> tuple[list[str], list[str]]:
        before = await burst(4)  # four pooled async connections
        private_redis.stop(save=True)
        private_redis.start()
        after = await burst(4)
        await g.store.aclose()  # type: ignore[attr-defined]
        return before, after

    assert [g.check(Request("acme", D("0.01"))).action for _ in range(3)] == ["allow"] * 3
    before, after = asyncio.run(scenario())
    assert before == after == ["allow"] * 4
    assert [g.check(Request("acme", D("0.01"))).action for _ in range(10)] == ["allow"] * 10
    assert g.stats["store_errors"] == 0
    g.close()


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("check"), st.integers(0, 1)),
        st.tuples(st.just("settle"), st.integers(1, 9)),
        st.tuples(st.just("release"), st.just(0)),
        st.tuples(st.just("fault"), st.sampled_from(["freeze", "stop"])),
    ),
    min_size=4,
    max_size=16,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_OPS)
def test_redis_ends_with_exactly_the_ledger(private_redis, clock, ops):
    """Invariant (F12, and the catch-up of F11): whatever the interleaving of checks on two
    replicas, settles ($0.00k) and releases of the oldest open call, and Redis faults (frozen
    with SIGSTOP, or stopped with its data saved, until the next fault), once Redis is back and
    both replicas caught up, Redis holds exactly what the callers settled, nothing reserved."""
    private_redis.stop(save=False)  # a clean server for each example
    for f in private_redis.dir.glob("*.rdb"):
        f.unlink()
    private_redis.start()
    pol = policy(
        {"hard_limit_usd": 1000, "overage": "hard_cap"},
        {"fail_mode": "fail_open", "probe_interval_s": 0.02},
    )
    gs = [Guard(pol, RedisStore(private_redis.url, timeout_s=0.15), clock=clock) for _ in "ab"]
    for g in gs:  # both replicas have seen the customer
        g.release(g.check(Request("acme", D("0"))).reservation)
    ledger, state = D(0), "up"
    open_calls: list[tuple[Guard, Any]] = []
    try:
        for kind, arg in ops:
            if kind == "check":
                d = gs[int(arg)].check(Request("acme", D("0.01")))
                if d.allowed:
                    open_calls.append((gs[int(arg)], d.reservation))
            elif kind == "settle" and open_calls:
                g, r = open_calls.pop(0)
                g.settle(r, D(int(arg)) / 1000)
                ledger += D(int(arg)) / 1000
            elif kind == "release" and open_calls:
                g, r = open_calls.pop(0)
                g.release(r)
            elif kind == "fault":
                if state == "frozen":
                    os.kill(private_redis.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
                elif state == "stopped":
                    private_redis.start()
                if state != "up":
                    state = "up"
                elif arg == "freeze":
                    os.kill(private_redis.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
                    state = "frozen"
                else:
                    private_redis.stop(save=True)
                    state = "stopped"
            time.sleep(0.03)
    finally:
        if state == "frozen":
            os.kill(private_redis.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        elif state == "stopped":
            private_redis.start()
    time.sleep(0.3)
    for g, r in open_calls:
        g.release(r)
    for _ in range(3):
        for g in gs:
            g.release(g.check(Request("acme", D("0"))).reservation)
        time.sleep(0.05)
    st_ = gs[0].status("acme")
    assert (st_["spent"], st_["reserved"]) == (ledger, D("0"))
    for g in gs:
        g.close()
