"""A property: whatever the schedule of writes (commits, replays, raced inserts that bypass the
id check) and of refreshes between them, the ClickHouse ledger counts each event id once, the
first written copy's cost, and every roll-up level (full, task, call-size, month and the
whole-ledger rows) holds its events' totals exactly."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.ledger.clickhouse import ClickHouseLedger
from tailguard.ledger.clickhouse_rollup import (
    CALLS_TABLE,
    FULL_TABLE,
    MONTH_TABLE,
    TASK_TABLE,
    refresh,
)
from tailguard.pricing import PriceBook

from .helpers import PRICES_TOML, chdb_url, llm, priced

#: the days the events fall on: two in January (one the month's last), two in February
DAYS = ("2026-01-05", "2026-01-31", "2026-02-01", "2026-02-14")

#: one write: (how, refresh after it, [(event number, cost in micro-dollars, day index)])
writes = st.lists(
    st.tuples(
        st.sampled_from(["commit", "raced"]),
        st.booleans(),
        st.lists(
            st.tuples(st.integers(0, 15), st.integers(1, 10**6), st.integers(0, len(DAYS) - 1)),
            min_size=1,
            max_size=8,
        ),
    ),
    min_size=1,
    max_size=5,
)


def _event(n: int, micros: int, ts: str) -> dict[str, Any]:
    """Event ``n``: an LLM call of task ``t{n % 4}`` when ``n`` is even (``n % 8 == 6``: no
    task), else an outcome of that task, accepted when ``n % 3 == 0`` (a copy of an event is
    the same event: its kind, task and outcome follow from ``n``; only a raced copy's price may
    differ)."""
    task = f"t{n % 4}"
    if n % 2 == 0:
        return llm(
            n, ts=ts, cost_usd=str(Decimal(micros) / 10**6), task_id=task if n % 8 != 6 else None
        )
    outcome = "accepted" if n % 3 == 0 else "rejected"
    return {
        "event_id": f"e{n}", "kind": "task_outcome", "ts": ts, "customer_id": "c1",
        "task_id": task, "outcome": outcome,
    }  # fmt: skip


def _expected(first: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the levels must hold, from the first copy of each event, by a second method (plain
    Python over the events, not SQL over roll-ups)."""
    calls = [e for e in first.values() if e["kind"] == "llm_call"]
    outs = [e for e in first.values() if e["kind"] == "task_outcome"]
    month: dict[str, dict[str, Any]] = {}
    for e in first.values():
        m = month.setdefault(
            e["ts"][:7], {"events": 0, "cost": Decimal(0), "tasks": set(), "won": set()}
        )
        m["events"] += 1
        m["cost"] += Decimal(e.get("cost_usd") or 0)
        if e["kind"] == "task_outcome":  # a month's tasks, and those accepted in that month
            m["tasks"].add(e["task_id"])
            if e["outcome"] == "accepted":
                m["won"].add(e["task_id"])
    won = {e["task_id"] for e in outs if e["outcome"] == "accepted"}  # over the whole ledger
    return {
        "calls": len(calls),
        "call_cost": sum((Decimal(e["cost_usd"]) for e in calls), Decimal(0)),
        "outcomes": len(outs),
        "accepted": sum(e["outcome"] == "accepted" for e in outs),
        "months": {
            k: (v["events"], v["cost"], len(v["tasks"]), len(v["won"])) for k, v in month.items()
        },
        "tasks": len({e["task_id"] for e in outs}),
        "won": len({e["task_id"] for e in outs} & won),
    }


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schedule=writes)
def test_each_id_once_first_copy_wins_and_rollups_match(
    tmp_path: Path, schedule: list[tuple[str, bool, list[tuple[int, int, int]]]]
) -> None:
    """Commits and raced inserts (replays included: an id may come back in a later write),
    with refreshes between some of them: every level's totals equal the first copies'."""
    (tmp_path / "p.toml").write_text(PRICES_TOML)
    book = PriceBook.load(tmp_path / "p.toml")
    led = ClickHouseLedger(f"{chdb_url(tmp_path / 'c')}?database=p{uuid.uuid4().hex[:10]}")
    led.init()
    first: dict[str, dict[str, Any]] = {}  # id -> the first copy written
    for how, then_refresh, rows in schedule:
        events = []
        for n, micros, day in rows:
            # a copy of an event keeps its customer and time (an id names one event); a raced
            # copy may carry another price (two replicas with different price books)
            ts = first[f"e{n}"]["ts"] if f"e{n}" in first else f"{DAYS[day]}T10:00:00Z"
            events.append(_event(n, micros, ts))
        batch = priced(book, events)
        for ev in events:  # the batch's first copy, then the ledger's: the expected winner
            first.setdefault(ev["event_id"], ev)
        if how == "commit":
            led.commit(batch)
        else:  # a writer without the lock: no id check, FINAL and the version settle it
            from tailguard.ledger.store import IdIndex

            led.insert_rows(IdIndex([]).fresh(batch))
        if then_refresh:
            refresh(led)
    want = _expected(first)
    row = led.query(f"SELECT count() AS n, sum(cost_usd) AS c FROM {led.db}.events").to_pylist()
    assert row[0]["n"] == len(first)
    assert row[0]["c"] == want["call_cost"]
    refresh(led)
    r = led.query(
        f"SELECT sum(events) AS n, sum(cost_usd) AS c, sum(input_tokens) AS t "
        f"FROM {led.db}.{FULL_TABLE}"
    ).to_pylist()[0]
    got_full = (r["n"], r["c"] or Decimal(0), r["t"] or 0)  # NULL: no row with a value
    assert got_full == (len(first), want["call_cost"], 1000 * want["calls"])
    r = led.query(
        "SELECT sum(calls) AS calls, sum(cost_usd) AS c, sum(outcomes) AS o, "
        f"sum(accepted) AS a, sum(input_tokens) AS t FROM {led.db}.{TASK_TABLE}"
    ).to_pylist()[0]
    calls = want["calls"]
    assert (r["calls"], r["o"], r["a"]) == (calls, want["outcomes"], want["accepted"])
    assert (r["c"] or Decimal(0), r["t"] or 0) == (want["call_cost"], 1000 * calls)
    r = led.query(f"SELECT sum(calls) AS n FROM {led.db}.{CALLS_TABLE}").to_pylist()[0]
    assert (r["n"] or 0) == calls
    got = {
        (m["month"].isoformat()[:7] if m["month"] else None): (
            m["events"],
            m["cost_usd"] or Decimal(0),
            m["tasks"],
            m["successful_tasks"],
        )
        for m in led.query(
            f"SELECT month, events, cost_usd, tasks, successful_tasks FROM {led.db}.{MONTH_TABLE}"
        ).to_pylist()
    }
    total = got.pop(None)
    assert got == want["months"]
    assert total == (len(first), want["call_cost"], want["tasks"], want["won"])
