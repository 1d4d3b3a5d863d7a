"""The month level (``tailguard.ledger.merged``): worked out by hand, fresh only for the listing
it was computed from, refreshed by ingest / compact / ``tailguard rollup``, and equal to the
events' own month sums and distinct tasks (``assert_month_level``, also checked after every
step of the roll-up property in test_rollup.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from tailguard.cli.app import run
from tailguard.ledger import Ledger, ingest, merged
from tailguard.ledger.compact import compact
from tests.ledger.helpers import FEB, JAN, SEG1, SEG2, _out, assert_month_level, hand_ledger


def _month_rows(led: Ledger) -> dict[tuple[str, dt.date], dict[str, Any]]:
    con = led.connect()
    try:
        cur = con.execute(f"SELECT * FROM {merged.VIEW}")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return {(r["customer_id"], r["month"]): r for r in rows}


def test_the_month_level_worked_out_by_hand(tmp_path: Path) -> None:
    """A Jan: e1 (0.000000001, 10 in, 1 out), e2 (t1 rejected). A Feb: e5 (t1 accepted),
    e6 + e7 (t2 abandoned then accepted), e8 (1.00, 3 requests, 5 + 5 tokens), e9 (tool
    0.002, read): cost 1.002. B Jan: e3 (2.5, 100 in, 20 out), e4 (t3 rejected).
    Tasks in the month: A Jan {t1} none won; A Feb {t1, t2} both won; B Jan {t3} none won.
    First-outcome tasks: t1 first in Jan and won over the ledger (its Feb outcome), so A Jan
    counts 1 first task, 1 won; t2 first in Feb, won; t3 first in Jan, not won."""
    led = hand_ledger(tmp_path / "L")
    assert merged.refresh(led).written
    rows = _month_rows(led)
    assert set(rows) == {("A", JAN), ("A", FEB), ("B", JAN)}
    a_jan, a_feb, b_jan = rows[("A", JAN)], rows[("A", FEB)], rows[("B", JAN)]
    pick = ("events", "cost_usd", "llm_cost_usd", "tool_cost_usd", "requests", "llm_calls")
    assert tuple(a_jan[k] for k in pick) == (2, Decimal("1E-9"), Decimal("1E-9"), None, 1, 1)
    assert tuple(a_feb[k] for k in pick) == (
        5,
        Decimal("1.002"),
        Decimal(1),
        Decimal("0.002"),
        3,
        1,
    )
    assert tuple(b_jan[k] for k in pick) == (2, Decimal("2.5"), Decimal("2.5"), None, 1, 1)
    assert (a_jan["input_tokens"], a_feb["input_tokens"], b_jan["output_tokens"]) == (10, 5, 20)
    assert (a_feb["read_tool_calls"], a_feb["task_outcomes"], a_feb["outcome_accepted"]) == (
        1,
        3,
        2,
    )
    days = [(r["first_day"], r["last_day"]) for r in (a_jan, a_feb, b_jan)]
    assert days == [
        (dt.date(2026, 1, 31), dt.date(2026, 1, 31)),
        (dt.date(2026, 2, 1), dt.date(2026, 2, 11)),
        (dt.date(2026, 1, 15), dt.date(2026, 1, 15)),
    ]
    tasks = ("tasks", "successful_tasks", "first_tasks", "first_successful_tasks")
    assert [tuple(r[k] for k in tasks) for r in (a_jan, a_feb, b_jan)] == [
        (1, 0, 1, 1),
        (2, 2, 1, 1),
        (1, 0, 1, 0),
    ]
    con = led.connect()
    try:
        total = con.execute(
            "SELECT customer_id, cost_usd, first_day, last_day, tasks, successful_tasks "
            f"FROM {merged.TOTAL_VIEW} ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    # the whole ledger: A's tasks {t1, t2} both won (t1 counted once: its first month), B's t3
    assert total == [
        ("A", Decimal("1.002000001"), dt.date(2026, 1, 31), dt.date(2026, 2, 11), 2, 2),
        ("B", Decimal("2.5"), dt.date(2026, 1, 15), dt.date(2026, 1, 15), 1, 0),
    ]
    assert_month_level(led, fresh=True)


def test_fresh_only_for_its_own_listing(tmp_path: Path) -> None:
    """A commit after the refresh makes the level stale: the connection has no ``rollup_month``
    (the reports read the per-segment levels); the next refresh writes the new listing's file,
    a second refresh is a no-op, and the old file goes once superseded for the grace period."""
    led = hand_ledger(tmp_path / "L")
    first = merged.refresh(led)
    assert first.written and merged.is_fresh(led)
    old = merged.path_for(led, led.segment_files())
    led.append([_out(10, "A", "2026-02-20T00:00:00Z", "t4", "accepted")])
    assert not merged.is_fresh(led) and old.exists()
    con = led.connect()
    try:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    finally:
        con.close()
    assert merged.VIEW not in views and "rollup_daily" in views
    second = merged.refresh(led, now=0.0)
    assert second.written and second.removed == 0  # the old file is kept for its readers
    assert merged.refresh(led).written is False
    assert _month_rows(led)[("A", FEB)]["first_tasks"] == 2  # t2 and t4
    new = merged.path_for(led, led.segment_files())
    later = new.stat().st_mtime + merged.GRACE_S
    assert merged.refresh(led, now=later).removed == 1
    assert not old.exists() and new.exists()
    assert_month_level(led, fresh=True)


def test_ingest_compact_and_the_rollup_command_refresh_it(tmp_path: Path, capsys: Any) -> None:
    led = Ledger(tmp_path / "L")
    src = tmp_path / "e.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in SEG1))
    ingest([src], led)
    assert merged.is_fresh(led)
    led.append(SEG2)  # the gateway's and the SDK's path: no refresh per commit
    assert not merged.is_fresh(led)
    res = compact(led, small_rows=1000)
    assert res.merged_segments == 1 and merged.is_fresh(led)
    assert_month_level(led, fresh=True)
    led.append([_out(10, "B", "2026-02-02T00:00:00Z", "t5", "accepted")])
    assert run(["rollup", "--ledger", str(led.path)]) == 0
    assert "month level written" in capsys.readouterr().out
    assert merged.is_fresh(led)
    # --rebuild recomputes it even when fresh (the per-segment roll-ups may have changed)
    path = merged.path_for(led, led.segment_files())
    os.utime(path, (0, 0))
    assert run(["rollup", "--rebuild", "--ledger", str(led.path)]) == 0
    assert path.stat().st_mtime > 0
    assert_month_level(led, fresh=True)
