"""Roll-ups: worked out by hand, kept by every write path, and equal to the events' totals
under any schedule of ingests, appends, compactions and crashes (a hypothesis property)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.cli.app import run
from tailguard.ledger import Ledger, ingest, merged, rollup
from tailguard.ledger.compact import compact
from tailguard.ledger.wal import WriteAheadLog
from tests.ledger.helpers import assert_month_level

UTC = dt.UTC
A = {"customer_id": "A", "user_id": "u1", "feature": "support", "workload": "agent"}
GPT = {"provider": "openai", "model": "gpt-4o"}


def _llm(i: int, ts: str, cost: str | None, inp: int, out: int, **kw: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event_id": f"e{i}",
        "kind": "llm_call",
        "ts": ts,
        "input_tokens": inp,
        "output_tokens": out,
        **A,
        **GPT,
        **kw,
    }
    if cost is not None:
        ev["cost_usd"] = cost
    return ev


def _hand_events() -> list[dict[str, Any]]:
    return [
        # the same group on 2025-06-01: the last microsecond of the day and a retry that failed
        _llm(
            1,
            "2025-06-01T23:59:59.999999Z",
            "0.100000001",
            100,
            10,
            cache_read_tokens=40,
            latency_ms=100.0,
        ),
        _llm(2, "2025-06-01T08:00:00Z", "0.2", 50, 5, attempt=2, status="error", latency_ms=300.0),
        # one microsecond later it is the next UTC day: another row
        _llm(3, "2025-06-02T00:00:00Z", "1", 7, 1),
        # no price for this model and no cost given: unpriced, a NULL cost
        _llm(4, "2025-06-01T09:00:00Z", None, 1000, 1, model="nobody-knows-this-model"),
        {
            "event_id": "e5",
            "kind": "task_outcome",
            "ts": "2025-06-01T10:00:00Z",
            "outcome": "accepted",
            **A,
        },
        {
            "event_id": "e6",
            "kind": "task_outcome",
            "ts": "2025-06-01T11:00:00Z",
            "outcome": "abandoned",
            **A,
        },
        {
            "event_id": "e7",
            "kind": "guard",
            "ts": "2025-06-01T12:00:00Z",
            "action": "deny",
            "rule": "hard_limit",
            "amount_usd": "5.5",
            **A,
        },
    ]


def _rows(led: Ledger) -> dict[tuple[Any, ...], dict[str, Any]]:
    con = led.connect()
    try:
        cur = con.execute("SELECT * FROM rollup")
        cols = [d[0] for d in cur.description]
        out = {}
        for r in cur.fetchall():
            row = dict(zip(cols, r, strict=True))
            out[(str(row["day"]), row["kind"], row["model"], row["outcome"])] = row
        return out
    finally:
        con.close()


def test_a_roll_up_worked_out_by_hand(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "L")
    led.append(_hand_events())
    rows = _rows(led)
    assert set(rows) == {
        ("2025-06-01", "llm_call", "gpt-4o", None),
        ("2025-06-02", "llm_call", "gpt-4o", None),
        ("2025-06-01", "llm_call", "nobody-knows-this-model", None),
        ("2025-06-01", "task_outcome", None, "accepted"),
        ("2025-06-01", "task_outcome", None, "abandoned"),
        ("2025-06-01", "guard", None, None),
    }
    day1 = rows[("2025-06-01", "llm_call", "gpt-4o", None)]
    # 0.100000001 + 0.2, exactly; 100 + 50 input tokens, 10 + 5 output, one retry, one error
    assert day1["cost_usd"] == Decimal("0.300000001")
    assert (day1["events"], day1["requests"]) == (2, 2)
    assert (day1["input_tokens"], day1["output_tokens"], day1["cache_read_tokens"]) == (150, 15, 40)
    assert (day1["retries"], day1["errors"], day1["unpriced"]) == (1, 1, 0)
    assert (day1["latency_ms_sum"], day1["latency_n"]) == (400.0, 2)
    assert day1["first_ts"] == dt.datetime(2025, 6, 1, 8, tzinfo=UTC)
    assert day1["last_ts"] == dt.datetime(2025, 6, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert (day1["customer_id"], day1["user_id"], day1["feature"], day1["workload"]) == (
        "A",
        "u1",
        "support",
        "agent",
    )
    day2 = rows[("2025-06-02", "llm_call", "gpt-4o", None)]
    assert (day2["cost_usd"], day2["events"], day2["input_tokens"]) == (Decimal(1), 1, 7)
    unpriced = rows[("2025-06-01", "llm_call", "nobody-knows-this-model", None)]
    assert (unpriced["cost_usd"], unpriced["unpriced"], unpriced["events"]) == (None, 1, 1)
    accepted = rows[("2025-06-01", "task_outcome", None, "accepted")]
    assert (accepted["events"], accepted["requests"], accepted["cost_usd"]) == (1, 0, Decimal(0))
    guard = rows[("2025-06-01", "guard", None, None)]
    assert (guard["action"], guard["rule"], guard["amount_usd"]) == (
        "deny",
        "hard_limit",
        Decimal("5.5"),
    )
    # the task level: no event has a task id, so one row per (customer, NULL task, workload,
    # day); 06-01 holds e1, e2, e4 (calls: 3; e4 unpriced: no cost) and the two outcomes (one
    # accepted); input 100 + 50 + 1000, output 10 + 5 + 1, cache reads 40 (uncached 1150 - 40)
    con = led.connect()
    try:
        task = con.execute(
            "SELECT day, task_id, outcomes, accepted, calls, input_tokens, output_tokens, "
            "cache_read_tokens, uncached_tokens, cost_usd FROM rollup_task ORDER BY day"
        ).fetchall()
    finally:
        con.close()
    assert task == [
        (dt.date(2025, 6, 1), None, 2, 1, 3, 1150, 16, 40, 1110, Decimal("0.300000001")),
        (dt.date(2025, 6, 2), None, 0, 0, 1, 7, day2["output_tokens"], 0, 7, Decimal(1)),
    ]
    # the call-size level: each call's effective tokens per request at weights 1/10 (cache
    # reads) and 4 (output), rounded down to an edge (tens below 1,000, then two significant
    # digits) that it exceeds: e1 (100 - 40) + 40 / 10 + 10 x 4 = 104 -> 100; e2 50 + 5 x 4 = 70
    # -> 60 (70 is not over 70); e4 1000 + 4 = 1004 -> 1000; e3 (06-02) 7 + 4 = 11 -> 10
    con = led.connect()
    try:
        calls = con.execute("SELECT * FROM rollup_calls ORDER BY day, size").fetchall()
    finally:
        con.close()
    june = dt.date(2025, 6, 1)
    assert calls == [
        ("agent", june, 60, 1),
        ("agent", june, 100, 1),
        ("agent", june, 1000, 1),
        ("agent", dt.date(2025, 6, 2), 10, 1),
    ]
    # one roll-up file per segment and level, named after it
    (seg,) = led.segment_files()
    assert _rollup_files(led) == {
        seg.name,
        seg.name.replace(".parquet", ".daily.parquet"),
        seg.name.replace(".parquet", ".task.parquet"),
        seg.name.replace(".parquet", ".calls.parquet"),
    }


def test_a_call_size_is_exact_at_its_edges(tmp_path: Path) -> None:
    """A call's size is the largest edge its effective tokens per request exceed (tens below
    1,000, then steps of 100 to 10,000, of 1,000 to 100,000, ...), so ``size >= A`` is "over
    alarm A" for an edge A. By hand (effective = uncached + cache reads / 10 + output x 4):"""
    rows = [
        # input, cache reads, output, requests, effective tokens, size
        (100, 0, 0, None, "100", 90),  # exactly 100: not over 100
        (109, 10, 0, None, "99 + 1 = 100", 90),
        (99, 11, 0, None, "88 + 1.1 = 89.1", 80),
        (61, 0, 10, None, "61 + 40 = 101", 100),
        (101, 1, 0, None, "100 + 0.1 = 100.1", 100),
        (300, 0, 0, 3, "100 a request", 90),
        (0, 0, 0, None, "0: over no alarm >= 0", -10),
        (1_000, 0, 0, None, "1,000", 990),
        (1_001, 1, 0, None, "1,000.1", 1_000),
        (1_100, 1, 0, None, "1,099.1", 1_000),
        (10_000, 0, 0, None, "10,000", 9_900),
        (10_001, 1, 0, None, "10,000.1", 10_000),
        (0, 0, 6_250, None, "25,000", 24_000),
    ]
    events = []
    for i, (inp, cache, out, req, _, _) in enumerate(rows):
        ev = _llm(i, "2025-06-01T08:00:00Z", "0.1", inp, out, cache_read_tokens=cache)
        events.append(ev | ({"requests": req} if req else {}))
    led = Ledger(tmp_path / "L")
    led.append(events)
    con = led.connect()
    try:
        got = dict(con.execute("SELECT size, calls FROM rollup_calls").fetchall())
    finally:
        con.close()
    want: dict[int, int] = {}
    for *_, req, _, size in rows:
        want[size] = want.get(size, 0) + (req or 1)
    assert got == want
    assert [rollup.size_edge(q) for q in (-1, 0, 99, 999, 1_000, 1_099, 9_999, 10_000)] == [
        -10,
        0,
        90,
        990,
        1_000,
        1_000,
        9_900,
        10_000,
    ]


def test_the_daily_level_worked_out_by_hand(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "L")
    led.append(_hand_events())
    con = led.connect()
    try:
        cur = con.execute("SELECT * FROM rollup_daily ORDER BY day")
        cols = [d[0] for d in cur.description]
        day1, day2 = (dict(zip(cols, r, strict=True)) for r in cur.fetchall())
    finally:
        con.close()
    assert (day1["customer_id"], day1["day"], day2["day"]) == (
        "A",
        dt.date(2025, 6, 1),
        dt.date(2025, 6, 2),
    )
    # 2025-06-01: e1, e2 (priced 0.100000001 + 0.2), e4 (unpriced), two outcomes, one guard
    assert (day1["events"], day1["llm_calls"], day1["requests"]) == (6, 3, 3)
    assert day1["llm_cost_usd"] == Decimal("0.300000001")
    assert (day1["tool_cost_usd"], day1["retrieval_cost_usd"]) == (None, None)
    assert (day1["input_tokens"], day1["output_tokens"]) == (100 + 50 + 1000, 10 + 5 + 1)
    assert (day1["unpriced"], day1["retries"], day1["errors"]) == (1, 1, 1)
    assert (day1["task_outcomes"], day1["outcome_accepted"], day1["outcome_abandoned"]) == (2, 1, 1)
    assert (day1["outcome_rejected"], day1["guard_events"], day1["guard_deny"]) == (0, 1, 1)
    assert (day1["guard_degrade"], day1["amount_usd"]) == (0, Decimal("5.5"))
    assert day1["first_ts"] == dt.datetime(2025, 6, 1, 8, tzinfo=UTC)
    assert (day2["events"], day2["cost_usd"], day2["llm_cost_usd"]) == (1, Decimal(1), Decimal(1))


def _rollup_files(led: Ledger) -> set[str]:
    return {p.name for p in (led.path / rollup.ROLLUPS).iterdir() if p.is_file()}


def _stems(names: Any) -> set[str]:
    return {Path(n).name.split(".", 1)[0] for n in names}


def test_requests_column_counts_and_old_segments_count_one_per_call(tmp_path: Path) -> None:
    """A segment written before ``requests`` existed: each llm call is one request. With the
    column: its value, NULL read as 1; other kinds count no request."""
    led = Ledger(tmp_path / "L")
    led.append(_hand_events()[:3])
    (seg,) = led.segment_files()
    table = pq.read_table(seg)
    if "requests" in table.schema.names:
        table = table.drop_columns(["requests"])
    old = rollup.of_table(table).full
    assert sorted(old.column("requests").to_pylist()) == [1, 2]  # day 2: 1 call; day 1: 2
    with_col = table.append_column("requests", pa.array([3, None, 5], pa.int64()))
    new = rollup.of_table(with_col).full
    by_day = dict(
        zip(new.column("day").to_pylist(), new.column("requests").to_pylist(), strict=True)
    )
    assert by_day == {dt.date(2025, 6, 1): 3 + 1, dt.date(2025, 6, 2): 5}


def _event_totals(con: Any) -> list[tuple[Any, ...]]:
    """Per customer, UTC day (a cast, not the roll-up's day number) and kind, from the events."""
    return con.execute(
        "SELECT customer_id, CAST(ts AS DATE), kind, count(*), sum(cost_usd), sum(amount_usd), "
        "sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), "
        "sum(CASE WHEN kind = 'llm_call' AND unpriced THEN coalesce(requests, 1) ELSE 0 END), "
        "sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END), min(ts), max(ts) "
        "FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()


def _rollup_totals(con: Any) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT customer_id, day, kind, sum(events), sum(cost_usd), sum(amount_usd), "
        "sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(unpriced), "
        "sum(requests), min(first_ts), max(last_ts) FROM rollup GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()


def _event_daily(con: Any) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT customer_id, CAST(ts AS DATE), count(*), sum(cost_usd), "
        "sum(CASE WHEN kind = 'llm_call' THEN cost_usd END), "
        "sum(CASE WHEN kind = 'llm_call' THEN 1 ELSE 0 END), sum(input_tokens), "
        "sum(CASE WHEN kind = 'task_outcome' AND outcome = 'accepted' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN kind = 'guard' AND action = 'deny' THEN 1 ELSE 0 END), sum(amount_usd) "
        "FROM events GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()


def _rollup_daily(con: Any) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT customer_id, day, sum(events), sum(cost_usd), sum(llm_cost_usd), "
        "sum(llm_calls), sum(input_tokens), sum(outcome_accepted), sum(guard_deny), "
        "sum(amount_usd) FROM rollup_daily GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()


def _event_tasks(con: Any) -> list[tuple[Any, ...]]:
    """Per customer, task, workload and UTC day: outcomes, accepted ones, and the LLM calls'
    requests, tokens and cost; then the distinct tasks with an outcome per customer."""
    per_task = con.execute(
        "SELECT customer_id, task_id, workload, CAST(ts AS DATE), "
        "sum(CASE WHEN kind = 'task_outcome' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN kind = 'task_outcome' AND outcome = 'accepted' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN kind = 'llm_call' THEN coalesce(requests, 1) ELSE 0 END), "
        "sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), "
        "sum(input_tokens - cache_read_tokens), sum(CASE WHEN kind = 'llm_call' THEN cost_usd END) "
        "FROM events WHERE kind IN ('llm_call', 'task_outcome') "
        "GROUP BY 1, 2, 3, 4 ORDER BY ALL"
    ).fetchall()
    distinct = con.execute(
        "SELECT customer_id, count(DISTINCT task_id) FROM events "
        "WHERE kind = 'task_outcome' AND task_id IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return per_task + distinct


def _rollup_tasks(con: Any) -> list[tuple[Any, ...]]:
    per_task = con.execute(
        "SELECT customer_id, task_id, workload, day, sum(outcomes), sum(accepted), sum(calls), "
        "sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(uncached_tokens), "
        "sum(cost_usd) FROM rollup_task GROUP BY 1, 2, 3, 4 ORDER BY ALL"
    ).fetchall()
    distinct = con.execute(
        "SELECT customer_id, count(*) FROM (SELECT customer_id, task_id FROM rollup_task "
        "WHERE outcomes > 0 AND task_id IS NOT NULL GROUP BY 1, 2) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return per_task + distinct


#: alarms (effective tokens per request, size edges) the call-size level is checked at: the
#: smallest, the framework's chat, the property's typical sizes
_ALARMS = (0, 100, 5_000, 1_000_000, 30_000_000)


def _event_calls(con: Any) -> list[tuple[Any, ...]]:
    """Per workload and day, the LLM requests and those over each alarm, tested call by call
    (1/10 and 4 as the integers 1 and 40 over a denominator of 10)."""
    eff = "10 * (input_tokens - cache_read_tokens) + cache_read_tokens + 40 * output_tokens"
    over = ", ".join(
        f"sum(CASE WHEN {eff} > {10 * a} * coalesce(requests, 1) THEN coalesce(requests, 1) "
        "ELSE 0 END)"
        for a in _ALARMS
    )
    return con.execute(
        f"SELECT workload, CAST(ts AS DATE), sum(coalesce(requests, 1)), {over} FROM events "
        "WHERE kind = 'llm_call' GROUP BY 1, 2 ORDER BY ALL"
    ).fetchall()


def _rollup_calls(con: Any) -> list[tuple[Any, ...]]:
    over = ", ".join(f"sum(CASE WHEN size >= {a} THEN calls ELSE 0 END)" for a in _ALARMS)
    assert all(rollup.size_edge(a) == a for a in _ALARMS)  # alarms the sizes answer
    return con.execute(
        f"SELECT workload, day, sum(calls), {over} FROM rollup_calls GROUP BY 1, 2 ORDER BY ALL"
    ).fetchall()


def _assert_equal_totals(led: Ledger, *, repair: bool = True) -> list[tuple[Any, ...]]:
    """The four levels against the events, exactly; returns the events' totals."""
    con = led.connect(repair=repair)
    try:
        con.execute("SET TimeZone = 'UTC'")
        ev, ru = _event_totals(con), _rollup_totals(con)
        ev_day, ru_day = _event_daily(con), _rollup_daily(con)
        ev_task, ru_task = _event_tasks(con), _rollup_tasks(con)
        ev_calls, ru_calls = _event_calls(con), _rollup_calls(con)
    finally:
        con.close()
    assert ru == ev
    assert ru_day == ev_day
    assert ru_task == ev_task
    assert ru_calls == ev_calls
    return ev


def test_replays_and_duplicates_never_reach_a_roll_up_twice(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "L")
    events = _hand_events()
    led.append(events)
    first = _assert_equal_totals(led)
    src = tmp_path / "e.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert ingest([src], led).accepted == 0
    assert led.append(events).accepted == 0
    assert _assert_equal_totals(led) == first
    assert len(_rollup_files(led)) == 4  # one segment, its four levels


def test_compaction_switches_the_roll_ups_with_the_segments(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "L")
    for e in _hand_events():
        led.append([e])
    before = _assert_equal_totals(led)
    res = compact(led, small_rows=100, grace_s=10, now=0.0)
    assert res.source_segments == 7
    assert _assert_equal_totals(led) == before
    (merged,) = led.segment_files()
    assert rollup.path_for(led, merged).exists()
    compact(led, small_rows=100, grace_s=10, now=11.0)  # past the grace: sources deleted
    assert _stems(_rollup_files(led)) == _stems([merged])
    assert len(_rollup_files(led)) == 4
    assert _assert_equal_totals(led) == before


def test_a_missing_roll_up_is_repaired_on_connect_or_aggregated_inline(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "L")
    led.append(_hand_events()[:4])
    led.append(_hand_events()[4:])
    first, _ = led.segment_files()
    lost = rollup.path_for(led, first)
    lost.unlink()  # a crash between segment and roll-up (an older writer's order)
    totals = _assert_equal_totals(led, repair=False)  # read-only: aggregated in the view
    assert not lost.exists()
    assert _assert_equal_totals(led) == totals  # repaired on connect
    assert lost.exists()
    lost_daily = rollup.path_for(led, first, rollup.DAILY_VIEW)
    lost_daily.unlink()  # the daily level alone
    assert _assert_equal_totals(led, repair=False) == totals
    assert _assert_equal_totals(led) == totals
    assert lost_daily.exists()
    lost_task = rollup.path_for(led, first, rollup.TASK_VIEW)
    task_rows = pq.read_metadata(lost_task).num_rows
    lost_task.unlink()  # the task level alone (a ledger written before it existed)
    assert _assert_equal_totals(led, repair=False) == totals
    levels = ("rollup", "rollup_daily", "rollup_calls")
    kept = {lv: rollup.path_for(led, first, lv).stat().st_ino for lv in levels}
    res = rollup.repair(led)
    # only the missing file is written: the other three levels are the same files as before
    assert (res.written, res.rows) == (1, task_rows)
    assert {lv: rollup.path_for(led, first, lv).stat().st_ino for lv in kept} == kept
    assert _assert_equal_totals(led) == totals
    assert lost_task.exists()
    # a ledger written before the call-size level: its task and call files both missing
    lost_calls = rollup.path_for(led, first, rollup.CALLS_VIEW)
    calls_rows = pq.read_metadata(lost_calls).num_rows
    lost_task.unlink()
    lost_calls.unlink()
    assert _assert_equal_totals(led, repair=False) == totals
    kept = {lv: rollup.path_for(led, first, lv).stat().st_ino for lv in levels[:2]}
    res = rollup.repair(led)
    assert (res.written, res.rows) == (1, task_rows + calls_rows)
    assert {lv: rollup.path_for(led, first, lv).stat().st_ino for lv in kept} == kept
    assert lost_task.exists() and lost_calls.exists()
    assert _assert_equal_totals(led) == totals


def test_an_orphan_roll_up_is_ignored_then_removed(tmp_path: Path) -> None:
    """A crash after the roll-up and before its segment's rename: no listing names it."""
    led = Ledger(tmp_path / "L")
    led.append(_hand_events())
    (seg,) = led.segment_files()
    orphan = led.path / rollup.ROLLUPS / "00000000000000000001-deadbeef0000.parquet"
    shutil.copy(rollup.path_for(led, seg), orphan)
    _assert_equal_totals(led)
    compact(led)
    assert not orphan.exists()


def test_the_write_ahead_log_flush_writes_roll_ups(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "L")
    wal = WriteAheadLog(tmp_path / "wal", led.append, durability="none", flush_interval_s=3600)
    for e in _hand_events():
        wal.submit([e]).result()
    wal.close()
    ev = _assert_equal_totals(led)
    assert sum(r[3] for r in ev) == 7
    assert _stems(led.segment_files()) == _stems(_rollup_files(led))


def test_rollup_command_rebuilds_and_repairs(tmp_path: Path, capsys: Any) -> None:
    led = Ledger(tmp_path / "L")
    led.append(_hand_events())
    (seg,) = led.segment_files()
    path = rollup.path_for(led, seg)
    good = pq.read_table(path)
    pq.write_table(good.slice(0, 1), path)  # a roll-up that lost rows (a hand edit)
    assert run(["rollup", "--ledger", str(led.path), "--json"]) == 0  # not missing: kept
    assert json.loads(capsys.readouterr().out)["written"] == 0
    assert run(["rollup", "--rebuild", "--ledger", str(led.path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    daily = pq.read_metadata(rollup.path_for(led, seg, rollup.DAILY_VIEW)).num_rows
    task = pq.read_metadata(rollup.path_for(led, seg, rollup.TASK_VIEW)).num_rows
    calls = pq.read_metadata(rollup.path_for(led, seg, rollup.CALLS_VIEW)).num_rows
    assert (out["segments"], out["written"], out["rows"]) == (
        1,
        1,
        good.num_rows + daily + task + calls,
    )
    _assert_equal_totals(led)
    path.unlink()
    assert run(["rollup", "--ledger", str(led.path)]) == 0
    assert "wrote 1 roll-ups" in capsys.readouterr().out
    assert path.exists()


# --- the property ------------------------------------------------------------------------------

_TS = [
    "2025-06-01T00:00:00Z",
    "2025-06-01T23:59:59.999999Z",
    "2025-06-02T00:00:00Z",
    "2025-06-30T12:00:00Z",
    "2025-07-01T00:00:00Z",  # another month: a task's outcomes in two months
]
_money = st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False).map(str)


@st.composite
def _event(draw: st.DrawFn) -> dict[str, Any]:
    i = draw(st.integers(0, 40))  # a small id space: replays and duplicates are common
    base = {
        "event_id": f"e{i}",
        "ts": draw(st.sampled_from(_TS)),
        "customer_id": draw(st.sampled_from(["a", "b"])),
        "user_id": draw(st.sampled_from([None, "u1", "u2"])),
        "feature": draw(st.sampled_from([None, "f"])),
        # few task ids: a task over several days and segments, re-sent outcomes, task-less calls
        "task_id": draw(st.sampled_from([None, "t1", "t2"])),
        "workload": draw(st.sampled_from([None, "chat", "agent"])),
    }
    kind = draw(st.sampled_from(["llm_call", "llm_call", "tool_call", "task_outcome", "guard"]))
    if kind == "llm_call":
        inp = draw(st.integers(0, 10**7))
        ev = base | {
            "kind": kind,
            "model": draw(st.sampled_from(["gpt-4o", "gpt-4o-mini", "nobody-knows-this-model"])),
            "input_tokens": inp,
            "output_tokens": draw(st.integers(0, 10**6)),
            "cache_read_tokens": draw(st.integers(0, inp)),
            "requests": draw(st.none() | st.integers(1, 5)),  # an aggregate row: N requests
        }
        cost = draw(st.none() | _money)
        return ev | ({"cost_usd": cost} if cost is not None else {})
    if kind == "tool_call":
        return base | {
            "kind": kind,
            "tool": "search",
            "tool_kind": "read",
            "cost_usd": draw(_money),
        }
    if kind == "task_outcome":
        return base | {"kind": kind, "outcome": draw(st.sampled_from(["accepted", "rejected"]))}
    return base | {"kind": kind, "action": "deny", "rule": "hard_limit", "amount_usd": draw(_money)}


_batch = st.lists(_event(), min_size=1, max_size=6)
_op = st.one_of(
    st.tuples(st.just("append"), _batch),
    st.tuples(st.just("ingest"), _batch),
    st.tuples(st.just("compact"), st.integers(0, 2)),
    st.tuples(st.just("crash"), st.integers(0, 50)),
    st.tuples(st.just("orphan"), st.integers(0, 50)),
)


@settings(max_examples=30, deadline=None)
@given(ops=st.lists(_op, min_size=1, max_size=8))
def test_any_schedule_keeps_roll_up_totals_equal_to_the_events(ops: list[Any]) -> None:
    """Property: after any schedule of appends, ingests (replays included: ids repeat),
    compactions (with sources past their grace deleted), crashes that lose a roll-up, and
    roll-ups orphaned by a crash before their segment's rename, the roll-up's totals per
    customer, day and kind equal the events' exactly (Decimal money, integer tokens), read-only
    (inline) and after repair."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        led = Ledger(root / "L")
        clock = 0.0
        for n, (op, arg) in enumerate(ops):
            if op == "append":
                led.append(arg)
            elif op == "ingest":
                src = root / f"in{n}.jsonl"
                src.write_text("".join(json.dumps(e) + "\n" for e in arg))
                ingest([src], led)
            elif op == "compact":
                clock += 10.0 * arg  # 0: sources kept; >= 1: earlier merges past the grace
                compact(led, small_rows=1000, grace_s=5.0, now=clock)
            elif op == "crash" and (live := led.segment_files()):
                levels = (rollup.VIEW, rollup.DAILY_VIEW, rollup.TASK_VIEW, rollup.CALLS_VIEW)
                level = levels[arg % 4]
                rollup.path_for(led, live[arg % len(live)], level).unlink(missing_ok=True)
            elif op == "orphan" and (live := led.segment_files()):
                src_rollup = rollup.path_for(led, live[arg % len(live)])
                if src_rollup.exists():
                    shutil.copy(src_rollup, led.path / rollup.ROLLUPS / f"0-orphan{n}.parquet")
            totals = _assert_equal_totals(led, repair=False)
            assert_month_level(led, repair=False)  # when fresh (after ingest, compact)
        assert _assert_equal_totals(led) == totals
        merged.refresh(led)
        assert_month_level(led, fresh=True)
        con = led.connect()
        try:
            raw = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
        finally:
            con.close()
        assert raw is not None and raw[0] == raw[1]  # and every event is there once


def test_a_late_duplicate_from_another_writer_is_left_out_of_the_roll_up(tmp_path: Path) -> None:
    """Another writer commits one of the ingest's events while it stages: the staged segment
    loses that row under the lock, and its roll-up is computed from what is committed."""
    led = Ledger(tmp_path / "L")
    events = _hand_events()
    src = tmp_path / "e.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    done: list[int] = []

    def other_writer(read: int, staged: int) -> None:
        if not done:
            done.append(Ledger(led.path).append([events[0]]).accepted)

    res = ingest([src], led, progress=other_writer)
    assert done == [1]
    assert (res.accepted, res.duplicates) == (len(events) - 1, 1)
    totals = _assert_equal_totals(led)
    assert sum(r[3] for r in totals) == len(events)
    assert _stems(led.segment_files()) == _stems(_rollup_files(led))
