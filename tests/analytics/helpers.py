"""Helpers shared by the analytics tests: ledger-shaped tables and views without ingest.

For a ledger built through the real ingest (pricing, UTC timestamps, the customers import), see
``tests/ledger/fixtures.py`` and TESTING.md.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from tailguard.customers import CUSTOMER_SCHEMA
from tailguard.events.schema import LEDGER_SCHEMA


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
