"""Helpers shared by the analytics tests: ledger-shaped tables and views without ingest.

For a ledger built through the real ingest (pricing, UTC timestamps, the customers import), see
``tests/ledger/fixtures.py`` and TESTING.md.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from tailguard.customers import CUSTOMER_SCHEMA
from tailguard.events.schema import LEDGER_SCHEMA
from tailguard.ledger import Ledger, ingest, read_customers_csv


def events_table(rows: list[dict[str, Any]]) -> pa.Table:
    """A ledger-shaped Arrow table from dicts (missing columns null); costs as Decimal."""
    cols: dict[str, list[Any]] = {n: [] for n in LEDGER_SCHEMA.names}
    for r in rows:
        for n in LEDGER_SCHEMA.names:
            v = r.get(n)
            if n == "cost_usd" and v is not None:
                v = Decimal(str(v))
            elif n == "ts" and isinstance(v, str):
                v = dt.datetime.fromisoformat(v)
            cols[n].append(v)
    return pa.table(cols, schema=LEDGER_SCHEMA)


def connect(
    rows: list[dict[str, Any]], customers: list[dict[str, Any]] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the ``events`` and ``customers`` views the reports read
    (the same shape as ``Ledger.connect()``, without going through ingest and pricing); the
    customers view has the production schema (``tailguard.customers.CUSTOMER_SCHEMA``), columns
    a test leaves out are null."""
    con = duckdb.connect()
    con.register("_ev", events_table(rows))
    con.execute("CREATE VIEW events AS SELECT * FROM _ev")
    cust = customers or []
    con.register(
        "_cu",
        pa.table(
            {n: [c.get(n) for c in cust] for n in CUSTOMER_SCHEMA.names},
            schema=CUSTOMER_SCHEMA,
        ),
    )
    con.execute("CREATE VIEW customers AS SELECT * FROM _cu")
    return con


# --- the panel tests' ledgers: events as dicts, through the real ingest -----------------------

POLICY = {
    "guard": {"default_tier": "free"},
    "tiers": {
        "free": {"period": "month", "hard_limit_usd": 1, "overage": "hard_cap"},
        "pro": {
            "period": "month",
            "hard_limit_usd": 28,
            "soft_threshold": 0.7,
            "overage": "soft_cap_degrade",
            "degrade_to": {"big": "small"},
        },
        "team": {"period": "month", "pool_per_seat_usd": 10, "overage": "payg"},
        "enterprise": {"period": "month", "hard_limit_usd": 5000, "overage": "payg"},
    },
}
POLICY_TOML = """
[guard]
default_tier = "free"
[tiers.free]
period = "month"
hard_limit_usd = 1
overage = "hard_cap"
[tiers.pro]
period = "month"
hard_limit_usd = 28
soft_threshold = 0.7
overage = "soft_cap_degrade"
degrade_to = { "big" = "small" }
"""

HEADER = "customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date\n"


class Events:
    """Builds ledger events as dicts (ids numbered in order)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def llm(
        self, cust: str, user: str, ts: str, cost: str, *, feature: str = "chat", **kw: Any
    ) -> None:
        self.rows.append(
            {
                "event_id": f"k{len(self.rows)}",
                "kind": "llm_call",
                "ts": ts,
                "customer_id": cust,
                "user_id": user,
                "feature": feature,
                "workload": "chat",
                "provider": "openai",
                "model": "big",
                "input_tokens": 1000,
                "output_tokens": 100,
                "cost_usd": cost,
                **kw,
            }
        )

    def guard(self, cust: str, user: str, ts: str, action: str, rule: str) -> None:
        self.rows.append(
            {
                "event_id": f"k{len(self.rows)}",
                "kind": "guard",
                "ts": ts,
                "customer_id": cust,
                "user_id": user,
                "action": action,
                "rule": rule,
            }
        )


def make_ledger(tmp_path: Path, rows: list[dict[str, Any]], customers_csv: str) -> Ledger:
    """Events as JSONL -> ingest (the real write path); customers CSV -> the dimension."""
    ev = tmp_path / "events.jsonl"
    ev.write_text("".join(json.dumps(r) + "\n" for r in rows))
    led = Ledger(tmp_path / "ledger")
    ingest([ev], led)
    cu = tmp_path / "customers.csv"
    cu.write_text(HEADER + customers_csv)
    led.write_customers(read_customers_csv(cu))
    return led


def day(d: int, h: int = 12) -> str:
    return f"2026-02-{d:02d}T{h:02d}:00:00Z"


def kpi(rep: dict[str, Any], kid: str) -> dict[str, Any]:
    return next(k for k in rep["kpis"] if k["id"] == kid)


def metric(rep: dict[str, Any], kid: str, mid: str) -> dict[str, Any]:
    return next(m for m in kpi(rep, kid)["metrics"] if m["id"] == mid)


# --- the diagnosis's hand fixture ---------------------------------------------------------


class EventIds:
    """Event ids ``e1``, ``e2``, ... in the order asked for."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"e{self.n}"


def customer_events(
    ids: EventIds,
    cid: str,
    *,
    sessions: int = 2,
    tasks_per_session: int = 1,
    calls: int = 2,
    tools: int = 1,
    retries: int = 1,
    inp: int = 1000,
    cache: int = 500,
    out: int = 100,
    reasoning: int = 10,
    day: int = 2,
) -> list[dict[str, Any]]:
    """One customer's events of the diagnosis's hand fixture: ``tests/analytics/test_diagnose.py``'s
    module docstring works out every figure of a "plain" customer and of each variant."""
    rows: list[dict[str, Any]] = []
    base = {"customer_id": cid, "user_id": f"{cid}-u1", "feature": "f", "workload": "agent"}
    for s in range(sessions):
        sid = f"{cid}-s{s}"
        for t in range(tasks_per_session):
            tid = f"{sid}-t{t}"
            ts = f"2025-06-{day:02d}T{10 + s % 10:02d}:{t:02d}:00+00:00"
            ev = {**base, "session_id": sid, "task_id": tid, "ts": ts}
            first = s == 0 and t == 0
            attempts = [1] * calls + ([2] * retries if first else [])
            for a in attempts:
                rows.append(
                    {
                        **ev,
                        "event_id": ids(),
                        "kind": "llm_call",
                        "model": "m",
                        "attempt": a,
                        "input_tokens": inp,
                        "cache_read_tokens": cache,
                        "cache_write_tokens": 0,
                        "output_tokens": out,
                        "reasoning_tokens": reasoning,
                        "cost_usd": "0.01",
                        "unpriced": False,
                    }
                )
            for _ in range(tools):
                rows.append(
                    {**ev, "event_id": ids(), "kind": "tool_call", "tool": "x", "cost_usd": "0"}
                )
            rows.append({**ev, "event_id": ids(), "kind": "task_outcome", "outcome": "accepted"})
    return rows


def shape_events() -> list[dict[str, Any]]:
    """The diagnosis's hand fixture: 3 plain customers, one variant per shape, and TINY
    (``tests/analytics/test_diagnose.py``'s module docstring)."""
    ids = EventIds()
    rows: list[dict[str, Any]] = []
    for cid in ("P1", "P2", "P3"):
        rows += customer_events(ids, cid)
    rows += customer_events(ids, "LS", sessions=1, tasks_per_session=4)
    rows += customer_events(ids, "TF", tools=4)
    rows += customer_events(ids, "OP", inp=4000, cache=2000)
    rows += customer_events(ids, "FM", retries=4)
    rows += customer_events(ids, "HF", sessions=6)
    rows += customer_events(ids, "LC", cache=100)
    rows += customer_events(ids, "RH", reasoning=40)
    rows += customer_events(ids, "TINY", sessions=1, retries=3)
    return rows
