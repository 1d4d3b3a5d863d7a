"""LiteLLM's spend logs (``LiteLLM_SpendLogs`` rows, as a table dump or ``/spend/logs`` output).

One row per request, its id ``request_id`` (the event id is ``litellm:<request_id>``, so a
re-import changes nothing). Field meanings from the table's Prisma schema:

- ``prompt_tokens`` / ``completion_tokens``: the OpenAI usage of the call, which already counts
  cached prompt tokens in the prompt and reasoning in the completion: the ledger's convention,
  kept as is. Cache reads and writes, when the row's ``metadata.usage_object`` carries them
  (``prompt_tokens_details.cached_tokens``, ``cache_creation_input_tokens``), are split out,
  and the 1-hour writes among them (LiteLLM's ``prompt_tokens_details.cache_creation_token_details
  .ephemeral_1h_input_tokens``, Anthropic's split) become ``cache_write_1h_tokens``, priced at
  the 1-hour rate. A spend log carries no batch marker: batch calls are priced at standard
  rates (``spend`` keeps LiteLLM's own figure beside);
- ``spend``: LiteLLM's own cost in dollars, kept as ``reported_cost_usd``;
- ``startTime`` / ``endTime``: a Prisma ``DateTime``, stored in UTC (a dump without a zone is
  read as UTC); latency is their difference unless ``request_duration_ms`` is given;
- ``status``: ``failure`` is an error, anything else (``success``, absent) ok;
- customer: ``end_user``, then ``metadata.user_api_key_end_user_id``, then a ``customer:``
  request tag, then ``team_id``; user ``user``; session ``session_id``.

Why SQL and not a Python function per row like the other sources: a LiteLLM table holds
millions of rows (one per request through the proxy). The file is read into Arrow as text
columns (JSON columns as JSON text), numbered, and converted in one DuckDB query per batch;
measured in ``bench/bench_import.py``. A CSV row's line is its ordinal + 1 (the header): its
physical line unless an earlier value holds a line break. Money: ``spend`` is read from its
text as DECIMAL(38, 18) and rounded half-even (``round_even``) to the ledger's nano-dollar.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tailguard.errors import InputError
from tailguard.events.batch import (
    INPUT_SCHEMA,
    SQL_TYPES,
    Batch,
    Reject,
    TsWindow,
    engine,
    sql_literal,
    ts_window,
)
from tailguard.events.sql import normalized_select, problem_case
from tailguard.importers.mapping import ImportMap
from tailguard.importers.records import read_records

CUSTOMER = ("end_user", "metadata.user_api_key_end_user_id", "tag:customer", "team_id")
USER = ("user",)
FEATURE: tuple[str, ...] = ()
SESSION = ("session_id",)
TAGS = "request_tags"

#: the table's columns the conversion reads (others in the file are ignored)
COLUMNS = (
    "request_id",
    "startTime",
    "endTime",
    "request_duration_ms",
    "model",
    "model_group",
    "custom_llm_provider",
    "user",
    "end_user",
    "team_id",
    "metadata",
    "request_tags",
    "session_id",
    "prompt_tokens",
    "completion_tokens",
    "spend",
    "status",
)
_CSV_BLOCK = 32 << 20  # ~130k spend-log rows: one conversion query per block


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def path_sql(path: str) -> str:
    """SQL for a map path over the text columns: ``col``, ``col.key.key`` (into JSON text) or
    ``tag:NAME`` (a ``NAME:`` entry of the request tags); NULL when absent or empty."""
    if path.startswith("tag:"):
        prefix = path[4:] + ":"
        tags = _q(TAGS)
        hit = (
            f"list_filter(json_extract_string({tags}, '$[*]'), lambda x: "
            f"starts_with(x, {sql_literal(prefix)}) AND length(x) > {len(prefix)})[1]"
        )
        return (
            f"CASE WHEN json_valid({tags}) AND json_type({tags}) = 'ARRAY' "
            f"THEN substr({hit}, {len(prefix) + 1}) END"
        )
    head, _, rest = path.partition(".")
    if not rest:
        return f"NULLIF(CAST({_q(head)} AS VARCHAR), '')"
    jpath = "$." + ".".join('"' + p.replace('"', '\\"') + '"' for p in rest.split("."))
    return (
        f"CASE WHEN json_valid({_q(head)}) THEN "
        f"NULLIF(json_extract_string({_q(head)}, {sql_literal(jpath)}), '') END"
    )


def _first(paths: Sequence[str]) -> str:
    return f"coalesce({', '.join(path_sql(p) for p in paths)})" if paths else "NULL"


def _columns_needed(mp: ImportMap) -> list[str]:
    heads = [p.partition(".")[0] for rules in mp.fields.values() for p in rules]
    heads += [p.partition(".")[0] for p in mp.exclude]
    return list(dict.fromkeys([*COLUMNS, *(h for h in heads if not h.startswith("tag:"))]))


def _int(col: str) -> str:
    return f"TRY_CAST(NULLIF({_q(col)}, '') AS BIGINT)"


def _not_int(col: str) -> str:
    return (
        f"WHEN NULLIF({_q(col)}, '') IS NOT NULL AND {_int(col)} IS NULL THEN "
        f"'{col}|not an integer: ''' || {_q(col)} || ''''"
    )


def _mapping_sql(mp: ImportMap) -> str:
    """One SELECT from ``src`` (text columns + ``_row``) to the ledger's input columns, a
    conversion problem ``_cerr`` (``field|reason``) and an exclusion flag ``_skip``."""
    cust_rules = mp.rules("customer", CUSTOMER)
    customer = _first(cust_rules)
    if mp.customer_ids:
        cases = " ".join(
            f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in mp.customer_ids.items()
        )
        customer = f"(SELECT CASE c {cases} ELSE c END FROM (SELECT {customer} AS c))"
    usage = "metadata.usage_object."
    inner = {
        "_customer": customer,
        "_cache_read": path_sql(usage + "prompt_tokens_details.cached_tokens"),
        "_cache_write": path_sql(usage + "cache_creation_input_tokens"),
        "_cache_1h": path_sql(
            usage + "prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens"
        ),
        "_start": "TRY_CAST(NULLIF(\"startTime\", '') AS TIMESTAMPTZ)",
    }
    customer, cache_read, cache_write, cache_1h, start = inner
    end = "TRY_CAST(NULLIF(\"endTime\", '') AS TIMESTAMPTZ)"
    skip = " OR ".join(
        f"coalesce({path_sql(p)} IN ({', '.join(sql_literal(v) for v in vals)}), false)"
        for p, vals in mp.exclude.items()
        if vals
    )
    problems = [
        "WHEN NULLIF(request_id, '') IS NULL THEN 'request_id|missing required field'",
        "WHEN NULLIF(\"startTime\", '') IS NULL THEN 'startTime|missing required field'",
        f"WHEN {start} IS NULL THEN 'startTime|not an ISO 8601 timestamp: ''' "
        "|| \"startTime\" || ''''",
        f"WHEN {customer} IS NULL THEN "
        f"{sql_literal('customer_id|no customer found (looked at ' + ', '.join(cust_rules) + ')')}",
        "WHEN coalesce(NULLIF(model, ''), NULLIF(model_group, '')) IS NULL "
        "THEN 'model|missing required field'",
        _not_int("prompt_tokens"),
        _not_int("completion_tokens"),
        _not_int("request_duration_ms"),
        "WHEN NULLIF(spend, '') IS NOT NULL AND TRY_CAST(spend AS DECIMAL(38, 18)) IS NULL "
        "THEN 'spend|not a number: ''' || spend || ''''",
        f"WHEN {cache_read} IS NOT NULL AND TRY_CAST({cache_read} AS BIGINT) IS NULL THEN "
        "'metadata.usage_object.prompt_tokens_details.cached_tokens|not an integer'",
        f"WHEN {cache_write} IS NOT NULL AND TRY_CAST({cache_write} AS BIGINT) IS NULL THEN "
        "'metadata.usage_object.cache_creation_input_tokens|not an integer'",
        f"WHEN {cache_1h} IS NOT NULL AND TRY_CAST({cache_1h} AS BIGINT) IS NULL THEN "
        "'metadata.usage_object.prompt_tokens_details.cache_creation_token_details."
        "ephemeral_1h_input_tokens|not an integer'",
    ]
    return f"""
        SELECT
          _row,
          {skip or "false"} AS _skip,
          CASE {" ".join(problems)} END AS _cerr,
          'litellm:' || request_id AS event_id,
          'llm_call' AS kind,
          {start} AS ts,
          {customer} AS customer_id,
          {_first(mp.rules("user", USER))} AS user_id,
          {_first(mp.rules("feature", FEATURE))} AS feature,
          CAST(NULL AS VARCHAR) AS task_id,
          {_first(mp.rules("session", SESSION))} AS session_id,
          CAST(NULL AS VARCHAR) AS workload,
          NULLIF(custom_llm_provider, '') AS provider,
          coalesce(NULLIF(model, ''), NULLIF(model_group, '')) AS model,
          1 AS attempt,
          1 AS requests,
          coalesce({_int("prompt_tokens")}, 0) AS input_tokens,
          coalesce({_int("completion_tokens")}, 0) AS output_tokens,
          coalesce(TRY_CAST({cache_read} AS BIGINT), 0) AS cache_read_tokens,
          coalesce(TRY_CAST({cache_write} AS BIGINT), 0) AS cache_write_tokens,
          0 AS reasoning_tokens,
          coalesce(
            TRY_CAST({_int("request_duration_ms")} AS DOUBLE),
            greatest(epoch_us({end}) - epoch_us({start}), 0) / 1000.0
          ) AS latency_ms,
          CASE WHEN lower(status) = 'failure' THEN 'error' ELSE 'ok' END AS status,
          CAST(NULL AS VARCHAR) AS tool, CAST(NULL AS VARCHAR) AS tool_kind,
          CAST(NULL AS BIGINT) AS queries, CAST(NULL AS BIGINT) AS reranks,
          CAST(NULL AS DOUBLE) AS minutes, CAST(NULL AS VARCHAR) AS outcome,
          CAST(NULL AS VARCHAR) AS action, CAST(NULL AS VARCHAR) AS rule,
          CAST(NULL AS DECIMAL(18, 9)) AS amount_usd,
          CAST(round_even(TRY_CAST(NULLIF(spend, '') AS DECIMAL(38, 18)), 9)
               AS DECIMAL(18, 9)) AS reported_cost_usd,
          CAST(NULL AS DECIMAL(18, 9)) AS cost_usd,
          coalesce(TRY_CAST({cache_1h} AS BIGINT), 0) AS cache_write_1h_tokens,
          CAST(NULL AS VARCHAR) AS service_tier
        FROM (SELECT *, {", ".join(f"{v} AS {k}" for k, v in inner.items())} FROM src)
    """


def read(
    path: str | Path,
    mp: ImportMap,
    *,
    batch_rows: int,
    window: TsWindow | None = None,
    counts: dict[str, int] | None = None,
) -> Iterator[Batch]:
    """Yield validated batches of the spend-log rows of ``path`` (CSV, JSON or JSONL)."""
    p = Path(path)
    name = str(p)
    win = ts_window(window)
    needed = _columns_needed(mp)
    con = engine()
    query = (
        f"WITH m AS ({_mapping_sql(mp)}) SELECT _row, _skip, "
        f"coalesce(_cerr, {problem_case(SQL_TYPES, win)}) AS _err, "
        f"{normalized_select(SQL_TYPES, cast='TRY_CAST')} FROM m"
    )
    read_so_far = 0
    try:
        for table in _text_tables(p, needed, batch_rows):
            read_so_far += table.num_rows
            con.register("src", table)
            try:
                out = con.sql(query).to_arrow_table()
            finally:
                con.unregister("src")
            skip = out.column("_skip")
            n_skip = int(pc.sum(skip.cast(pa.int64())).as_py() or 0) if mp.exclude else 0
            if n_skip:
                if counts is not None:
                    counts["skipped"] = counts.get("skipped", 0) + n_skip
                out = out.filter(pc.invert(skip))
            err = out.column("_err")
            rejects: list[Reject] = []
            if err.null_count != len(err):
                bad = out.filter(err.is_valid()).select(["_err", "_row", "event_id"]).to_pylist()
                for r in sorted(bad, key=lambda r: r["_row"]):
                    fld, reason = r["_err"].split("|", 1)
                    rejects.append(Reject(name, r["_row"], fld, reason, r["event_id"] or ""))
                out = out.filter(err.is_null())
            good = out.drop_columns(["_row", "_skip", "_err"]).cast(INPUT_SCHEMA)
            yield Batch(good, rejects, read_so_far)
    finally:
        con.close()


def _text_tables(path: Path, needed: list[str], batch_rows: int) -> Iterator[pa.Table]:
    """The file as tables of text columns (``needed``, absent ones null) plus ``_row``."""
    name = str(path)
    if not path.exists():
        raise InputError(f"{name}: no such file", [f"{name}:0: <file>: no such file"])
    if path.suffix.lower() == ".csv":
        yield from _csv_tables(path, needed)
        return
    rows: list[dict[str, Any]] = []
    for line, rec in read_records(path):
        flat: dict[str, Any] = {"_row": line}
        for col in needed:
            v = rec.get(col)
            if v is None or isinstance(v, str):
                flat[col] = v
            elif isinstance(v, dict | list):
                flat[col] = msgspec.json.encode(v).decode()
            else:
                flat[col] = repr(v) if isinstance(v, float) else str(v)
        rows.append(flat)
        if len(rows) >= batch_rows:
            yield _from_rows(rows, needed)
            rows = []
    if rows:
        yield _from_rows(rows, needed)


def _from_rows(rows: list[dict[str, Any]], needed: list[str]) -> pa.Table:
    schema = pa.schema([pa.field("_row", pa.int64()), *(pa.field(c, pa.string()) for c in needed)])
    return pa.Table.from_pylist(rows, schema=schema)


def _csv_tables(path: Path, needed: list[str]) -> Iterator[pa.Table]:
    name = str(path)
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if "request_id" not in header:
        raise InputError(
            f"{name}: not a LiteLLM spend-log CSV",
            [f"{name}:1: request_id: missing column in header"],
        )
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                include_columns=[c for c in needed if c in header],
                strings_can_be_null=False,
            ),
        )
        row = 2  # the header is line 1
        for rb in reader:
            n = rb.num_rows
            t = pa.Table.from_batches([rb])
            cols = {
                c: t.column(c) if c in t.column_names else pa.nulls(n, pa.string()) for c in needed
            }
            yield pa.table({"_row": pa.array(range(row, row + n), pa.int64()), **cols})
            row += n
    except pa.ArrowInvalid as exc:
        raise InputError(f"{name}: cannot read as CSV", [f"{name}:0: <file>: {exc}"]) from None
