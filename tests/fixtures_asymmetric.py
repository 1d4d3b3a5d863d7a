"""A ledger where no two figures coincide, so a swapped field or a flipped operator shows.

The symmetric fixture (tests/ledger/fixtures.py) has one win per customer, one read and one
write tool call, no cache and no reasoning tokens: ``cost / wins`` and ``cost * wins`` agree on it.
This one is built through the real ingest (JSONL -> priced Parquet ledger, read by DuckDB) from
the explicit prices below, so every dollar is hand-computable.

Prices (USD): ``tg-model`` per million tokens: input 2, cache read 0.5, cache write 2.5,
output 8 (reasoning is part of output). Tools: ``lookup`` 0.001, ``crm_update`` 0.02, any other
tool 0.003. Retrieval 0.0004 a query + 0.001 a rerank. Escalation 0.6 a minute.
``mystery-model`` has no price (unpriced: counted, never $0).

Events (2025; June 1 is a Sunday, so ISO weeks start Mon May 26, Jun 2, Jun 9, Jun 16, Jun 23):

WIN (Winsome Ltd, pro, smb, MRR 30)
  task w1 (accepted, and the same outcome re-sent: two ``accepted`` events)
    Jun 1 00:00:00  llm attempt 1, error: in 10,000 (cache read 4,000, write 1,000), out 500
                    (reasoning 200): 5,000x2 + 4,000x0.5 + 1,000x2.5 + 500x8 = 18,500 -> 0.0185
    Jun 1 23:59:59  llm attempt 2: in 10,000 (cache read 8,000), out 1,000 (reasoning 600):
                    2,000x2 + 8,000x0.5 + 1,000x8 = 16,000 -> 0.016
    Jun 2 00:00:00  tool lookup (read) 0.001, tool lookup (read) 0.001, crm_update (write) 0.02
    Jun 2 00:00:01  retrieval 3 queries, 6 reranks: 0.0012 + 0.006 = 0.0072
    Jun 2 01:00     accepted;  Jun 2 02:00 accepted again
  task w2 (abandoned, then accepted: 'abandoned' sorts before 'accepted')
    Jun 9 10:00     llm attempt 1: in 3,000, out 300: 6,000 + 2,400 -> 0.0084
    Jun 9 10:01     llm attempt 2: in 2,000 (all cache write), out 250: 5,000 + 2,000 -> 0.007
    Jun 9 10:02     tool search_kb (read), not listed: the default 0.003
    Jun 9 10:03     retrieval 2 queries, 1 rerank: 0.0008 + 0.001 = 0.0018
    Jun 9 10:04     abandoned;  Jun 9 12:00 accepted
  task w3 (accepted)
    Jun 12 10:00    llm attempt 1: in 1,000, out 100: 2,000 + 800 -> 0.0028
    Jun 12 10:05    escalation 2.5 minutes: 1.5
    Jun 12 11:00    accepted
  task w4 (abandoned, then timed_out: its outcome is the alphabetically first, abandoned)
    Jun 20 10:00    llm attempt 1: in 500, out 0 -> 0.001
    Jun 20 10:01    llm mystery-model: in 100, out 10 -> unpriced
    Jun 20 10:01:30 escalation 0.5 minutes: 0.3 (WIN's second: sum and max differ)
    Jun 20 10:02    abandoned;  Jun 20 10:03 timed_out
  Jul 1 00:00:00    tool (default) 0.003, task w5: outside June (the window's end is exclusive)

LLM (Lonely LLC, team, mid_market, MRR 20): LLM calls only, no task outcome
    Jun 5 10:00     in 250,000, out 12,500 (reasoning 5,000): 500,000 + 100,000 -> 0.6
    Jun 28 10:00    attempt 2: in 50,000 (all cache read), out 0: 25,000 -> 0.025
    Jun 28 10:05, 10:06  mystery-model, in 1,000, out 100 each: unpriced (two: sum and max
                    differ); the second names a task, l1, that never gets an outcome

LEAN (Lean Co, free, smb, MRR 10): one task, no retrieval or escalation
    Jun 10 10:00    llm: in 100, out 50: 200 + 400 = 600 -> 0.0006, task n1
    Jun 10 10:00:30 two write tool calls (notes_write) reported at a cost of 0 each
    Jun 10 10:01    rejected

NONE (Nobody Inc, enterprise, enterprise, MRR 40): no events

GHOST: events but no customers row
    Jun 15 10:00    tool call with a reported cost of 0.05, task g1
    Jul 1 00:00:00  g1 accepted: after June, so in June g1 has no outcome yet

The figures each test needs are worked out in that test's docstring from the lines above.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tailguard.ledger import Ledger, ingest, read_customers_csv
from tailguard.pricing import PriceBook

PRICES_TOML = """
[[model]]
model = "tg-model"
input_mtok = 2.0
output_mtok = 8.0
cache_read_mtok = 0.5
cache_write_mtok = 2.5

[units]
tool_call_usd = { default = 0.003, lookup = 0.001, crm_update = 0.02 }
retrieval_query_usd = 0.0004
rerank_usd = 0.001
escalation_minute_usd = 0.6
"""

CUSTOMERS_CSV = """customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date
WIN,Winsome Ltd,pro,smb,30,3,,2025-01-10
LLM,Lonely LLC,team,mid_market,20,2,,2025-02-01
LEAN,Lean Co,free,smb,10,1,,2025-03-01
NONE,Nobody Inc,enterprise,enterprise,40,50,,2024-12-01
"""


def _llm(ts: str, cust: str, task: str | None, inp: int, out: int, **kw: Any) -> dict[str, Any]:
    return {
        "kind": "llm_call",
        "ts": ts,
        "customer_id": cust,
        "task_id": task,
        "provider": "self",
        "model": kw.pop("model", "tg-model"),
        "input_tokens": inp,
        "output_tokens": out,
        "feature": kw.pop("feature", "support"),
        "workload": "agent",
        **kw,
    }


def _ev(kind: str, ts: str, cust: str, task: str | None, **kw: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "ts": ts,
        "customer_id": cust,
        "task_id": task,
        "feature": kw.pop("feature", "support"),
        **kw,
    }


def events() -> list[dict[str, Any]]:
    """The events of the module docstring, in the order listed there."""
    evs = [
        # WIN, w1
        _llm(
            "2025-06-01T00:00:00Z",
            "WIN",
            "w1",
            10_000,
            500,
            cache_read_tokens=4_000,
            cache_write_tokens=1_000,
            reasoning_tokens=200,
            attempt=1,
            status="error",
        ),
        _llm(
            "2025-06-01T23:59:59Z",
            "WIN",
            "w1",
            10_000,
            1_000,
            cache_read_tokens=8_000,
            reasoning_tokens=600,
            attempt=2,
        ),
        _ev("tool_call", "2025-06-02T00:00:00Z", "WIN", "w1", tool="lookup", tool_kind="read"),
        _ev("tool_call", "2025-06-02T00:00:00Z", "WIN", "w1", tool="lookup", tool_kind="read"),
        _ev("tool_call", "2025-06-02T00:00:00Z", "WIN", "w1", tool="crm_update", tool_kind="write"),
        _ev("retrieval", "2025-06-02T00:00:01Z", "WIN", "w1", queries=3, reranks=6),
        _ev("task_outcome", "2025-06-02T01:00:00Z", "WIN", "w1", outcome="accepted"),
        _ev("task_outcome", "2025-06-02T02:00:00Z", "WIN", "w1", outcome="accepted"),
        # WIN, w2
        _llm("2025-06-09T10:00:00Z", "WIN", "w2", 3_000, 300, attempt=1),
        _llm("2025-06-09T10:01:00Z", "WIN", "w2", 2_000, 250, cache_write_tokens=2_000, attempt=2),
        _ev("tool_call", "2025-06-09T10:02:00Z", "WIN", "w2", tool="search_kb", tool_kind="read"),
        _ev("retrieval", "2025-06-09T10:03:00Z", "WIN", "w2", queries=2, reranks=1),
        _ev("task_outcome", "2025-06-09T10:04:00Z", "WIN", "w2", outcome="abandoned"),
        _ev("task_outcome", "2025-06-09T12:00:00Z", "WIN", "w2", outcome="accepted"),
        # WIN, w3
        _llm("2025-06-12T10:00:00Z", "WIN", "w3", 1_000, 100, attempt=1),
        _ev("escalation", "2025-06-12T10:05:00Z", "WIN", "w3", minutes=2.5),
        _ev("task_outcome", "2025-06-12T11:00:00Z", "WIN", "w3", outcome="accepted"),
        # WIN, w4
        _llm("2025-06-20T10:00:00Z", "WIN", "w4", 500, 0, attempt=1),
        _llm("2025-06-20T10:01:00Z", "WIN", "w4", 100, 10, model="mystery-model", provider="acme"),
        _ev("escalation", "2025-06-20T10:01:30Z", "WIN", "w4", minutes=0.5),
        _ev("task_outcome", "2025-06-20T10:02:00Z", "WIN", "w4", outcome="abandoned"),
        _ev("task_outcome", "2025-06-20T10:03:00Z", "WIN", "w4", outcome="timed_out"),
        # WIN in July
        _ev("tool_call", "2025-07-01T00:00:00Z", "WIN", "w5", tool="other", tool_kind="read"),
        # LLM: calls only
        _llm(
            "2025-06-05T10:00:00Z",
            "LLM",
            None,
            250_000,
            12_500,
            reasoning_tokens=5_000,
            feature="chat",
        ),
        _llm(
            "2025-06-28T10:00:00Z",
            "LLM",
            None,
            50_000,
            0,
            cache_read_tokens=50_000,
            attempt=2,
            feature="chat",
        ),
        _llm(
            "2025-06-28T10:05:00Z", "LLM", None, 1_000, 100, model="mystery-model", feature="chat"
        ),
        _llm(
            "2025-06-28T10:06:00Z", "LLM", "l1", 1_000, 100, model="mystery-model", feature="chat"
        ),
        # LEAN
        _llm("2025-06-10T10:00:00Z", "LEAN", "n1", 100, 50),
        _ev(
            "tool_call",
            "2025-06-10T10:00:30Z",
            "LEAN",
            "n1",
            tool="notes_write",
            tool_kind="write",
            cost_usd=0,
        ),
        _ev(
            "tool_call",
            "2025-06-10T10:00:30Z",
            "LEAN",
            "n1",
            tool="notes_write",
            tool_kind="write",
            cost_usd=0,
        ),
        _ev("task_outcome", "2025-06-10T10:01:00Z", "LEAN", "n1", outcome="rejected"),
        # GHOST: no customers row
        _ev(
            "tool_call",
            "2025-06-15T10:00:00Z",
            "GHOST",
            "g1",
            tool="lookup",
            tool_kind="read",
            cost_usd=0.05,
        ),
        _ev("task_outcome", "2025-07-01T00:00:00Z", "GHOST", "g1", outcome="accepted"),
    ]
    for i, e in enumerate(evs):
        e["event_id"] = f"asym-{i:02d}"
    return evs


def write_asymmetric(directory: Path) -> tuple[Path, Path, Path]:
    """events.jsonl, prices.toml and customers.csv in ``directory``."""
    ev = directory / "events.jsonl"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events()))
    prices = directory / "prices.toml"
    prices.write_text(PRICES_TOML)
    cust = directory / "customers.csv"
    cust.write_text(CUSTOMERS_CSV)
    return ev, prices, cust


def asymmetric_ledger(directory: Path) -> Ledger:
    """The ledger of the module docstring, ingested and priced for real under ``directory``."""
    ev, prices, cust = write_asymmetric(directory)
    led = Ledger(directory / "ledger")
    ingest([ev], led, prices=PriceBook.load(prices))
    led.write_customers(read_customers_csv(cust))
    return led
