"""The customers table of one window, as a DuckDB table: filter, sort and page in SQL.

The rows are ``customer_report``'s (the library's: ``tailguard report customers``), built once
per window and ledger content; a page of the table is then one SQL query over an in-memory
DuckDB table of their filter columns (tier, segment, margin status) joined with a rank column
per sort field, ``ORDER BY`` the rank, ``LIMIT``/``OFFSET`` the page: a request reads the 50 row
dicts it shows, never all of them, so sorting, filtering and paging 100,000 customers answer in
milliseconds (BENCHMARKS.md).

A sort field's rank is the position of each row in ``sort_rows(rows, field)``, the very order
``report customers --sort FIELD`` prints (descending, ties by customer id, null values last in
customer id order), computed the first time a field is sorted on and kept with the table; so
the order shown is the CLI's by construction, not a second implementation of it in SQL (a
Decimal quotient with 28 significant digits has no exact DuckDB type to sort on). Ascending is
the same rank reversed for the present values, the null ones still last in customer id order.
The shapes filter joins the customers ``diagnose`` puts in the tail with that shape (computed
once per window too).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["CustomerTable"]

_names = itertools.count(1)


class CustomerTable:
    """One window's per-customer rows, and their filter and rank columns in ``db``.

    ``rows``: ``customer_report``'s rows, any order (they are kept in customer id order, the
    order ``customer_rows`` builds them in). ``statuses``: customer id -> margin status. ``db``:
    an open DuckDB connection (in memory) the table lives in; each query uses its own cursor,
    so requests in several threads may read at once."""

    def __init__(self, db: Any, rows: Sequence[dict[str, Any]], statuses: Mapping[str, str]):
        import pyarrow as pa

        self.db = db
        self.rows = sorted(rows, key=lambda r: r["customer_id"])
        self.index = {r["customer_id"]: i for i, r in enumerate(self.rows)}
        self.statuses = dict(statuses)
        self.name = f"customers_{next(_names)}"
        self.tiers = sorted({r["tier"] for r in self.rows if r["tier"]})
        self.segments = sorted({r["segment"] for r in self.rows if r["segment"]})
        self._ranked: set[str] = set()
        self._shapes = False
        self._lock = threading.Lock()
        cols = pa.table(
            {
                "i": pa.array(range(len(self.rows)), pa.int32()),
                "tier": [r["tier"] for r in self.rows],
                "segment": [r["segment"] for r in self.rows],
                "status": [self.statuses[r["customer_id"]] for r in self.rows],
            }
        )
        self._load(self.name, cols)

    def _load(self, name: str, arrow: Any) -> None:
        cur = self.db.cursor()
        try:
            cur.register("incoming", arrow)
            cur.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
            cur.unregister("incoming")
        finally:
            cur.close()

    def row(self, customer: str) -> dict[str, Any] | None:
        """The row of ``customer`` (None: not in the window's table)."""
        i = self.index.get(customer)
        return None if i is None else self.rows[i]

    def window(self) -> dict[str, Any]:
        first = self.rows[0] if self.rows else {}
        return {"start": first.get("window_start"), "end": first.get("window_end")}

    def rank(self, field: str) -> str:
        """The rank table of ``field`` (made on first use): ``i``, ``r`` (the row's position
        in ``sort_rows(rows, field)``), ``nul`` (its value is null)."""
        from tailguard.analytics.customers import sort_rows

        table = f"{self.name}_by_{field}"
        with self._lock:
            if field in self._ranked:
                return table
            import pyarrow as pa

            order = sort_rows(self.rows, field)
            idx = self.index
            arrow = pa.table(
                {
                    "i": pa.array([idx[r["customer_id"]] for r in order], pa.int32()),
                    "r": pa.array(range(len(order)), pa.int32()),
                    "nul": pa.array([r[field] is None for r in order], pa.bool_()),
                }
            )
            self._load(table, arrow)
            self._ranked.add(field)
        return table

    def shapes(self, find: Callable[[], Iterable[dict[str, Any]]]) -> str:
        """The shapes table (``i``, ``shape``) of ``find()``'s findings (``diagnose``'s, over
        the table's window), called the first time only."""
        import pyarrow as pa

        table = f"{self.name}_shapes"
        with self._lock:
            if not self._shapes:
                pairs = [
                    (self.index[d["customer_id"]], s)
                    for d in find()
                    if d["customer_id"] in self.index
                    for s in d["shapes"]
                ]
                arrow = pa.table(
                    {
                        "i": pa.array([p[0] for p in pairs], pa.int32()),
                        "shape": pa.array([p[1] for p in pairs], pa.string()),
                    }
                )
                self._load(table, arrow)
                self._shapes = True
        return table

    def select(
        self,
        sort: str,
        *,
        descending: bool = True,
        where: Mapping[str, str | None] | None = None,
        shape: str | None = None,
        shapes_table: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        count: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """(the rows of one page, how many rows match) for the sort, the filters (``where``:
        column -> value, None for any), ``limit`` (the first N that match, as ``--limit``) and
        the page (``offset``, ``count`` rows; None: all from ``offset``)."""
        ranks = self.rank(sort)
        conds, params = [], []
        for col, val in (where or {}).items():
            if val is not None:
                conds.append(f"t.{col} = ?")
                params.append(val)
        if shape is not None and shapes_table is not None:
            conds.append(f"t.i IN (SELECT i FROM {shapes_table} WHERE shape = ?)")
            params.append(shape)
        cond = " AND ".join(conds) or "TRUE"
        order = "k.r" if descending else "k.nul, CASE WHEN k.nul THEN k.r ELSE -k.r END"
        cur = self.db.cursor()
        try:
            total = cur.execute(
                f"SELECT count(*) FROM {self.name} t WHERE {cond}", params
            ).fetchone()[0]
            if limit is not None:
                total = min(total, limit)
            n = max(0, total - offset) if count is None else max(0, min(count, total - offset))
            if n == 0:
                return [], total
            got = cur.execute(
                f"SELECT t.i FROM {self.name} t JOIN {ranks} k USING (i) WHERE {cond} "
                f"ORDER BY {order} LIMIT {int(n)} OFFSET {int(offset)}",
                params,
            ).fetchall()
        finally:
            cur.close()
        return [self.rows[i] for (i,) in got], total

    def drop(self) -> None:
        """Drop the table and its rank and shape tables (the window left the cache)."""
        names = [self.name, *(f"{self.name}_by_{f}" for f in self._ranked)]
        if self._shapes:
            names.append(f"{self.name}_shapes")
        cur = self.db.cursor()
        try:
            for n in names:
                cur.execute(f"DROP TABLE IF EXISTS {n}")
        finally:
            cur.close()
