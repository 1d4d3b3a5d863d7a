"""The two stores agree on every decision of a seven-limit policy (hypothesis).

The in-process store and the Redis scripts are two implementations of one plan ("check all,
then apply all"): the memory store's fast path (plain tuples read by position, each counter
looked up once, expired reservations refunded from the plan it keeps, members that are the
reservation id alone) must decide exactly as the Lua scripts do. A random run of calls on a
policy where every limit is tight (rpm, user rpm, tpm, the budget, task steps and dollars,
session velocity), each call settled at most at its estimate, released, or left open to
expire, with the clock moving by seconds to hours, is played on both; their decisions (action
and rule), settlements and final counters must be equal, and neither lets a budget or a task's
dollars pass its limit (the documented bound: zero when actual costs stay within estimates).
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.guard import Guard, MemoryStore, Request

from .conftest import Clock, policy

TIER = {
    "hard_limit_usd": "1.5",
    "overage": "hard_cap",
    "rpm": 12,
    "user_rpm": 6,
    "tpm": 40_000,
    "task_max_llm_calls": 3,
    "task_max_cost_usd": "0.5",
    "session_max_usd_per_hour": "0.3",
}
HARD, TASK_USD = 1_500_000, 500_000  # micro-dollars

ids = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
check = st.tuples(
    st.just("check"),
    st.sampled_from(["acme", "beta"]),
    ids,  # user
    ids,  # session
    ids,  # task
    st.integers(min_value=1, max_value=400_000),  # estimate, micro-dollars
    st.integers(min_value=0, max_value=3_000),  # input tokens
    st.integers(min_value=0, max_value=3_000),  # max output tokens
    st.sampled_from(["settle", "settle", "release", "open"]),
    st.integers(min_value=0, max_value=100),  # actual as a % of the estimate
    st.integers(min_value=0, max_value=3),  # seconds since the step before
)
advance = st.tuples(st.just("advance"), st.sampled_from([1, 20, 61, 700, 3_700]))
runs = st.lists(st.one_of(check, check, check, advance), min_size=40, max_size=120)


def _play(g: Guard, clock: Clock, run: list[tuple[Any, ...]]) -> list[Any]:
    out: list[Any] = []
    for step in run:
        if step[0] == "advance":
            clock.advance(step[1])
            continue
        _k, cid, user, session, task, est, itok, otok, fate, pct, dt = step
        clock.advance(dt)
        d = g.check(
            Request(
                cid,
                D(est).scaleb(-6),
                input_tokens=itok,
                max_output_tokens=otok,
                user_id=user,
                session_id=session,
                task_id=task,
            )
        )
        out.append((d.action, d.rule, d.model))
        if d.allowed and fate == "settle":
            s = g.settle(
                d.reservation,
                D(est * pct // 100).scaleb(-6),
                input_tokens=itok * pct // 100,
                output_tokens=otok * pct // 100,
            )
            out.append((s.spent, s.overage_usd))
        elif d.allowed and fate == "release":
            g.release(d.reservation)
    return out


def _counters(g: Guard) -> list[tuple[Any, Any]]:
    """Each task's dollars (spent, reserved; micro-dollars) and each customer's budget
    (status: dollars), the expired reservations refunded first."""
    now = g._now_ms()
    tasks = [
        g.store.read([f"tg:{{{c}}}:t:{t}"], now, f"tg:{{{c}}}:res")[0]
        for c in ("acme", "beta")
        for t in "abc"
    ]
    budgets = [(st["spent"], st["reserved"]) for st in (g.status("acme"), g.status("beta"))]
    return [*tasks, *budgets]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(run=runs)
def test_memory_and_redis_decide_alike(redis_server, tmp_path_factory, run):
    from tailguard.guard import RedisStore

    pol = policy(TIER, {"reservation_ttl_s": 600})
    mclock, rclock = Clock(), Clock()
    tmp: Path = tmp_path_factory.mktemp("agree")
    mem = Guard(pol, MemoryStore(tmp / "state"), clock=mclock)
    rs = RedisStore(redis_server.url)
    rs.client.flushdb()
    red = Guard(pol, rs, clock=rclock)
    try:
        assert _play(mem, mclock, run) == _play(red, rclock, run)
        mc, rc = _counters(mem), _counters(red)
        assert mc == rc
        for spent, _reserved in mc[:6]:  # the tasks' dollars
            assert spent <= TASK_USD
        for st in (mem.status("acme"), mem.status("beta")):
            assert st["spent"] <= D(HARD).scaleb(-6)
    finally:
        mem.close()
        red.close()
