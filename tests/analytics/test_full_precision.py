"""JSON and CSV carry every digit; only the terminal table rounds (issue 16, truth of the numbers).

One small ledger through the real ingest, built so that every report has a figure that rounding
would change: a sub-micro-dollar amount (0.0000002 a call) and ratios with endless decimals.

    T (pro, smb, MRR 30): May 28 one chat call $0.0000001 (no task);
       Jun 28 two "search" calls of $0.0000002 in task t1; t1, t2, t3 accepted Jun 28.
    U (pro, smb, MRR 30): one chat call of $3 on each of Jun 21 .. 27 (no task);
       Jun 28 tasks u1, u2, u3 with one chat call each ($6, $7, $7), all accepted.

Worked out by hand (Decimal quotients carry 28 significant digits, half-even):
- report customers, June: T's cost per win 0.0000004 / 3 = 1.333...E-7 (micro-dollars: 0).
- outcomes by customer, June: T's cost per resolved task 0.0000004 / 3, per call 0.0000002,
  calls per resolved task 2 / 3 (4 places: 0.6667).
- workload, June: chat calls 2 + 7 + 3 = 12 costing 41.0000004 -> 3.4166667 a call (micro:
  3.416667); tasked cost 20.0000004 over t1, u1..u3 = 4 tasks -> 5.0000001 (micro: 5.000000).
- anomalies on Jun 28: U's 24h spend 20 against a median of 3 -> 20 / 3 (2 places: 6.67).
- diagnose T (all its days, May 28 .. Jun 28): cost 0.0000005 of 41.0000005 -> share
  5 / 410000005 (6 places: 0.0); cost per win 0.0000005 / 3 = 1.666...E-7.
- decide T (May 28 .. Jun 28, 32 days = 32 / 30.436875 months): monthly cost
  0.0000005 x 30.436875 / 32 = 4.7557617187 5E-7 (cents: 0.00).
- digest weekly to Jun 28 (Jun 22 .. 28: 18 + 20 + 0.0000004 = 38.0000004): feature search's
  share 0.0000004 / 38.0000004 x 100 = 100 / 95000001 % (1 place: 0.0).
- kpis June (as of Jun 28: revenue 2 x 30 x 28 / 30.436875): cost to revenue
  41.0000004 x 30.436875 x 100 / 1680 % (2 places: 74.28).
- renewal T: May 0.0000001 and June 0.0000004 for one user each: cost per user grows
  0.0000003 a month, so July is projected at 0.0000007 (cents: 0.00).
- margins Jun 21 .. 28 (8 days = 8 / 30.436875 months): revenue 30 x 8 / 30.436875 =
  7.885172180126901989773917328897... (bc -l; micro-dollars: 7.885172); T's cost % of it
  0.0000004 / revenue x 100 = 5.0728125E-6 exactly (4 places: 0.0).
- concentration (all days): T holds 0.0000005 of 41.0000005; with two customers the Lorenz
  curve is linear to (0.5, that share), so at 1% of customers it is 0.02 x 5 / 410000005
  = 2.439...E-10 (6 places: 0.0).
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tailguard.cli import run
from tailguard.ledger import Ledger, ingest, read_customers_csv

HEADER = "customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date\n"


def _events() -> list[dict[str, Any]]:
    ev: list[dict[str, Any]] = []

    def llm(cid: str, ts: str, cost: str, task: str | None = None, feature: str = "chat") -> None:
        e = {
            "event_id": f"e{len(ev)}",
            "kind": "llm_call",
            "ts": ts,
            "customer_id": cid,
            "user_id": f"{cid}-u",
            "feature": feature,
            "workload": "chat",
            "provider": "openai",
            "model": "big",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": cost,
            "session_id": f"s{len(ev)}",
        }
        if task:
            e["task_id"] = task
        ev.append(e)

    def accepted(cid: str, ts: str, task: str) -> None:
        ev.append(
            {
                "event_id": f"e{len(ev)}",
                "kind": "task_outcome",
                "ts": ts,
                "customer_id": cid,
                "user_id": f"{cid}-u",
                "feature": "chat",
                "task_id": task,
                "outcome": "accepted",
            }
        )

    llm("T", "2025-05-28T10:00:00Z", "0.0000001")
    llm("T", "2025-06-28T10:00:00Z", "0.0000002", "t1", "search")
    llm("T", "2025-06-28T10:01:00Z", "0.0000002", "t1", "search")
    for t in ("t1", "t2", "t3"):
        accepted("T", "2025-06-28T11:00:00Z", t)
    for day in range(21, 28):
        llm("U", f"2025-06-{day}T09:00:00Z", "3")
    for t, cost in (("u1", "6"), ("u2", "7"), ("u3", "7")):
        llm("U", "2025-06-28T09:00:00Z", cost, t)
        accepted("U", "2025-06-28T12:00:00Z", t)
    return ev


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("precision")
    src = d / "events.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in _events()))
    ledger = Ledger(d / "ledger")
    ingest([src], ledger)
    cust = d / "customers.csv"
    cust.write_text(HEADER + "T,Tiny,pro,smb,30,1,,2025-01-01\nU,Usual,pro,smb,30,1,,2025-01-01\n")
    ledger.write_customers(read_customers_csv(cust))
    return str(Path(ledger.path))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert run([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out, parse_float=Decimal)  # every digit, as written


def _csv(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, str]]:
    assert run([*argv, "--csv"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def D(v: Any) -> Decimal:
    """A JSON number or string, or a CSV cell, as the Decimal it spells."""
    return Decimal(str(v))


#: 0.0000004 / 3 at Decimal's 28 significant digits
FOUR_TENTHS_MICRO_BY_3 = Decimal("1.333333333333333333333333333E-7")


def test_report_customers(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("report", "customers", "--ledger", led, "--period", "2025-06")
    t = next(r for r in _json(capsys, *argv) if r["customer_id"] == "T")
    assert D(t["cost_per_successful_task"]) == FOUR_TENTHS_MICRO_BY_3
    t = next(r for r in _csv(capsys, *argv) if r["customer_id"] == "T")
    assert D(t["cost_per_successful_task"]) == FOUR_TENTHS_MICRO_BY_3


def test_outcomes(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("outcomes", "--ledger", led, "--period", "2025-06", "--by", "customer")
    t = next(g for g in _json(capsys, *argv)["groups"] if g["group"] == "T")
    assert D(t["cost_per_resolved_task"]) == FOUR_TENTHS_MICRO_BY_3
    assert D(t["cost_per_call"]) == Decimal("0.0000002")
    assert float(t["calls_per_resolved_task"]) == 2 / 3
    t = next(r for r in _csv(capsys, *argv) if r["group"] == "T")
    assert D(t["cost_per_resolved_task"]) == FOUR_TENTHS_MICRO_BY_3
    assert D(t["cost_per_call"]) == Decimal("0.0000002")


def test_workload(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("workload", "--ledger", led, "--period", "2025-06")
    chat = next(c for c in _json(capsys, *argv)["classes"] if c["workload"] == "chat")
    assert D(chat["cost_per_invocation"]) == Decimal("3.4166667")
    assert D(chat["cost_per_task"]) == Decimal("5.0000001")
    chat = next(r for r in _csv(capsys, *argv) if r["workload"] == "chat")
    assert D(chat["cost_per_invocation"]) == Decimal("3.4166667")
    assert D(chat["cost_per_task"]) == Decimal("5.0000001")


def test_anomalies(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("anomalies", "--ledger", led, "--day", "2025-06-28")
    u = next(a for a in _json(capsys, *argv)["anomalies"] if a["entity_id"] == "U")
    assert float(u["ratio"]) == 20 / 3
    u = next(r for r in _csv(capsys, *argv) if r["entity_id"] == "U")
    assert float(u["ratio"]) == 20 / 3


def test_diagnose(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("diagnose", "--ledger", led, "--customer", "T")
    (t,) = _json(capsys, *argv)
    assert float(t["cost_share"]) == pytest.approx(5 / 410000005, rel=1e-12)
    assert D(t["cost_per_successful_task"]) == Decimal("1.666666666666666666666666667E-7")
    (t,) = _csv(capsys, *argv)
    assert D(t["cost_per_successful_task"]) == Decimal("1.666666666666666666666666667E-7")


def test_decide(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("decide", "T", "--ledger", led)
    hand = Decimal("4.75576171875E-7")  # 0.0000005 x 30.436875 / 32, exactly
    rep = _json(capsys, *argv)
    assert rep["window"] == {"start": "2025-05-28", "end": "2025-06-28"}
    # months = 32 / 30.436875 is itself a 28-digit quotient: the two agree to 1e-30
    assert abs(D(rep["monthly_cost_usd"]) - hand) < Decimal("1e-30")
    (row,) = _csv(capsys, *argv)
    assert abs(D(row["monthly_cost_usd"]) - hand) < Decimal("1e-30")


def test_digest(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("digest", "weekly", "--ledger", led, "--day", "2025-06-28")
    search = next(f for f in _json(capsys, *argv)["data"]["features"] if f["key"] == "search")
    assert float(search["this_share_pct"]) == pytest.approx(100 / 95000001, rel=1e-12)
    row = next(r for r in _csv(capsys, *argv) if r["section"] == "feature" and r["key"] == "search")
    assert float(row["this_share_pct"]) == pytest.approx(100 / 95000001, rel=1e-12)


def test_kpis(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("kpis", "--ledger", led, "--period", "2025-06")
    hand = float(Fraction("41.0000004") * Fraction("30.436875") * 100 / 1680)
    kpi = next(k for k in _json(capsys, *argv)["kpis"] if k["id"] == "cost_to_revenue")
    assert float(kpi["metrics"][0]["value"]) == pytest.approx(hand, rel=1e-12)
    row = next(r for r in _csv(capsys, *argv) if r["metric"] == "cost_pct_of_revenue")
    assert float(row["value"]) == pytest.approx(hand, rel=1e-12)


def test_renewal(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("renewal", "T", "--ledger", led)
    july = _json(capsys, *argv)["projection"][0]
    assert july["month"] == "2025-07"
    # a least-squares line through two points: exact up to float round-off
    assert float(D(july["cost_usd"])) == pytest.approx(7e-7, rel=1e-9)
    row = next(r for r in _csv(capsys, *argv) if r["month"] == "2025-07")
    assert float(D(row["cost_usd"])) == pytest.approx(7e-7, rel=1e-9)


def test_margins(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("margins", "--ledger", led, "--from", "2025-06-21", "--to", "2025-06-28")
    revenue = Decimal("7.885172180126901989773917328897")  # bc -l
    t = next(c for c in _json(capsys, *argv)["customers"] if c["customer_id"] == "T")
    assert abs(D(t["revenue_usd"]) - revenue) < Decimal("1e-26")
    assert float(t["cost_pct_of_mrr"]) == pytest.approx(5.0728125e-6, rel=1e-12)
    t = next(r for r in _csv(capsys, *argv) if r["customer_id"] == "T")
    assert abs(D(t["revenue_usd"]) - revenue) < Decimal("1e-26")
    assert float(t["cost_pct_of_mrr"]) == pytest.approx(5.0728125e-6, rel=1e-12)


def test_concentration(led: str, capsys: pytest.CaptureFixture[str]) -> None:
    lorenz = _json(capsys, "concentration", "--ledger", led)["lorenz"]
    assert float(lorenz[1][0]) == 0.01
    assert float(lorenz[1][1]) == pytest.approx(0.02 * 5 / 410000005, rel=1e-9)
