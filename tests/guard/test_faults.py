"""Faults: the real redis-server is stopped in the middle of a run, or was never there.

No exception may reach the caller. ``fail_open`` keeps serving on local limits, records a
warning and one guard event, and re-syncs the spend when Redis returns; ``fail_closed`` denies
with a clear reason.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from decimal import Decimal as D

import pytest

from tailguard.guard import Guard, RedisStore, Request

from .conftest import Events, policy

TIER = {"hard_limit_usd": 10, "overage": "hard_cap", "rpm": 5}


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens here once the socket is closed


def test_fail_open_survives_a_stop_and_resyncs(private_redis, events, caplog, clock):
    pol = policy(TIER, {"fail_mode": "fail_open", "probe_interval_s": 0.05})
    g = Guard(pol, RedisStore(private_redis.url), sink=events, clock=clock)
    for _ in range(2):  # $2.00 settled in Redis before the outage
        g.settle(g.check(Request("acme", D("1"))).reservation, D("1"))
    in_flight = g.check(Request("acme", D("1")))  # reserved on Redis, settled during the outage
    assert in_flight.allowed

    private_redis.stop(save=True)
    with caplog.at_level(logging.WARNING, logger="tailguard.guard"):
        g.settle(in_flight.reservation, D("0.50"))  # no exception: counted locally, buffered
        clock.advance(60)  # a new rate window for the local limits
        got = [g.check(Request("acme", D("1"))) for _ in range(6)]
    # local limits keep working: rpm 5 in this minute, so the 6th is denied locally
    assert [(d.action, d.rule) for d in got] == [("allow", None)] * 5 + [("deny", "rpm")]
    assert got[5].rule == "rpm"
    assert "guard store unavailable" in caplog.text
    assert ("fail_open", "store_unavailable") in events.actions()
    assert sum(1 for e in events if e["action"] == "fail_open") == 1
    for d in got[:3]:  # $3.00 settled on the local fallback while Redis is down
        g.settle(d.reservation, D("1"))
    for d in got[3:5]:
        g.release(d.reservation)

    private_redis.start()  # the data comes back from the save; the outage spend is re-synced
    time.sleep(0.1)  # past probe_interval_s
    d = g.check(Request("acme", D("0.01")))
    assert d.allowed and not d.reservation.local  # type: ignore[union-attr]
    g.release(d.reservation)
    # 2.00 before + 0.50 (in-flight call) + 3.00 during the outage = 5.50 in Redis
    assert g.status("acme")["spent"] == D("5.50")
    assert g.stats["resyncs"] == 1 and g.stats["fail_open"] == 6
    g.close()


def test_fail_open_local_budget_starts_from_last_seen_spend(private_redis, clock):
    pol = policy(
        {"hard_limit_usd": 1, "overage": "hard_cap"},
        {"fail_mode": "fail_open", "probe_interval_s": 60},
    )
    g = Guard(pol, RedisStore(private_redis.url), clock=clock)
    g.settle(g.check(Request("acme", D("0.80"))).reservation, D("0.80"))
    g.release(g.check(Request("acme", D("0.01"))).reservation)  # Redis saw 0.80 + 0.01
    private_redis.stop()
    # the local fallback starts from the 0.81 last seen: 0.81 + 0.30 > 1.00 is still denied
    assert g.check(Request("acme", D("0.30"))).rule == "hard_limit"
    assert g.check(Request("acme", D("0.15"))).allowed  # 0.96
    g.close()


def test_fail_closed_denies_with_a_reason(private_redis, events, clock):
    pol = policy(TIER, {"fail_mode": "fail_closed", "probe_interval_s": 0.05})
    g = Guard(pol, RedisStore(private_redis.url), sink=events, clock=clock)
    ok = g.check(Request("acme", D("1")))
    assert ok.allowed
    private_redis.stop()
    g.settle(ok.reservation, D("1"))  # no exception
    d = g.check(Request("acme", D("1")))
    assert (d.action, d.rule, d.retry_after) == ("deny", "guard_unavailable", 1)
    assert "cannot be checked right now" in (d.message or "")

    async def run() -> str:
        return (await g.acheck(Request("acme", D("1")))).rule or ""

    assert asyncio.run(run()) == "guard_unavailable"
    assert ("deny", "guard_unavailable") in events.actions()
    g.close()


@pytest.mark.parametrize("mode,action", [("fail_open", "allow"), ("fail_closed", "deny")])
def test_never_reachable(mode, action, clock):
    """A metered (payg) budget cannot be overspent, so fail_open serves it on local limits even
    when Redis was never seen (a hard cap never seen is refused: see the fail-open bound tests)."""
    payg = {**TIER, "overage": "payg"}
    g = Guard(
        policy(payg, {"fail_mode": mode}), RedisStore(_dead_url(), timeout_s=0.2), clock=clock
    )
    d = g.check(Request("acme", D("1"), session_id="s", task_id="t"))
    assert d.action == action
    g.settle(d.reservation, D("1"))
    g.release(d.reservation)

    async def run() -> str:
        d2 = await g.acheck(Request("acme", D("1")))
        await g.asettle(d2.reservation, D("1"))
        return d2.action

    assert asyncio.run(run()) == action
    g.close()


def test_sink_failure_never_reaches_the_caller(clock):
    def broken(_batch: list) -> None:
        raise OSError("disk full")

    g = Guard(policy({"hard_limit_usd": 1, "overage": "hard_cap"}), sink=broken, clock=clock)
    d = g.check(Request("acme", D("2")))  # denied: an event, and the sink raises
    assert d.action == "deny"
    assert g.stats["sink_errors"] == 1


def test_events_reach_a_sink(clock):
    ev = Events()
    g = Guard(policy({"hard_limit_usd": 1, "overage": "hard_cap"}), sink=ev, clock=clock)
    g.check(
        Request(
            "acme", D("2"), user_id="u", feature="chat", task_id="t", session_id="s", model="gpt-4o"
        )
    )
    (e,) = ev
    assert e["kind"] == "guard" and e["action"] == "deny" and e["rule"] == "hard_limit"
    assert (e["user_id"], e["feature"], e["task_id"], e["session_id"], e["model"]) == (
        "u",
        "chat",
        "t",
        "s",
        "gpt-4o",
    )
    assert e["ts"] == "2026-11-10T12:00:15+00:00"


def test_the_store_is_probed_only_when_due(private_redis, clock):
    """fail_open, a probe every 60 s. Redis stops: the next check finds it down (one store
    error) and is decided locally, and settled there; the first probe is due 60 s later.
    Redis comes back at once,
    but until the probe is due every check stays on the local fallback without trying Redis:
    still one store error, no re-sync."""
    pol = policy(
        {"hard_limit_usd": 10, "overage": "payg"},
        {"fail_mode": "fail_open", "probe_interval_s": 60},
    )
    g = Guard(pol, RedisStore(private_redis.url), clock=clock)
    g.settle(g.check(Request("acme", D("1"))).reservation, D("1"))
    assert g.stats["store_errors"] == 0
    private_redis.stop(save=True)
    down = g.check(Request("acme", D("1")))
    assert down.allowed and down.reservation.local  # type: ignore[union-attr]
    assert g.stats["store_errors"] == 1
    # settled on the fallback: the $1 last seen plus this $1; kept for the catch-up, not sent
    # to the store while it is down (no second store error)
    assert g.settle(down.reservation, D("1")).spent == D(2)
    assert (g.stats["store_errors"], g.stats["internal_errors"]) == (1, 0)
    private_redis.start()
    still = g.check(Request("acme", D("1")))
    assert still.allowed and still.reservation.local  # type: ignore[union-attr]
    assert (g.stats["store_errors"], g.stats["resyncs"]) == (1, 0)
    g.close()


def test_a_capped_budget_never_seen_is_refused_and_counted(clock):
    """fail_open, but Redis was never reachable: a hard-capped budget this process never saw
    has nothing to start from, so the call is refused (counted as fail_closed, not
    fail_open), to be retried when the next probe is due: 60 s."""
    pol = policy(
        {"hard_limit_usd": 10, "overage": "hard_cap"},
        {"fail_mode": "fail_open", "probe_interval_s": 60},
    )
    g = Guard(pol, RedisStore(_dead_url(), timeout_s=0.2), clock=clock)
    d = g.check(Request("acme", D("1")))
    assert (d.action, d.rule, d.retry_after) == ("deny", "guard_unavailable", 60)
    assert (g.stats["fail_closed"], g.stats["fail_open"], g.stats["store_errors"]) == (1, 0, 1)
    g.close()


def test_a_settle_the_store_did_not_take_is_counted_locally(private_redis, clock):
    """A call checked on Redis ($1 reserved: the budget last seen at $1, which is this call's
    own reservation) is settled at $0.50 after Redis stopped: the settle is counted on the
    local fallback, with one store error and no internal error. The local figure starts from
    the $1 last seen, gives back the call's own $1 reservation (it was in the figure: seen
    while the reservation was live) and adds the $0.50: $1 - $1 + $0.50 = $0.50, what the
    call really spent (before: $1.50, the reservation counted as spend as well). When Redis
    answers again the replay (same settle id) refunds the reservation there and adds the
    $0.50: Redis holds $0.50 spent and nothing reserved (the local figure is never sent)."""
    pol = policy(
        {"hard_limit_usd": 10, "overage": "payg"},
        {"fail_mode": "fail_open", "probe_interval_s": 0.05},
    )
    g = Guard(pol, RedisStore(private_redis.url), clock=clock)
    in_flight = g.check(Request("acme", D("1")))
    assert in_flight.allowed
    private_redis.stop(save=True)
    s = g.settle(in_flight.reservation, D("0.5"))
    assert s.spent == D("0.5")
    assert (g.stats["store_errors"], g.stats["internal_errors"]) == (1, 0)
    private_redis.start()
    time.sleep(0.1)  # past probe_interval_s: the next check sends the replay first
    d = g.check(Request("acme", D("0.01")))
    assert d.allowed and not d.reservation.local  # type: ignore[union-attr]
    g.release(d.reservation)
    st = g.status("acme")
    assert (st["spent"], st["reserved"]) == (D("0.5"), D(0))
    assert g.stats["resyncs"] == 1
    g.close()


@pytest.mark.parametrize("asyncio_api", [False, True])
def test_a_reservation_released_in_the_outage_is_given_back_locally(
    private_redis, clock, asyncio_api
):
    """Cap $1 (hard_cap), nothing spent. Two calls checked on Redis reserve $0.40 each: the
    budget last seen at $0.80, both reservations. Redis stops and both calls fail: the first
    release meets the outage (the store raises), the second finds it known. The customer has
    spent nothing, so a $0.90 call is allowed on the local fallback: 0 + 0.90 <= 1 (before:
    the local figure started from the $0.80 last seen and kept both reservations as spend,
    0.80 + 0.90 > 1, denied with hard_limit). Settled at $0.90; when Redis answers again the
    orphaned releases refund both reservations there and the replay adds the $0.90: Redis
    holds $0.90 spent and nothing reserved."""
    pol = policy(
        {"hard_limit_usd": 1, "overage": "hard_cap"},
        {"fail_mode": "fail_open", "probe_interval_s": 0.05},
    )
    g = Guard(pol, RedisStore(private_redis.url, timeout_s=0.3), clock=clock)
    r1, r2 = (g.check(Request("acme", D("0.40"))) for _ in "12")
    assert r1.allowed and r2.allowed
    private_redis.stop(save=True)
    if asyncio_api:

        async def release_both() -> None:
            await g.arelease(r1.reservation)
            await g.arelease(r2.reservation)

        asyncio.run(release_both())
    else:
        g.release(r1.reservation)
        g.release(r2.reservation)
    assert (g.stats["store_errors"], g.stats["internal_errors"]) == (1, 0)
    d = g.check(Request("acme", D("0.90")))
    assert d.allowed, d.rule
    assert g.settle(d.reservation, D("0.90")).spent == D("0.90")
    private_redis.start()
    time.sleep(0.1)  # past probe_interval_s: the next check sends the orphans and the replay
    g.release(g.check(Request("acme", D("0"))).reservation)
    st = g.status("acme")
    assert (st["spent"], st["reserved"]) == (D("0.90"), D(0))
    g.close()


def test_a_reservation_settled_in_the_outage_keeps_the_fail_open_bound(private_redis, clock):
    """Cap $0.01, two replicas. A settles $0.0075 on Redis, then reserves $0.001 (in flight):
    A saw 0.0085; B's check of $0.002 is denied (0.0085 + 0.002 > 0.01) and B saw 0.0085 too.
    The headroom at the start of the outage is 0.01 − 0.0085 = $0.0015; the bound (docs/guard.md)
    is limit + (N − 1) × headroom = $0.0115. During the outage A settles the in-flight call at
    $0.0004: A's local figure is 0.0085 − 0.001 + 0.0004 = $0.0079 (before: $0.0089), so A
    may settle 7 calls of $0.0003 (0.0079 + 0.0021 = 0.01; before: 3), B 5 (0.0085 + 0.0015).
    Ledger: 0.0075 + 0.0004 + 12 × 0.0003 = $0.0115, the bound exactly, not above; Redis holds
    it once it has caught up, with nothing reserved."""
    pol = policy(
        {"hard_limit_usd": "0.01", "overage": "hard_cap"},
        {"fail_mode": "fail_open", "probe_interval_s": 0.05},
    )
    a, b = (Guard(pol, RedisStore(private_redis.url, timeout_s=0.3), clock=clock) for _ in "ab")
    for _ in range(3):
        a.settle(a.check(Request("acme", D("0.0025"))).reservation, D("0.0025"))
    in_flight = a.check(Request("acme", D("0.001")))
    assert in_flight.allowed
    assert b.check(Request("acme", D("0.002"))).rule == "hard_limit"
    private_redis.stop(save=True)

    assert a.settle(in_flight.reservation, D("0.0004")).spent == D("0.0079")
    counts = []
    for g in (a, b):
        n = 0
        for _ in range(10):
            d = g.check(Request("acme", D("0.0003")))
            if d.allowed:
                n += 1
                g.settle(d.reservation, D("0.0003"))
        counts.append(n)
    assert counts == [7, 5]
    ledger = D("0.0075") + D("0.0004") + sum(counts) * D("0.0003")
    assert ledger == D("0.0115")

    private_redis.start()
    time.sleep(0.1)  # past probe_interval_s: each replica's next check sends what it owes
    for g in (a, b):
        g.release(g.check(Request("acme", D("0"))).reservation)
    st = a.status("acme")
    assert (st["spent"], st["reserved"]) == (ledger, D(0))
    for g in (a, b):
        g.close()
