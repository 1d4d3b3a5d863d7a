"""The invoice's unattributed remainder spread over the customers (``reconcile --allocate``).

Why: finance wants a per-customer table whose total is the bill. The ledger measures what each
customer's calls cost; the rest of the bill (calls that bypassed the gateway, batch jobs, price
drift) is nobody's measured cost, but it still has to be paid by someone. Like OpenCost's idle
cost, it is spread over the customers that used the provider that day and kept apart from the
measured cost: an ``allocation`` row never changes ``cost_usd``; reports show ``allocated_usd``
beside it.

Rules (docs/finops.md, "Allocation"):
- the remainder of a UTC day x provider is the sum of its reconcile rows' ``unattributed_usd``
  (all models of the day); a negative row (over-attributed) is an error and nothing is
  allocated for the whole month (``reconcile`` refuses before writing).
- the day's customers are those with an ``llm_call`` to that provider that day (priced or not).
  ``proportional``: weights = their attributed (priced) cost that day and provider; all zero ->
  even. ``even``: one equal share each. A day billed with no call in the ledger is spread over
  the provider's customers of the whole month (weights: their month's attributed cost, or even);
  a provider with no customer in the month is left unallocated and reported.
- rounding, exact and stated: the remainder R is split into whole cents C = floor(R, cent) and
  the sub-cent rest r = R - C. Each customer first gets floor(C x w / W) cents (exact rational
  arithmetic); the cents left over (fewer than the number of customers) go one each to the
  customers with the largest dropped fractions (ties: customer id ascending): the largest
  remainder (Hamilton) method. The sub-cent rest r goes to the customer with the largest weight
  (ties: customer id). So every allocation is a whole number of cents except one per day x
  provider, and the allocations of a day x provider add up to R exactly: attributed + allocated
  = the invoice, to the last digit the invoice has.

Storage: ``DIR/allocations/YYYY-MM.parquet`` (``ALLOCATION_SCHEMA``), one file per month,
written atomically; re-running replaces it (idempotent), ``--allocate none`` removes it.
``create_view`` makes the view ``allocations`` over every month's file on a connection
(``Ledger.connect`` calls it), so a per-customer report joins ``allocated_usd`` by customer and
day window. A ClickHouse ledger keeps the same rows in its table ``ledger_allocations`` (one
partition per month, replaced whole) under the view ``allocations`` (issue 14).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.errors import ArgumentError

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

    from tailguard.ledger.store import Ledger

#: the allocation methods of ``reconcile --allocate``
METHODS = ("proportional", "even", "none")
ALLOCATIONS = "allocations"
#: money as the ledger stores it: DECIMAL(18, 9); an invoice amount with more decimals keeps
#: them in the remainder's sub-cent rest, which is why the column is wider
ALLOCATED = pa.decimal128(38, 24)
ALLOCATION_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("provider", pa.string()),
        ("customer_id", pa.string()),
        ("allocated_usd", ALLOCATED),
        ("method", pa.string()),
    ]
)
ALLOCATION_FIELDS = ("customer_id", "attributed_usd", "allocated_usd", "total_usd")
CENT = Decimal("0.01")

#: per day x provider x customer: the ledger side of the allocation (priced cost, calls); run
#: through the query layer, so in the ledger's engine (DuckDB, or ClickHouse on its ledger)
_CUSTOMERS_SQL = """
SELECT
  {day} AS day,
  lower(provider) AS provider,
  customer_id,
  coalesce(sum(cost_usd), 0) AS attributed
FROM events
WHERE {where}
  AND kind = 'llm_call'
  AND lower(provider) IN ({providers})
GROUP BY 1, 2, 3
"""


@dataclass
class Allocation:
    """The allocation rows of one month and their per-customer sums."""

    method: str
    rows: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    #: day x provider remainders no customer could take (no call to that provider all month)
    unallocated: list[dict[str, Any]] = field(default_factory=list)

    @property
    def allocated_usd(self) -> Decimal:
        return sum((r["allocated_usd"] for r in self.rows), Decimal(0))

    @property
    def unallocated_usd(self) -> Decimal:
        return sum((r["unattributed_usd"] for r in self.unallocated), Decimal(0))


def split(remainder: Decimal, weights: dict[str, Decimal]) -> dict[str, Decimal]:
    """``remainder`` (>= 0) over ``weights`` by the rule of the module docstring: whole cents
    by the largest remainder method, the sub-cent rest to the largest weight. The parts add up
    to ``remainder`` exactly. All-zero weights split evenly."""
    if remainder < 0:
        raise ArgumentError("remainder", f"a negative remainder is not spread: {remainder}")
    if not weights:
        raise ArgumentError("weights", "no customer to allocate to")
    ids = sorted(weights)
    w = {k: Fraction(weights[k]) for k in ids}
    if sum(w.values()) == 0:
        w = dict.fromkeys(ids, Fraction(1))
    total_w = sum(w.values())
    cents = int((remainder / CENT).to_integral_value(ROUND_FLOOR))
    rest = remainder - cents * CENT
    exact = {k: cents * w[k] / total_w for k in ids}
    base = {k: int(exact[k]) for k in ids}  # floor: every share is >= 0
    left = cents - sum(base.values())
    # the largest dropped fractions first; ties by customer id (ids are sorted, sort is stable)
    for k in sorted(ids, key=lambda k: exact[k] - base[k], reverse=True)[:left]:
        base[k] += 1
    out = {k: base[k] * CENT for k in ids}
    heaviest = min(ids, key=lambda k: (-w[k], k))
    out[heaviest] += rest
    return out


def allocate(
    ledger: Ledger | str | os.PathLike[str],
    rows: list[dict[str, Any]],
    period: str,
    method: str,
) -> Allocation:
    """The allocation of the reconcile ``rows`` of ``period`` by ``method`` (proportional |
    even). The rows must hold no over-attributed one (``reconcile`` checks first)."""
    from tailguard.analytics.period import window
    from tailguard.ledger.store import Ledger as _Ledger

    if method not in ("proportional", "even"):
        raise ArgumentError("allocate", f"{method!r}: one of proportional, even")
    bad = [r for r in rows if r["unattributed_usd"] < 0]
    if bad:
        raise ArgumentError(
            "rows",
            f"{len(bad)} over-attributed row(s) (the ledger exceeds the bill; first: "
            f"{bad[0]['date']} {bad[0]['provider']}): a negative remainder is not spread, "
            "nothing is allocated",
        )
    remainders: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        day = _date(r["date"])
        remainders[(day, r["provider"])] += r["unattributed_usd"]
    providers = sorted({p for _, p in remainders})
    win = window(period, None, None)
    from tailguard.analytics.context import QueryContext
    from tailguard.ledger.url import open_ledger

    led = ledger if isinstance(ledger, _Ledger) else open_ledger(ledger)
    got: list[Any] = []
    if providers:
        with QueryContext.open(led) as ctx:
            where, params = win.sql()
            sql = _CUSTOMERS_SQL.format(
                day=ctx.to_date("ts"), where=where, providers=", ".join("?" * len(providers))
            )
            got = ctx.fetch(sql, [*params, *providers])
    by_day: dict[tuple[dt.date, str], dict[str, Decimal]] = defaultdict(dict)
    by_month: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    attributed: dict[str, Decimal] = defaultdict(Decimal)
    for day, provider, customer, cost in got:
        by_day[(day, provider)][customer] = Decimal(cost)
        by_month[provider][customer] += Decimal(cost)
        attributed[customer] += Decimal(cost)
    out_rows: list[dict[str, Any]] = []
    unallocated: list[dict[str, Any]] = []
    for (day, provider), rem in sorted(remainders.items()):
        if rem == 0:
            continue
        weights = by_day.get((day, provider)) or by_month.get(provider)
        if not weights:
            unallocated.append(
                {"date": day.isoformat(), "provider": provider, "unattributed_usd": rem}
            )
            continue
        if method == "even":
            weights = dict.fromkeys(weights, Decimal(1))
        for customer, amount in split(rem, dict(weights)).items():
            if amount:
                out_rows.append(
                    {
                        "day": day,
                        "provider": provider,
                        "customer_id": customer,
                        "allocated_usd": amount,
                        "method": method,
                    }
                )
    allocated: dict[str, Decimal] = defaultdict(Decimal)
    for r in out_rows:
        allocated[r["customer_id"]] += r["allocated_usd"]
    customers = [
        {
            "customer_id": c,
            "attributed_usd": attributed.get(c, Decimal(0)),
            "allocated_usd": allocated.get(c, Decimal(0)),
            "total_usd": attributed.get(c, Decimal(0)) + allocated.get(c, Decimal(0)),
        }
        for c in sorted(set(attributed) | set(allocated))
    ]
    return Allocation(method=method, rows=out_rows, customers=customers, unallocated=unallocated)


def _date(value: Any) -> dt.date:
    import datetime as dt

    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def allocation_file(ledger_root: str | os.PathLike[str], period: str) -> Path:
    """Where the allocation of month ``period`` is stored."""
    return Path(ledger_root) / ALLOCATIONS / f"{period}.parquet"


def store(ledger: Ledger | str | os.PathLike[str], period: str, alloc: Allocation | None) -> None:
    """Write the month's allocation (replacing any earlier one); ``None`` removes it.
    ``ledger``: a ledger directory, or a ``Ledger`` (a ClickHouse ledger keeps the rows in
    its own table, ``ClickHouseLedger.write_allocations``)."""
    from tailguard.ledger.clickhouse import ClickHouseLedger
    from tailguard.ledger.segments import atomic_write_parquet
    from tailguard.ledger.store import Ledger as _Ledger

    if isinstance(ledger, ClickHouseLedger):
        rows = None if alloc is None else pa.Table.from_pylist(alloc.rows, schema=ALLOCATION_SCHEMA)
        ledger.write_allocations(period, rows)
        return
    ledger_root = ledger.path if isinstance(ledger, _Ledger) else ledger
    dest = allocation_file(ledger_root, period)
    if alloc is None:
        dest.unlink(missing_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(alloc.rows, schema=ALLOCATION_SCHEMA)
    atomic_write_parquet(table, dest, Path(ledger_root) / "tmp")


def create_view(con: duckdb.DuckDBPyConnection, ledger_root: str | os.PathLike[str]) -> None:
    """The view ``allocations`` (``ALLOCATION_SCHEMA``) over every stored month; empty when
    none was allocated."""
    files = sorted((Path(ledger_root) / ALLOCATIONS).glob("*.parquet"))
    if files:
        names = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        con.execute(f"CREATE OR REPLACE VIEW allocations AS SELECT * FROM read_parquet([{names}])")
    else:
        con.register("_empty_allocations", ALLOCATION_SCHEMA.empty_table())
        con.execute("CREATE OR REPLACE VIEW allocations AS SELECT * FROM _empty_allocations")


def allocated_by_customer(
    con: duckdb.DuckDBPyConnection, first_day: dt.date | None, last_day: dt.date | None
) -> dict[str, Decimal]:
    """Each customer's allocated amount over the days ``[first_day, last_day]`` (either open):
    what a per-customer report shows as ``allocated_usd``. A connection without the view
    (a bare engine connection, an engine whose ledger keeps no allocations) has none."""
    has_view = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'allocations'"
    ).fetchone()
    if not has_view or not has_view[0]:
        return {}
    conds, params = [], []
    if first_day is not None:
        conds.append("day >= ?")
        params.append(first_day)
    if last_day is not None:
        conds.append("day <= ?")
        params.append(last_day)
    where = " AND ".join(conds) or "TRUE"
    rows = con.execute(
        f"SELECT customer_id, sum(allocated_usd) FROM allocations WHERE {where} GROUP BY 1",
        params,
    ).fetchall()
    return {c: Decimal(v) for c, v in rows}
