"""The ledger as FOCUS 1.2 cost-and-usage rows (FinOps Open Cost and Usage Specification).

Finance reads every other cloud bill in FOCUS; the same columns for LLM spend let it put the
per-customer cost next to them without a bespoke mapping.

Rows (one query, ``COPY`` to Parquet or CSV; nothing is aggregated in Python):
- one **Usage** row per UTC day x customer x provider x model x token type for LLM calls
  (``x_TokenType``: ``input`` = uncached input, ``cached input`` = cache reads, ``cache write``,
  ``output``): ``ConsumedQuantity`` = ``PricingQuantity`` = that type's tokens, the cost the
  pricing step stored for it (``input_cost_usd`` ...: they add up to the call's cost exactly,
  see tailguard.pricing._table). A call whose cost the provider or source reported cannot be
  split: its tokens (input + output) and cost go in one row of type ``total``. A token type
  with no tokens and no cost makes no row.
- one Usage row per day x customer for each non-token cost line: tool calls (per tool, in
  calls), retrieval (queries), human escalation (minutes).
- LLM calls without a price (``unpriced``) carry no cost and are left out: a FOCUS cost column
  cannot be null, and a zero would be a silent wrong number. ``FocusExport.unpriced_calls``
  counts them; ``report customers`` leaves them out of ``cost_usd`` the same way, so the two
  totals agree to the cent.
- ``BilledCost`` = ``EffectiveCost`` = ``ListCost`` = ``ContractedCost`` = the ledger's cost
  (DECIMAL(18, 9), nano-dollars, exact sums; no rounding here): the ledger holds the price the
  operator pays (negotiated discounts included), and no separate list price.
- the customer is in ``ConsumerId`` (the 1.5 working draft's column) and ``x_CustomerId`` (a
  custom column, the ``x_`` prefix the spec reserves for them, for tools that read 1.2).
- ``BillingAccountId`` / ``BillingAccountName``: the operator's account, from the configuration
  (``billing_account_id`` / ``billing_account_name``, env ``TAILGUARD_BILLING_ACCOUNT_ID`` /
  ``TAILGUARD_BILLING_ACCOUNT_NAME``).
Every other FOCUS 1.2 column is present (null where it does not apply), so a validator that
checks for the columns finds them all. docs/finops.md lists each column and its value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from tailguard.errors import ArgumentError, ConfigError
from tailguard.events.batch import sql_literal

if TYPE_CHECKING:
    import duckdb

    from tailguard.analytics.period import Window
    from tailguard.ledger.store import Ledger

#: the FOCUS 1.2 columns, in the specification's (alphabetical) order
FOCUS_12_COLUMNS: tuple[str, ...] = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
)
#: the columns this export adds: the consumer (1.5 draft), then custom ``x_`` columns
EXTRA_COLUMNS: tuple[str, ...] = ("ConsumerId", "x_CustomerId", "x_TokenType")
#: the token types of an LLM row; ``total`` holds a reported cost, which cannot be split
TOKEN_TYPES: tuple[str, ...] = ("input", "cached input", "cache write", "output", "total")
#: the provider of the non-token cost lines: the operator's own tools, search and people
INTERNAL_PROVIDER = "Internal"

#: one row per day x customer x (provider, model, token type) or non-token line: the measured
#: side. The LLM calls are grouped once (``llm``), then unpivoted into one row per token type.
_LINES_SQL = """
WITH llm AS (
  SELECT
    CAST(ts AS DATE) AS day,
    customer_id,
    coalesce(provider, 'unknown') AS provider,
    model AS item,
    sum(input_cost_usd) AS c_in,
    sum(cache_read_cost_usd) AS c_cr,
    sum(cache_write_cost_usd) AS c_cw,
    sum(output_cost_usd) AS c_out,
    sum(CASE WHEN input_cost_usd IS NULL THEN cost_usd END) AS c_total,
    sum(CASE WHEN input_cost_usd IS NOT NULL
        THEN input_tokens - cache_read_tokens - cache_write_tokens END) AS q_in,
    sum(CASE WHEN input_cost_usd IS NOT NULL THEN cache_read_tokens END) AS q_cr,
    sum(CASE WHEN input_cost_usd IS NOT NULL THEN cache_write_tokens END) AS q_cw,
    sum(CASE WHEN input_cost_usd IS NOT NULL THEN output_tokens END) AS q_out,
    sum(CASE WHEN input_cost_usd IS NULL THEN input_tokens + output_tokens END) AS q_total
  FROM events
  WHERE {where} AND kind = 'llm_call' AND cost_usd IS NOT NULL
  GROUP BY 1, 2, 3, 4
),
tokens AS (
  SELECT day, customer_id, provider, item, 'input' AS token_type, c_in AS cost, q_in AS q
  FROM llm
  UNION ALL
  SELECT day, customer_id, provider, item, 'cached input', c_cr, q_cr FROM llm
  UNION ALL
  SELECT day, customer_id, provider, item, 'cache write', c_cw, q_cw FROM llm
  UNION ALL
  SELECT day, customer_id, provider, item, 'output', c_out, q_out FROM llm
  UNION ALL
  SELECT day, customer_id, provider, item, 'total', c_total, q_total FROM llm
)
SELECT day, customer_id, provider, 'llm_call' AS kind, item, token_type, cost,
  CAST(q AS DECIMAL(38, 9)) AS quantity
FROM tokens
WHERE cost IS NOT NULL AND (cost <> 0 OR q <> 0)
UNION ALL
SELECT
  CAST(ts AS DATE) AS day,
  customer_id,
  '{internal}' AS provider,
  kind,
  CASE kind WHEN 'tool_call' THEN tool END AS item,
  CAST(NULL AS VARCHAR) AS token_type,
  sum(cost_usd) AS cost,
  CASE kind
    WHEN 'tool_call' THEN CAST(count(*) AS DECIMAL(38, 9))
    WHEN 'retrieval' THEN CAST(sum(queries) AS DECIMAL(38, 9))
    WHEN 'escalation' THEN CAST(sum(minutes) AS DECIMAL(38, 9))
  END AS quantity
FROM events
WHERE {where}
  AND kind IN ('tool_call', 'retrieval', 'escalation')
  AND cost_usd IS NOT NULL
GROUP BY 1, 2, 3, 4, 5
"""

_ROWS_SQL = """
SELECT
  CAST(NULL AS VARCHAR) AS AvailabilityZone,
  cost AS BilledCost,
  $account_id AS BillingAccountId,
  $account_name AS BillingAccountName,
  'Organization' AS BillingAccountType,
  'USD' AS BillingCurrency,
  CAST($period_end AS TIMESTAMPTZ) AS BillingPeriodEnd,
  CAST($period_start AS TIMESTAMPTZ) AS BillingPeriodStart,
  CAST(NULL AS VARCHAR) AS CapacityReservationId,
  CAST(NULL AS VARCHAR) AS CapacityReservationStatus,
  'Usage' AS ChargeCategory,
  CAST(NULL AS VARCHAR) AS ChargeClass,
  CASE kind
    WHEN 'llm_call' THEN item || ' ' || token_type || ' tokens'
    WHEN 'tool_call' THEN 'Tool calls: ' || coalesce(item, 'unnamed')
    WHEN 'retrieval' THEN 'Retrieval queries'
    ELSE 'Human escalation minutes'
  END AS ChargeDescription,
  'Usage-Based' AS ChargeFrequency,
  CAST(day + INTERVAL 1 DAY AS TIMESTAMPTZ) AS ChargePeriodEnd,
  CAST(day AS TIMESTAMPTZ) AS ChargePeriodStart,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountCategory,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountId,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountName,
  CAST(NULL AS DECIMAL(38, 9)) AS CommitmentDiscountQuantity,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountStatus,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountType,
  CAST(NULL AS VARCHAR) AS CommitmentDiscountUnit,
  quantity AS ConsumedQuantity,
  {unit} AS ConsumedUnit,
  cost AS ContractedCost,
  CAST(NULL AS DECIMAL(38, 9)) AS ContractedUnitPrice,
  cost AS EffectiveCost,
  CAST(NULL AS VARCHAR) AS InvoiceId,
  CASE WHEN kind = 'llm_call' THEN provider ELSE $account_name END AS InvoiceIssuerName,
  cost AS ListCost,
  CAST(NULL AS DECIMAL(38, 9)) AS ListUnitPrice,
  'Standard' AS PricingCategory,
  'USD' AS PricingCurrency,
  CAST(NULL AS DECIMAL(38, 9)) AS PricingCurrencyContractedUnitPrice,
  cost AS PricingCurrencyEffectiveCost,
  CAST(NULL AS DECIMAL(38, 9)) AS PricingCurrencyListUnitPrice,
  quantity AS PricingQuantity,
  {unit} AS PricingUnit,
  provider AS ProviderName,
  provider AS PublisherName,
  CAST(NULL AS VARCHAR) AS RegionId,
  CAST(NULL AS VARCHAR) AS RegionName,
  {sku} AS ResourceId,
  coalesce(item, kind) AS ResourceName,
  CASE kind
    WHEN 'llm_call' THEN 'Model'
    WHEN 'tool_call' THEN 'Tool'
    WHEN 'retrieval' THEN 'Retrieval'
    ELSE 'Human escalation'
  END AS ResourceType,
  CASE WHEN kind = 'escalation' THEN 'Other' ELSE 'AI and Machine Learning' END
    AS ServiceCategory,
  CASE kind
    WHEN 'llm_call' THEN 'LLM inference'
    WHEN 'tool_call' THEN 'Tool calls'
    WHEN 'retrieval' THEN 'Retrieval'
    ELSE 'Human escalation'
  END AS ServiceName,
  CASE kind
    WHEN 'llm_call' THEN 'Generative AI'
    WHEN 'escalation' THEN 'Other (Other)'
    ELSE 'Other (AI and Machine Learning)'
  END AS ServiceSubcategory,
  {sku} AS SkuId,
  CASE kind WHEN 'llm_call' THEN 'Tokens' ELSE {unit} END AS SkuMeter,
  {sku_details} AS SkuPriceDetails,
  {sku} AS SkuPriceId,
  CAST(NULL AS VARCHAR) AS SubAccountId,
  CAST(NULL AS VARCHAR) AS SubAccountName,
  CAST(NULL AS VARCHAR) AS SubAccountType,
  CAST(NULL AS VARCHAR) AS Tags,
  customer_id AS ConsumerId,
  customer_id AS x_CustomerId,
  token_type AS x_TokenType
FROM lines
"""

_UNIT = (
    "CASE kind WHEN 'llm_call' THEN 'Tokens' WHEN 'tool_call' THEN 'Calls' "
    "WHEN 'retrieval' THEN 'Queries' ELSE 'Minutes' END"
)
_SKU = (
    "CASE kind WHEN 'llm_call' THEN provider || '/' || item || '/' || token_type "
    "WHEN 'tool_call' THEN 'tool/' || coalesce(item, 'unnamed') ELSE kind END"
)
#: key-value JSON (the spec's KeyValueFormat), keys in PascalCase, the same for one SkuPriceId
_SKU_DETAILS = (
    "CASE kind WHEN 'llm_call' THEN "
    "to_json({'Model': item, 'Provider': provider, 'TokenType': token_type}) "
    "WHEN 'tool_call' THEN to_json({'Tool': coalesce(item, 'unnamed')}) "
    "ELSE to_json({'CostLine': kind}) END::VARCHAR"
)

#: output formats by file suffix
FORMATS = {".parquet": "PARQUET", ".csv": "CSV"}


@dataclass(frozen=True)
class FocusExport:
    """What ``export_focus`` wrote: the file, its rows and cost total, and the LLM calls it left
    out because they carry no price."""

    path: Path
    rows: int
    billed_cost_usd: Decimal
    unpriced_calls: int


def billing_account(
    account_id: str | None = None,
    account_name: str | None = None,
    *,
    config_path: str | None = None,
) -> tuple[str, str]:
    """The billing account: the arguments, else ``TAILGUARD_BILLING_ACCOUNT_ID`` / ``_NAME``,
    else ``billing_account_id`` / ``billing_account_name`` in the config file. The name defaults
    to the id; no id at all is a ``ConfigError`` (FOCUS requires one on every row)."""
    from tailguard.config import load_file

    file = load_file(config_path)
    aid = (
        account_id
        or os.environ.get("TAILGUARD_BILLING_ACCOUNT_ID")
        or file.get("billing_account_id")
    )
    if not aid:
        raise ConfigError(
            "no billing account id: give account_id, set TAILGUARD_BILLING_ACCOUNT_ID, "
            "or billing_account_id in the config file"
        )
    name = (
        account_name
        or os.environ.get("TAILGUARD_BILLING_ACCOUNT_NAME")
        or file.get("billing_account_name")
        or aid
    )
    return str(aid), str(name)


#: the grouped lines as DuckDB types them (a ClickHouse ledger's lines are registered so)
LINES_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("customer_id", pa.string()),
        ("provider", pa.string()),
        ("kind", pa.string()),
        ("item", pa.string()),
        ("token_type", pa.string()),
        ("cost", pa.decimal128(38, 9)),
        ("quantity", pa.decimal128(38, 9)),
    ]
)
_UNPRICED_SQL = (
    "SELECT coalesce(sum(coalesce(requests, 1)), 0) FROM events "
    "WHERE {where} AND kind = 'llm_call' AND unpriced"
)


def build_focus(
    con: duckdb.DuckDBPyConnection,
    win: Window,
    *,
    account_id: str,
    account_name: str,
    lines: pa.Table | None = None,
) -> int:
    """Create the temporary view ``focus`` (the rows) on ``con``; return its row count.
    ``con`` has the ledger's ``events`` view, or ``lines`` are the grouped lines already
    (``LINES_SCHEMA``: a ClickHouse ledger groups them itself); ``win`` is a calendar month.

    Only the grouped lines are materialised (``lines``, one row per FOCUS row, a dozen
    columns); ``focus`` projects them to the 60 FOCUS columns as a view, so ``COPY`` streams
    them to the file instead of building the wide table first."""
    if win.start is None or win.end is None:
        raise ArgumentError("period", "a FOCUS export needs a calendar month (YYYY-MM)")
    where, params = win.sql()
    # sorted here, on the narrow lines, not on the 60-column rows: DuckDB keeps a table's
    # insertion order on a scan (preserve_insertion_order), so the file comes out in this order
    order = " ORDER BY day, customer_id, provider, kind, item, token_type"
    if lines is not None:
        con.register("_focus_lines", lines)
        con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM _focus_lines" + order)
        con.unregister("_focus_lines")
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM ("
            + _LINES_SQL.format(where=where, internal=INTERNAL_PROVIDER)
            + ")"
            + order,
            [*params, *params],  # the window twice: LLM calls, then the other cost lines
        )
    # a view takes no parameters: the four values are literals (strings quoted, instants ISO)
    values = {
        "account_id": sql_literal(account_id),
        "account_name": sql_literal(account_name),
        "period_start": sql_literal(win.start.isoformat()),
        "period_end": sql_literal(win.end.isoformat()),
    }
    sql = _ROWS_SQL.format(unit=_UNIT, sku=_SKU, sku_details=_SKU_DETAILS)
    # one pass: a value holding "$period_end" is not itself rewritten
    sql = re.sub(r"\$(\w+)", lambda m: values[m.group(1)], sql)
    con.execute("CREATE OR REPLACE TEMP VIEW focus AS " + sql)
    row = con.execute("SELECT count(*) FROM lines").fetchone()
    return int(row[0]) if row else 0


def _clickhouse_lines(led: Ledger, win: Window) -> tuple[pa.Table, tuple[Any, ...] | None]:
    """A ClickHouse ledger's grouped lines of ``win`` (``_LINES_SQL`` run in ClickHouse
    through the query layer) and its unpriced calls: the events stay in ClickHouse."""
    from tailguard.analytics.context import QueryContext
    from tailguard.analytics.period import require_events

    with QueryContext.open(led) as ctx:
        require_events(ctx, win)
        where, params = win.sql()
        sql = _LINES_SQL.format(where=where, internal=INTERNAL_PROVIDER).replace(
            "CAST(ts AS DATE)", ctx.to_date("ts")
        )
        got = ctx.fetch(sql, [*params, *params])
        unpriced = ctx.fetch(_UNPRICED_SQL.format(where=where), params)
    names = LINES_SCHEMA.names
    table = pa.Table.from_pylist(
        [dict(zip(names, r, strict=True)) for r in got], schema=LINES_SCHEMA
    )
    return table, unpriced[0] if unpriced else None


def export_focus(
    ledger: Ledger | str | os.PathLike[str],
    period: str,
    out: str | os.PathLike[str],
    *,
    account_id: str,
    account_name: str,
) -> FocusExport:
    """Write the FOCUS rows of calendar month ``period`` (``YYYY-MM``) to ``out``; the format
    comes from its suffix (``.parquet`` or ``.csv``). ``NoDataError`` when the month holds no
    events."""
    from tailguard.analytics.period import require_events, window
    from tailguard.ledger.store import Ledger

    path = Path(out)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ArgumentError("output", f"{path}: the file must end in .parquet or .csv")
    from tailguard.ledger.clickhouse import ClickHouseLedger
    from tailguard.ledger.url import open_ledger

    win = window(period, None, None)
    led = ledger if isinstance(ledger, Ledger) else open_ledger(ledger)
    lines = unpriced = None
    if isinstance(led, ClickHouseLedger):  # grouped in ClickHouse: only the lines come out
        lines, unpriced = _clickhouse_lines(led, win)
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
    else:
        con = led.connect()
    try:
        if lines is None:
            require_events(con, win)
        rows = build_focus(con, win, account_id=account_id, account_name=account_name, lines=lines)
        target = str(path).replace("'", "''")
        # CSV dates in ISO 8601 UTC with a Z, as the spec's date-time format asks
        opts = ", TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%SZ'" if fmt == "CSV" else ""
        con.execute(f"COPY focus TO '{target}' (FORMAT {fmt}{opts})")
        total = con.execute("SELECT coalesce(sum(cost), 0) FROM lines").fetchone()
        if unpriced is None:  # calls: an imported bucket row stands for `requests` calls
            where, params = win.sql()
            unpriced = con.execute(_UNPRICED_SQL.format(where=where), params).fetchone()
    finally:
        con.close()
    return FocusExport(
        path=path,
        rows=rows,
        billed_cost_usd=Decimal(total[0]) if total else Decimal(0),
        unpriced_calls=int(unpriced[0]) if unpriced else 0,
    )
