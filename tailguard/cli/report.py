"""Commands: report customers."""

from __future__ import annotations

from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.options import FromOpt, LedgerOpt, PeriodOpt, ToOpt, read_ledger
from tailguard.cli.output import Output, Table, output_options

report_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[env TAILGUARD_LEDGER]" is not Rich markup
    help="Reports over the ledger.",
    no_args_is_help=True,
)
app.add_typer(report_app, name="report")

#: the table's columns, most telling first: at 80 columns the first few show, the rest are
#: named under the table (--wide, --columns); --csv and --json carry every field
TABLE_COLUMNS = (
    "customer_id",
    "cost_usd",
    "cost_pct_of_mrr",
    "cost_per_successful_task",
    "allocated_usd",
    "tier",
    "successful_tasks",
    "tasks",
    "llm_calls",
    "mrr_usd",
    "gross_margin_usd",
    "retries_per_win",
    "escalation_rate",
    "unpriced_calls",
)


@report_app.command("customers")
@output_options
def report_customers(
    ledger: LedgerOpt = None,
    period: PeriodOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    sort: Annotated[
        str, typer.Option("--sort", help="Field to sort by (descending).")
    ] = "cost_usd",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Show the first N rows.")
    ] = None,
) -> Output:
    """One row per customer, by fully loaded cost (LLM + tools + retrieval + escalation).

    Example: tailguard report customers --period 2025-06 --limit 20
    """
    from tailguard.analytics.customers import CUSTOMER_FIELDS
    from tailguard.analytics.period import window
    from tailguard.analytics.report import customer_report
    from tailguard.cli.panel import no_data_hint, period_flag

    win = window(period, date_from, date_to)
    with no_data_hint(period_flag):
        rows = customer_report(read_ledger(ledger), window=win, sort=sort, limit=limit)
    # every row states the window (window_start/window_end, in JSON and CSV); the title too
    span = f"{rows[0]['window_start']} .. {rows[0]['window_end']}" if rows else ""
    table = Table(
        rows,
        TABLE_COLUMNS,
        title=f"Per-customer unit economics, {span}",
        csv_columns=CUSTOMER_FIELDS,
    )
    return Output([table])
