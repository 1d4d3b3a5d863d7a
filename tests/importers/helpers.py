"""What the importer tests share: the ledger's rows after an import, and file writers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tailguard.ledger import Ledger

COLUMNS = (
    "event_id, customer_id, user_id, model, provider, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, reasoning_tokens, latency_ms, status, "
    "reported_cost_usd, cost_usd, cost_source"
)


def rows(ledger: Path) -> dict[str, dict[str, Any]]:
    """The ledger's events by event id (the columns an import fills)."""
    con = Ledger(ledger).connect()
    cur = con.execute(f"SELECT {COLUMNS} FROM events ORDER BY event_id")
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    header: list[str] = []
    for r in records:
        header += [k for k in r if k not in header]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        for r in records:
            w.writerow(r)
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
