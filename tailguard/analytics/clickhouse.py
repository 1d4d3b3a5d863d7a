"""The ClickHouse dialect of the query layer: the reports' SQL run inside ClickHouse.

``QueryContext.open(ledger, dialect=CLICKHOUSE)`` on a ``ClickHouseLedger`` gives a context
whose connection is a ClickHouse session of its own (chdb: a second session on the process's
embedded server; a server: a second client) with a scratch database as its current database:

- ``events``, ``customers`` and ``allocations`` there are views of the ledger's (``events``
  reads the ``ReplacingMergeTree`` with ``FINAL``: each event id once, before any merge has
  run; ``allocations`` holds ``reconcile --allocate``'s rows, as on a DuckDB ledger);
- the roll-ups under the DuckDB ledger's names, refreshed first (``tailguard.ledger.
  clickhouse_rollup``): ``rollup``, ``rollup_daily``, ``rollup_task``, ``rollup_calls`` and the
  month level's ``rollup_month`` / ``rollup_customer``, so a report reads the same level on
  either engine;
- ``register`` and ``temp_table`` create Memory tables in the scratch database, so two
  contexts never see each other's tables; ``close`` drops the database.

Parameters: the reports write ``?``; ClickHouse's placeholders are named and typed, so the
values are rendered as typed literals (a datetime as ``DateTime64(6, 'UTC')``, a Decimal as a
``Decimal128`` of its own scale: money is never parsed as a float).

Settings that make ClickHouse answer as DuckDB does (``SETTINGS``): an empty aggregate is NULL
(``aggregate_functions_null_for_empty``), a LEFT JOIN miss is NULL (``join_use_nulls``), the
session zone is UTC, a bare ``UNION`` is ``UNION DISTINCT``, and a column name wins over an
alias of the same name (``sum(cost_usd) AS cost_usd`` then ``sum(cost_usd) / ...`` in one
SELECT: ClickHouse would otherwise read the alias, an aggregate inside an aggregate).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.analytics.context import UNITS, Dialect
from tailguard.errors import ArgumentError

if TYPE_CHECKING:
    from tailguard.ledger.store import Ledger

SETTINGS = (
    "SETTINGS join_use_nulls = 1, aggregate_functions_null_for_empty = 1, "
    "prefer_column_name_to_alias = 1, cast_keep_nullable = 1, "
    "session_timezone = 'UTC', union_default_mode = 'DISTINCT', "
    "output_format_arrow_low_cardinality_as_dictionary = 0"
)

_TRUNC = {
    "week": "toMonday",
    "month": "toStartOfMonth",
    "quarter": "toStartOfQuarter",
    "year": "toStartOfYear",
}


def literal(v: Any) -> str:
    """A Python value as a typed ClickHouse literal."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Decimal):
        exp = v.as_tuple().exponent
        scale = max(0, -exp) if isinstance(exp, int) else 0
        return f"toDecimal128('{v}', {scale})"
    if isinstance(v, dt.datetime):
        u = v.astimezone(dt.UTC) if v.tzinfo else v
        return f"toDateTime64('{u:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"
    if isinstance(v, dt.date):
        return f"toDate32('{v.isoformat()}')"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no ClickHouse literal for {type(v).__name__}")


def bind(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with each ``?`` outside a quoted string replaced by the next parameter."""
    if not params:
        return sql
    out: list[str] = []
    it = iter(params)
    quote: str | None = None
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
            out.append(ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append(literal(next(it)))
        else:
            out.append(ch)
    return "".join(out)


def _call_end(sql: str, start: int) -> int:
    """The index just past the parenthesis closing the one at ``start``."""
    depth = 0
    for i in range(start, len(sql)):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ArgumentError("sql", f"unbalanced parentheses in: {sql[start : start + 80]}")


#: ``SELECT e.entity_type, ...``: a qualified column in a select list, not yet aliased
_QUALIFIED = re.compile(
    r"(\bSELECT\s+(?:DISTINCT\s+)?|,\s*)(\w+)\.([A-Za-z_]\w*)(?=\s*(?:,|\bFROM\b))"
)


def name_qualified(sql: str) -> str:
    """``e.entity_type`` in a select list becomes ``e.entity_type AS entity_type``: DuckDB
    names such a column ``entity_type``, ClickHouse ``e.entity_type``, so a CTE read by name
    further on would not find it (ClickHouse then looks outside and calls it correlated)."""
    return _QUALIFIED.sub(lambda m: f"{m.group(1)}{m.group(2)}.{m.group(3)} AS {m.group(3)}", sql)


def translate(sql: str) -> str:
    """The few DuckDB functions the reports call that ClickHouse spells differently.

    ``median(x)``: DuckDB's is exact (the middle value; the mean of the two middle ones), on
    DECIMAL too; ClickHouse's ``median`` is a sampling estimate and its exact quantiles refuse
    Decimal. So the values are sorted (``groupArray`` skips NULLs, as DuckDB's median does)
    and the middle taken: exact, the same type. Two middle Decimals are averaged at the
    column's scale, rounded toward zero (no report takes the median of an even count of money
    today: anomalies' trailing median is over 7 days).
    """
    sql = name_qualified(sql)
    out = []
    i = 0
    low = sql.lower()
    while True:
        j = low.find("median(", i)
        if j < 0 or (j > 0 and (low[j - 1].isalnum() or low[j - 1] == "_")):
            if j < 0:
                out.append(sql[i:])
                return "".join(out)
            out.append(sql[i : j + 7])
            i = j + 7
            continue
        end = _call_end(sql, j + 6)
        arg = translate(sql[j + 7 : end - 1])
        out.append(sql[i:j])
        out.append(
            "arrayMap(a -> if(empty(a), NULL, if(length(a) % 2 = 1, a[intDiv(length(a), 2) + 1], "
            "(a[intDiv(length(a), 2)] + a[intDiv(length(a), 2) + 1]) / 2)), "
            f"[arraySort(groupArray({arg}))])[1]"
        )
        i = end


def arrow_ch_type(t: pa.DataType) -> str:
    """A ClickHouse column type for an Arrow type (always Nullable: a registered table may hold
    NULL anywhere)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        base = "String"
    elif pa.types.is_boolean(t):
        base = "Bool"
    elif pa.types.is_integer(t):
        base = str(t).replace("int", "Int").replace("uInt", "UInt")
    elif pa.types.is_floating(t):
        base = "Float64"
    elif pa.types.is_decimal(t):
        base = f"Decimal({t.precision}, {t.scale})"
    elif pa.types.is_date(t):
        base = "Date32"
    elif pa.types.is_timestamp(t):
        base = "DateTime64(6, 'UTC')"
    elif pa.types.is_null(t):
        base = "String"
    else:
        raise TypeError(f"no ClickHouse type for Arrow {t}")
    return f"Nullable({base})"


def unqualified(names: list[str]) -> list[str]:
    """Result column names as DuckDB gives them: ClickHouse names the columns of ``m.*`` in a
    join ``m.customer_id``; DuckDB names them ``customer_id`` (kept qualified when the bare
    name would clash with another column)."""
    out = []
    for n in names:
        bare = n.rsplit(".", 1)[-1] if "." in n and "(" not in n else n
        out.append(bare if bare == n or bare not in names else n)
    return out


class ClickHouseConnection:
    """One context's session: a scratch database (its current database) holding the views
    ``events``/``customers`` of the ledger and the context's own tables."""

    def __init__(self, ledger: Any, *, rollups: bool = True) -> None:
        ledger.init()
        self.ledger = ledger
        self.scratch = f"tg_ctx_{uuid.uuid4().hex[:16]}"
        db = ledger.db
        if ledger.spec.scheme == "chdb":
            import chdb.session

            from tailguard.ledger.clickhouse import _chdb_session

            data = ledger.spec.local / "clickhouse"
            _chdb_session(data)  # the process's embedded server is up, on this directory
            self._session = chdb.session.Session(str(data.resolve()))  # its own current db
            self._client = None
        else:  # pragma: no cover - needs a ClickHouse server
            import urllib.parse

            from tailguard.ledger.clickhouse import _Server

            self._session = None
            self._client = _Server(urllib.parse.urlsplit(ledger.url), ledger.spec.database).client
        self.command(f"CREATE DATABASE IF NOT EXISTS {self.scratch}")
        self.use()
        self.command(f"CREATE VIEW events AS SELECT * FROM {db}.events")
        self.command(f"CREATE VIEW customers AS SELECT * FROM {db}.customers")
        self.command(f"CREATE VIEW allocations AS SELECT * FROM {db}.allocations")
        if rollups:  # the months whose events changed are rebuilt first: never a stale month
            from tailguard.ledger import clickhouse_rollup

            clickhouse_rollup.refresh(ledger)
            for table, view in clickhouse_rollup.VIEWS.items():
                self.command(f"CREATE VIEW {view} AS SELECT * FROM {db}.{table}")
            for view, select in clickhouse_rollup.month_views(ledger).items():
                self.command(f"CREATE VIEW {view} AS {select}")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """A cursor-like answer (``fetchall``, ``fetchone``, ``description``) for code that
        reaches for the context's raw connection, as it would for DuckDB's."""
        from tailguard.analytics.context import Result

        return Result(*CLICKHOUSE.execute(self, sql, params or ()))

    def use(self) -> None:
        if self._session is not None:
            self._session.query(f"USE {self.scratch}")
        else:  # pragma: no cover - needs a ClickHouse server
            self._client.database = self.scratch

    def command(self, sql: str) -> None:
        if self._session is not None:
            self._session.query(sql)
        else:  # pragma: no cover - needs a ClickHouse server
            self._client.command(sql)

    def arrow(self, sql: str) -> pa.Table:
        if self._session is not None:
            return self._session.query(f"{sql}\n{SETTINGS}", "ArrowTable")
        return self._client.query_arrow(f"{sql}\n{SETTINGS}")  # pragma: no cover

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        if self._session is None:  # pragma: no cover - needs a ClickHouse server
            self._client.insert_arrow(table, data)
            return
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        with self._session.send_insert(f"INSERT INTO {table}", "ArrowStream") as ins:
            ins.append(sink.getvalue())
            ins.finish()

    def close(self) -> None:
        try:
            self.command(f"DROP DATABASE IF EXISTS {self.scratch}")
        finally:
            if self._session is not None:
                self._session.close()
            else:  # pragma: no cover - needs a ClickHouse server
                self._client.close()


class ClickHouseDialect(Dialect):
    """ClickHouse (chdb in process, or a server): the ledger's ``events`` read with FINAL."""

    name = "clickhouse"

    def open(self, ledger: Ledger, *, threads: int | None = None) -> Any:
        from tailguard.ledger.clickhouse import ClickHouseLedger

        if not isinstance(ledger, ClickHouseLedger):
            raise TypeError("the ClickHouse dialect opens a ClickHouse ledger (chdb:///DIR, ...)")
        return ClickHouseConnection(ledger)

    def setup(self, con: Any) -> None:
        """Nothing to set: every query carries ``SETTINGS`` (UTC among them)."""

    def execute(self, con: Any, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list]:
        table = con.arrow(bind(translate(sql), params))
        cols = unqualified(table.column_names)
        rows = [tuple(r.values()) for r in table.to_pylist()] if cols else []
        if len(set(cols)) != len(cols):  # duplicate names: to_pylist would merge them
            columns = [c.to_pylist() for c in table.columns]
            rows = list(zip(*columns, strict=True))
        return cols, rows

    def close(self, con: Any) -> None:
        con.close()

    def epoch_seconds(self, ts: str) -> str:
        return f"(toUnixTimestamp64Micro({ts}) / 1000000)"

    def to_date(self, ts: str) -> str:
        return f"toDate({ts}, 'UTC')"

    def date_number(self, d: str) -> str:
        return f"toInt64(dateDiff('day', toDate32('1970-01-01'), {d}))"

    def trunc(self, unit: str, ts: str) -> str:
        if unit not in UNITS:
            raise ArgumentError("unit", f"{unit!r} is not one of {', '.join(UNITS)}")
        # through DateTime64 in UTC: the operand may be a timestamp or a DATE (the roll-up's
        # day), and ClickHouse takes a time zone argument only for the former
        return f"{_TRUNC[unit]}(toDateTime64({ts}, 6, 'UTC'))"

    def quantile(self, expr: str, q: float) -> str:
        # R7 (numpy's default, DuckDB's quantile_cont); NULL over no rows, as in DuckDB
        return f"quantileExactInclusiveOrNull({float(q)!r})(toFloat64({expr}))"

    def register(self, con: Any, name: str, table: pa.Table) -> None:
        cols = ", ".join(f"`{f.name}` {arrow_ch_type(f.type)}" for f in table.schema)
        con.command(f"CREATE OR REPLACE TABLE {name} ({cols}) ENGINE = Memory")
        if table.num_rows:
            con.insert_arrow(name, table)

    def temp_table(self, con: Any, name: str, sql: str, params: Sequence[Any] = ()) -> None:
        con.command(
            f"CREATE OR REPLACE TABLE {name} ENGINE = Memory AS "
            f"{bind(translate(sql), params)}\n{SETTINGS}"
        )

    def drop(self, con: Any, name: str) -> None:
        con.command(f"DROP TABLE IF EXISTS {name}")


CLICKHOUSE = ClickHouseDialect()

__all__ = ["CLICKHOUSE", "ClickHouseDialect", "bind", "literal"]
