"""Every field of the per-customer table against a ledger worked out by hand.

The fixture (tests/ledger/fixtures.py) with the override prices:
  my-model: $1/Mtok in, $2/Mtok out; tool default $0.002, web_search $0.01;
  retrieval $0.0004/query + $0.001/rerank; escalation $0.75/minute.

Customer A (MRR 50):
  llm 0.10 (reported) + 0.20 (reported) + my-model 1000×1/1e6 + 500×2/1e6 = 0.002
  tools 0.01 (reported db_read) + 0.002 (crm_write at the default unit)
  retrieval 3×0.0004 + 1×0.001 = 0.0022
  escalation 10 × 0.75 = 7.50
  total = 0.30 + 0.002 + 0.012 + 0.0022 + 7.50 = 7.8162
  tasks 2 (t1 accepted, t2 escalated), 1 success → cost per successful task 7.8162
  read tools/task 1/2, write tools/task 1/2, queries/task 3/2, reranks/task 1/2
  retries (attempt > 1) 1 → per win 1/1; escalations 1 → rate 1/2
  June is one calendar month: revenue 50; cost % of MRR 7.8162/50×100 = 15.6324;
  margin 50 − 7.8162 = 42.1838
Customer B (MRR 0): mystery-llm unpriced (null, counted), 1.00 reported, web_search 0.01
  total 1.01; tasks 2, success 1 → 1.01/task; revenue 0 → % null; margin −1.01
Customer C (MRR 100): no events → cost 0, margin 100.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.analytics.customers import customer_rows, sort_rows
from tailguard.analytics.headline import headline
from tailguard.analytics.period import window
from tailguard.ledger import Ledger, ingest, read_customers_csv
from tailguard.pricing import PriceBook
from tests.ledger.fixtures import write_fixture


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ev, prices, cust = write_fixture(tmp_path)
    led = Ledger(tmp_path / "ledger")
    ingest([ev], led, prices=PriceBook.load(prices))
    led.write_customers(read_customers_csv(cust))
    return led


def rows_by_id(led: Ledger, period: str | None = "2025-06") -> dict[str, dict]:
    con = led.connect()
    try:
        return {r["customer_id"]: r for r in customer_rows(con, window(period))}
    finally:
        con.close()


def test_customer_a_every_field(ledger: Ledger) -> None:
    a = rows_by_id(ledger)["A"]
    assert a["cost_usd"] == Decimal("7.8162")
    assert a["llm_cost_usd"] == Decimal("0.302")
    assert a["tool_cost_usd"] == Decimal("0.012")
    assert a["retrieval_cost_usd"] == Decimal("0.0022")
    assert a["escalation_cost_usd"] == Decimal("7.5")
    assert a["llm_calls"] == 3
    assert a["input_tokens"] == 100 + 120 + 1000
    assert a["output_tokens"] == 10 + 20 + 500
    assert a["cache_read_tokens"] == 0
    assert a["tasks"] == 2
    assert a["successful_tasks"] == 1
    assert a["cost_per_successful_task"] == Decimal("7.8162")
    assert a["read_tool_calls_per_task"] == 0.5
    assert a["write_tool_calls_per_task"] == 0.5
    assert a["retrieval_queries_per_task"] == 1.5
    assert a["reranks_per_task"] == 0.5
    assert a["retries_per_win"] == 1.0
    assert a["escalations"] == 1
    assert a["escalation_rate"] == 0.5
    assert a["unpriced_calls"] == 0
    assert a["mrr_usd"] == Decimal(50)
    assert a["revenue_usd"] == Decimal(50)
    assert a["cost_pct_of_mrr"] == pytest.approx(15.6324)
    assert a["gross_margin_usd"] == Decimal("42.1838")
    assert (a["tier"], a["segment"]) == ("pro", "smb")


def test_customer_b_unpriced_is_counted_not_zeroed(ledger: Ledger) -> None:
    b = rows_by_id(ledger)["B"]
    assert b["unpriced_calls"] == 1
    assert b["cost_usd"] == Decimal("1.01")
    assert b["tasks"] == 2 and b["successful_tasks"] == 1
    assert b["cost_per_successful_task"] == Decimal("1.01")
    assert b["cost_pct_of_mrr"] is None  # no revenue to divide by
    assert b["gross_margin_usd"] == Decimal("-1.01")


def test_customer_without_events_is_listed(ledger: Ledger) -> None:
    c = rows_by_id(ledger)["C"]
    assert c["cost_usd"] == 0 and c["llm_calls"] == 0 and c["tasks"] == 0
    assert c["cost_per_successful_task"] is None
    assert c["gross_margin_usd"] == Decimal(100)


def test_sorted_by_cost_descending(ledger: Ledger) -> None:
    con = ledger.connect()
    rows = sort_rows(customer_rows(con, window("2025-06")))
    assert [r["customer_id"] for r in rows] == ["A", "B", "C"]


def test_window_excludes_other_months(ledger: Ledger) -> None:
    assert rows_by_id(ledger, "2025-07")["A"]["cost_usd"] == 0


def test_from_to_window_prorates_revenue(ledger: Ledger) -> None:
    con = ledger.connect()
    rows = {
        r["customer_id"]: r for r in customer_rows(con, window(None, "2025-06-01", "2025-06-30"))
    }
    # 30 days of a 30.436875-day average month: 50 × 30 / 30.436875 = 49.2823261257931374360869...
    # (bc -l): every digit, not rounded to micro-dollars
    assert abs(rows["A"]["revenue_usd"] - Decimal("49.28232612579313743608698331")) < Decimal(
        "1e-25"
    )


def test_headline(ledger: Ledger) -> None:
    h = headline(list(rows_by_id(ledger).values()))
    # total 7.8162 + 1.01 = 8.8262 over 2 wins = 4.4131
    assert h["total_cost_usd"] == Decimal("8.8262")
    assert h["aggregate_cost_per_successful_task"] == Decimal("4.4131")
    # top 1% of 3 customers is 1 customer: 7.8162 / 8.8262
    assert h["top_1pct_share"] == pytest.approx(7.8162 / 8.8262)
    assert h["unpriced_calls"] == 1
    # B is free (MRR 0): its cost 1.01 is reported apart; A and C pay and are above water
    assert h["most_underwater"] == [] and h["underwater_customers"] == 0
    assert h["free_customers"] == 1 and h["free_customers_cost_usd"] == Decimal("1.01")
    assert h["paying_customers"] == 2
    # median of the per-customer costs per win (7.8162, 1.01) is their mean: 4.4131
    assert h["per_customer_cost_per_successful_task"]["median"] == pytest.approx(4.4131)
    # the headline states its window: the period asked for, June 2025, end day included
    assert {k: str(v) for k, v in h["window"].items()} == {
        "start": "2025-06-01",
        "end": "2025-06-30",
    }


def test_open_window_revenue_uses_utc_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events at 23:30 UTC on the 1st and 00:30 UTC on the 3rd span 3 UTC days, whatever TZ says.

    Revenue = MRR 50 × 3 / 30.436875 = 4.92823261257931374360869833... (bc -l, every digit).
    """
    import json

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: local days would differ
    evs = [
        {
            "event_id": "a",
            "kind": "task_outcome",
            "ts": "2025-06-01T23:30:00Z",
            "customer_id": "A",
            "task_id": "t1",
            "outcome": "accepted",
        },
        {
            "event_id": "b",
            "kind": "task_outcome",
            "ts": "2025-06-03T00:30:00Z",
            "customer_id": "A",
            "task_id": "t2",
            "outcome": "accepted",
        },
    ]
    p = tmp_path / "e.jsonl"
    p.write_text("".join(json.dumps(e) + "\n" for e in evs))
    _, _, cust = write_fixture(tmp_path)
    led = Ledger(tmp_path / "L2")
    ingest([p], led)
    led.write_customers(read_customers_csv(cust))
    con = led.connect()
    a = {r["customer_id"]: r for r in customer_rows(con, window(None))}["A"]
    assert abs(a["revenue_usd"] - Decimal("4.928232612579313743608698331")) < Decimal("1e-26")


def test_diagnose_open_window_prices_mrr_like_the_report(ledger: Ledger) -> None:
    """Open window: the fixture's events span 2025-06-01..05, 5 UTC days, so A earns
    50 × 5 / 30.436875 = 8.2137... and its 7.8162 of cost is 95.16% of that (by hand:
    7.8162 / (250 / 30.436875) × 100 = 95.1594...). diagnose and the report must agree."""
    from tailguard.analytics.diagnose import diagnose

    con = ledger.connect()
    d = diagnose(con, window(None), customer="A")[0]
    assert d["cost_pct_of_mrr"] == pytest.approx(95.16, abs=0.005)
    report = {r["customer_id"]: r for r in customer_rows(con, window(None))}["A"]
    assert report["cost_pct_of_mrr"] == pytest.approx(d["cost_pct_of_mrr"], abs=0.005)
