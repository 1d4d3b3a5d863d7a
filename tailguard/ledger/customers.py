"""The customer dimension: who each ``customer_id`` is and what it pays.

Imported from CSV (``customer_id, name, tier, segment, mrr_usd, seats, contracted_pool_usd,
signup_date``) and kept in the ledger directory as one Parquet file, replaced atomically. An
import upserts: rows for customers already known replace theirs, everyone else stays.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tailguard.errors import InputError
from tailguard.events.batch import quantize_money
from tailguard.events.csvrows import csv_rows
from tailguard.events.schema import MAX_MONEY

TIERS = ("free", "pro", "team", "enterprise", "custom")
SEGMENTS = ("smb", "mid_market", "enterprise", "usage_based")
COLUMNS = (
    "customer_id",
    "name",
    "tier",
    "segment",
    "mrr_usd",
    "seats",
    "contracted_pool_usd",
    "signup_date",
)
REQUIRED = ("customer_id", "tier", "segment", "mrr_usd")

CUSTOMER_SCHEMA = pa.schema(
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


_WHOLE = re.compile(r"[0-9]+")  # ASCII digits only: "²".isdigit() is true, int("²") fails
_MAX_SEATS = 2**63 - 1  # an int64 column


def _money(v: str) -> Decimal:
    d = Decimal(v)
    if not d.is_finite() or d < 0 or d > MAX_MONEY:
        raise ValueError("must be a number >= 0 and < 1e9")
    return quantize_money(d)


def read_customers_csv(path: str | os.PathLike[str]) -> pa.Table:
    """Validate a customers CSV; any bad row refuses the whole file (nothing is half-imported)."""
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
    return pa.Table.from_pylist(rows, schema=CUSTOMER_SCHEMA)


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason


def upsert(existing: pa.Table | None, new: pa.Table) -> pa.Table:
    """New rows replace existing rows with the same customer_id; the rest are kept."""
    if existing is None or existing.num_rows == 0:
        return new
    keep = pc.invert(pc.is_in(existing.column("customer_id"), value_set=new.column("customer_id")))
    return pa.concat_tables([existing.filter(keep).cast(CUSTOMER_SCHEMA), new])
