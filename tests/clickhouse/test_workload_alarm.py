"""The workload alarms at their exact boundary, on both engines.

Effective tokens are ``uncached + 0.1 x cache_read + 4 x output`` (docs: workload). The alarm
tests are strict (``>``), so a call or task *exactly* on its alarm is not over it, and one a
tenth of a token past it is. The test used to be written with the weights as SQL literals
(``0.1``), an exact DECIMAL in DuckDB and a Float64 in ClickHouse; it is now done in integers
(both sides scaled by the weights' denominator, 10), the same on both engines.

By hand (chat alarm 5,000 per call; agent alarm 40,000 per task):

    chat c1  input 4,100 cache 1,000 output 450:  3,100 + 100   + 1,800 = 5,000    not over
    chat c2  input 4,101 cache 1,001 output 450:  3,100 + 100.1 + 1,800 = 5,000.1  over
    chat c3  2 requests, input 8,200 cache 2,000 output 900:
             (6,200 + 200 + 3,600) / 2 = 5,000 per request                           not over
    -> chat: 4 invocations, 1 over: over_alarm_share 0.25
    agent a1 two calls, input 20,000 / 18,000, cache 10,000 each, output 2,500 each:
             (10,000 + 1,000 + 10,000) + (8,000 + 1,000 + 10,000) = 40,000            not over
    agent a2 the same with one more cached token in its first call (input 20,001,
             cache 10,001): 40,000.1                                                  over
    -> agent: 2 tasks, 1 over: over_alarm_share 0.5
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tailguard.analytics.context import QueryContext
from tailguard.analytics.period import window
from tailguard.analytics.workload import workload

from .helpers import twin_ledgers, write_jsonl

_n = iter(range(1, 10**6))


def _call(wl: str, task: str, inp: int, cache: int, out: int, requests: int = 1) -> dict:
    return {
        "event_id": f"b{next(_n)}", "kind": "llm_call", "ts": "2025-06-10T10:00:00Z",
        "customer_id": "X", "task_id": task, "workload": wl, "model": "m",
        "input_tokens": inp, "cache_read_tokens": cache, "output_tokens": out,
        "requests": requests, "cost_usd": "0.01",
    }  # fmt: skip


EVENTS = [
    _call("chat", "c1", 4100, 1000, 450),
    _call("chat", "c2", 4101, 1001, 450),
    _call("chat", "c3", 8200, 2000, 900, requests=2),
    _call("agent", "a1", 20000, 10000, 2500),
    _call("agent", "a1", 18000, 10000, 2500),
    _call("agent", "a2", 20001, 10001, 2500),
    _call("agent", "a2", 18000, 10000, 2500),
]


def test_exactly_on_the_alarm_is_not_over_it_on_either_engine(tmp_path: Path) -> None:
    duck, ch = twin_ledgers(tmp_path, write_jsonl(tmp_path / "ev.jsonl", EVENTS), None, None)
    win = window("2025-06", None, None)
    for ledger in (duck, ch):
        for rollups in (True, False):
            with QueryContext.open(ledger) as ctx:
                ctx.use_rollup = rollups
                got: dict[str, Any] = {c["workload"]: c for c in workload(ctx, win)["classes"]}
            where = f"{type(ledger).__name__} rollups={rollups}"
            assert (got["chat"]["invocations"], got["chat"]["over_alarm_share"]) == (4, 0.25), where
            assert (got["agent"]["tasks"], got["agent"]["over_alarm_share"]) == (2, 0.5), where
