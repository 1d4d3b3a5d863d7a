"""The per-customer table on a ledger where no two figures coincide (tests/fixtures_asymmetric.py).

The symmetric fixture lets ``cost / wins`` pass as ``cost * wins`` (one win each), read and write
tool calls swap unnoticed (one of each) and ``count(DISTINCT task)`` pass as ``count(task)`` (one
outcome per task). Every figure below is worked out by hand from the event list and prices in
the fixture's docstring; nothing is copied from the code's output.

The report reads its sums from one of three sources (``customers.aggregate``): the daily roll-up
for a window of whole UTC days, the per-user roll-up when that is the only one, the events
otherwise; and its distinct tasks from the task roll-up or the events. Every test here runs on
the three (``QueryContext.use_rollup``: all roll-ups, so the daily and task ones; the per-user
one alone, tasks from the events; the events alone), on the ledger ingested in two parts (the
events alternately), so that a customer's day is summed over two segments: ``sum -> max`` over
a roll-up's rows and every clause of the queries over the events shows.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.analytics.context import DAILY, ROLLUP, TASK, QueryContext
from tailguard.analytics.customers import customer_rows, sort_rows
from tailguard.analytics.period import window
from tailguard.errors import ArgumentError, TailguardError
from tailguard.ledger import Ledger, ingest, read_customers_csv
from tailguard.pricing import PriceBook
from tests.analytics.helpers import connect
from tests.fixtures_asymmetric import events, write_asymmetric

#: the report's three sources: ``QueryContext.use_rollup`` for each
SOURCES: dict[str, bool | tuple[str, ...]] = {
    "daily_rollup": True,
    "rollup": (ROLLUP,),
    "events": False,
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """The asymmetric ledger in two ingests: the events at even positions, then the odd ones
    (two segments: e.g. WIN's two calls of Jun 1, its three tool calls of Jun 2)."""
    d = tmp_path_factory.mktemp("asym")
    _, prices_toml, cust = write_asymmetric(d)
    prices = PriceBook.load(prices_toml)
    led = Ledger(d / "ledger")
    evs = events()
    for i, part in enumerate((evs[0::2], evs[1::2])):
        f = d / f"part{i}.jsonl"
        f.write_text("".join(json.dumps(e) + "\n" for e in part))
        ingest([f], led, prices=prices)
    led.write_customers(read_customers_csv(cust))
    return led


@pytest.fixture(scope="module", params=sorted(SOURCES))
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rows(led: Ledger, source: str, *args: Any) -> dict[str, dict[str, Any]]:
    """The table over ``window(*args)`` read from ``source`` (checked to be the one read)."""
    win = window(*args)
    with QueryContext.open(led) as ctx:
        ctx.use_rollup = SOURCES[source]
        reads = tuple(ctx.rollup_where(win, r) is not None for r in (DAILY, ROLLUP, TASK))
        assert (
            reads
            == {
                "daily_rollup": (True, True, True),
                "rollup": (False, True, False),
                "events": (False, False, False),
            }[source]
        )
        return {r["customer_id"]: r for r in customer_rows(ctx, win)}


@pytest.fixture(scope="module")
def june(ledger: Ledger, source: str) -> dict[str, dict[str, Any]]:
    return rows(ledger, source, "2025-06")


def test_several_wins_retries_and_cache_tokens(june: dict[str, dict[str, Any]]) -> None:
    """WIN in June (the July tool call is outside the window):

    llm   0.0185 + 0.016 + 0.0084 + 0.007 + 0.0028 + 0.001 (+ mystery-model, unpriced) = 0.0537
    tools 0.001 + 0.001 + 0.02 (w1) + 0.003 (w2's search_kb at the default)         = 0.025
    retrieval (3x0.0004 + 6x0.001) + (2x0.0004 + 0.001) = 0.0072 + 0.0018             = 0.009
    escalation (2.5 + 0.5) min x 0.6 = 1.5 + 0.3                                      = 1.8
    cost = 0.0537 + 0.025 + 0.009 + 1.8 = 1.8877
    llm calls 7 (6 priced + 1 unpriced); input 10,000 + 10,000 + 3,000 + 2,000 + 1,000 + 500
    + 100 = 26,600; output 500 + 1,000 + 300 + 250 + 100 + 0 + 10 = 2,160; cache read 4,000 +
    8,000 = 12,000; cache write 1,000 + 2,000 = 3,000; reasoning 200 + 600 = 800.
    tasks: w1..w4 = 4 distinct (6 outcome events); wins: w1, w2, w3 = 3 (4 accepted events).
    cost per win 1.8877 / 3 = 0.62923333... -> 0.629233 (half-even to 1e-6; * 3 would be 5.6631).
    per task: read tools 3/4 = 0.75, write 1/4 = 0.25, queries 5/4 = 1.25, reranks 7/4 = 1.75.
    retries (attempt > 1): w1's and w2's second attempts = 2; per win 2/3 (unrounded).
    escalations 2 (their costs summed: 1.8, not the larger 1.5), rate 2/4 = 0.5; unpriced 1.
    June is a calendar month: revenue = MRR 30; cost % 1.8877 / 30 x 100 = 6.29233... (unrounded);
    margin 30 - 1.8877 = 28.1123.
    """
    w = june["WIN"]
    assert (w["name"], w["tier"], w["segment"]) == ("Winsome Ltd", "pro", "smb")
    assert w["cost_usd"] == Decimal("1.8877")
    assert w["llm_cost_usd"] == Decimal("0.0537")
    assert w["tool_cost_usd"] == Decimal("0.025")
    assert w["retrieval_cost_usd"] == Decimal("0.009")
    assert w["escalation_cost_usd"] == Decimal("1.8")
    assert w["llm_calls"] == 7
    assert w["input_tokens"] == 26_600
    assert w["output_tokens"] == 2_160
    assert w["cache_read_tokens"] == 12_000
    assert w["cache_write_tokens"] == 3_000
    assert w["reasoning_tokens"] == 800
    assert w["tasks"] == 4
    assert w["successful_tasks"] == 3
    # 1.8877 / 3 = 0.62923333... at Decimal's 28 digits, not 0.629233
    assert w["cost_per_successful_task"] == Decimal("0.6292333333333333333333333333")
    assert w["read_tool_calls_per_task"] == 0.75
    assert w["write_tool_calls_per_task"] == 0.25
    assert w["retrieval_queries_per_task"] == 1.25
    assert w["reranks_per_task"] == 1.75
    assert w["retries"] == 2
    assert w["retries_per_win"] == 2 / 3  # every digit, not 0.6667
    assert w["escalations"] == 2
    assert w["escalation_rate"] == 0.5
    assert w["unpriced_calls"] == 1
    assert w["mrr_usd"] == Decimal(30)
    assert w["revenue_usd"] == Decimal(30)
    assert w["cost_pct_of_mrr"] == pytest.approx(1.8877 / 30 * 100, rel=1e-15)  # not 6.2923
    assert w["gross_margin_usd"] == Decimal("28.1123")
    # every row states the window it is about: June, both ends as UTC days
    assert (w["window_start"], w["window_end"]) == (dt.date(2025, 6, 1), dt.date(2025, 6, 30))


def test_customer_with_only_llm_calls(june: dict[str, dict[str, Any]]) -> None:
    """LLM: 0.6 + 0.025 = 0.625, all of it LLM; no task, so every per-task and per-win figure is
    null, and the costs of kinds it never used are $0, never null (nor $1).
    Calls 4: two priced, two of mystery-model (unpriced: 2, adding nothing to the cost).
    Tokens: input 250,000 + 50,000 + 1,000 + 1,000 = 302,000; output 12,500 + 100 + 100 =
    12,700; cache read 50,000; reasoning 5,000.
    One retry (attempt 2) and no win: retries 1, retries per win null.
    Revenue 20; cost % 0.625 / 20 x 100 = 3.125; margin 20 - 0.625 = 19.375.
    """
    c = june["LLM"]
    assert (c["name"], c["tier"], c["segment"]) == ("Lonely LLC", "team", "mid_market")
    assert c["cost_usd"] == Decimal("0.625") and c["llm_cost_usd"] == Decimal("0.625")
    for k in ("tool_cost_usd", "retrieval_cost_usd", "escalation_cost_usd"):
        assert c[k] == Decimal(0) and isinstance(c[k], Decimal), k
    assert (c["llm_calls"], c["input_tokens"], c["output_tokens"]) == (4, 302_000, 12_700)
    assert (c["cache_read_tokens"], c["cache_write_tokens"], c["reasoning_tokens"]) == (
        50_000,
        0,
        5_000,
    )
    assert (c["tasks"], c["successful_tasks"], c["retries"], c["escalations"]) == (0, 0, 1, 0)
    for k in (
        "cost_per_successful_task",
        "read_tool_calls_per_task",
        "write_tool_calls_per_task",
        "retrieval_queries_per_task",
        "reranks_per_task",
        "retries_per_win",
        "escalation_rate",
    ):
        assert c[k] is None, k
    assert c["unpriced_calls"] == 2
    assert c["revenue_usd"] == Decimal(20)
    assert c["cost_pct_of_mrr"] == 3.125
    assert c["gross_margin_usd"] == Decimal("19.375")


def test_task_without_retrieval_or_escalation_has_zero_ratios(
    june: dict[str, dict[str, Any]],
) -> None:
    """LEAN: one task (rejected), one call of 100 in / 50 out = 200 + 400 = 600 µ$ = 0.0006,
    two write tool calls reported at $0 (write tools per task 2/1 = 2; read 0).
    With a task, the per-task ratios exist and are 0 (no read tool, query, rerank or
    escalation), not null; with no win, cost per win and retries per win are null.
    Revenue 10; cost % 0.0006 / 10 x 100 = 0.006; margin 9.9994.
    """
    c = june["LEAN"]
    assert c["cost_usd"] == Decimal("0.0006") and c["tasks"] == 1 and c["successful_tasks"] == 0
    assert c["write_tool_calls_per_task"] == 2.0
    assert c["tool_cost_usd"] == Decimal(0)
    for k in (
        "read_tool_calls_per_task",
        "retrieval_queries_per_task",
        "reranks_per_task",
        "escalation_rate",
    ):
        assert c[k] == 0.0, k
    assert c["cost_per_successful_task"] is None and c["retries_per_win"] is None
    assert c["escalation_cost_usd"] == Decimal(0) and c["retrieval_cost_usd"] == Decimal(0)
    assert c["cost_pct_of_mrr"] == 0.006
    assert c["gross_margin_usd"] == Decimal("9.9994")


def test_customer_without_events_and_events_without_customer(
    june: dict[str, dict[str, Any]],
) -> None:
    """NONE (MRR 40, no events): cost 0, revenue 40, cost % 0.0 (not null: there is revenue),
    margin 40. GHOST (events, no customers row): its reported 0.05 tool call is its cost, and
    with no MRR there is no revenue, cost % or margin (null, not 0)."""
    n = june["NONE"]
    assert n["name"] == "Nobody Inc"
    for k in ("cost_usd", "llm_cost_usd", "tool_cost_usd", "retrieval_cost_usd"):
        assert n[k] == Decimal(0) and isinstance(n[k], Decimal), k
    for k in (
        "llm_calls",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "tasks",
        "successful_tasks",
        "retries",
        "escalations",
        "unpriced_calls",
    ):
        assert n[k] == 0, k
    assert n["revenue_usd"] == Decimal(40)
    assert n["cost_pct_of_mrr"] == 0.0
    assert n["gross_margin_usd"] == Decimal(40)
    g = june["GHOST"]
    assert g["name"] is None and g["mrr_usd"] is None
    assert g["cost_usd"] == Decimal("0.05") and g["tool_cost_usd"] == Decimal("0.05")
    assert g["llm_cost_usd"] == Decimal(0) and g["escalation_cost_usd"] == Decimal(0)
    # g1 has June spend but its outcome is on Jul 1: no task in June (an event is not a task)
    assert (g["tasks"], g["successful_tasks"], g["cost_per_successful_task"]) == (0, 0, None)
    assert g["revenue_usd"] is None and g["cost_pct_of_mrr"] is None
    assert g["gross_margin_usd"] is None
    assert set(june) == {"WIN", "LLM", "LEAN", "NONE", "GHOST"}


def test_open_window_earns_the_days_all_customers_span(ledger: Ledger, source: str) -> None:
    """Open window: the earliest event of anyone is WIN's on Jun 1 (LLM's first is Jun 5) and
    the latest is WIN's on Jul 1 (LLM's last is Jun 28): 31 days, both ends counted.
    Revenue = MRR x 31 / 30.436875 (the average month), every digit (bc -l, scale 30):
    WIN 930 / 30.436875 = 30.555042197991745210373929..., LEAN 310 / 30.436875 =
    10.185014065997248403457976..., NONE 1240 / 30.436875 = 40.740056263988993613831906...
    WIN's cost now includes the July tool call: 1.8907;
    GHOST's g1 (accepted Jul 1) is now a task and a win.
    """
    r = rows(ledger, source, None)
    for row in r.values():  # the open window is stated as the days its data spans
        assert (row["window_start"], row["window_end"]) == (
            dt.date(2025, 6, 1),
            dt.date(2025, 7, 1),
        )
    # bc's 30 decimals against Decimal's 28 significant digits: equal to 1e-25
    win_rev = Decimal("30.555042197991745210373929649479")
    lean_rev = Decimal("10.185014065997248403457976549826")
    assert abs(r["WIN"]["revenue_usd"] - win_rev) < Decimal("1e-25")
    assert abs(r["LEAN"]["revenue_usd"] - lean_rev) < Decimal("1e-25")
    none_rev = Decimal("40.740056263988993613831906199305")
    assert abs(r["NONE"]["revenue_usd"] - none_rev) < Decimal("1e-25")
    assert r["WIN"]["cost_usd"] == Decimal("1.8907")
    # with July in the window, GHOST's g1 is a won task: 0.05 per win
    assert (r["GHOST"]["tasks"], r["GHOST"]["successful_tasks"]) == (1, 1)
    assert r["GHOST"]["cost_per_successful_task"] == Decimal("0.05")
    assert abs(r["WIN"]["gross_margin_usd"] - (win_rev - Decimal("1.8907"))) < Decimal("1e-25")


def test_sort_by_cost_and_by_cost_per_win(june: dict[str, dict[str, Any]]) -> None:
    """By cost, descending: WIN 1.8877 > LLM 0.625 > GHOST 0.05 > LEAN 0.0006 > NONE 0.
    By cost per win, ascending: only WIN has wins; everyone else (null) goes last, by id."""
    ordered = sort_rows(list(june.values()))
    assert [r["customer_id"] for r in ordered] == ["WIN", "LLM", "GHOST", "LEAN", "NONE"]
    by_win = sort_rows(list(june.values()), "cost_per_successful_task", descending=False)
    assert by_win[0]["customer_id"] == "WIN"
    assert all(r["cost_per_successful_task"] is None for r in by_win[1:])


@settings(max_examples=8, deadline=None)
@given(split=st.integers(min_value=2, max_value=30))
def test_cost_and_counts_add_up_over_a_split_month(ledger: Ledger, source: str, split: int) -> None:
    """Any split of June into [Jun 1, d) and [d, Jun 30] gives per-customer costs, calls and
    tokens that add up to June's (a sum is additive over disjoint windows): checked against the
    June figures above, whatever day d the split falls on."""
    day = dt.date(2025, 6, split)
    first = rows(ledger, source, None, "2025-06-01", (day - dt.timedelta(days=1)).isoformat())
    second = rows(ledger, source, None, day.isoformat(), "2025-06-30")
    expected = {"WIN": Decimal("1.8877"), "LLM": Decimal("0.625"), "LEAN": Decimal("0.0006")}
    for cid, cost in expected.items():
        a, b = first.get(cid, {}), second.get(cid, {})
        assert a.get("cost_usd", 0) + b.get("cost_usd", 0) == cost, cid
    assert first["WIN"]["reasoning_tokens"] + second["WIN"]["reasoning_tokens"] == 800
    assert first["WIN"]["llm_calls"] + second["WIN"]["llm_calls"] == 7


def test_sort_by_an_unknown_field_is_refused_even_for_one_row(
    june: dict[str, dict[str, Any]],
) -> None:
    """The field is checked against the first row's keys: with one row there is no second."""
    with pytest.raises(TailguardError, match="unknown field 'bogus'"):
        sort_rows([june["WIN"]], "bogus")


def test_an_unknown_sort_field_is_refused_before_any_work(tmp_path: Any) -> None:
    """``customer_report`` names the wrong field first, even on a ledger holding no event
    (which would otherwise be a NoDataError: the user would fix the window, then learn the
    field was wrong), with and without a limit."""
    from tailguard.analytics.report import customer_report

    led = Ledger(tmp_path / "L")
    for kw in ({}, {"limit": 3}):
        with pytest.raises(ArgumentError, match="unknown field 'bogus'"):
            customer_report(led, sort="bogus", **kw)


@pytest.mark.parametrize(
    "args",
    [("2025-06",), (None,), (None, "2025-06-02", "2025-06-12")],
    ids=["june", "open", "jun2-jun12"],
)
def test_the_three_sources_give_the_same_table(ledger: Ledger, args: tuple[Any, ...]) -> None:
    """A second method for every column the tests above do not work out by hand: the table
    from the events (the query each figure is defined by) equals, field for field, the one
    from either roll-up, on the two-ingest ledger. Jun 2 - Jun 12 cuts WIN's w1 (its Jun 1
    calls are out, its Jun 2 tools and outcomes in) and ends on w3's day."""
    got = {s: rows(ledger, s, *args) for s in SOURCES}
    assert got["daily_rollup"] == got["events"]
    assert got["rollup"] == got["events"]


def test_a_call_without_a_request_count_is_one_call() -> None:
    """A segment written before the ledger had ``requests`` reads it as null: such an LLM call
    counts as one call (and, unpriced, as one unpriced call), not two and not none. Customer X
    on Jun 3: a $0.01 call and an unpriced one, both with no request count, and a usage-API
    bucket of 3 requests ($0.02): calls 1 + 1 + 3 = 5, unpriced 1, cost 0.03. (From the events:
    the connection has no roll-up.)"""
    base = {"kind": "llm_call", "customer_id": "X", "input_tokens": 10, "output_tokens": 1}
    con = connect(
        [
            {**base, "ts": "2025-06-03T10:00:00+00:00", "cost_usd": "0.01", "requests": None},
            {**base, "ts": "2025-06-03T11:00:00+00:00", "unpriced": True, "requests": None},
            {**base, "ts": "2025-06-03T12:00:00+00:00", "cost_usd": "0.02", "requests": 3},
        ]
    )
    (x,) = customer_rows(con, window("2025-06"))
    assert (x["customer_id"], x["llm_calls"], x["unpriced_calls"]) == ("X", 5, 1)
    assert x["cost_usd"] == Decimal("0.03")
