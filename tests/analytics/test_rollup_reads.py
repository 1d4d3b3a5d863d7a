"""The reports that read the ledger's roll-ups give exactly what the events give.

Three methods, one answer: every report runs with both roll-up levels (the daily one and the
per-user one: ``QueryContext.use_rollup``, the default on a ``Ledger.connect`` connection), with
the per-user roll-up alone, and from the events alone (the query each report had before the
roll-ups), and the results must be equal:
money as the same Decimal, counts as the same integers, every ratio the same float. The ledgers:
the asymmetric one (every event kind, re-sent outcomes, an unpriced call, events on both sides
of a midnight and outside the window) and a panel month with guard decisions (degrade, deny at
the hard limit, overage), a user-less event and a feature-less one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import tailguard
from tailguard.analytics.context import DAILY, ROLLUP, QueryContext
from tailguard.analytics.period import Window, window
from tailguard.guard.policy import load_policy
from tailguard.ledger import Ledger
from tests.analytics.helpers import POLICY_TOML, Events, day, make_ledger
from tests.fixtures_asymmetric import asymmetric_ledger

JUNE = window("2025-06")
FEB = window("2026-02")


@pytest.fixture(scope="module")
def june(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return asymmetric_ledger(tmp_path_factory.mktemp("asym"))


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    e = Events()
    for d in range(1, 15):
        e.llm("P1", "p1u", day(d), "1.00", feature="search")
        e.llm("P1", "p1v", day(d, 23), "0.25")
        e.llm("P2", "p2u", day(d), "3.00", feature="draft")
    e.llm("P2", "p2u", day(3, 0), "0.10", feature=None)
    e.llm("P3", None, day(4), "2.00")  # type: ignore[arg-type]  # no user: a customer's spend
    e.guard("P1", "p1u", day(12), "degrade", "soft_limit")
    e.guard("P1", "p1u", day(13), "degrade", "fail_open:store_unavailable")
    e.guard("P2", "p2u", day(5), "deny", "hard_limit")
    e.guard("P2", "p2u", day(6), "deny", "hard_limit")
    e.guard("P3", None, day(14), "overage", "payg")  # type: ignore[arg-type]
    e.llm("P1", "p1u", "2026-03-01T00:00:00Z", "9.00")  # the next month: outside FEB
    csv = (
        "P1,P1,pro,smb,100,2,,2025-12-01\n"
        "P2,P2,free,smb,0,1,,2024-01-01\n"
        "P3,P3,team,mid_market,400,3,500,2024-01-01\n"
    )
    return make_ledger(tmp_path_factory.mktemp("panel"), e.rows, csv)


def _both(led: Ledger, report: Any) -> tuple[Any, Any]:
    """``report(ctx)`` from the roll-ups, then from the events; the result of the daily
    roll-up and of the roll-up alone must agree already (asserted here)."""
    with QueryContext.open(led) as ctx:
        # Ledger.connect makes both views: the first run reads them
        assert ctx.has_rollup() and ctx.has_rollup(DAILY)
        from_rollup = report(ctx)
    with QueryContext.open(led) as ctx:
        ctx.use_rollup = (ROLLUP,)
        assert ctx.has_rollup() and not ctx.has_rollup(DAILY)
        assert report(ctx) == from_rollup
    with QueryContext.open(led) as ctx:
        ctx.use_rollup = False
        assert not ctx.has_rollup()
        from_events = report(ctx)
    return from_rollup, from_events


def _policy(tmp_path: Path) -> Any:
    f = tmp_path / "policy.toml"
    f.write_text(POLICY_TOML)
    return load_policy(str(f))


JUNE_REPORTS: dict[str, Any] = {
    "customers": lambda c: tailguard.customer_report(c, window=JUNE),
    "customers_open_window": lambda c: tailguard.customer_report(c),
    "margins": lambda c: tailguard.margins(c, window=JUNE, history_months=3),
    "anomalies": lambda c: tailguard.anomalies(c, day=dt.date(2025, 6, 20)),
    "outcomes": lambda c: tailguard.outcomes(c, window=JUNE, by="customer"),
    "totals": lambda c: [list(x) for x in tailguard.entity_totals(c, window=JUNE)],
    "decide": lambda c: tailguard.decide(c, "WIN", window=JUNE),
    "digest_quarterly": lambda c: tailguard.digest(c, "quarterly", day=dt.date(2025, 6, 30)),
    "digest_daily": lambda c: tailguard.digest(c, "daily", day=dt.date(2025, 6, 9)),
    "renewal": lambda c: tailguard.renewal(c, "WIN", as_of=dt.date(2025, 7, 1)),
    "totals_by_user": lambda c: [list(x) for x in tailguard.entity_totals(c, by="user")],
}


@pytest.mark.parametrize("name", sorted(JUNE_REPORTS))
def test_rollup_equals_events_asymmetric(june: Ledger, name: str) -> None:
    from_rollup, from_events = _both(june, JUNE_REPORTS[name])
    assert from_rollup == from_events


@pytest.mark.parametrize("name", ["kpis", "kpis_mid_month", "margins", "anomalies", "weekly"])
def test_rollup_equals_events_panel(panel: Ledger, tmp_path: Path, name: str) -> None:
    pol = _policy(tmp_path)
    report = {
        "kpis": lambda c: tailguard.kpis(c, window=FEB, policy=pol),
        "kpis_mid_month": lambda c: tailguard.kpis(c, as_of=dt.date(2026, 2, 13), policy=pol),
        "margins": lambda c: tailguard.margins(c, window=FEB),
        "anomalies": lambda c: tailguard.anomalies(c, day=dt.date(2026, 2, 14), policy=pol),
        "weekly": lambda c: tailguard.digest(c, "weekly", day=dt.date(2026, 2, 14), policy=pol),
    }[name]
    from_rollup, from_events = _both(panel, report)
    assert from_rollup == from_events


def test_the_rollup_figures_by_hand(panel: Ledger, tmp_path: Path) -> None:
    """A few of the panel's figures read from the roll-up, against the events listed above."""
    rows = {r["customer_id"]: r for r in tailguard.customer_report(panel, window=FEB)}
    # P1: 14 x 1.00 + 14 x 0.25; P2: 14 x 3.00 + 0.10; P3: 2.00 (guard rows cost nothing)
    assert [str(rows[c]["cost_usd"]) for c in ("P1", "P2", "P3")] == [
        "17.500000000",
        "42.100000000",
        "2.000000000",
    ]
    assert rows["P1"]["llm_calls"] == 28 and rows["P2"]["llm_calls"] == 15
    rep = tailguard.kpis(panel, window=FEB, policy=_policy(tmp_path))
    feats = next(k for k in rep["kpis"] if k["id"] == "top_feature_concentration")
    top = feats["metrics"][0]["features"]
    # draft 42.00 of 61.60 (68.18...%), 14 of 44 LLM calls
    assert top[0]["feature"] == "draft" and str(top[0]["cost_usd"]) == "42.000000000"
    assert top[0]["usage_share_pct"] == pytest.approx(14 / 44 * 100, abs=1e-12)


def test_a_window_off_midnight_reads_events(panel: Ledger) -> None:
    """The roll-up's grain is the UTC day: a window that starts at noon cannot be answered from
    it, and reads the events instead (the same figures as the events alone)."""
    noon = Window(
        dt.datetime(2026, 2, 3, 12, tzinfo=dt.UTC), dt.datetime(2026, 2, 5, tzinfo=dt.UTC)
    )
    with QueryContext.open(panel) as ctx:
        assert ctx.rollup_where(noon) is None
        assert ctx.rollup_where(window(date_from="2026-02-03", date_to="2026-02-04")) == (
            "day >= ? AND day < ?",
            [dt.date(2026, 2, 3), dt.date(2026, 2, 5)],
        )
        got = tailguard.customer_report(ctx, window=noon)
    rows = {r["customer_id"]: r["cost_usd"] for r in got}
    # P1: 3rd 12:00 1.00, 3rd 23:00 0.25, 4th 1.00 + 0.25; P2: 3rd 12:00 3.00, 4th 3.00 (the
    # 00:00 call on the 3rd is before noon); P3: 4th 2.00
    assert {c: str(v) for c, v in rows.items()} == {
        "P1": "2.500000000",
        "P2": "6.000000000",
        "P3": "2.000000000",
    }


@pytest.mark.parametrize("win", [JUNE, Window()], ids=["june", "open"])
@pytest.mark.parametrize("use", [True, (ROLLUP,), False], ids=["daily", "rollup", "events"])
def test_customer_costs_are_customer_rows_cut(june: Ledger, win: Window, use: Any) -> None:
    """``customer_costs`` (margins' one GROUP BY of the costs, without the tasks) gives, on
    each source, the very values ``customer_rows`` gives for its fields: the same customers in
    the same order, the same Decimals and the same window."""
    from tailguard.analytics.customers import customer_costs, customer_rows

    with QueryContext.open(june) as ctx:
        ctx.use_rollup = use
        full = customer_rows(ctx, win)
        cut = customer_costs(ctx, win)
    assert cut and [list(r) for r in cut] == [list(cut[0])] * len(cut)
    assert cut == [{k: r[k] for k in cut[0]} for r in full]
    # some customer has spend and revenue, so the comparison covers the margin formula
    assert any(r["cost_usd"] and r["revenue_usd"] for r in cut)


def test_workload_from_the_task_rollup_by_hand(tmp_path: Path) -> None:
    """``workload`` on the task roll-up (class sums from its rows, per-task counts from a
    GROUP BY per task) against the events and against sums by hand. Agent task a1 has two calls
    on two days (two roll-up rows), each of 21,000 input and 1,000 output tokens: 25,000
    effective tokens a call (21,000 + 1,000 x 4), under the per-task alarm of 40,000, but
    50,000 for the task: over it, which only a sum per task shows. a2: one call of 10,000
    (8,000 + 500 x 4). Chat: task c1 (1,000 input of which 500 cached, 100 output: 500 + 500 x
    0.1 + 400 = 950) and a call with no task (2,000 + 100 x 4 = 2,400), which counts as an
    invocation but not as a task, at $0.50 of the chat class's $1.50."""
    e = Events()
    e.llm("A", "u", day(2), "1.00", workload="agent", task_id="a1", input_tokens=21_000,
          output_tokens=1_000)  # fmt: skip
    e.llm("A", "u", day(3), "1.00", workload="agent", task_id="a1", input_tokens=21_000,
          output_tokens=1_000)  # fmt: skip
    e.llm("A", "u", day(3), "0.25", workload="agent", task_id="a2", input_tokens=8_000,
          output_tokens=500)  # fmt: skip
    e.llm("A", "u", day(4), "1.00", task_id="c1", cache_read_tokens=500)
    e.llm("A", "u", day(4), "0.50", input_tokens=2_000)
    led = make_ledger(tmp_path, e.rows, "A,A,pro,smb,100,1,,2025-12-01\n")
    from_rollup, from_events = _both(led, lambda c: tailguard.workload(c, window=FEB))
    assert from_rollup == from_events
    c = {k["workload"]: k for k in from_rollup["classes"]}
    agent, chat = c["agent"], c["chat"]
    assert (agent["tasks"], agent["invocations"], agent["effective_tokens"]) == (2, 3, 60_000)
    assert agent["over_alarm_share"] == 0.5  # a1 of a1, a2
    assert str(agent["cost_per_task"]) == "1.125000000"  # (1.00 + 1.00 + 0.25) / 2
    assert (chat["tasks"], chat["invocations"], chat["effective_tokens"]) == (1, 2, 3_350)
    assert chat["effective_tokens_per_task"] == 950  # c1 alone: the untasked call is left out
    assert str(chat["cost_per_task"]) == "1.000000000"  # c1's $1.00, not the untasked $0.50


def _calls_ledger(tmp_path: Path) -> Ledger:
    """Chat and rag calls around their per-call alarms (the framework's 5,000 and 25,000
    effective tokens: uncached + cache reads x 0.1 + output x 4, per request), by hand:

    chat: 5,000 input = 5,000 (on the alarm: not over); 5,001 input with 1 cached = 5,000.1
    (over); 4,000 input + 250 output = 5,000 (not over); 1,000 input + 1,001 output = 5,004
    (over); an aggregate row of 2 requests and 10,002 input = 5,001 each (over, 2 requests);
    5,050 input with 100 cached = 4,950 + 10 = 4,960 (not over at 0.1; 5,050 at weight 1).
    So 4 of 7 requests over 5,000. rag: 25,000 (not over) and 25,001 (over): 1 of 2.
    """
    e = Events()
    for inp, out, cached, req in (
        (5_000, 0, 0, None),
        (5_001, 0, 1, None),
        (4_000, 250, 0, None),
        (1_000, 1_001, 0, None),
        (10_002, 0, 0, 2),
        (5_050, 0, 100, None),
    ):
        extra = {"requests": req} if req else {}
        e.llm("A", "u", day(2), "0.10", input_tokens=inp, output_tokens=out,
              cache_read_tokens=cached, **extra)  # fmt: skip
    for inp in (25_000, 25_001):
        e.llm("A", "u", day(3), "0.10", workload="rag", input_tokens=inp, output_tokens=0)
    return make_ledger(tmp_path, e.rows, "A,A,pro,smb,100,1,,2025-12-01\n")


def _over(led: Ledger, use: Any, **kw: Any) -> tuple[dict[str, float], list[str]]:
    """Each per-turn class's share of requests over its alarm, and the relations the per-call
    test read (``rollup_calls`` or ``events``)."""
    with QueryContext.open(led) as ctx:
        ctx.use_rollup = use
        seen: list[str] = []
        run = ctx.execute

        def spy(sql: str, params: Any = None) -> Any:
            if "calls_over" in sql:
                seen.append("rollup_calls" if "FROM rollup_calls" in sql else "events")
            return run(sql, params)

        ctx.execute = spy  # type: ignore[method-assign]
        res = tailguard.workload(ctx, window=FEB, **kw)
    shares = {c["workload"]: c["over_alarm_share"] for c in res["classes"]}
    return {k: shares[k] for k in ("chat", "rag")}, seen


def test_the_per_call_alarm_from_the_call_sizes_by_hand(tmp_path: Path) -> None:
    """The call-size roll-up answers the per-call alarm for the default weights and alarms on
    its size edges (exact at the alarm: a call of exactly 5,000 is not over it, one of 5,000.1
    is); any other weights or alarm read the events, and both give the hand figures."""
    from tailguard.analytics.workload import BANDS

    led = _calls_ledger(tmp_path)
    hand = {"chat": 4 / 7, "rag": 1 / 2}
    assert _over(led, True) == (hand, ["rollup_calls"])
    assert _over(led, False) == (hand, ["events"])
    # cache reads at full weight: 5,001 - 1 + 1 = 5,001 (over), and the 5,050-input call is
    # 5,050 (over): 5 of 7, which the sizes (computed at 0.1: 4,960) cannot tell
    assert _over(led, True, cache_read_weight=1.0) == ({"chat": 5 / 7, "rag": 1 / 2}, ["events"])
    # an alarm off the size edges (4,955: three significant digits): over it 5,000, 5,000.1,
    # 5,000, 5,004, 5,001 x 2, 4,960: all 7; an alarm on an edge (4,900) reads the sizes
    chat = {"chat": replace(BANDS["chat"], alarm=4_955)}
    assert _over(led, True, bands=chat) == ({"chat": 1.0, "rag": 1 / 2}, ["events"])
    chat = {"chat": replace(BANDS["chat"], alarm=4_900)}
    assert _over(led, True, bands=chat) == ({"chat": 1.0, "rag": 1 / 2}, ["rollup_calls"])
    chat = {"chat": replace(BANDS["chat"], alarm=5_100)}  # an edge over every chat call
    assert _over(led, True, bands=chat) == ({"chat": 0.0, "rag": 1 / 2}, ["rollup_calls"])
