"""Each page's JSON twin equals the CLI's ``--json`` for the same ledger, byte for byte, and the
figures are the asymmetric ledger's hand-worked ones (tests/fixtures_asymmetric.py).

June 2025 by hand, from the fixture's docstring:
- WIN: llm 0.0185 + 0.016 + 0.0084 + 0.007 + 0.0028 + 0.001 = 0.0537; tools 0.001 + 0.001 +
  0.02 + 0.003 = 0.025; retrieval 0.0072 + 0.0018 = 0.009; escalation 1.5 + 0.3 = 1.8; total
  1.8877; wins w1, w2, w3 = 3.
- LLM: 0.6 + 0.025 = 0.625 (the two mystery-model calls unpriced); LEAN: 0.0006 (its tool
  calls cost 0); GHOST: a 0.05 tool call (its task's outcome is in July). NONE: no events.
- Total 1.8877 + 0.625 + 0.0006 + 0.05 = 2.5633 over 3 successful tasks.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.ui.helpers import cli_json

JUNE = "period=2025-06"


def _get(client: Any, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.text


def _dec(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


@pytest.mark.parametrize(
    ("query", "flags"),
    [
        ("", []),
        (JUNE, ["--period", "2025-06"]),
        (
            "sort=cost_per_successful_task&limit=2",
            ["--sort", "cost_per_successful_task", "--limit", "2"],
        ),
        ("from=2025-06-01&to=2025-06-10", ["--from", "2025-06-01", "--to", "2025-06-10"]),
        # June: only WIN has a successful task; the four null costs per win go last in the
        # CLI's order (customer id: GHOST, LEAN, LLM, NONE), not the table's cost order
        (
            f"{JUNE}&sort=cost_per_successful_task",
            ["--period", "2025-06", "--sort", "cost_per_successful_task"],
        ),
        (f"{JUNE}&sort=tier", ["--period", "2025-06", "--sort", "tier"]),
    ],
)
def test_customers_twin_is_report_customers_json(
    client: Any, ledger_dir: Path, capsys: pytest.CaptureFixture[str], query: str, flags: list[str]
) -> None:
    want = cli_json(capsys, "report", "customers", "--ledger", str(ledger_dir), *flags)
    assert _get(client, f"/api/customers?{query}") == want


def test_customers_twin_holds_the_hand_worked_june(client: Any) -> None:
    rows = {r["customer_id"]: r for r in _dec(_get(client, f"/api/customers?{JUNE}"))}
    assert rows["WIN"]["cost_usd"] == Decimal("1.8877")
    assert rows["WIN"]["llm_cost_usd"] == Decimal("0.0537")
    assert rows["WIN"]["escalation_cost_usd"] == Decimal("1.8")
    assert rows["WIN"]["successful_tasks"] == 3
    assert rows["LLM"]["cost_usd"] == Decimal("0.625")
    assert rows["LLM"]["unpriced_calls"] == 2
    assert rows["LEAN"]["cost_usd"] == Decimal("0.0006")
    assert rows["GHOST"]["cost_usd"] == Decimal("0.05")
    assert rows["NONE"]["cost_usd"] == 0


@pytest.mark.parametrize(
    ("query", "flags"),
    [("", []), (JUNE, ["--period", "2025-06"]), ("by=feature", ["--by", "feature"])],
)
def test_tail_twin_is_concentration_json(
    client: Any, ledger_dir: Path, capsys: pytest.CaptureFixture[str], query: str, flags: list[str]
) -> None:
    want = cli_json(capsys, "concentration", "--ledger", str(ledger_dir), *flags)
    assert _get(client, f"/api/tail?{query}") == want


def test_tail_twin_shares_by_hand(client: Any) -> None:
    res = _dec(_get(client, f"/api/tail?{JUNE}"))
    # four customers with June spend (NONE has none): WIN holds 1.8877 of 2.5633
    assert res["n"] == 4
    assert res["total"] == Decimal("2.5633")
    assert res["top"][0]["id"] == "WIN"
    assert float(res["top_shares"]["1%"]) == pytest.approx(1.8877 / 2.5633, rel=1e-12)


@pytest.mark.parametrize(("query", "flags"), [("", []), (JUNE, ["--period", "2025-06"])])
def test_outcomes_twin_is_outcomes_json(
    client: Any, ledger_dir: Path, capsys: pytest.CaptureFixture[str], query: str, flags: list[str]
) -> None:
    want = cli_json(capsys, "outcomes", "--ledger", str(ledger_dir), *flags)
    assert _get(client, f"/api/outcomes?{query}") == want


def _sub(text: str, key: str) -> Any:
    return json.loads(text)[key]


def test_anomalies_twin_holds_the_scan_and_the_panel(
    client: Any, ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = cli_json(
        capsys, "anomalies", "--ledger", str(ledger_dir), "--day", "2025-06-20", "--threshold", "3"
    )
    got = _get(client, "/api/anomalies?day=2025-06-20&threshold=3")
    assert _sub(got, "scan") == json.loads(scan)
    panel = json.loads(
        cli_json(
            capsys,
            "kpis",
            "--ledger",
            str(ledger_dir),
            "--period",
            "2025-06",
            "--as-of",
            "2025-06-20",
        )
    )
    twin = _sub(got, "panel")
    assert (twin["period"], twin["as_of"]) == ("2025-06", "2025-06-20")
    assert twin["kpis"] == [
        k
        for k in panel["kpis"]
        if k["id"]
        in ("tier_budget_utilization", "overage_routing_rate", "soft_cap_degradation_rate")
    ]


def test_overview_twin_holds_the_kpis_and_the_headline(
    client: Any, ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got = _get(client, f"/api/overview?{JUNE}")
    want = cli_json(capsys, "kpis", "--ledger", str(ledger_dir), "--period", "2025-06")
    assert _sub(got, "kpis") == json.loads(want)
    head = _dec(got)["headline"]
    assert head["total_cost_usd"] == Decimal("2.5633")
    assert head["successful_tasks"] == 3
    # 2.5633 / 3 at Decimal's 28 significant digits
    assert head["aggregate_cost_per_successful_task"] == Decimal("2.5633") / 3
    # revenue in June: WIN 30, LLM 20, LEAN 10, NONE 40 (GHOST has no customers row); none costs
    # more than it pays (WIN 1.8877 of 30 is the closest)
    assert head["paying_customers"] == 4
    assert head["underwater_customers"] == 0


def test_overview_daily_spend_by_component_by_hand(client: Any) -> None:
    daily = _dec(_get(client, f"/api/overview?{JUNE}"))["daily_spend"]
    days = daily["days"]
    s = daily["series"]
    at = {d: i for i, d in enumerate(days)}
    assert days[0] == "2025-06-01" and days[-1] == "2025-06-28"
    assert len(days) == 28  # every day of the span, days without spend as zeros
    assert s["llm_call"][at["2025-06-01"]] == Decimal("0.0345")  # 0.0185 + 0.016
    assert s["tool_call"][at["2025-06-02"]] == Decimal("0.022")  # 0.001 + 0.001 + 0.02
    assert s["retrieval"][at["2025-06-02"]] == Decimal("0.0072")
    assert s["escalation"][at["2025-06-12"]] == Decimal("1.5")
    assert s["llm_call"][at["2025-06-05"]] == Decimal("0.6")
    assert s["tool_call"][at["2025-06-15"]] == Decimal("0.05")  # GHOST's reported cost
    assert daily["total_usd"] == Decimal("2.5633")
    assert sum((sum(v) for v in s.values()), Decimal(0)) == Decimal("2.5633")


def test_customer_twin_by_hand(
    client: Any, ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got = _dec(_get(client, f"/api/customers/WIN?{JUNE}"))
    assert got["customer"]["cost_usd"] == Decimal("1.8877")
    comp = {k: sum(v) for k, v in got["daily_by_component"]["series"].items()}
    assert comp == {
        "llm_call": Decimal("0.0537"),
        "tool_call": Decimal("0.025"),
        "retrieval": Decimal("0.009"),
        "escalation": Decimal("1.8"),
    }
    # by model: tg-model only (the mystery-model call is unpriced: no cost to draw)
    assert {k: sum(v) for k, v in got["daily_by_model"]["series"].items()} == {
        "tg-model": Decimal("0.0537")
    }
    weeks = {w["week"]: w for w in got["weekly"]}
    # ISO weeks: Jun 1 (a Sunday) is in the week of May 26; w1 is accepted on Jun 2
    assert weeks["2025-05-26"]["cost_usd"] == Decimal("0.0345")
    assert weeks["2025-06-02"]["successful_tasks"] == 1
    assert weeks["2025-06-02"]["cost_usd"] == Decimal("0.0292")  # 0.022 + 0.0072
    assert weeks["2025-06-09"]["successful_tasks"] == 2  # w2 (Jun 9) and w3 (Jun 12)
    diag = json.loads(
        cli_json(
            capsys,
            "diagnose",
            "--ledger",
            str(ledger_dir),
            "--period",
            "2025-06",
            "--customer",
            "WIN",
        )
    )
    assert json.loads(_get(client, f"/api/customers/WIN?{JUNE}"))["diagnosis"] == next(
        d for d in diag if d["customer_id"] == "WIN"
    )
    ren = json.loads(cli_json(capsys, "renewal", "WIN", "--ledger", str(ledger_dir)))
    assert json.loads(_get(client, f"/api/customers/WIN?{JUNE}"))["renewal"] == ren


def test_customer_margin_months_against_the_segment_thresholds(client: Any) -> None:
    got = _dec(_get(client, f"/api/customers/WIN?{JUNE}"))
    june = next(m for m in got["margin_months"] if m["month"] == "2025-06")
    # WIN (smb: target < 20 %, alert > 35 %): 1.8877 of MRR 30 = 6.29 %: ok
    assert june["cost_usd"] == Decimal("1.8877")
    assert june["gross_margin_usd"] == Decimal("28.1123")
    assert float(june["cost_pct_of_mrr"]) == pytest.approx(1.8877 / 30 * 100, rel=1e-12)
    assert june["status"] == "ok"
    assert got["thresholds"] == {"target_pct": 20, "alert_pct": 35}


@pytest.mark.parametrize("customer", [None, "WIN", "LLM"])
def test_series_from_the_rollup_equal_the_series_from_the_events(
    asym: Any, customer: str | None
) -> None:
    """Two methods, one answer: the day-by-day sums read from the roll-ups (the fast path) and
    from the events (the context's roll-up switched off) are equal, to the last digit."""
    from tailguard.analytics.period import window
    from tailguard.ui import series

    def run(ctx: Any) -> list[Any]:
        out: list[Any] = []
        for win in (window("2025-06"), window(), window(None, "2025-06-02", "2025-06-12")):
            out.append(series.daily_spend(ctx, win, customer=customer))
            out.append(series.daily_spend(ctx, win, by="model", customer=customer))
            out.append(series.guard_events(ctx, win, customer))
            if customer:
                out.append(series.customer_breakdown(ctx, win, customer, by="user"))
                out.append(series.customer_breakdown(ctx, win, customer, by="feature"))
        return out

    from tailguard.analytics.context import QueryContext

    with QueryContext.open(asym) as fast_ctx:
        assert series._rollup(fast_ctx, window("2025-06"), customer) is not None  # fast path
        fast = run(fast_ctx)
    with QueryContext.open(asym) as slow_ctx:
        slow_ctx.use_rollup = False  # the second method: the events
        assert series._rollup(slow_ctx, window("2025-06"), customer) is None
        assert run(slow_ctx) == fast


def test_anomalies_twin_by_default_is_the_last_day_and_its_month(
    client: Any, ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No day: the scan is the CLI's default scan (the last event's day, Jul 1) and the panel
    is that month's as of that day, the CLI's default panel."""
    got = json.loads(_get(client, "/api/anomalies"))
    scan = json.loads(cli_json(capsys, "anomalies", "--ledger", str(ledger_dir)))
    panel = json.loads(cli_json(capsys, "kpis", "--ledger", str(ledger_dir)))
    assert got["scan"] == scan
    assert got["scan"]["day"] == "2025-07-01"
    assert (got["panel"]["period"], got["panel"]["as_of"]) == (panel["period"], panel["as_of"])
    assert got["panel"]["kpis"] == [
        k
        for k in panel["kpis"]
        if k["id"]
        in ("tier_budget_utilization", "overage_routing_rate", "soft_cap_degradation_rate")
    ]
