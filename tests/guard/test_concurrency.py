"""Under concurrency, settled spend never passes a hard limit (the documented bound is zero
when actual costs stay within their estimates), on both stores, from threads and asyncio tasks.

Each example fires hundreds of reservations at one budget; every allowed call then settles
at most its estimate or is released. Two invariants are checked against the store itself:
spent <= limit, and spent == the sum of what was settled (no lost or doubled update).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.guard import Guard, Request
from tailguard.guard.units import to_micro

from .conftest import policy

_ids = itertools.count()

calls = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=50_000),  # estimate, micro-dollars (<= $0.05)
        st.integers(min_value=0, max_value=100),  # actual as a % of the estimate
        st.booleans(),  # release instead of settle (the upstream call failed)
    ),
    min_size=200,
    max_size=400,
)
limits = st.integers(min_value=100_000, max_value=3_000_000)  # $0.10 .. $3.00
PROP = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _guards(make_store: Any, limit: int, n: int, kind: str) -> list[Guard]:
    pol = policy({"hard_limit_usd": str(D(limit).scaleb(-6)), "overage": "hard_cap"})
    if kind == "memory":
        return [Guard(pol, make_store())] * n  # one process, one store
    return [Guard(pol, make_store()) for _ in range(n)]  # n "gateway replicas" on one Redis


def _one(
    g: Guard, cid: str, est: int, pct: int, fail: bool, settled: list[int], lock: threading.Lock
) -> None:
    d = g.check(Request(cid, D(est).scaleb(-6)))
    if not d.allowed:
        return
    if fail:
        g.release(d.reservation)
        return
    actual = est * pct // 100
    g.settle(d.reservation, D(actual).scaleb(-6))
    with lock:
        settled.append(actual)


def _spent(g: Guard, cid: str) -> int:
    return to_micro(g.status(cid)["spent"])


@PROP
@given(plan=calls, limit=limits)
def test_threads_never_overspend(make_store, store_kind, plan, limit):
    cid = f"thr{next(_ids)}"
    guards = _guards(make_store, limit, 2, store_kind)
    settled: list[int] = []
    lock = threading.Lock()
    work = list(enumerate(plan))

    def worker(k: int) -> None:
        for i, (est, pct, fail) in work[k::8]:
            _one(guards[i % 2], cid, est, pct, fail, settled, lock)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = _spent(guards[0], cid)
    assert spent <= limit
    assert spent == sum(settled)
    assert guards[0].status(cid)["reserved"] == 0  # nothing leaked
    assert all(g.stats["fail_open"] == 0 for g in guards)  # the shared store answered throughout


@PROP
@given(plan=calls, limit=limits)
def test_asyncio_tasks_never_overspend(make_store, store_kind, plan, limit):
    cid = f"aio{next(_ids)}"
    guards = _guards(make_store, limit, 2, store_kind)
    settled: list[int] = []

    async def one(i: int, est: int, pct: int, fail: bool) -> None:
        g = guards[i % 2]
        d = await g.acheck(Request(cid, D(est).scaleb(-6)))
        if not d.allowed:
            return
        await asyncio.sleep(0)  # let other tasks reserve while this call is "in flight"
        if fail:
            await g.arelease(d.reservation)
            return
        actual = est * pct // 100
        await g.asettle(d.reservation, D(actual).scaleb(-6))
        settled.append(actual)

    async def run() -> None:
        await asyncio.gather(*(one(i, *c) for i, c in enumerate(plan)))
        for g in guards:
            if hasattr(g.store, "aclose"):
                await g.store.aclose()

    asyncio.run(run())
    spent = _spent(guards[0], cid)
    assert spent <= limit
    assert spent == sum(settled)
    assert all(g.stats["fail_open"] == 0 for g in guards)


def test_all_in_flight_at_once_fill_exactly(make_store, store_kind):
    """300 reservations of $0.01 at a $1.00 budget, none settled yet: exactly 100 fit."""
    guards = _guards(make_store, 1_000_000, 2, store_kind)
    out: list[Any] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for _ in range(30):
            d = guards[k % 2].check(Request("burst", D("0.01")))
            with lock:
                out.append(d)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allowed = [d for d in out if d.allowed]
    assert len(allowed) == 100  # $1.00 / $0.01, and not one more
    for d in allowed:
        guards[0].settle(d.reservation, D("0.01"))
    assert guards[0].status("burst")["spent"] == D("1.00")
