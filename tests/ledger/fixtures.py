"""A small ledger worked out by hand (see the arithmetic in test_report_customers.py)."""

from __future__ import annotations

import json
from pathlib import Path

PRICES_TOML = """
[[model]]
model = "my-model"
input_mtok = 1.0
output_mtok = 2.0

[units]
tool_call_usd = { default = 0.002, web_search = 0.01 }
retrieval_query_usd = 0.0004
rerank_usd = 0.001
escalation_minute_usd = 0.75
"""

CUSTOMERS_CSV = """customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date
A,Acme,pro,smb,50,5,,2025-01-10
B,Bolt,free,smb,0,1,,2025-03-01
C,Calm,team,mid_market,100,10,80,2024-11-20
"""


def _ev(i: int, kind: str, cust: str, task: str, session: str, **kw: object) -> dict:
    return {
        "event_id": f"e{i}",
        "kind": kind,
        "ts": f"2025-06-0{1 + i % 5}T10:00:00Z",
        "customer_id": cust,
        "user_id": f"{cust}-u1",
        "feature": "support",
        "task_id": task,
        "session_id": session,
        **kw,
    }


def events() -> list[dict]:
    llm = {"provider": "openai", "workload": "agent"}
    return [
        # customer A, task t1: a failed attempt, a retry, two tools, a retrieval; accepted
        _ev(
            1,
            "llm_call",
            "A",
            "t1",
            "s1",
            model="gpt-4o",
            input_tokens=100,
            output_tokens=10,
            attempt=1,
            status="error",
            cost_usd=0.10,
            **llm,
        ),
        _ev(
            2,
            "llm_call",
            "A",
            "t1",
            "s1",
            model="gpt-4o",
            input_tokens=120,
            output_tokens=20,
            attempt=2,
            cost_usd=0.20,
            **llm,
        ),
        _ev(3, "tool_call", "A", "t1", "s1", tool="db_read", tool_kind="read", cost_usd=0.01),
        _ev(4, "tool_call", "A", "t1", "s1", tool="crm_write", tool_kind="write"),
        _ev(5, "retrieval", "A", "t1", "s1", queries=3, reranks=1),
        _ev(6, "task_outcome", "A", "t1", "s1", outcome="accepted"),
        # customer A, task t2: an override-priced call, a 10-minute escalation; escalated
        _ev(
            7,
            "llm_call",
            "A",
            "t2",
            "s2",
            model="my-model",
            input_tokens=1000,
            output_tokens=500,
            provider="self",
        ),
        _ev(8, "escalation", "A", "t2", "s2", minutes=10),
        _ev(9, "task_outcome", "A", "t2", "s2", outcome="escalated"),
        # customer B: an unknown model (unpriced), abandoned; then a reported-cost win
        _ev(
            10,
            "llm_call",
            "B",
            "t3",
            "s3",
            model="mystery-llm",
            input_tokens=50,
            output_tokens=5,
            provider="acme-ai",
        ),
        _ev(11, "task_outcome", "B", "t3", "s3", outcome="abandoned"),
        _ev(
            12,
            "llm_call",
            "B",
            "t4",
            "s4",
            model="gpt-4o",
            input_tokens=10,
            output_tokens=1,
            cost_usd=1.00,
            **llm,
        ),
        _ev(13, "tool_call", "B", "t4", "s4", tool="web_search", tool_kind="read"),
        _ev(14, "task_outcome", "B", "t4", "s4", outcome="accepted"),
    ]


def write_fixture(d: Path) -> tuple[Path, Path, Path]:
    ev = d / "events.jsonl"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events()))
    prices = d / "prices.toml"
    prices.write_text(PRICES_TOML)
    cust = d / "customers.csv"
    cust.write_text(CUSTOMERS_CSV)
    return ev, prices, cust
