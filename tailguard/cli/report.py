"""Commands: report customers."""

from __future__ import annotations

from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.options import FromOpt, LedgerOpt, PeriodOpt, ToOpt, ledger_path
from tailguard.cli.output import CsvOpt, JsonOpt, emit

report_app = typer.Typer(help="Reports over the ledger.", no_args_is_help=True)
app.add_typer(report_app, name="report")

TABLE_COLUMNS = (
    "customer_id",
    "tier",
    "cost_usd",
    "llm_calls",
    "tasks",
    "successful_tasks",
    "cost_per_successful_task",
    "retries_per_win",
    "escalation_rate",
    "unpriced_calls",
    "mrr_usd",
    "cost_pct_of_mrr",
    "gross_margin_usd",
)


@report_app.command("customers")
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
    json_: JsonOpt = False,
    csv_: CsvOpt = False,
) -> None:
    """One row per customer, by fully loaded cost (LLM + tools + retrieval + escalation).

    Example: tailguard report customers --period 2025-06 --limit 20
    """
    from tailguard.analytics.customers import CUSTOMER_FIELDS
    from tailguard.analytics.period import window
    from tailguard.analytics.report import customer_report

    win = window(period, date_from, date_to)
    rows = customer_report(ledger_path(ledger), window=win, sort=sort, limit=limit)
    emit(
        rows,
        json_=json_,
        csv_=csv_,
        columns=CUSTOMER_FIELDS if csv_ else TABLE_COLUMNS,
        title="Per-customer unit economics",
    )
