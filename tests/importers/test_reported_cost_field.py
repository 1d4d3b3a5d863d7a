"""``reported_cost_usd`` as an event field: kept beside tailguard's price by every reader."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tailguard.errors import InputError
from tailguard.events.readers import read_events
from tailguard.ledger import Ledger, ingest

_EV = {
    "event_id": "e1",
    "kind": "llm_call",
    "ts": "2025-06-01T00:00:00Z",
    "customer_id": "acme",
    "provider": "openai",
    "model": "gpt-4o",
    "input_tokens": 1000,
    "output_tokens": 100,
    "reported_cost_usd": "0.0041",
}


def test_jsonl_csv_and_parquet_keep_it_beside_the_price(tmp_path: Path) -> None:
    """gpt-4o: 1000 x 2.50 + 100 x 10 = 3500 micro-$ = 0.0035 priced; 0.0041 as reported.
    The same event as JSONL, CSV and Parquet (the Parquet written from the JSONL reader's
    table) stores the same row."""
    src = tmp_path / "e.jsonl"
    src.write_text(json.dumps(_EV) + "\n")
    table = read_events(src).table
    (tmp_path / "e.csv").write_text(
        ",".join(_EV) + "\n" + ",".join(str(v) for v in _EV.values()) + "\n"
    )
    pq.write_table(table, tmp_path / "e.parquet")
    got = []
    for name in ("e.jsonl", "e.csv", "e.parquet"):
        led = Ledger(tmp_path / f"L-{name}")
        ingest([tmp_path / name], led)
        got.append(
            led.connect()
            .execute("SELECT cost_usd, reported_cost_usd, cost_source FROM events")
            .fetchone()
        )
    assert got == [(Decimal("0.0035"), Decimal("0.0041"), "price")] * 3


def test_a_negative_reported_cost_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "e.jsonl"
    src.write_text(json.dumps(_EV | {"reported_cost_usd": "-1"}) + "\n")
    with pytest.raises(InputError) as err:
        ingest([src], Ledger(tmp_path / "L"))
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(f"{src}:1: reported_cost_usd: ")
