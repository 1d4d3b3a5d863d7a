"""The ledger: append-only Parquet segments, idempotent by event_id, read with DuckDB."""

from tailguard.customers import CUSTOMER_SCHEMA, read_customers_csv
from tailguard.ledger.ingest import IngestResult, ingest
from tailguard.ledger.store import CommitResult, Ledger

__all__ = [
    "CUSTOMER_SCHEMA",
    "CommitResult",
    "IngestResult",
    "Ledger",
    "ingest",
    "read_customers_csv",
]
