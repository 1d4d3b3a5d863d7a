"""The customers table (tier, seats, contracted pool) as the guard reads it.

Why a copy in memory: the guard resolves limits on every call and cannot afford a Parquet read
per decision; the table is small (one row per customer) and changes rarely. Reload it by
building a new ``Guard`` (or assigning ``guard.customers``) after ``tailguard ledger customers``.
"""

from __future__ import annotations

import os
from decimal import Decimal

from tailguard.guard.policy import CustomerInfo


def customers_from_ledger(ledger_dir: str | os.PathLike[str]) -> dict[str, CustomerInfo]:
    """``{customer_id: CustomerInfo}`` from a ledger's customers table (empty when absent)."""
    from tailguard.ledger import Ledger

    table = Ledger(ledger_dir).customers_table()
    if table is None:
        return {}
    out: dict[str, CustomerInfo] = {}
    cols = table.column_names
    for row in table.to_pylist():
        pool = row.get("contracted_pool_usd") if "contracted_pool_usd" in cols else None
        out[str(row["customer_id"])] = CustomerInfo(
            tier=row.get("tier"),
            seats=row.get("seats"),
            contracted_pool_usd=Decimal(pool) if pool else None,
        )
    return out
