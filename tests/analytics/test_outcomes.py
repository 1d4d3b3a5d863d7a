"""Cost per resolved task against hand arithmetic, the cost-per-resolved-task article's divergence,
and invariants.

The hand fixture (June 2025, one customer X):

    task  feature  events (cost)                              outcome
    t1    support  llm 0.10 (attempt 1, error), llm 0.20      accepted
                   (attempt 2), tool 0.05
    t2    support  llm 0.30, escalation 1.00                  escalated
    t3    search   llm 0.15                                   abandoned
    t4    search   llm 0.05                                   (none: open)
    —     support  llm 0.02 with no task_id                   (open)
    t5    search   llm 0.10                                   accepted
    t6    search   llm 0.40 on June 30 23:00                  accepted on July 1 00:10

For June (``--period 2025-06``; t6's outcome is after the window's end, so t6 is still open):
    all spend   0.35 + 1.30 + 0.15 + 0.05 + 0.02 + 0.10 + 0.40 = 2.37
    LLM spend   0.10 + 0.20 + 0.30 + 0.15 + 0.05 + 0.02 + 0.10 + 0.40 = 1.32 over 8 calls
                -> cost per call 0.165
    resolved    t1, t5 = 2 -> cost per resolved task 2.37 / 2 = 1.185
    by outcome  accepted 0.35 + 0.10 = 0.45, escalated 1.30, abandoned 0.15,
                open 0.05 + 0.02 + 0.40 = 0.47, others 0
    failure     (1.30 + 0.15) / 2.37 = 0.611814 (6 places)
    by feature  support 0.35 + 1.30 + 0.02 = 1.67, 1 resolved -> 1.67
                search  0.15 + 0.05 + 0.10 + 0.40 = 0.70, 1 resolved -> 0.70
With no window, t6 is accepted: resolved 3 -> 2.37 / 3 = 0.79; accepted 0.85; open 0.07.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.analytics.outcomes import BUCKETS, outcomes
from tailguard.analytics.period import Window, window
from tailguard.cli import run
from tailguard.errors import NoDataError
from tailguard.events.schema import OUTCOMES
from tests.analytics.helpers import connect, events_table


def _e(i: int, kind: str, task: str | None, feature: str, ts: str, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": f"o{i}",
        "kind": kind,
        "ts": ts,
        "customer_id": "X",
        "user_id": "u",
        "feature": feature,
        "task_id": task,
        "session_id": "s",
        "workload": "agent" if feature == "support" else "rag",
        **kw,
    }


def _llm(i: int, task: str | None, feature: str, cost: str, ts: str, attempt: int = 1) -> dict:
    return _e(
        i, "llm_call", task, feature, ts, model="m", attempt=attempt, cost_usd=cost,
        input_tokens=10, output_tokens=1, unpriced=False,
    )  # fmt: skip


def _out(i: int, task: str, feature: str, outcome: str, ts: str) -> dict[str, Any]:
    return _e(i, "task_outcome", task, feature, ts, outcome=outcome)


D = "2025-06-10T10:00:00+00:00"
HAND = [
    _llm(1, "t1", "support", "0.10", D),
    _llm(2, "t1", "support", "0.20", D, attempt=2),
    _e(3, "tool_call", "t1", "support", D, tool="crm", tool_kind="read", cost_usd="0.05"),
    _out(4, "t1", "support", "accepted", D),
    _llm(5, "t2", "support", "0.30", D),
    _e(6, "escalation", "t2", "support", D, minutes=10.0, cost_usd="1.00"),
    _out(7, "t2", "support", "escalated", D),
    _llm(8, "t3", "search", "0.15", D),
    _out(9, "t3", "search", "abandoned", D),
    _llm(10, "t4", "search", "0.05", D),
    _llm(11, None, "support", "0.02", D),
    _llm(12, "t5", "search", "0.10", D),
    _out(13, "t5", "search", "accepted", D),
    _llm(14, "t6", "search", "0.40", "2025-06-30T23:00:00+00:00"),
    _out(15, "t6", "search", "accepted", "2025-07-01T00:10:00+00:00"),
]


def test_june_by_hand() -> None:
    rep = outcomes(connect(HAND), window("2025-06"))
    assert rep["spend_usd"] == Decimal("2.37")
    assert rep["llm_spend_usd"] == Decimal("1.32")
    assert rep["llm_calls"] == 8
    assert rep["cost_per_call"] == Decimal("0.165")
    assert rep["resolved_tasks"] == 2
    assert rep["cost_per_resolved_task"] == Decimal("1.185")
    spend = {b: v["spend_usd"] for b, v in rep["by_outcome"].items()}
    assert spend == {
        "accepted": Decimal("0.45"),
        "rejected": 0,
        "abandoned": Decimal("0.15"),
        "timed_out": 0,
        "tool_error": 0,
        "escalated": Decimal("1.30"),
        "open": Decimal("0.47"),
    }
    assert rep["failure_cost_share"] == pytest.approx(145 / 237, rel=1e-15)  # 0.6118143...
    assert rep["by_outcome"]["open"]["share"] == pytest.approx(47 / 237, rel=1e-15)  # 0.19831...


def test_open_window_sees_the_later_outcome() -> None:
    rep = outcomes(connect(HAND), Window())
    assert rep["resolved_tasks"] == 3
    assert rep["cost_per_resolved_task"] == Decimal("0.79")
    assert rep["by_outcome"]["accepted"]["spend_usd"] == Decimal("0.85")
    assert rep["by_outcome"]["open"]["spend_usd"] == Decimal("0.07")


def test_by_feature_by_hand() -> None:
    rep = outcomes(connect(HAND), window("2025-06"), by="feature")
    g = {r["group"]: r for r in rep["groups"]}
    assert [r["group"] for r in rep["groups"]] == ["support", "search"]  # by spend
    assert g["support"]["spend_usd"] == Decimal("1.67")
    assert g["support"]["cost_per_resolved_task"] == Decimal("1.67")
    assert g["search"]["spend_usd"] == Decimal("0.70")
    assert g["search"]["cost_per_resolved_task"] == Decimal("0.70")
    # support: failure (escalated 1.30) / 1.67 = 0.778443...
    assert g["support"]["failure_cost_share"] == pytest.approx(130 / 167, rel=1e-15)


def test_weekly_divergence_seed_004() -> None:
    """The cost-per-resolved-task article in miniature: a cheaper model that needs more turns.

    Week of 2 June: 4 tasks x 2 calls at $0.10, all accepted:
        per call 0.80 / 8 = 0.10; per resolved task 0.80 / 4 = 0.20
    Week of 9 June: 5 tasks x 3 calls at $0.075, 4 accepted, 1 abandoned:
        per call 1.125 / 15 = 0.075 (-25%); per resolved task 1.125 / 4 = 0.28125 (+40.6%)
    """
    rows, i = [], 0
    for week, (tasks, calls, cost, outcomes_) in enumerate(
        ((4, 2, "0.10", ["accepted"] * 4), (5, 3, "0.075", ["accepted"] * 4 + ["abandoned"]))
    ):
        day = f"2025-06-{3 + 7 * week:02d}T12:00:00+00:00"  # a Tuesday
        for t in range(tasks):
            tid = f"w{week}t{t}"
            for _ in range(calls):
                i += 1
                rows.append(_llm(i, tid, "support", cost, day))
            i += 1
            rows.append(_out(i, tid, "support", outcomes_[t], day))
    rep = outcomes(connect(rows), Window())
    w1, w2 = rep["weekly"]
    assert (str(w1["week"]), str(w2["week"])) == ("2025-06-02", "2025-06-09")  # Mondays
    assert (w1["cost_per_call"], w1["cost_per_resolved_task"]) == (
        Decimal("0.1"),
        Decimal("0.2"),
    )
    assert w2["cost_per_call"] == Decimal("0.075")
    assert w2["cost_per_resolved_task"] == Decimal("0.28125")
    assert w2["cost_per_call_change"] == -0.25
    assert w2["cost_per_resolved_task_change"] == pytest.approx(0.40625, abs=1e-4)
    assert (w1["calls_per_resolved_task"], w2["calls_per_resolved_task"]) == (2.0, 3.75)


# --- invariants ------------------------------------------------------------------------------

_task = st.fixed_dictionaries(
    {
        "outcome": st.one_of(st.none(), st.sampled_from(OUTCOMES)),
        "feature": st.sampled_from(["a", "b", None]),
        "customer": st.sampled_from(["c1", "c2", "c3"]),
        "costs": st.lists(st.integers(0, 10_000), min_size=0, max_size=4),
        "day": st.integers(1, 28),
    }
)


def _random_ledger(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows, i = [], 0
    for n, t in enumerate(tasks):
        ts = f"2025-06-{t['day']:02d}T08:00:00+00:00"
        base = {"customer_id": t["customer"], "feature": t["feature"], "task_id": f"t{n}"}
        for c in t["costs"]:
            i += 1
            rows.append(
                {**base, "event_id": f"r{i}", "kind": "llm_call", "ts": ts, "model": "m",
                 "attempt": 1, "input_tokens": 1, "output_tokens": 1, "unpriced": False,
                 "cost_usd": Decimal(c) / 1000, "workload": "chat"}
            )  # fmt: skip
        if t["outcome"]:
            i += 1
            rows.append(
                {**base, "event_id": f"r{i}", "kind": "task_outcome", "ts": ts,
                 "outcome": t["outcome"], "workload": "chat"}
            )  # fmt: skip
    return rows


@settings(max_examples=25, deadline=None)
@given(st.lists(_task, min_size=1, max_size=25))
def test_shares_sum_to_one_and_spend_is_conserved(tasks: list[dict[str, Any]]) -> None:
    rows = _random_ledger(tasks)
    con = connect(rows)
    if not rows:  # no event at all: the report says so rather than showing zeros
        with pytest.raises(NoDataError, match="the ledger has no events"):
            outcomes(con, Window())
        return
    total = sum((r["cost_usd"] for r in rows if r.get("cost_usd") is not None), Decimal(0))
    for by in (None, "feature", "customer", "workload"):
        rep = outcomes(con, Window(), by=by)
        assert rep["spend_usd"] == total
        # every event's cost lands in exactly one outcome bucket
        assert sum((v["spend_usd"] for v in rep["by_outcome"].values()), Decimal(0)) == total
        if total:
            shares = sum(v["share"] for v in rep["by_outcome"].values())
            assert shares == pytest.approx(1.0, abs=1e-5)  # each share rounded to 6 places
            acc = rep["by_outcome"]["accepted"]["share"] + rep["by_outcome"]["open"]["share"]
            assert rep["failure_cost_share"] + acc == pytest.approx(1.0, abs=1e-5)
        # weekly and per-group figures add up to the whole
        assert sum((w["spend_usd"] for w in rep["weekly"]), Decimal(0)) == total
        assert sum(w["resolved_tasks"] for w in rep["weekly"]) == rep["resolved_tasks"]
        if by:
            assert sum((g["spend_usd"] for g in rep["groups"]), Decimal(0)) == total
            assert sum(g["resolved_tasks"] for g in rep["groups"]) == rep["resolved_tasks"]
    accepted = {f"t{n}" for n, t in enumerate(tasks) if t["outcome"] == "accepted"}
    assert outcomes(con, Window())["resolved_tasks"] == len(accepted)
    assert set(BUCKETS) == set(outcomes(con, Window())["by_outcome"])


# --- CLI -------------------------------------------------------------------------------------


def test_cli(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    seg = tmp_path / "led" / "segments"
    seg.mkdir(parents=True)
    pq.write_table(events_table(HAND), seg / "hand.parquet")
    led = str(tmp_path / "led")
    assert run(["outcomes", "--ledger", led, "--period", "2025-06", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["cost_per_resolved_task"] == 1.185
    assert rep["by_outcome"]["open"]["spend_usd"] == 0.47
    assert run(["outcomes", "--ledger", led, "--by", "feature"]) == 0
    assert "By feature" in capsys.readouterr().out
    assert run(["outcomes", "--ledger", led, "--by", "feature", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("group,spend_usd")
    assert run(["outcomes", "--ledger", led, "--by", "planet"]) == 2
    assert run(["outcomes", "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_unpriced_tool_calls_and_retrievals_are_counted() -> None:
    """Task u1 (accepted): a priced LLM call $0.10, an unpriced usage bucket of 2 LLM requests,
    an unpriced web search (a tool call the price book has no price for), an unpriced retrieval
    and a priced tool call $0.05. Unpriced: 2 LLM requests + 1 tool call + 1 other event = 4
    (it was 2: the web search and the retrieval had no cost and were not counted as unpriced).
    The spend is 0.15 either way: an unpriced event adds nothing, never a silent zero."""
    rows = [
        _llm(1, "u1", "support", "0.10", D),
        _e(2, "llm_call", "u1", "support", D, model="mystery", requests=2, unpriced=True),
        _e(3, "tool_call", "u1", "support", D, tool="web_search", tool_kind="read", unpriced=True),
        _e(4, "retrieval", "u1", "support", D, unpriced=True),
        _e(5, "tool_call", "u1", "support", D, tool="crm", tool_kind="read", cost_usd="0.05"),
        _out(6, "u1", "support", "accepted", D),
    ]
    rep = outcomes(connect(rows), window("2025-06"))
    assert rep["spend_usd"] == Decimal("0.15")
    assert rep["unpriced_calls"] == 4
    got = (
        rep["unpriced_calls"],
        rep["unpriced_llm_calls"],
        rep["unpriced_tool_calls"],
        rep["unpriced_other_events"],
    )
    assert got == (4, 2, 1, 1)
