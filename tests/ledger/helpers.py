"""Ledgers shared by the ledger and analytics tests: the month level's hand-worked events
(``SEG1``, ``SEG2``; the arithmetic is in tests/ledger/test_merged.py) and
``assert_month_level``, the month level checked against the events by a second method."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tailguard.ledger import Ledger, merged

JAN, FEB = dt.date(2026, 1, 1), dt.date(2026, 2, 1)


def _ev(i: int, kind: str, cust: str, ts: str, **kw: Any) -> dict[str, Any]:
    return {"event_id": f"m{i}", "kind": kind, "customer_id": cust, "user_id": "u", "ts": ts, **kw}


def _llm(i: int, cust: str, ts: str, cost: str, inp: int, out: int, **kw: Any) -> dict[str, Any]:
    return _ev(
        i, "llm_call", cust, ts, provider="openai", model="gpt-4o", cost_usd=cost,
        input_tokens=inp, output_tokens=out, **kw,
    )  # fmt: skip


def _out(i: int, cust: str, ts: str, task: str, outcome: str) -> dict[str, Any]:
    return _ev(i, "task_outcome", cust, ts, task_id=task, outcome=outcome)


#: first segment: January
SEG1 = [
    _llm(1, "A", "2026-01-31T23:00:00Z", "0.000000001", 10, 1, task_id="t1"),
    _out(2, "A", "2026-01-31T23:30:00Z", "t1", "rejected"),
    _llm(3, "B", "2026-01-15T12:00:00Z", "2.5", 100, 20),
    _out(4, "B", "2026-01-15T13:00:00Z", "t3", "rejected"),
]
#: second segment: t1's second outcome (accepted) one minute into February; t2 twice on one
#: day (abandoned, then accepted); an aggregate row of 3 requests; a read tool call
SEG2 = [
    _out(5, "A", "2026-02-01T00:00:00Z", "t1", "accepted"),
    _out(6, "A", "2026-02-10T10:00:00Z", "t2", "abandoned"),
    _out(7, "A", "2026-02-10T11:00:00Z", "t2", "accepted"),
    _llm(8, "A", "2026-02-10T09:00:00Z", "1", 5, 5, task_id="t2", requests=3),
    _ev(9, "tool_call", "A", "2026-02-11T08:00:00Z", tool="search", tool_kind="read",
        cost_usd="0.002"),
]  # fmt: skip


def hand_ledger(path: Path) -> Ledger:
    led = Ledger(path)
    led.append(SEG1)
    led.append(SEG2)
    return led


def assert_month_level(led: Ledger, *, fresh: bool = False, repair: bool = True) -> None:
    """The month level, when the connection has it (always, with ``fresh``), equals what the
    events give by a second method: per customer and UTC month (a cast of ``ts``, not the
    roll-ups' day numbers) the counts and sums, first and last day, ``count(DISTINCT)`` tasks
    with an outcome and with an accepted one, and per task its first outcome's month and
    whether any outcome was accepted. ``repair``: ``Ledger.connect``'s."""
    con = led.connect(repair=repair)
    try:
        con.execute("SET TimeZone = 'UTC'")
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        if merged.VIEW not in views:
            assert not (fresh and led.segment_files()), "the month level should be fresh"
            return
        month = "CAST(date_trunc('month', CAST(ts AS DATE)) AS DATE)"
        ev = con.execute(
            f"SELECT customer_id, {month} AS m, count(*), sum(cost_usd), "
            "sum(CASE WHEN kind = 'llm_call' THEN cost_usd END), "
            "sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END), "
            "sum(input_tokens), sum(amount_usd), "
            "min(CAST(ts AS DATE)), max(CAST(ts AS DATE)), "
            "count(DISTINCT CASE WHEN kind = 'task_outcome' THEN task_id END), "
            "count(DISTINCT CASE WHEN kind = 'task_outcome' AND outcome = 'accepted' "
            "THEN task_id END) FROM events GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        firsts = dict(
            ((r[0], r[1]), (r[2], r[3]))
            for r in con.execute(
                "SELECT customer_id, m, count(*), count(*) FILTER (WHERE won) FROM ("
                f"SELECT customer_id, task_id, min({month}) AS m, bool_or(outcome = 'accepted') "
                "AS won FROM events WHERE kind = 'task_outcome' AND task_id IS NOT NULL "
                "GROUP BY 1, 2) GROUP BY 1, 2"
            ).fetchall()
        )
        got = con.execute(
            "SELECT customer_id, month, events, cost_usd, llm_cost_usd, requests, input_tokens, "
            "amount_usd, first_day, last_day, tasks, successful_tasks, first_tasks, "
            f"first_successful_tasks FROM {merged.VIEW} ORDER BY 1, 2"
        ).fetchall()
        # the whole-ledger rows: the same over every event, tasks distinct over the ledger
        ev_total = con.execute(
            "SELECT customer_id, count(*), sum(cost_usd), sum(input_tokens), "
            "min(CAST(ts AS DATE)), max(CAST(ts AS DATE)), "
            "count(DISTINCT CASE WHEN kind = 'task_outcome' THEN task_id END) FROM events "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        won = dict(
            con.execute(
                "SELECT customer_id, count(*) FROM (SELECT customer_id, task_id FROM events "
                "WHERE kind = 'task_outcome' AND task_id IS NOT NULL GROUP BY 1, 2 "
                "HAVING bool_or(outcome = 'accepted')) GROUP BY 1"
            ).fetchall()
        )
        got_total = con.execute(
            "SELECT customer_id, events, cost_usd, input_tokens, first_day, last_day, tasks, "
            f"successful_tasks FROM {merged.TOTAL_VIEW} ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    want = [(*r, *firsts.get((r[0], r[1]), (0, 0))) for r in ev]
    assert got == want
    assert got_total == [(*r, won.get(r[0], 0)) for r in ev_total]
