"""Commands: simulate (a realistic event log with planted heavy-tail customers)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from tailguard.cli.app import app

_EXAMPLE = """\
Example:

  tailguard simulate --customers 2000 --days 30 --seed 7 --out ./sim --format parquet

Writes events.jsonl (or events.parquet), customers.csv, truth.json (who carries which
planted heavy-tail shape), prices.toml (the simulated operator's unit costs: ingest with
--prices) and policy.toml (the guard policy the customers ran under: tailguard kpis --policy)
into --out. The same seed gives byte-identical files. What tailguard demo runs:
--customers 240 --days 365 --start 2025-12-01 --seed 7 --format parquet.
"""


@app.command(
    help=f"Simulate customers' LLM usage and write events, customers and truth.\n\n{_EXAMPLE}"
)
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created).")],
    customers: Annotated[
        int, typer.Option("--customers", min=1, help="Number of customers.")
    ] = 200,
    days: Annotated[int, typer.Option("--days", min=1, help="Days simulated.")] = 30,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    fmt: Annotated[
        str, typer.Option("--format", help="Events file format: jsonl or parquet.")
    ] = "jsonl",
    start: Annotated[
        str, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")
    ] = "2026-01-01",
    trend: Annotated[
        bool,
        typer.Option(
            "--trend/--no-trend",
            help="Plant the drift of an optimised agent: cost per call falls, cost per resolved "
            "task rises.",
        ),
    ] = True,
    density: Annotated[
        float,
        typer.Option(
            "--density",
            min=0.01,
            max=10.0,
            help="Scale of each user's activity (1 = the calibrated product).",
        ),
    ] = 1.0,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    from tailguard.cli.output import print_json
    from tailguard.simulate import simulate as run_simulation

    if fmt not in ("jsonl", "parquet"):
        raise typer.BadParameter("choose jsonl or parquet", param_hint="--format")
    try:
        first = dt.date.fromisoformat(start)
    except ValueError as exc:
        raise typer.BadParameter(f"not a date: {start!r}", param_hint="--start") from exc
    res = run_simulation(
        customers=customers,
        days=days,
        seed=seed,
        out=out,
        fmt=fmt,  # type: ignore[arg-type]
        start=first,
        trend=trend,
        density=density,
    )
    summary = {
        "events": res.events,
        "events_by_kind": res.events_by_kind,
        "customers": res.customers,
        "days": res.days,
        "seed": res.seed,
        "sessions": res.sessions,
        "tasks": res.tasks,
        "top1_share": res.top1_share,  # every digit (issue 16): only the line below rounds
        "gini": res.gini,
        "events_path": str(res.events_path),
        "customers_path": str(res.customers_path),
        "truth_path": str(res.truth_path),
        "prices_path": str(res.prices_path),
        "policy_path": str(res.policy_path),
    }
    if json_:
        print_json(summary)
        return
    typer.echo(
        f"{res.events:,} events ({res.sessions:,} sessions, {res.tasks:,} tasks) for "
        f"{res.customers:,} customers over {res.days} days; top 1% of customers = "
        f"{res.top1_share:.0%} of estimated spend, Gini {res.gini:.2f}"
    )
    typer.echo(
        f"wrote {res.events_path}, {res.customers_path}, {res.truth_path}, {res.prices_path}, "
        f"{res.policy_path}"
    )
    typer.echo(f"ingest with: tailguard ingest {res.events_path} --prices {res.prices_path}")
