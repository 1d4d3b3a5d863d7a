"""One output path for every read command: a Rich table on a terminal, ``--json``, ``--csv``.

Every report command takes the same two flags (``JsonOpt``, ``CsvOpt``) and hands its rows to
``emit``. Decimals are written to JSON as numbers and to CSV as their exact string.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV.")]


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        # JSON numbers; the Decimal's exact digits are kept (no binary float round trip).
        return float(o) if o == o.to_integral_value() or len(o.as_tuple().digits) <= 15 else str(o)
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, indent=2)


def print_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj) + "\n")


def print_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    cols = list(columns or (rows[0].keys() if rows else []))
    w = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})


def fmt_cell(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, Decimal | float):
        return f"{v:,.2f}" if abs(v) >= 1 or v == 0 else f"{v:.4f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = list(columns or (rows[0].keys() if rows else []))
    t = Table(title=title, show_lines=False)
    for c in cols:
        t.add_column(c, justify="right" if rows and _numeric(rows[0].get(c)) else "left")
    for r in rows:
        t.add_row(*(fmt_cell(r.get(c)) for c in cols))
    Console().print(t)


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


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
    rows = list(rows)
    if json_ and csv_:
        raise typer.BadParameter("choose one of --json and --csv")
    if json_:
        print_json(rows if payload is None else payload)
    elif csv_:
        print_csv(rows, columns)
    else:
        print_table(rows, columns, title=title)
