"""One output path for every read command: a table that reads in a terminal, --json, --csv.

A read command is decorated with ``@output_options``: it gains ``--json``, ``--csv``,
``--columns`` and ``--wide`` (sqlite-utils' ``output_options``), and returns what it found as an
``Output`` (tables, the JSON payload, lines of text), which the decorator writes in the chosen
format. Commands that print in several steps call ``emit`` instead; it reads the same choice.

Tables fit the terminal (Rich reads its width, ``COLUMNS`` included): columns are taken in the
order the command lists them, most telling first, for as long as they fit at full width; the
rest are named under the table and stay in ``--json``/``--csv``. ``--columns a,b`` picks
columns, ``--wide`` shows them all (lines then run past the terminal rather than cut a header
or wrap a value). Headers are short human words (``HEADERS``); ``--columns`` takes field names.

JSON keeps every digit: a Decimal is always a JSON number written with its exact digits (msgspec's
``decimal_format="number"``; JSON numbers have no precision limit), so a field is a number in every
row, never a string in one and a float in the next. A non-finite Decimal (never money) is ``null``.
Datetimes are RFC 3339 (``Z`` for UTC). CSV writes the exact Decimal string. Only tables round,
money by ``tailguard.money.format_usd``.
"""

from __future__ import annotations

import contextvars
import csv
import functools
import inspect
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import msgspec
import typer

from tailguard.money import format_usd, to_decimal

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (every field, full precision).")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV (every field, full precision).")]
ColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns", help="Table columns to show, comma-separated field names (see --csv)."
    ),
]
WideOpt = Annotated[
    bool,
    typer.Option("--wide", help="Show every table column, past the terminal's width if need be."),
]

#: a field name -> its table header: short words a person reads, the unit where it helps
HEADERS: dict[str, str] = {
    "customer_id": "customer",
    "entity_id": "id",
    "entity_type": "type",
    "cost_usd": "cost $",
    "allocated_usd": "alloc $",
    "llm_cost_usd": "LLM $",
    "llm_calls": "calls",
    "tasks": "tasks",
    "successful_tasks": "wins",
    "cost_per_successful_task": "$/win",
    "cost_per_resolved_task": "$/resolved",
    "retries_per_win": "retries/win",
    "escalation_rate": "escalation",
    "unpriced_calls": "unpriced",
    "mrr_usd": "MRR $",
    "cost_pct_of_mrr": "% of MRR",
    "gross_margin_usd": "margin $",
    "revenue_usd": "revenue $",
    "target_pct": "target %",
    "alert_pct": "alert %",
    "spend_usd": "spend $",
    "spend_24h_usd": "24h $",
    "trailing_median_usd": "usual $",
    "prev_day_usd": "day before $",
    "delta_usd": "change $",
    "active_users": "users",
    "top_lever": "top lever",
    "invocations_per_task": "calls/task",
    "effective_tokens_per_task": "eff tok/task",
    "effective_tokens_per_invocation": "eff tok/call",
    "cost_per_task": "$/task",
    "cost_per_call": "$/call",
    "failure_cost_share": "failed share",
    "resolved_tasks": "resolved",
}


def header(name: str) -> str:
    """The table header of a field: ``HEADERS``, else the name with spaces for underscores."""
    return HEADERS.get(name, name.replace("_", " "))


@dataclass(frozen=True)
class Choice:
    """What the user asked for: a format and which table columns."""

    json: bool = False
    csv: bool = False
    columns: tuple[str, ...] | None = None
    wide: bool = False
    #: titles of the tables printed so far with --columns (the first one is checked strictly)
    seen: list[str] = field(default_factory=list)


#: the plain choice: a table with the columns that fit
_PLAIN = Choice()
_CHOICE: contextvars.ContextVar[Choice] = contextvars.ContextVar("output_choice")


@dataclass
class Table:
    """Rows and the columns a table shows, in order of importance (the first is never dropped)."""

    rows: Sequence[Mapping[str, Any]]
    columns: Sequence[str] | None = None
    title: str | None = None
    #: columns of --csv when they differ from the table's (None: every field of the rows)
    csv_columns: Sequence[str] | None = None


@dataclass
class Output:
    """What a read command found. ``--json`` writes ``payload`` (default: the first table's
    rows), ``--csv`` the ``csv`` table (default: the first table), a terminal every table then
    ``lines``."""

    tables: list[Table] = field(default_factory=list)
    payload: Any = None
    lines: list[str] = field(default_factory=list)
    #: what --csv writes when it is not the first table shown (e.g. raw values, one per row)
    csv: Table | None = None
    #: a terminal view of its own (a summary line, several tables), in place of ``tables``
    show: Callable[[], None] | None = None


# --- JSON and CSV -------------------------------------------------------------------------------


def _number(o: Decimal) -> Any:
    # only reached for NaN / infinity, which JSON cannot hold: null, as msgspec writes float NaN
    return None if not o.is_finite() else o


def _hook(o: Any) -> Any:
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, Sequence) and not isinstance(o, str | bytes):
        return list(o)  # a sequence of rows built when asked (``customers.CustomerRows``)
    item = getattr(o, "item", None)  # a NumPy scalar (float64, int64): its Python value
    if callable(item) and getattr(o, "shape", None) == ():
        return item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=_hook)


def dumps(obj: Any) -> str:
    try:
        raw = _ENCODER.encode(obj)
    except (TypeError, ValueError):  # a non-finite Decimal somewhere: null it, then encode
        raw = _ENCODER.encode(_finite(obj))
    return msgspec.json.format(raw, indent=2).decode()


def _finite(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return _number(obj)
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return [_finite(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj) + "\n")


def print_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    cols = list(columns or (rows[0].keys() if rows else []))
    column = getattr(rows, "column", None)
    if callable(column):  # rows kept by column (``customers.CustomerRows``): no dict per row
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        w.writerows(zip(*(column(c) for c in cols), strict=True))  # None is written ""
        return
    w = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})


# --- tables -------------------------------------------------------------------------------------


def fmt_cell(v: Any, name: str = "") -> str:
    """A value as a table shows it: fractional numbers by ``format_usd``'s digits rule without
    the ``$`` (money headers say ``$``), integers with thousands separators. ``name`` is the
    field, for rules that depend on it."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, Decimal | float):
        # one digits rule for every fractional number, money or ratio: tailguard.money's
        return format_usd(to_decimal(v), symbol=False)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def _bad_columns(asked: Sequence[str], available: Sequence[str]) -> None:
    unknown = [c for c in asked if c not in available]
    if unknown:
        raise typer.BadParameter(
            f"no column {', '.join(map(repr, unknown))}; columns: {', '.join(available)}",
            param_hint="--columns",
        )


def fit_columns(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int
) -> tuple[list[str], list[str]]:
    """The columns shown at ``width`` and those left out, keeping the given order.

    Each column is as wide as its header or widest value (Rich draws ``│ x │``: three
    characters per column plus one), so a shown column never cuts its header nor wraps a value.
    A column that does not fit is skipped and narrower ones after it are still tried; the first
    column (what a row is about) is always shown.
    """
    from rich.cells import cell_len

    shown: list[str] = []
    left: list[str] = []
    used = 1
    for i, c in enumerate(columns):
        w = max([cell_len(header(c))] + [cell_len(fmt_cell(r.get(c), c)) for r in rows]) + 3
        if i == 0 or used + w <= width:
            shown.append(c)
            used += w
        else:
            left.append(c)
    return shown, left


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> None:
    """Rows as a Rich table that fits the terminal (see the module docstring)."""
    from rich.console import Console
    from rich.table import Table as RichTable

    choice = _CHOICE.get(_PLAIN)
    cols = list(columns or (rows[0].keys() if rows else []))
    console = Console()
    available = list(rows[0].keys()) if rows else cols
    picked = [c for c in choice.columns or () if c in available]
    if choice.columns is not None and not choice.seen:
        # the command's main table: every asked column must be one of its fields
        _bad_columns(choice.columns, available)
    if choice.columns is not None:
        choice.seen.append(title or "")
    if picked:  # a later table (anomalies' top users...) shows the asked columns it has
        shown, left = picked, []
    elif choice.wide or choice.columns is not None:
        shown, left = cols, []
    else:
        shown, left = fit_columns(rows, cols, console.width)
    if picked or choice.wide:
        need = sum(
            max([len(header(c))] + [len(fmt_cell(r.get(c), c)) for r in rows]) + 3 for c in shown
        )
        console = Console(width=max(console.width, need + 1))
    if not rows:
        console.print(f"{title}: no rows" if title else "no rows")
        return
    if title:  # a line of its own: a table's title would wrap to the table's width
        console.print(title, style="bold", highlight=False)
    t = RichTable(show_lines=False)
    for c in shown:
        first = next((r.get(c) for r in rows if r.get(c) is not None), None)
        t.add_column(header(c), justify="right" if _numeric(first) else "left", no_wrap=True)
    for r in rows:
        t.add_row(*(fmt_cell(r.get(c), c) for c in shown))
    console.print(t)
    if left:
        console.print(
            f"{len(left)} more column(s): {', '.join(left)}. Show them with --wide or "
            "--columns; --json and --csv hold every field.",
            highlight=False,
        )


# --- one path for every read command ------------------------------------------------------------


def choice() -> Choice:
    """The output choice of the running command."""
    return _CHOICE.get(_PLAIN)


def emit(
    rows: Sequence[Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    *,
    json_: bool,
    csv_: bool,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    payload: Any = None,
) -> None:
    """Write ``rows`` in the chosen format. ``payload`` (if given) replaces ``rows`` in JSON."""
    rows = rows if isinstance(rows, Sequence) else list(rows)  # a sequence as it is: by column
    if json_ and csv_:
        raise typer.BadParameter("choose one of --json and --csv")
    picked = _CHOICE.get(_PLAIN).columns
    if json_:
        print_json(rows if payload is None else payload)
    elif csv_:
        if picked is not None:
            _bad_columns(picked, list(rows[0].keys()) if rows else list(columns or []))
        print_csv(rows, picked or columns)
    else:
        print_table(rows, columns, title=title)


def render(out: Output, ch: Choice) -> None:
    """Write what a command returned in the chosen format."""
    if ch.json and ch.csv:
        raise typer.BadParameter("choose one of --json and --csv")
    first = out.tables[0] if out.tables else Table(rows=[])
    if ch.json:
        print_json(list(first.rows) if out.payload is None else out.payload)
        return
    if ch.csv:
        t = out.csv or first
        emit(t.rows, json_=False, csv_=True, columns=t.csv_columns)
        return
    if out.show is not None:
        out.show()
    for t in out.tables if out.show is None else []:
        print_table(t.rows, t.columns, title=t.title)
    for line in out.lines:
        typer.echo(line)


F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: dict[str, tuple[Any, Any]] = {
    "json_": (JsonOpt, False),
    "csv_": (CsvOpt, False),
    "columns": (ColumnsOpt, None),
    "wide": (WideOpt, False),
}


def output_options(func: F) -> F:
    """Give a read command ``--json``, ``--csv``, ``--columns`` and ``--wide``, and write the
    ``Output`` it returns in the chosen format.

    A command may declare some of the four parameters itself (to look at the choice); the
    others are added to its signature for Typer and taken off before it is called. While it
    runs, ``emit``/``print_table`` read the same choice, so a command that prints step by step
    gets the same tables.
    """
    sig = inspect.signature(func, eval_str=True)  # Annotated objects, as Typer reads them
    own = set(sig.parameters)
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, (ann, default) in _OPTIONS.items()
        if name not in own
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.get(name, default) for name, (_, default) in _OPTIONS.items()}
        for p in added:
            kwargs.pop(p.name, None)
        cols = values["columns"]
        ch = Choice(
            json=bool(values["json_"]),
            csv=bool(values["csv_"]),
            columns=tuple(c.strip() for c in cols.split(",") if c.strip()) if cols else None,
            wide=bool(values["wide"]),
        )
        if ch.json and ch.csv:
            raise typer.BadParameter("choose one of --json and --csv")
        from tailguard.cli.options import check_dates

        check_dates(kwargs)
        token = _CHOICE.set(ch)
        try:
            result = func(*args, **kwargs)
            if isinstance(result, Output):
                render(result, ch)
                return None
            return result
        finally:
            _CHOICE.reset(token)

    params = list(sig.parameters.values())
    wrapper.__signature__ = sig.replace(parameters=params + added)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params + added}
    return wrapper  # type: ignore[return-value]
