"""The invoice against the ledger: per UTC day x provider (x model where the bill names it),
what the provider billed, what the ledger attributes to customers, the difference, coverage.

Why: finance trusts a per-customer table only when its total meets the bill; the unattributed
remainder is what the ledger never saw (calls that bypassed the gateway, batch jobs, price drift).

Rules:
- attributed = the ledger's priced LLM cost (``llm_call`` rows, ``cost_usd`` not null) of that
  day and provider (provider names compared in lower case). Tools, retrieval and escalation are
  the operator's own costs, on no provider's bill, and stay out. Unpriced calls carry no cost;
  their count is stated (``unpriced_calls``), since they are one reason a bill is not covered.
- a day x provider is compared per model when any of the bill's lines for it names a model
  (the Anthropic report, a CSV with models); a ledger model missing from such a bill is a row of
  its own with nothing billed. OpenAI's line items are not model names: compared per day.
- ``unattributed_usd`` = billed - attributed, exact (Decimal, both sides unrounded);
  ``coverage`` = attributed / billed (null when nothing was billed).
- a negative remainder (the ledger exceeds the bill: double counting or stale prices) is an
  error named on its row (``status`` = ``over_attributed``), never spread or netted against
  another day.
- only the providers on the bill are compared, and only the days of ``period``: invoice lines
  outside the month are counted (``lines_outside_period``), not compared.
The heavy side (the ledger's events) is aggregated in the ledger's engine (DuckDB, or ClickHouse
on a ClickHouse ledger: nothing is copied out); the bill and that side's few rows are joined in
an in-memory DuckDB; Python only reads the invoice (hundreds of lines) and the joined result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.finops.invoices import InvoiceLine

if TYPE_CHECKING:
    from tailguard.ledger.store import Ledger

RECONCILE_FIELDS = (
    "date",
    "provider",
    "model",
    "billed_usd",
    "attributed_usd",
    "unattributed_usd",
    "coverage",
    "unpriced_calls",
    "status",
)

#: the ledger side, run through the query layer (in the ledger's engine: DuckDB, or ClickHouse
#: on its ledger); its few rows (day x provider x model) are then joined with the bill in DuckDB
_ATTRIBUTED_SQL = """
SELECT
  {day} AS day,
  lower(provider) AS provider,
  model,
  sum(cost_usd) AS attributed,
  sum(CASE WHEN unpriced THEN coalesce(requests, 1) ELSE 0 END) AS unpriced_calls
FROM events
WHERE {where}
  AND kind = 'llm_call'
  AND lower(provider) IN (SELECT DISTINCT provider FROM invoice)
GROUP BY 1, 2, 3
"""

#: the ledger side's rows as the join reads them (money exact: sums of DECIMAL(18, 9))
_SIDE_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("attributed", pa.decimal128(38, 9)),
        ("unpriced_calls", pa.int64()),
    ]
)

_JOIN_SQL = """
WITH detailed AS (
  SELECT DISTINCT day, provider FROM invoice WHERE model IS NOT NULL
),
billed AS (
  SELECT day, provider, model, sum(amount) AS billed FROM invoice GROUP BY 1, 2, 3
),
attributed AS (
  SELECT a.day, a.provider,
    CASE WHEN d.day IS NOT NULL THEN a.model END AS model,
    sum(a.attributed) AS attributed,
    sum(a.unpriced_calls) AS unpriced_calls
  FROM ledger_side a
  LEFT JOIN detailed d ON d.day = a.day AND d.provider = a.provider
  GROUP BY 1, 2, 3
)
SELECT
  coalesce(b.day, a.day) AS day,
  coalesce(b.provider, a.provider) AS provider,
  coalesce(b.model, a.model) AS model,
  coalesce(b.billed, 0) AS billed,
  coalesce(a.attributed, 0) AS attributed,
  coalesce(a.unpriced_calls, 0) AS unpriced_calls
FROM billed b
FULL OUTER JOIN attributed a
  ON a.day = b.day AND a.provider = b.provider AND a.model IS NOT DISTINCT FROM b.model
ORDER BY 1, 2, 3 NULLS FIRST
"""


@dataclass
class Reconciliation:
    """The rows (``RECONCILE_FIELDS``), their totals, and what was not compared."""

    rows: list[dict[str, Any]]
    billed_usd: Decimal
    attributed_usd: Decimal
    lines_outside_period: int
    over_attributed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unattributed_usd(self) -> Decimal:
        return self.billed_usd - self.attributed_usd


def reconcile(
    ledger: Ledger | str | os.PathLike[str],
    lines: list[InvoiceLine],
    period: str,
) -> Reconciliation:
    """Compare the invoice ``lines`` with the ledger over calendar month ``period``."""
    from tailguard.analytics.period import window
    from tailguard.ledger.store import Ledger as _Ledger

    win = window(period, None, None)
    assert win.start is not None and win.end is not None  # a calendar month is bounded
    first, end = win.start.date(), win.end.date()
    inside = [ln for ln in lines if first <= ln.date < end]
    table = pa.table(
        {
            "day": pa.array([ln.date for ln in inside], pa.date32()),
            "provider": pa.array([ln.provider.lower() for ln in inside], pa.string()),
            "model": pa.array([ln.model for ln in inside], pa.string()),
            # exact: the largest scale any line has, up to 18 decimals
            "amount": pa.array([ln.amount_usd for ln in inside], _amount_type(inside)),
        }
    )
    import duckdb

    from tailguard.analytics.context import QueryContext
    from tailguard.ledger.url import open_ledger

    led = ledger if isinstance(ledger, _Ledger) else open_ledger(ledger)
    with QueryContext.open(led) as ctx:  # the heavy side: the events, in the ledger's engine
        ctx.register("invoice", table.select(["provider"]))
        where, params = win.sql()
        side = ctx.fetch(_ATTRIBUTED_SQL.format(day=ctx.to_date("ts"), where=where), params)
    ledger_side = pa.Table.from_pylist(
        [dict(zip(_SIDE_SCHEMA.names, r, strict=True)) for r in side], schema=_SIDE_SCHEMA
    )
    con = duckdb.connect()
    try:
        con.register("invoice", table)
        con.register("ledger_side", ledger_side)
        result = con.execute(_JOIN_SQL).fetchall()
    finally:
        con.close()
    rows = []
    for day, provider, model, billed, attributed, unpriced in result:
        billed, attributed = Decimal(billed), Decimal(attributed)
        remainder = billed - attributed
        rows.append(
            {
                "date": day.isoformat(),
                "provider": provider,
                "model": model,
                "billed_usd": billed,
                "attributed_usd": attributed,
                "unattributed_usd": remainder,
                "coverage": float(attributed / billed) if billed else None,
                "unpriced_calls": int(unpriced),
                "status": "over_attributed" if remainder < 0 else "ok",
            }
        )
    return Reconciliation(
        rows=rows,
        billed_usd=sum((r["billed_usd"] for r in rows), Decimal(0)),
        attributed_usd=sum((r["attributed_usd"] for r in rows), Decimal(0)),
        lines_outside_period=len(lines) - len(inside),
        over_attributed=[r for r in rows if r["status"] == "over_attributed"],
    )


#: the most decimals an invoice amount may carry (the Costs API writes up to 20): DECIMAL(38, 24)
#: still holds 14 integer digits
MAX_SCALE = 24


def _amount_type(lines: list[InvoiceLine]) -> pa.Decimal128Type:
    """DECIMAL(38, s) with the largest scale of the amounts: every amount is held exactly, and
    one with more than ``MAX_SCALE`` decimals is refused (naming it), never rounded."""
    from tailguard.errors import InputError

    too_fine = [ln for ln in lines if -int(ln.amount_usd.as_tuple().exponent) > MAX_SCALE]
    if too_fine:
        raise InputError(
            f"{len(too_fine)} invoice amount(s) with more than {MAX_SCALE} decimals",
            [
                f"{ln.source}: amount: {ln.amount_usd} has more than {MAX_SCALE} decimals"
                for ln in too_fine
            ],
        )
    scale = max((max(0, -int(ln.amount_usd.as_tuple().exponent)) for ln in lines), default=9)
    return pa.decimal128(38, max(scale, 9))
