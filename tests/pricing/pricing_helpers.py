"""Build event tables with the ledger's input columns for the pricing tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from tailguard.events.schema import INPUT_COLUMNS, LEDGER_SCHEMA

INPUT_SCHEMA = pa.schema([LEDGER_SCHEMA.field(n) for n in INPUT_COLUMNS])


def events_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A table with every input column; fields a row leaves out are null."""
    filled = [{"event_id": str(i), "customer_id": "c1", **dict(r)} for i, r in enumerate(rows)]
    return pa.Table.from_pylist(filled, schema=INPUT_SCHEMA)
