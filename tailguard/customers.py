"""The customer: who each ``customer_id`` is, what it pays, and what the guard needs of it.

One module for every part of the product that asks what a customer is: the dimension's columns
and Arrow schema (``CUSTOMER_SCHEMA``), its CSV import (``read_customers_csv``, ``upsert``),
and ``CustomerInfo``, the slice of a row the guard resolves limits from, loaded from a ledger
by ``customers_from_ledger``. The ledger stores the table (``customers.parquet``, replaced
atomically); analytics reads it through the ledger's ``customers`` view; the guard keeps
``CustomerInfo`` in memory. None of them defines a customer of its own.

Imported from CSV (``customer_id, name, tier, segment, mrr_usd, seats, contracted_pool_usd,
signup_date``). An import upserts: rows for customers already known replace theirs, everyone
else stays. Money is Decimal, rounded half-even to nano-dollars like the ledger's.

Light to import (the guard runs in-process in applications): pyarrow and the readers are loaded
only when a table is built or read. ``CUSTOMER_SCHEMA`` is built on first use.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailguard.errors import InputError
from tailguard.vocabulary import SEGMENTS, TIERS

if TYPE_CHECKING:
    import pyarrow as pa

    from tailguard.ledger.store import Ledger

#: the columns of the dimension, in the order the CSV header lists them
COLUMNS: tuple[str, ...] = (
    "customer_id",
    "name",
    "tier",
    "segment",
    "mrr_usd",
    "seats",
    "contracted_pool_usd",
    "signup_date",
)
REQUIRED: tuple[str, ...] = ("customer_id", "tier", "segment", "mrr_usd")


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    """What the customers table says about a customer that limits depend on: tier, seats and
    contracted pool (``tailguard.guard.policy.Policy.limits_for``)."""

    tier: str | None = None
    seats: int | None = None
    contracted_pool_usd: Decimal | None = None


@functools.cache
def _customer_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("customer_id", pa.string()),
            ("name", pa.string()),
            ("tier", pa.string()),
            ("segment", pa.string()),
            ("mrr_usd", pa.decimal128(18, 9)),
            ("seats", pa.int64()),
            ("contracted_pool_usd", pa.decimal128(18, 9)),
            ("signup_date", pa.date32()),
        ]
    )


def __getattr__(name: str) -> Any:
    """``CUSTOMER_SCHEMA``, built on first use (pyarrow is not loaded by importing this)."""
    if name == "CUSTOMER_SCHEMA":
        return _customer_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def customer_infos(table: pa.Table) -> dict[str, CustomerInfo]:
    """``{customer_id: CustomerInfo}`` from a customers table."""
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


def customers_from_ledger(
    ledger_dir: str | os.PathLike[str] | Ledger,
) -> dict[str, CustomerInfo]:
    """``{customer_id: CustomerInfo}`` from a ledger's customers table (empty when absent).

    Why a copy in memory: the guard resolves limits on every call and cannot afford a Parquet
    read per decision; the table is small (one row per customer) and changes rarely. Reload it
    by building a new ``Guard`` (or assigning ``guard.customers``) after
    ``tailguard customers import``.
    """
    from tailguard.ledger.url import open_ledger

    table = open_ledger(ledger_dir).customers_table()
    return {} if table is None else customer_infos(table)


_WHOLE = re.compile(r"[0-9]+")  # ASCII digits only: "²".isdigit() is true, int("²") fails
_MAX_SEATS = 2**63 - 1  # an int64 column


def _money(v: str) -> Decimal:
    from tailguard.events.batch import quantize_money
    from tailguard.events.schema import MAX_MONEY

    d = Decimal(v)
    if not d.is_finite() or d < 0 or d > MAX_MONEY:
        raise ValueError("must be a number >= 0 and < 1e9")
    return quantize_money(d)


def read_customers_csv(path: str | os.PathLike[str]) -> pa.Table:
    """Validate a customers CSV; any bad row refuses the whole file (nothing is half-imported)."""
    import pyarrow as pa

    from tailguard.events.csvrows import csv_rows

    p = Path(path)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    header, lines = csv_rows(p)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{p}: missing columns", [f"{p}:1: {c}: missing column" for c in missing])
    for parsed in lines:
        if parsed.values is None:
            problems.append(f"{p}:{parsed.line}: {parsed.field}: {parsed.reason}")
            continue
        row, line = parsed.values, parsed.line
        out: dict[str, Any] = {}
        try:
            cid = (row.get("customer_id") or "").strip()
            if not cid:
                raise _Bad("customer_id", "missing")
            if cid in seen:
                raise _Bad("customer_id", f"duplicate of line {seen[cid]}")
            seen[cid] = line
            out["customer_id"] = cid
            out["name"] = (row.get("name") or "").strip() or None
            tier = (row.get("tier") or "").strip()
            if tier not in TIERS:
                raise _Bad("tier", f"{tier!r} is not one of {', '.join(TIERS)}")
            out["tier"] = tier
            seg = (row.get("segment") or "").strip()
            if seg not in SEGMENTS:
                raise _Bad("segment", f"{seg!r} is not one of {', '.join(SEGMENTS)}")
            out["segment"] = seg
            for col in ("mrr_usd", "contracted_pool_usd"):
                raw = (row.get(col) or "").strip()
                if not raw:
                    if col == "mrr_usd":
                        raise _Bad(col, "missing")
                    out[col] = None
                    continue
                try:
                    out[col] = _money(raw)
                except (InvalidOperation, ValueError):
                    raise _Bad(col, f"{raw!r} is not a number >= 0 and < 1e9") from None
            raw = (row.get("seats") or "").strip()
            if raw:
                if not _WHOLE.fullmatch(raw) or int(raw) > _MAX_SEATS:
                    raise _Bad("seats", f"{raw!r} is not a whole number from 0 to {_MAX_SEATS}")
                out["seats"] = int(raw)
            else:
                out["seats"] = None
            raw = (row.get("signup_date") or "").strip()
            try:
                out["signup_date"] = dt.date.fromisoformat(raw) if raw else None
            except ValueError:
                raise _Bad("signup_date", f"{raw!r} is not a date (YYYY-MM-DD)") from None
        except _Bad as bad:
            problems.append(f"{p}:{line}: {bad.field}: {bad.reason}")
            continue
        rows.append(out)
    if problems:
        raise InputError(f"{p}: {len(problems)} bad row(s); nothing imported", problems)
    return pa.Table.from_pylist(rows, schema=_customer_schema())


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason


def upsert(existing: pa.Table | None, new: pa.Table) -> pa.Table:
    """New rows replace existing rows with the same customer_id; the rest are kept."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if existing is None or existing.num_rows == 0:
        return new
    keep = pc.invert(pc.is_in(existing.column("customer_id"), value_set=new.column("customer_id")))
    return pa.concat_tables([existing.filter(keep).cast(_customer_schema()), new])
