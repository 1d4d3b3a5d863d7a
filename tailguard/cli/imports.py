"""Commands: import (other systems' exports into the ledger), report pricing-drift."""

from __future__ import annotations

from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.ledger import _rejects_hint
from tailguard.cli.options import (
    FromOpt,
    LedgerOpt,
    PeriodOpt,
    PricesOpt,
    ToOpt,
    ledger_connection,
    ledger_path,
    price_book,
)
from tailguard.cli.output import JsonOpt, Output, Table, output_options, print_json
from tailguard.cli.report import report_app


@app.command("import")
def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="Where the files come from: litellm, langfuse, helicone, openai-usage or "
            "anthropic-usage."
        ),
    ],
    paths: Annotated[list[str], typer.Argument(help="Export files: .csv, .jsonl or .json.")],
    ledger: LedgerOpt = None,
    map_: Annotated[
        str | None,
        typer.Option(
            "--map",
            help="A TOML file whose customer_ids table renames ids, fields table says where "
            "the customer is and exclude table leaves records out (docs/import.md).",
        ),
    ] = None,
    prices: PricesOpt = None,
    rejects: Annotated[
        str | None,
        typer.Option("--rejects", help="Write bad rows here (JSONL) and accept the rest."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Import history from LiteLLM spend logs, Langfuse observations, Helicone requests, or
    the providers' usage reports (OpenAI Usage API, Anthropic Admin API usage_report pages).

    Tokens are converted to the ledger's convention, the event id is the source's own id (a
    re-import adds nothing) and the source's cost is kept beside tailguard's price. Without
    --rejects, one bad row refuses the whole input (exit 1) and the ledger is untouched.

    Example: tailguard import litellm spend_logs.csv --ledger ./tailguard-data
    """
    from tailguard.importers import SOURCES, ImportMap, import_files

    if source not in SOURCES:
        raise typer.BadParameter(f"must be one of {', '.join(SOURCES)}", param_hint="SOURCE")
    led = ledger_path(ledger)
    mapping = ImportMap.load(map_) if map_ else None
    with _rejects_hint(rejects):
        res = import_files(
            source, paths, led, mapping=mapping, prices=price_book(prices), rejects_path=rejects
        )
    if json_:
        print_json(res.as_dict() | {"ledger": led})
        return
    r = res.ingest
    typer.echo(
        f"imported {r.accepted:,} {source} calls into {led} (read {r.read:,}, duplicates "
        f"skipped {r.duplicates:,}, rejected {r.rejected:,}, not model calls or excluded "
        f"{res.skipped:,}, unpriced {r.unpriced:,})"
    )
    if r.rejected:
        typer.echo(f"rejected rows written to {rejects}", err=True)


@report_app.command("pricing-drift")
@output_options
def report_pricing_drift(
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    threshold: Annotated[
        float,
        typer.Option("--threshold", min=0.0, help="Percent of difference worth listing."),
    ] = 1.0,
) -> Output:
    """Models where tailguard's price and the imported source's own cost differ (> 1%).

    Over the imported calls that carry the source's cost (reported_cost_usd): per provider and
    model, the source's total, tailguard's, the difference and the drift in percent; models
    tailguard cannot price are listed with their unpriced calls.

    Example: tailguard report pricing-drift --period 2025-06
    """
    from decimal import Decimal

    from tailguard.analytics.period import window
    from tailguard.importers.drift import DRIFT_FIELDS, pricing_drift

    win = window(period, date_from, date_to)
    with ledger_connection(ledger) as con:  # a ClickHouse ledger: the SQL runs in ClickHouse
        rows = pricing_drift(con, window=win, threshold=Decimal(str(threshold)) / 100)
    table = Table(
        rows,
        DRIFT_FIELDS,
        title=f"Pricing drift above {threshold:g}% (tailguard's price against the source's cost)",
        csv_columns=DRIFT_FIELDS,
    )
    lines = [] if rows else [f"no model differs by more than {threshold:g}%"]
    return Output([table], lines=lines)
