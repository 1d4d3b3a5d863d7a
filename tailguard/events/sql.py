"""Event validation and normalisation as SQL, for the engine-speed read paths.

The msgspec structs in ``schema.py`` are the definition of a valid event. This module states the
same rules as SQL so that clean JSONL and Parquet files are validated in DuckDB (vectorised, in
C++), never row by row in Python:

- ``normalized_select`` turns raw columns into the input layout: a field that does not belong to
  the row's kind is dropped (msgspec ignores it too), and defaults fill absent values;
- ``PROBLEM_CASE`` names the first problem of a row as ``field|reason``;
- for JSON, ``json_clean_predicate`` also checks JSON types exactly as msgspec does (a string
  is not an int, a bool is not a number) and that money is representable without loss.

A JSONL file with any row this predicate refuses is re-read with msgspec, so the messages a user
sees always come from one place. A test checks that both paths give identical tables.
"""

from __future__ import annotations

from tailguard.events.schema import (
    GUARD_ACTIONS,
    INPUT_COLUMNS,
    KINDS,
    OUTCOMES,
    WORKLOADS,
    Escalation,
    Guard,
    LlmCall,
    Retrieval,
    TaskOutcome,
    ToolCall,
)

_CLASSES = (LlmCall, ToolCall, Retrieval, Escalation, TaskOutcome, Guard)

#: which kinds carry each column (the envelope columns belong to all)
OWNERS: dict[str, tuple[str, ...]] = {
    col: tuple(
        c.__struct_config__.tag
        for c in _CLASSES
        if col in c.__struct_fields__  # type: ignore[attr-defined]
    )
    for col in INPUT_COLUMNS
    if col != "kind"
}

DEFAULTS: dict[str, str] = {
    "attempt": "1",
    "cache_read_tokens": "0",
    "cache_write_tokens": "0",
    "reasoning_tokens": "0",
    "status": "'ok'",
    "queries": "1",
    "reranks": "0",
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "llm_call": ("model", "input_tokens", "output_tokens"),
    "tool_call": ("tool", "tool_kind"),
    "escalation": ("minutes",),
    "task_outcome": ("outcome",),
    "guard": ("action", "rule"),
}

INT_COLUMNS = (
    "attempt",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "queries",
    "reranks",
)
FLOAT_COLUMNS = ("latency_ms", "minutes")
MONEY_COLUMNS = ("cost_usd", "amount_usd")
ENUMS: dict[str, tuple[str, ...]] = {
    "kind": KINDS,
    "workload": WORKLOADS,
    "status": ("ok", "error"),
    "tool_kind": ("read", "write"),
    "outcome": OUTCOMES,
    "action": GUARD_ACTIONS,
}
ID_COLUMNS = ("event_id", "customer_id", "model", "tool", "rule")
INT64_MAX = 2**63 - 1


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(_lit(v) for v in values)})"


def _owned(col: str) -> str:
    return f"kind IN ({', '.join(_lit(k) for k in OWNERS[col])})"


def normalized_select(types: dict[str, str]) -> str:
    """SELECT list giving INPUT_COLUMNS from validated raw columns (``col`` names as is).

    ``types`` maps a column to the SQL type it is cast to.
    """
    out = []
    for col in INPUT_COLUMNS:
        if col == "kind":
            out.append("kind")
            continue
        expr = f"CAST({col} AS {types[col]})"
        if col in DEFAULTS:
            expr = f"coalesce({expr}, {DEFAULTS[col]})"
        if len(OWNERS[col]) < len(KINDS):
            expr = f"CASE WHEN {_owned(col)} THEN {expr} END"
        out.append(f"{expr} AS {col}")
    return ", ".join(out)


def _value_checks() -> list[tuple[str, str, str]]:
    """(condition that is an error, field, reason), on columns already of SQL types."""
    checks: list[tuple[str, str, str]] = [
        ("event_id IS NULL OR event_id = ''", "event_id", "missing required field"),
        ("kind IS NULL", "kind", "missing required field"),
        (f"NOT {_in('kind', KINDS)}", "kind", f"Invalid enum value; one of {', '.join(KINDS)}"),
        ("ts IS NULL", "ts", "missing required field"),
        ("customer_id IS NULL OR customer_id = ''", "customer_id", "missing required field"),
    ]
    for kind, cols in REQUIRED.items():
        for c in cols:
            checks.append((f"kind = '{kind}' AND {c} IS NULL", c, "missing required field"))
    for col, values in ENUMS.items():
        if col == "kind":
            continue
        checks.append(
            (
                f"{_owned(col)} AND {col} IS NOT NULL AND NOT {_in(col, values)}",
                col,
                f"Invalid enum value; one of {', '.join(values)}",
            )
        )
    for col in ("model", "tool", "rule"):
        checks.append((f"{_owned(col)} AND {col} = ''", col, "must not be empty"))
    for col in ID_COLUMNS:
        checks.append((f"length({col}) > 512", col, "longer than 512 characters"))
    checks.append((f"{_owned('attempt')} AND attempt < 1", "attempt", "must be >= 1"))
    for col in (*INT_COLUMNS, *FLOAT_COLUMNS, *MONEY_COLUMNS):
        if col != "attempt":
            checks.append((f"{_owned(col)} AND {col} < 0", col, "must be >= 0"))
    checks += [
        (
            "kind = 'llm_call' AND coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0)"
            " > input_tokens",
            "cache_read_tokens",
            "cache_read_tokens + cache_write_tokens exceed input_tokens "
            "(input_tokens must include cache tokens, OpenTelemetry convention)",
        ),
        (
            "kind = 'llm_call' AND coalesce(reasoning_tokens, 0) > output_tokens",
            "reasoning_tokens",
            "reasoning_tokens exceed output_tokens (output_tokens must include reasoning)",
        ),
    ]
    return checks


PROBLEM_CASE = (
    "CASE "
    + " ".join(
        f"WHEN {cond} THEN {_lit(fld + '|' + reason)}" for cond, fld, reason in _value_checks()
    )
    + " END"
)

# --- JSON -----------------------------------------------------------------------------------

_JSON_TYPES = {
    **{c: "('BIGINT', 'UBIGINT')" for c in INT_COLUMNS},
    **{c: "('BIGINT', 'UBIGINT', 'DOUBLE')" for c in FLOAT_COLUMNS},
    **{c: "('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR')" for c in MONEY_COLUMNS},
}
#: money is exact through DuckDB's JSON double only with <= 15 significant digits and <= 9
#: decimals (then the shortest repr of the double is the text that was written)
_EXACT_MONEY = r"^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,9})?$"


def json_raw_columns() -> dict[str, str]:
    """read_json ``columns=``: every field as JSON, so its JSON type can be checked."""
    return {c: "JSON" for c in INPUT_COLUMNS}


def json_typed_view(src: str) -> str:
    """SELECT over a read_json(columns=JSON) relation: typed columns plus ``_json_ok``."""
    ok_parts = []
    cols = []
    for col in INPUT_COLUMNS:
        jt = f"json_type({col})"
        null = f"({col} IS NULL OR {jt} = 'NULL')"
        if col in _JSON_TYPES:
            ok_parts.append(f"({null} OR {jt} IN {_JSON_TYPES[col]})")
        else:
            ok_parts.append(f"({null} OR {jt} = 'VARCHAR')")
        if col in ID_COLUMNS:
            ok_parts.append(f"({null} OR length({col} ->> '$') BETWEEN 1 AND 512)")
        if col in INT_COLUMNS:
            ok_parts.append(
                f"({null} OR {jt} = 'BIGINT' OR TRY_CAST({col} AS UBIGINT) <= {INT64_MAX})"
            )
            cols.append(f"CASE WHEN NOT {null} THEN TRY_CAST({col} AS BIGINT) END AS {col}")
        elif col in FLOAT_COLUMNS:
            cols.append(f"CASE WHEN NOT {null} THEN TRY_CAST({col} AS DOUBLE) END AS {col}")
        elif col in MONEY_COLUMNS:
            text = f"({col} ->> '$')"
            digits = f"length(ltrim(replace(replace({text}, '-', ''), '.', ''), '0'))"
            ok_parts.append(
                f"({null} OR (regexp_full_match({text}, '{_EXACT_MONEY}') AND {digits} <= 15))"
            )
            cols.append(
                f"CASE WHEN NOT {null} THEN TRY_CAST({text} AS DECIMAL(18, 9)) END AS {col}"
            )
        elif col == "ts":
            text = f"({col} ->> '$')"
            # RFC 3339 with a zone, as msgspec requires; DuckDB parses it to an instant
            ok_parts.append(
                f"({null} OR regexp_full_match({text}, "
                r"'\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?([Zz]|[+-]\d\d:?\d\d)'))"
            )
            cols.append(f"CASE WHEN NOT {null} THEN TRY_CAST({text} AS TIMESTAMPTZ) END AS ts")
        else:
            cols.append(f"CASE WHEN NOT {null} THEN {col} ->> '$' END AS {col}")
    ok = " AND ".join(ok_parts)
    return f"SELECT ({ok}) AS _json_ok, {', '.join(cols)} FROM {src}"
