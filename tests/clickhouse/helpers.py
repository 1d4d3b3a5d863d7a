"""Shared by the ClickHouse tests: chdb ledgers next to DuckDB ledgers built from the same
events through the real ingest (pricing, customers import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from tailguard.ledger import Ledger, ingest, read_customers_csv
from tailguard.ledger.clickhouse import ClickHouseLedger
from tailguard.pricing import PriceBook


def chdb_url(directory: Path) -> str:
    """The URL of a chdb ledger in ``directory`` (three slashes: an absolute path)."""
    return f"chdb://{directory.resolve()}"


def llm(i: int, cust: str = "c1", ts: str = "2026-01-05T10:00:00Z", **kw: Any) -> dict[str, Any]:
    """An llm_call event priced by the fixture price book: in 1,000 x $1/M + out 100 x $2/M
    = $0.0012 (``model`` ``my-model``), unless ``cost_usd`` is given."""
    return {
        "event_id": f"e{i}",
        "kind": "llm_call",
        "ts": ts,
        "customer_id": cust,
        "model": "my-model",
        "input_tokens": 1000,
        "output_tokens": 100,
        **kw,
    }


PRICES_TOML = """
[[model]]
model = "my-model"
input_mtok = 1.0
output_mtok = 2.0
"""


def price_book(tmp: Path) -> PriceBook:
    p = tmp / "prices.toml"
    p.write_text(PRICES_TOML)
    return PriceBook.load(p)


def twin_ledgers(
    tmp: Path,
    events: Path,
    prices: Path | None,
    customers: Path | None,
    *,
    chdir: Path | None = None,
    database: str = "default",
) -> tuple[Ledger, ClickHouseLedger]:
    """The same events file ingested into a DuckDB ledger and a chdb ledger (in ``chdir``,
    database ``database``: a process opens one chdb directory at a time)."""
    book = PriceBook.load(prices) if prices else PriceBook.load()
    duck = Ledger(tmp / "duck")
    ingest([events], duck, prices=book)
    ch = ClickHouseLedger(f"{chdb_url(chdir or tmp / 'ch')}?database={database}")
    ingest([events], ch, prices=book)
    if customers is not None:
        table = read_customers_csv(customers)
        duck.write_customers(table)
        ch.write_customers(table)
    return duck, ch


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def priced(book: PriceBook, events: list[dict[str, Any]]) -> pa.Table:
    """Events as dicts -> validated, priced LEDGER_SCHEMA rows (what ``append`` commits)."""
    import msgspec

    from tailguard.events.batch import structs_to_table
    from tailguard.events.schema import LEDGER_SCHEMA, Event
    from tailguard.pricing import price_table

    dec = msgspec.json.Decoder(Event)
    structs = [dec.decode(msgspec.json.encode(e)) for e in events]
    return price_table(book, structs_to_table(structs)).cast(LEDGER_SCHEMA)
