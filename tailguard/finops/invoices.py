"""Provider bills read as invoice lines: one amount in dollars per day x provider (x model).

Formats (``read_invoice(path, fmt)``):
- ``anthropic-costs``: the Admin API cost report (``/v1/organizations/cost_report``): pages
  ``{"data": [{"starting_at", "ending_at", "results": [{"amount", "currency", "model", ...}]}]}``;
  ``amount`` is a decimal string in **cents** (divided by 100 exactly, in Decimal).
- ``openai-costs``: the Costs API (``/v1/organization/costs``): pages ``{"object": "page",
  "data": [buckets]}`` or a bare list of buckets; each bucket has ``start_time`` (Unix seconds,
  UTC) and ``results`` with ``amount.value`` in **dollars** and a ``line_item`` (null unless the
  request grouped by it). JSON numbers are parsed straight to Decimal, never through a float.
- ``csv``: any other bill, the header ``date,provider,model,amount_usd`` (``model`` may be empty).
A page file may hold one page or a list of pages. Every problem names the file, the line (CSV)
or the position in the JSON (``data[3].results[0]``) and the field.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tailguard.errors import ArgumentError, InputError

FORMATS = ("openai-costs", "anthropic-costs", "csv")
CSV_HEADER = ("date", "provider", "model", "amount_usd")
_CENTS_PER_DOLLAR = Decimal(100)


@dataclass(frozen=True)
class InvoiceLine:
    """One billed amount: a UTC day, the provider, the model or line item when the bill has it."""

    date: dt.date
    provider: str
    model: str | None
    amount_usd: Decimal
    #: where it came from (``file:line`` or ``file:data[i].results[j]``), for messages
    source: str


def read_invoice(path: str | os.PathLike[str], fmt: str | None = None) -> list[InvoiceLine]:
    """The lines of the bill at ``path``; ``fmt`` defaults from the suffix (``.csv`` -> csv) or,
    for JSON, from its shape. ``InputError`` names every bad line."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: invoice file not found", [f"{p}:0: <file>: not found"])
    if fmt is not None and fmt not in FORMATS:
        raise ArgumentError("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "csv" or (fmt is None and p.suffix.lower() == ".csv"):
        return _read_csv(p)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"), parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not JSON", [f"{p}:0: <file>: not JSON ({exc})"]) from None
    pages = doc if isinstance(doc, list) else [doc]
    buckets: list[tuple[str, Any]] = []
    for i, page in enumerate(pages):
        if isinstance(page, dict) and isinstance(page.get("data"), list):
            prefix = f"[{i}].data" if isinstance(doc, list) else "data"
            buckets += [(f"{prefix}[{j}]", b) for j, b in enumerate(page["data"])]
        else:  # a bare list of buckets (the cookbook's ``data`` array)
            buckets.append((f"[{i}]", page))
    if fmt is None:
        first = next((b for _, b in buckets if isinstance(b, dict)), {})
        fmt = "openai-costs" if "start_time" in first else "anthropic-costs"
    reader = _openai_bucket if fmt == "openai-costs" else _anthropic_bucket
    lines: list[InvoiceLine] = []
    problems: list[str] = []
    for where, bucket in buckets:
        reader(p, where, bucket, lines, problems)
    if problems:
        raise InputError(f"{p}: {len(problems)} bad invoice line(s)", problems)
    return lines


def _read_csv(p: Path) -> list[InvoiceLine]:
    lines: list[InvoiceLine] = []
    problems: list[str] = []
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CSV_HEADER:
            raise InputError(
                f"{p}: the header must be {','.join(CSV_HEADER)}",
                [f"{p}:1: <header>: expected {','.join(CSV_HEADER)}"],
            )
        for n, row in enumerate(reader, start=2):
            where = f"{p}:{n}"
            try:
                day = dt.date.fromisoformat(row["date"] or "")
            except ValueError:
                problems.append(f"{where}: date: {row['date']!r} is not a date (YYYY-MM-DD)")
                continue
            provider = (row["provider"] or "").strip().lower()
            if not provider:
                problems.append(f"{where}: provider: empty")
                continue
            amount = _amount(row["amount_usd"], where, "amount_usd", problems)
            if amount is None:
                continue
            model = (row["model"] or "").strip() or None
            lines.append(InvoiceLine(day, provider, model, amount, where))
    if problems:
        raise InputError(f"{p}: {len(problems)} bad invoice line(s)", problems)
    return lines


def _amount(raw: Any, where: str, field: str, problems: list[str]) -> Decimal | None:
    """A finite Decimal from a JSON number or string (never a float), else a problem."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        problems.append(f"{where}: {field}: {raw!r} is not a number")
        return None
    try:
        value = Decimal(raw) if not isinstance(raw, Decimal) else raw
    except InvalidOperation:
        problems.append(f"{where}: {field}: {raw!r} is not a number")
        return None
    if not value.is_finite():
        problems.append(f"{where}: {field}: {raw!r} is not a finite number")
        return None
    return value


def _openai_bucket(
    p: Path, where: str, bucket: Any, lines: list[InvoiceLine], problems: list[str]
) -> None:
    if not isinstance(bucket, dict) or not isinstance(bucket.get("start_time"), int):
        problems.append(f"{p}:{where}: start_time: missing or not Unix seconds")
        return
    day = dt.datetime.fromtimestamp(bucket["start_time"], tz=dt.UTC).date()
    for k, result in enumerate(bucket.get("results") or []):
        at = f"{p}:{where}.results[{k}]"
        amount = result.get("amount") if isinstance(result, dict) else None
        if not isinstance(amount, dict):
            problems.append(f"{at}: amount: missing")
            continue
        currency = str(amount.get("currency", "usd")).lower()
        if currency != "usd":
            problems.append(f"{at}: amount.currency: {currency!r} is not usd")
            continue
        value = _amount(amount.get("value"), at, "amount.value", problems)
        if value is not None:
            # a line item ("gpt-4o-2024-08-06, input") is not a model name the ledger holds:
            # OpenAI lines are compared per day x provider, their line items summed
            lines.append(InvoiceLine(day, "openai", None, value, at))


def _anthropic_bucket(
    p: Path, where: str, bucket: Any, lines: list[InvoiceLine], problems: list[str]
) -> None:
    try:
        day = dt.datetime.fromisoformat(str(bucket["starting_at"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        problems.append(f"{p}:{where}: starting_at: missing or not an ISO 8601 time")
        return
    day_utc = day.astimezone(dt.UTC).date() if day.tzinfo else day.date()
    for k, result in enumerate(bucket.get("results") or []):
        at = f"{p}:{where}.results[{k}]"
        if not isinstance(result, dict):
            problems.append(f"{at}: <result>: not an object")
            continue
        currency = str(result.get("currency", "USD")).upper()
        if currency != "USD":
            problems.append(f"{at}: currency: {currency!r} is not USD")
            continue
        cents = _amount(result.get("amount"), at, "amount", problems)
        if cents is not None:
            # the report's amount is in cents: divided exactly (Decimal, no rounding)
            lines.append(
                InvoiceLine(
                    day_utc, "anthropic", result.get("model") or None, cents / _CENTS_PER_DOLLAR, at
                )
            )
