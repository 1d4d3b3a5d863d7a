"""Event validation and normalisation as SQL, for the Parquet read path.

The msgspec structs in ``schema.py`` are the definition of a valid event. This module states the
same rules as SQL so that Parquet files are validated in DuckDB (vectorised), never row by row in
Python:

- ``normalized_select`` turns raw columns into the input layout: a field that does not belong to
  the row's kind is dropped (msgspec ignores it too), and defaults fill absent values;
- ``problem_case`` names the first problem of a row as ``field|reason``.

A test checks that a Parquet file and the same events as JSONL read to identical tables.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from tailguard.events.batch import TsWindow
from tailguard.events.batch import sql_literal as _lit
from tailguard.events.schema import (
    INPUT_COLUMNS,
    MAX_MONEY,
    MONEY,
    MONEY_COLUMNS,
    NULL_DEFAULTS,
    Escalation,
    Guard,
    LlmCall,
    Retrieval,
    TaskOutcome,
    ToolCall,
)
from tailguard.vocabulary import GUARD_ACTIONS, KINDS, OUTCOMES, STATUSES, TOOL_KINDS, WORKLOADS

MONEY_PRECISION, MONEY_SCALE = MONEY.precision, MONEY.scale

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
    col: _lit(v) if isinstance(v, str) else str(v) for col, v in NULL_DEFAULTS.items()
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
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "queries",
    "reranks",
)
FLOAT_COLUMNS = ("latency_ms", "minutes")
ENUMS: dict[str, tuple[str, ...]] = {
    "kind": KINDS,
    "workload": WORKLOADS,
    "status": STATUSES,
    "tool_kind": TOOL_KINDS,
    "outcome": OUTCOMES,
    "action": GUARD_ACTIONS,
}
ID_COLUMNS = ("event_id", "customer_id", "model", "tool", "rule")


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(_lit(v) for v in values)})"


def _owned(col: str) -> str:
    return f"kind IN ({', '.join(_lit(k) for k in OWNERS[col])})"


def normalized_select(types: dict[str, str], *, cast: str = "CAST") -> str:
    """SELECT list giving INPUT_COLUMNS from validated raw columns (``col`` names as is).

    ``types`` maps a column to the SQL type it is cast to. ``cast="TRY_CAST"`` gives NULL for
    a value the type cannot hold instead of failing the whole query (the Parquet path, whose
    ``problem_case`` has already refused that row by name).
    """
    out = []
    for col in INPUT_COLUMNS:
        if col == "kind":
            out.append("kind")
            continue
        expr = f"{cast}({col} AS {types[col]})"
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
    checks.append(
        (
            f"{_owned('service_tier')} AND length(service_tier) > 64",
            "service_tier",
            "longer than 64 characters",
        )
    )
    for col in ID_COLUMNS:
        checks.append((f"length({col}) > 512", col, "longer than 512 characters"))
    for col in ("attempt", "requests"):
        checks.append((f"{_owned(col)} AND {col} < 1", col, "must be >= 1"))
    for col in (*INT_COLUMNS, *FLOAT_COLUMNS, *MONEY_COLUMNS):
        if col not in ("attempt", "requests"):
            checks.append((f"{_owned(col)} AND {col} < 0", col, "must be >= 0"))
    for col in MONEY_COLUMNS:
        checks.append(
            (f"{_owned(col)} AND {col} > {MAX_MONEY}", col, "must be < 1e9 (DECIMAL(18, 9))")
        )
    checks += [
        (
            "kind = 'llm_call' AND coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0)"
            " > input_tokens",
            "cache_read_tokens",
            "cache_read_tokens + cache_write_tokens exceed input_tokens "
            "(input_tokens must include cache tokens, OpenTelemetry convention)",
        ),
        (
            "kind = 'llm_call' AND coalesce(cache_write_1h_tokens, 0)"
            " > coalesce(cache_write_tokens, 0)",
            "cache_write_1h_tokens",
            "cache_write_1h_tokens exceed cache_write_tokens "
            "(cache_write_tokens must include the 1-hour writes)",
        ),
        (
            "kind = 'llm_call' AND coalesce(reasoning_tokens, 0) > output_tokens",
            "reasoning_tokens",
            "reasoning_tokens exceed output_tokens (output_tokens must include reasoning)",
        ),
    ]
    return checks


def _always_fits(sql_type: str, t: pa.DataType) -> bool:
    """Whether every value of Arrow type ``t`` converts to ``sql_type`` (no check needed)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_floating(t):
        return False  # NaN and infinity
    if sql_type == "DOUBLE":
        return True
    limit = {"BIGINT": 64, "INTEGER": 32}.get(sql_type)
    if limit is not None and pa.types.is_integer(t):
        return t.bit_width < limit or (pa.types.is_signed_integer(t) and t.bit_width == limit)
    if pa.types.is_decimal(t) and sql_type.startswith("DECIMAL"):
        return t.scale <= MONEY_SCALE and t.precision - t.scale <= MONEY_PRECISION - MONEY_SCALE
    return False


def _fit_checks(types: dict[str, str], raw: Mapping[str, pa.DataType]) -> list[tuple[str, str]]:
    """(condition, SQL text of ``field|reason``) for numbers the ledger's types cannot hold.

    Checked before anything else, on the raw Parquet columns (``raw``: their Arrow types; a
    column absent or of a type that always fits needs no check): a NaN or infinite float, an
    unsigned 64-bit count over BIGINT, money over DECIMAL(18, 9). The reason shows the value.
    """
    out = []
    for col in (*INT_COLUMNS, *FLOAT_COLUMNS, *MONEY_COLUMNS):
        if col not in raw or _always_fits(types[col], raw[col]):
            continue
        value = f"CAST({col} AS VARCHAR)"
        out.append(
            (
                f"{_owned(col)} AND NOT isfinite(TRY_CAST({col} AS DOUBLE))",
                f"{_lit(col + '|')} || {value} || ' is not a finite number'",
            )
        )
        limit = {"INTEGER": "<= 2^31 - 1", "BIGINT": "<= 2^63 - 1"}.get(
            types[col], "< 1e9 (DECIMAL(18, 9))" if col in MONEY_COLUMNS else types[col]
        )
        out.append(
            (
                f"{_owned(col)} AND {col} IS NOT NULL AND TRY_CAST({col} AS {types[col]}) IS NULL",
                f"{_lit(col + '|')} || {value} || {_lit(' out of range: must be ' + limit)}",
            )
        )
    return out


def problem_case(
    types: dict[str, str], window: TsWindow, raw: Mapping[str, pa.DataType] | None = None
) -> str:
    """A SQL expression naming the first problem of a row as ``field|reason`` (NULL if none).

    ``types`` maps each column to its ledger type; ``window`` bounds ``ts``; ``raw`` gives the
    Arrow type of each column the file has (``None``: check every numeric column).
    """
    if raw is None:
        raw = {c: pa.float64() for c in types}  # a float fits nothing for sure: check all
    whens = [f"WHEN {cond} THEN {text}" for cond, text in _fit_checks(types, raw)]
    whens += [
        f"WHEN {cond} THEN {_lit(fld + '|' + reason)}" for cond, fld, reason in _value_checks()
    ]
    start, end = (_lit(t.isoformat()) for t in (window.start, window.end))
    whens.append(
        f"WHEN ts < CAST({start} AS TIMESTAMPTZ) OR ts >= CAST({end} AS TIMESTAMPTZ) "
        f"THEN {_lit('ts|' + window.reason())}"
    )
    return "CASE " + " ".join(whens) + " END"
