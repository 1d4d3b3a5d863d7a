"""Cost per resolved task on the asymmetric ledger (tests/fixtures_asymmetric.py), by hand.

What the symmetric fixture cannot catch: a task with two outcome events (w1 accepted twice, w2
abandoned then accepted, w4 abandoned then timed_out), an outcome exactly at the window's end
(g1, Jul 1 00:00:00), a task spanning the ISO week boundary (w1: Sunday Jun 1 23:59:59 and
Monday Jun 2 00:00:00), an unpriced call.

June 2025 (``--period 2025-06``), spend per task (from the fixture's docstring):
    w1 accepted   0.0185 + 0.016 + 0.001 + 0.001 + 0.02 + 0.0072          = 0.0637
    w2 accepted   0.0084 + 0.007 + 0.003 + 0.0018 (abandoned, then accepted) = 0.0202
    w3 accepted   0.0028 + 1.5                                            = 1.5028
    w4 abandoned  0.001 (+ an unpriced call) + 0.3; abandoned < timed_out  = 0.301
    n1 rejected   0.0006
    open          LLM 0.6 + 0.025 (no task) + GHOST g1 0.05 (outcome Jul 1) = 0.675
    all spend     0.0637 + 0.0202 + 1.5028 + 0.301 + 0.0006 + 0.675       = 2.5633
    LLM spend     WIN 0.0537 + LLM 0.625 + LEAN 0.0006 = 0.6793 over 7 + 4 + 1 = 12 calls
                  (3 of them unpriced: WIN's one, LLM's two)
    resolved      w1, w2, w3 = 3 (not 4: w1's re-sent outcome is one task)
    ended         w1, w2, w3, w4, n1 = 5
Shares of 2.5633 (bc, 12 places): accepted 1.5867 -> 0.619006749112; open 0.675 ->
0.263332423048; failure (0.301 + 0.0006) = 0.3016 -> 0.117660827839; abandoned 0.301 ->
0.117426754574; rejected 0.0006 -> 0.000234073264.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tailguard.analytics.outcomes import outcomes
from tailguard.analytics.period import window
from tailguard.ledger import Ledger
from tests.fixtures_asymmetric import asymmetric_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    return asymmetric_ledger(tmp_path_factory.mktemp("asym-outcomes"))


def report(led: Ledger, period: str | None = "2025-06", by: str | None = None) -> dict[str, Any]:
    con = led.connect()
    try:
        return outcomes(con, window(period), by=by)
    finally:
        con.close()


@pytest.fixture(scope="module")
def june(ledger: Ledger) -> dict[str, Any]:
    return report(ledger)


def test_overall_figures(june: dict[str, Any]) -> None:
    """cost per resolved task 2.5633 / 3 = 0.85443333... (every digit; x 3 would be 7.6899);
    cost per call 0.6793 / 12 = 0.05660833...; calls per resolved task 12 / 3 = 4."""
    assert june["spend_usd"] == Decimal("2.5633")
    assert june["llm_spend_usd"] == Decimal("0.6793")
    assert june["llm_calls"] == 12
    assert june["resolved_tasks"] == 3
    assert june["tasks_ended"] == 5
    assert june["cost_per_resolved_task"] == Decimal("0.8544333333333333333333333333")
    assert june["cost_per_call"] == Decimal("0.05660833333333333333333333333")
    assert june["calls_per_resolved_task"] == 4.0
    assert june["unpriced_calls"] == 3


def test_each_task_goes_to_its_one_outcome(june: dict[str, Any]) -> None:
    """Spend by outcome (see the module docstring): w2's abandoned-then-accepted is accepted
    (any accepted outcome wins, though 'abandoned' sorts first),
    w4's abandoned-then-timed_out is abandoned, g1's outcome after the window leaves it open."""
    by = june["by_outcome"]
    assert by["accepted"]["spend_usd"] == Decimal("1.5867")
    assert by["abandoned"]["spend_usd"] == Decimal("0.301")
    assert by["rejected"]["spend_usd"] == Decimal("0.0006")
    assert by["open"]["spend_usd"] == Decimal("0.675")
    for b in ("timed_out", "tool_error", "escalated"):
        assert by[b]["spend_usd"] == 0 and by[b]["share"] == 0.0, b
    # shares of 2.5633, unrounded: 1.5867, 0.675, 0.301, 0.0006 over it
    assert by["accepted"]["share"] == pytest.approx(15867 / 25633, rel=1e-15)
    assert by["open"]["share"] == pytest.approx(6750 / 25633, rel=1e-15)
    assert by["abandoned"]["share"] == pytest.approx(3010 / 25633, rel=1e-15)
    assert by["rejected"]["share"] == pytest.approx(6 / 25633, rel=1e-15)
    # abandoned 0.301 + rejected 0.0006 over 2.5633, unrounded (not 0.117661)
    assert june["failure_cost_share"] == pytest.approx(3016 / 25633, rel=1e-15)


def test_outcome_at_the_windows_end_counts_after_it(ledger: Ledger) -> None:
    """With no window, g1's Jul 1 outcome is known: g1 (0.05) is accepted, and the July tool
    call (w5, 0.003, no outcome) is open. Spend 2.5633 + 0.003 = 2.5663; resolved 4 (w1, w2,
    w3, g1); cost per resolved task 2.5663 / 4 = 0.641575; accepted 1.5867 + 0.05 = 1.6367;
    open 0.625 + 0.003 = 0.628."""
    r = report(ledger, None)
    assert r["spend_usd"] == Decimal("2.5663")
    assert r["resolved_tasks"] == 4
    assert r["cost_per_resolved_task"] == Decimal("0.641575")
    assert r["by_outcome"]["accepted"]["spend_usd"] == Decimal("1.6367")
    assert r["by_outcome"]["open"]["spend_usd"] == Decimal("0.628")


def test_weeks_split_at_monday_utc(june: dict[str, Any]) -> None:
    """ISO weeks (Monday 00:00 UTC) of June's events:
    May 26: w1's two calls (Sun Jun 1) 0.0185 + 0.016 = 0.0345, 2 calls -> per call 0.01725
    Jun 2:  w1's tools, retrieval, outcomes (Mon Jun 2 00:00:00) 0.0292 + LLM's Jun 5 call 0.6
            = 0.6292; 1 call -> 0.6; 1 resolved (w1) -> 0.6292
    Jun 9:  w2 0.0202 + n1 0.0006 + w3 1.5028 + GHOST (Sun Jun 15) 0.05 = 1.5736;
            calls 2 + 1 + 1 = 4, LLM spend 0.0084 + 0.007 + 0.0006 + 0.0028 = 0.0188 -> 0.0047;
            resolved w2, w3 = 2 -> 0.7868
    Jun 16: w4 0.001 + escalation 0.3 = 0.301, 2 calls (one unpriced) -> 0.0005, none resolved
    Jun 23: LLM's Jun 28 calls 0.025, 3 calls (two unpriced) -> 0.025 / 3 = 0.008333...
    Change against the first week with a figure (that week itself: 0.0; a week without the
    figure: null), as exact fractions: per call 0.6 / 0.01725 - 1 = 777/23 (33.7826...),
    0.0047 / 0.01725 - 1 = -251/345, 0.0005 / 0.01725 - 1 = -67/69,
    (0.025 / 3) / 0.01725 - 1 = -107/207; per resolved task (first: Jun 2)
    0.7868 / 0.6292 - 1 = 394/1573.
    """
    weeks = {w["week"]: w for w in june["weekly"]}
    d = dt.date
    mondays = [d(2025, 5, 26), d(2025, 6, 2), d(2025, 6, 9), d(2025, 6, 16), d(2025, 6, 23)]
    assert list(weeks) == mondays
    expect = {
        d(2025, 5, 26): ("0.0345", 2, 0, Decimal("0.01725"), None, 0.0, None),
        d(2025, 6, 2): ("0.6292", 1, 1, Decimal("0.6"), "0.6292", 777 / 23, 0.0),
        d(2025, 6, 9): ("1.5736", 4, 2, Decimal("0.0047"), "0.7868", -251 / 345, 394 / 1573),
        d(2025, 6, 16): ("0.301", 2, 0, Decimal("0.0005"), None, -67 / 69, None),
        d(2025, 6, 23): ("0.025", 3, 0, Decimal("0.025") / 3, None, -107 / 207, None),
    }
    for wk, (spend, calls, resolved, cpc, cpt, cpc_change, cpt_change) in expect.items():
        w = weeks[wk]
        assert w["spend_usd"] == Decimal(spend), wk
        assert (w["llm_calls"], w["resolved_tasks"]) == (calls, resolved), wk
        assert w["cost_per_call"] == cpc, wk
        assert w["cost_per_resolved_task"] == (Decimal(cpt) if cpt else None), wk
        assert w["cost_per_call_change"] == pytest.approx(cpc_change, rel=1e-12), wk
        if cpt_change is None:
            assert w["cost_per_resolved_task_change"] is None, wk
        else:
            assert w["cost_per_resolved_task_change"] == pytest.approx(cpt_change, rel=1e-12), wk
    assert weeks[d(2025, 6, 9)]["calls_per_resolved_task"] == 2.0


def test_by_customer_and_by_feature(ledger: Ledger) -> None:
    """By customer, sorted by spend: WIN 1.8877 (3 resolved -> 0.62923333..., 7 calls, 1 unpriced),
    LLM 0.625 (all open, no resolved task -> null, 4 calls, 2 unpriced), GHOST 0.05 (open),
    WIN's calls per resolved task 7 / 3 (every digit),
    LEAN 0.0006 (rejected: failure share 1.0).
    By feature: support = WIN + LEAN + GHOST = 1.9383 (3 resolved -> 0.6461), chat = LLM 0.625.
    """
    r = report(ledger, by="customer")
    groups = {g["group"]: g for g in r["groups"]}
    assert [g["group"] for g in r["groups"]] == ["WIN", "LLM", "GHOST", "LEAN"]
    win = groups["WIN"]
    assert win["spend_usd"] == Decimal("1.8877") and win["resolved_tasks"] == 3
    assert win["cost_per_resolved_task"] == Decimal("0.6292333333333333333333333333")
    assert (win["llm_calls"], win["unpriced_calls"]) == (7, 1)
    assert groups["LLM"]["cost_per_resolved_task"] is None
    # one unpriced call without a task and one in the open task l1, same week: 2, summed
    assert (groups["LLM"]["llm_calls"], groups["LLM"]["unpriced_calls"]) == (4, 2)
    assert win["calls_per_resolved_task"] == 7 / 3  # every digit, not 2.3333
    assert groups["LLM"]["by_outcome"]["open"]["share"] == 1.0
    assert groups["LEAN"]["failure_cost_share"] == 1.0
    f = {g["group"]: g for g in report(ledger, by="feature")["groups"]}
    assert f["support"]["spend_usd"] == Decimal("1.9383")
    assert f["support"]["cost_per_resolved_task"] == Decimal("0.6461")
    assert f["chat"]["spend_usd"] == Decimal("0.625")
