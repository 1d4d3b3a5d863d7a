"""Property: on any events, the reports read from the roll-ups equal the reports read from the
events (money the same Decimal, counts the same integers).

The roll-up views are made in memory from the events with the ledger's own definitions
(``tailguard.ledger.rollup.aggregate_sql`` and ``daily_sql``, the SQL every segment's roll-up is
written with), so each example costs milliseconds; that the ledger writes and maintains them
through ingest, append and compaction is tests/ledger's property. Events vary in what the
report SQL distinguishes: kind, customer, user (or none), feature (or none), the UTC day and
hour (midnights included), ``requests`` (null = 1, or an aggregate row), attempt, unpriced, the
guard's action and rule, tool kind, outcome (re-sent outcomes included).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tailguard
from tailguard.analytics.context import DAILY, ROLLUP, QueryContext
from tailguard.analytics.period import window
from tailguard.ledger.rollup import aggregate_sql, daily_sql
from tests.analytics.helpers import connect

FEB = window("2026-02")
CUSTOMERS = [
    {"customer_id": "A", "name": "A", "tier": "pro", "segment": "smb", "mrr_usd": Decimal(100),
     "seats": 2},
    {"customer_id": "B", "name": "B", "tier": "team", "segment": "mid_market",
     "mrr_usd": Decimal(300), "seats": 3, "contracted_pool_usd": Decimal(50)},
    {"customer_id": "C", "name": "C", "tier": "free", "segment": "smb", "mrr_usd": Decimal(0),
     "seats": 1},
]  # fmt: skip


@st.composite
def event(draw: Any) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["llm_call", "llm_call", "tool_call", "retrieval", "escalation",
                         "task_outcome", "guard"])
    )  # fmt: skip
    ts = dt.datetime(2026, 2, draw(st.integers(1, 6)), tzinfo=dt.UTC) + dt.timedelta(
        hours=draw(st.sampled_from([0, 0, 11, 23])), seconds=draw(st.sampled_from([0, 59]))
    )
    cents = draw(st.integers(0, 500))
    ev: dict[str, Any] = {
        "kind": kind,
        "ts": ts,
        "customer_id": draw(st.sampled_from(["A", "B", "C"])),
        "user_id": draw(st.sampled_from(["u1", "u2", None])),
        "feature": draw(st.sampled_from(["chat", "search", None])),
        "workload": draw(st.sampled_from(["chat", "agent", None])),
        "task_id": draw(st.sampled_from(["t1", "t2", "t3", None])),
    }
    if kind == "llm_call":
        unpriced = draw(st.booleans())
        inp = draw(st.integers(0, 5000))
        ev |= {
            "model": "m",
            "provider": "p",
            "input_tokens": inp,
            "output_tokens": draw(st.integers(0, 800)),
            "cache_read_tokens": draw(st.integers(0, inp)),
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "attempt": draw(st.sampled_from([1, 1, 2])),
            "requests": draw(st.sampled_from([None, 1, 3])),
            "unpriced": unpriced,
            "cost_usd": None if unpriced else Decimal(cents) / 100,
        }
    elif kind == "tool_call":
        ev |= {"tool": "x", "tool_kind": draw(st.sampled_from(["read", "write"])),
               "status": "ok", "cost_usd": Decimal(cents) / 1000}  # fmt: skip
    elif kind == "retrieval":
        ev |= {"queries": draw(st.integers(1, 3)), "reranks": draw(st.integers(0, 2)),
               "cost_usd": Decimal(cents) / 1000}  # fmt: skip
    elif kind == "escalation":
        ev |= {"minutes": 1.5, "cost_usd": Decimal(cents) / 10}
    elif kind == "task_outcome":
        ev["outcome"] = draw(st.sampled_from(["accepted", "abandoned", "rejected"]))
    else:
        action, rule = draw(
            st.sampled_from([("degrade", "soft_limit"), ("degrade", "fail_open:store_unavailable"),
                             ("deny", "hard_limit"), ("deny", "rate"), ("overage", "payg")])
        )  # fmt: skip
        ev |= {"action": action, "rule": rule}
    return ev


def _reports(ctx: QueryContext, customer: str) -> dict[str, Any]:
    return {
        "customers": tailguard.customer_report(ctx, window=FEB),
        "margins": tailguard.margins(ctx, window=FEB, history_months=1),
        "kpis": tailguard.kpis(ctx, window=FEB),
        "anomalies": tailguard.anomalies(ctx, day=ctx.last_day()),
        "totals": [list(x) for x in tailguard.entity_totals(ctx, by="user")],
        # distinct active users per month from the roll-up's user_id
        "renewal": tailguard.renewal(ctx, customer),
        "weekly": tailguard.digest(ctx, "weekly", day=ctx.last_day()),
        "quarterly": tailguard.digest(ctx, "quarterly", day=ctx.last_day()),
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event(), min_size=1, max_size=40))
def test_rollup_paths_equal_events(events: list[dict[str, Any]]) -> None:
    rows = [{"event_id": f"e{i}", **e} for i, e in enumerate(events)]
    con = connect(rows, CUSTOMERS)
    con.execute(f"CREATE TABLE {ROLLUP} AS {aggregate_sql('events', has_requests=True)}")
    con.execute(f"CREATE TABLE {DAILY} AS {daily_sql(ROLLUP)}")
    try:
        got = {}
        for use in (True, (ROLLUP,), False):
            ctx = QueryContext.wrap(con)
            ctx.use_rollup = use
            assert ctx.has_rollup() is (use is not False)
            got[str(use)] = _reports(ctx, rows[0]["customer_id"])
        assert got["True"] == got["('rollup',)"] == got["False"]
    finally:
        con.close()
