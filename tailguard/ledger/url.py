"""The ledger a setting names: a directory (the DuckDB/Parquet ledger) or a ClickHouse URL.

Every place a ledger is named (``--ledger``, ``TAILGUARD_LEDGER``, ``[gateway] ledger``, the
SDK's ``connect(ledger=...)``) goes through ``open_ledger``, so one rule picks the engine:

- a plain path: ``tailguard.ledger.store.Ledger`` (the default, as before);
- ``chdb:///path/dir``: ClickHouse's engine in this process (``chdb``), data under ``dir``;
- ``clickhouse://host:8123/db`` or ``https://host:8443/db``: a ClickHouse server through
  ``clickhouse-connect`` (``?spool=DIR`` is the local directory of the write-ahead log).

Both are a ``Ledger`` (the ClickHouse one a subtype), so callers need no second code path.
"""

from __future__ import annotations

import os
from pathlib import Path

from tailguard.ledger.clickhouse import ClickHouseLedger, is_clickhouse_url
from tailguard.ledger.store import Ledger


def open_ledger(spec: str | os.PathLike[str] | Ledger) -> Ledger:
    """The ledger ``spec`` names (a ``Ledger`` is returned as it is)."""
    if isinstance(spec, Ledger):
        return spec
    if is_clickhouse_url(spec):
        return ClickHouseLedger(str(spec))
    return Ledger(spec)


def ledger_dir(spec: str | os.PathLike[str] | Ledger) -> Path:
    """The local directory of a ledger: its own for a directory ledger or chdb, the spool
    of a server ledger (where the write-ahead log lives)."""
    return open_ledger(spec).path


__all__ = ["ClickHouseLedger", "is_clickhouse_url", "ledger_dir", "open_ledger"]
