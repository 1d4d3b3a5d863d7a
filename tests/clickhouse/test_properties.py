"""A property: whatever the schedule of writes (commits, replays, raced inserts that bypass the
id check), the ClickHouse ledger counts each event id once, the first written copy's cost, and
its roll-ups equal its events exactly."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.ledger.clickhouse import ClickHouseLedger
from tailguard.ledger.clickhouse_rollup import FULL_TABLE, refresh
from tailguard.pricing import PriceBook

from .helpers import PRICES_TOML, chdb_url, llm, priced

#: one write: (how, [(event number, cost in micro-dollars, day of January)])
writes = st.lists(
    st.tuples(
        st.sampled_from(["commit", "raced"]),
        st.lists(
            st.tuples(st.integers(0, 15), st.integers(1, 10**6), st.integers(1, 3)),
            min_size=1,
            max_size=8,
        ),
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schedule=writes)
def test_each_id_once_first_copy_wins_and_rollups_match(
    tmp_path: Path, schedule: list[tuple[str, list[tuple[int, int, int]]]]
) -> None:
    (tmp_path / "p.toml").write_text(PRICES_TOML)
    book = PriceBook.load(tmp_path / "p.toml")
    led = ClickHouseLedger(f"{chdb_url(tmp_path / 'c')}?database=p{uuid.uuid4().hex[:10]}")
    led.init()
    first: dict[str, tuple[Decimal, str]] = {}  # id -> (cost, ts) of the first copy written
    for how, rows in schedule:
        events = []
        for n, micros, day in rows:
            # a copy of an event keeps its customer and time (an id names one event); a raced
            # copy may carry another price (two replicas with different price books)
            ts = first.get(f"e{n}", (None, f"2026-01-0{day}T10:00:00Z"))[1]
            events.append(llm(n, ts=ts, cost_usd=str(Decimal(micros) / 10**6)))
        batch = priced(book, events)
        seen: set[str] = set()
        for ev in events:  # the batch's first copy, then the ledger's: the expected winner
            if ev["event_id"] not in first and ev["event_id"] not in seen:
                first[ev["event_id"]] = (Decimal(ev["cost_usd"]), ev["ts"])
            seen.add(ev["event_id"])
        if how == "commit":
            led.commit(batch)
        else:  # a writer without the lock: no id check, FINAL and the version settle it
            from tailguard.ledger.store import IdIndex

            led.insert_rows(IdIndex([]).fresh(batch))
    row = led.query(f"SELECT count() AS n, sum(cost_usd) AS c FROM {led.db}.events").to_pylist()
    assert row[0]["n"] == len(first)
    assert row[0]["c"] == sum((c for c, _ in first.values()), Decimal(0))
    refresh(led)
    r = led.query(
        f"SELECT sum(events) AS n, sum(cost_usd) AS c, sum(input_tokens) AS t "
        f"FROM {led.db}.{FULL_TABLE}"
    ).to_pylist()[0]
    assert (r["n"], r["c"], r["t"]) == (len(first), row[0]["c"], 1000 * len(first))
