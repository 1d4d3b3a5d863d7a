"""Numbers out of range fail alone (issue 16 F14, F4): the request, the settle, the policy.

The stores count exactly only up to 2^53 (Lua doubles) and the plan travels as msgpack (at most
2^64): a request carrying ``max_tokens`` 2^62 once failed the Redis script, the store was marked
down and every other customer was denied with it.
"""

from __future__ import annotations

import logging
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.cli import run
from tailguard.guard import CustomerInfo, Guard, PolicyError, RedisStore, Request, parse_policy

from .conftest import policy

MAX_TOK = 10**12
MAX_USD = D(10**9)

CLOSED = {"fail_mode": "fail_closed"}
CAP = {"hard_limit_usd": 10, "overage": "hard_cap"}


@pytest.mark.parametrize(
    "bad,field",
    [
        (Request("acme", D("0.01"), max_output_tokens=2**62), "max_output_tokens"),
        (Request("acme", D("0.01"), input_tokens=10**29), "input_tokens"),
        (Request("acme", D("1e29")), "estimated_cost_usd"),
        (Request("acme", D("NaN")), "estimated_cost_usd"),
        (Request("acme", D("-5")), "estimated_cost_usd"),
    ],
)
def test_a_bad_request_fails_alone_on_redis(redis_server, clock, bad, field):
    g = Guard(policy(CAP, CLOSED), RedisStore(redis_server.url), clock=clock)
    d = g.check(bad)
    assert (d.action, d.rule, d.retry_after) == ("deny", "invalid_request", None)
    assert field in (d.message or "")
    # the store was not touched, so not marked down: the next customer is served
    ok = g.check(Request("other", D("0.01"), max_output_tokens=1000))
    assert ok.action == "allow"
    assert g.stats["store_errors"] == 0 and g.stats["invalid_requests"] == 1
    g.release(ok.reservation)
    g.close()


def test_bad_request_on_the_memory_store(make_guard):
    g = make_guard(CAP)
    d = g.check(Request("acme", D("0.01"), max_output_tokens=2**62))
    assert d.rule == "invalid_request" and "1,000,000,000,000" in (d.message or "")


def test_an_unusable_actual_cost_counts_the_estimate(make_guard, caplog):
    """A NaN actual cost cannot be counted; forgetting the call would undercount, so the
    reserved estimate ($0.30) is counted instead, and logged."""
    g = make_guard(CAP)
    d = g.check(Request("acme", D("0.30")))
    with caplog.at_level(logging.ERROR, logger="tailguard.guard"):
        s = g.settle(d.reservation, D("NaN"))
    assert s.spent == D("0.30")
    assert "counted the reserved estimate $0.300000" in caplog.text


def test_a_zero_estimate_reserves_settles_releases_and_expires(make_guard, clock):
    """The gateway estimates an unpriced model at $0. A $0 reservation must settle, release and
    expire like any other: Lua prints minus zero as "-0", which Redis' HINCRBY refuses, so a
    refund written ``-x`` failed the script and marked the store down for every customer."""
    g = make_guard({"hard_limit_usd": 1, "overage": "hard_cap"})
    g.settle(g.check(Request("acme", D("0"))).reservation, D("0.10"))
    g.release(g.check(Request("acme", D("0"))).reservation)
    assert g.check(Request("acme", D("0"))).allowed  # never settled: expires
    clock.advance(601)  # past reservation_ttl_s (600): the next check refunds it
    assert g.check(Request("acme", D("0.90"))).allowed  # 0.10 + 0.90 = 1.00, the limit
    assert g.stats["store_errors"] == 0 and g.stats["internal_errors"] == 0
    assert g.status("acme")["spent"] == D("0.10")


@pytest.mark.parametrize(
    "tier,key",
    [
        ({"hard_limit_usd": 1e300}, "tiers.t.hard_limit_usd"),
        ({"hard_limit_usd": "1000000000.01"}, "tiers.t.hard_limit_usd"),
        ({"task_max_cost_usd": 1e20}, "tiers.t.task_max_cost_usd"),
        ({"hard_limit_tokens": 2**62}, "tiers.t.hard_limit_tokens"),
        ({"rpm": 10**13}, "tiers.t.rpm"),
    ],
)
def test_policy_money_and_counts_are_bounded(tier, key):
    with pytest.raises(PolicyError) as err:
        parse_policy({"guard": {"default_tier": "t"}, "tiers": {"t": tier}})
    assert err.value.key == key and "at most" in err.value.reason


def test_policy_at_the_bound_is_accepted():
    """$1,000,000,000 exactly is the largest limit: 10^15 micro-dollars, exact in Lua."""
    p = parse_policy(
        {"guard": {"default_tier": "t"}, "tiers": {"t": {"hard_limit_usd": 1_000_000_000}}}
    )
    assert p.limits_for("acme").hard_limit == 10**15


def test_check_policy_refuses_1e300(tmp_path, capsys):
    f = tmp_path / "p.toml"
    f.write_text('[guard]\ndefault_tier = "t"\n[tiers.t]\nhard_limit_usd = 1e300\n')
    assert run(["guard", "check-policy", str(f)]) == 1
    err = capsys.readouterr().err
    assert "tiers.t.hard_limit_usd" in err and "Traceback" not in err


_tokens = st.one_of(st.integers(0, MAX_TOK), st.integers(-(2**70), 2**70))
_money = st.one_of(
    st.decimals(min_value=0, max_value=10**9, places=9),
    st.decimals(allow_nan=True, allow_infinity=True),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(est=_money, itok=_tokens, otok=_tokens)
def test_any_request_is_planned_or_refused_alone(redis_server, clock, est, itok, otok):
    """Invariant: whatever numbers a request carries, the guard never raises and never fails
    the shared store; it denies ``invalid_request`` exactly when one is outside the bounds
    (an estimate from $0 to $1e9, token counts from 0 to 1e12), and otherwise decides."""
    g = Guard(policy({"overage": "payg"}, CLOSED), RedisStore(redis_server.url), clock=clock)
    d = g.check(Request("acme", est, input_tokens=itok, max_output_tokens=otok))
    out_of_range = not (
        est.is_finite() and 0 <= est <= MAX_USD and 0 <= itok <= MAX_TOK and 0 <= otok <= MAX_TOK
    )
    assert (d.rule == "invalid_request") == out_of_range
    assert d.allowed == (not out_of_range)  # payg without limits: everything in range passes
    g.release(d.reservation)
    assert g.stats["store_errors"] == 0 and g.stats["internal_errors"] == 0
    g.close()


def test_a_pooled_or_contracted_limit_past_the_range_is_held_at_1e9(redis_server, clock):
    """A contracted pool of $1e300 (from the customers table) or 10^12 seats x $1,000 is past
    what the stores count exactly: the limit is held at $1,000,000,000 (10^15 micro-dollars)
    and checks keep working on Redis."""
    pol = parse_policy(
        {
            "guard": {"default_tier": "t", "fail_mode": "fail_closed"},
            "tiers": {"t": {"pool_per_seat_usd": 1000, "overage": "hard_cap"}},
            "customers": {"big": {"seats": 10**12}},
        }
    )
    assert pol.limits_for("big").hard_limit == 10**15  # 10^12 x $1,000 = $1e15, held at $1e9
    info = {"ent": CustomerInfo(tier="t", contracted_pool_usd=D("1e300"))}
    g = Guard(pol, RedisStore(redis_server.url), clock=clock, customers=info)
    assert g.limits("ent").hard_limit == 10**15
    for who in ("big", "ent"):
        d = g.check(Request(who, D("1000")))
        assert d.action == "allow"
        g.settle(d.reservation, D("1000"))
        assert g.status(who)["headroom"] == D(10**9) - D(1000)
    assert g.stats["store_errors"] == 0 and g.stats["internal_errors"] == 0
    g.close()
