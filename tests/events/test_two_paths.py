"""Two methods, one answer: the msgspec rules (JSONL) and their SQL restatement (Parquet).

Hypothesis generates valid events of every kind (nulls, absent fields, fields of other kinds,
big ints, money as numbers and strings); both readers must agree cell for cell.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.events.readers import read_events
from tests.events.helpers import event


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(evs=st.lists(event(), min_size=1, max_size=12))
def test_parquet_sql_rules_agree_with_msgspec(tmp_path_factory, evs: list[dict]) -> None:
    """The same events, as JSONL (msgspec) and as a raw Parquet file with every field as
    written (SQL rules: defaults, fields of other kinds dropped), read to the same table."""
    d = tmp_path_factory.mktemp("j")
    p = d / "e.jsonl"
    p.write_text("".join(json.dumps(e) + "\n" for e in evs))
    via_json = read_events(p)
    assert via_json.rejects == []  # the generator makes valid events only
    raw = _raw_parquet(evs, d / "e.parquet")
    via_parquet = read_events(raw)
    assert via_parquet.rejects == []
    # the same rows, cell for cell (row order may differ: compare as multisets)
    assert sorted(via_parquet.table.to_pylist(), key=repr) == sorted(
        via_json.table.to_pylist(), key=repr
    )


def _raw_parquet(evs: list[dict], path: Path) -> Path:
    """Every field as the producer wrote it, typed as the ledger's input schema."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tailguard.events.readers import INPUT_SCHEMA

    rows = []
    for e in evs:
        r = {}
        for f in INPUT_SCHEMA:
            v = e.get(f.name)
            if v is not None and f.name == "ts":
                v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            elif v is not None and f.name in ("cost_usd", "amount_usd"):
                v = Decimal(str(v)).quantize(Decimal("1e-9"))
            r[f.name] = v
        rows.append(r)
    pq.write_table(pa.Table.from_pylist(rows, schema=INPUT_SCHEMA), path)
    return path


def test_money_is_decoded_exactly(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"event_id": "a", "kind": "escalation", "ts": "2025-01-01T00:00:00Z", '
        '"customer_id": "c", "minutes": 1, "cost_usd": 123456789.1234567891}\n'
    )
    # Decimal from the JSON text, never through a binary float; rounded half-even to 1e-9
    assert str(read_events(p).table.column("cost_usd")[0].as_py()) == "123456789.123456789"
