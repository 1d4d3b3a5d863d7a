"""Commands: export focus, reconcile (the ledger out as FOCUS rows; the invoice against it)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.options import ConfigOpt, LedgerOpt, read_ledger
from tailguard.cli.output import Output, Table, output_options
from tailguard.errors import ConfigError, TailguardError

export_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[env TAILGUARD_LEDGER]" is not Rich markup
    help="Export the ledger in other systems' formats.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")

MonthOpt = Annotated[str, typer.Option("--period", help="Calendar month, YYYY-MM.")]


@export_app.command("focus")
def export_focus_cmd(
    period: MonthOpt,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file: .parquet or .csv.")],
    ledger: LedgerOpt = None,
    billing_account_id: Annotated[
        str | None,
        typer.Option(
            "--billing-account-id",
            help="BillingAccountId [env TAILGUARD_BILLING_ACCOUNT_ID; config billing_account_id].",
        ),
    ] = None,
    billing_account_name: Annotated[
        str | None,
        typer.Option(
            "--billing-account-name",
            help="BillingAccountName [env TAILGUARD_BILLING_ACCOUNT_NAME; default: the id].",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Write a month of the ledger as FOCUS 1.2 cost-and-usage rows (Parquet or CSV).

    One row per day x customer x provider x model x token type (input, cached input, cache
    write, output; total for a reported cost, which cannot be split) and per day x customer for
    tools, retrieval and escalation; the customer in ConsumerId and x_CustomerId.

    Example: tailguard export focus --period 2025-06 -o focus-2025-06.parquet
    """
    from tailguard.analytics.period import window
    from tailguard.finops.focus import billing_account, export_focus
    from tailguard.money import format_usd

    window(period, None, None)  # a bad month is a usage error before anything is opened
    if not billing_account_id and not os.environ.get("TAILGUARD_BILLING_ACCOUNT_ID"):
        from tailguard.config import load_file

        if not load_file(config).get("billing_account_id"):
            raise ConfigError(  # the library names the settings; here the flag comes first
                "no billing account id: pass --billing-account-id, set "
                "TAILGUARD_BILLING_ACCOUNT_ID, or billing_account_id in the config file"
            )
    account_id, account_name = billing_account(
        billing_account_id, billing_account_name, config_path=config
    )
    done = export_focus(
        read_ledger(ledger), period, output, account_id=account_id, account_name=account_name
    )
    typer.echo(
        f"{done.path}: {done.rows:,} FOCUS rows, BilledCost {format_usd(done.billed_cost_usd)}"
    )
    if done.unpriced_calls:
        typer.echo(
            f"{done.unpriced_calls:,} LLM calls without a price left out (no cost to report); "
            "price them with --prices and re-ingest",
            err=True,
        )


@app.command("reconcile")
@output_options
def reconcile_cmd(
    invoice: Annotated[Path, typer.Option("--invoice", help="The provider's bill (JSON or CSV).")],
    period: MonthOpt,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="openai-costs | anthropic-costs | csv (default: from the file).",
        ),
    ] = None,
    ledger: LedgerOpt = None,
    allocate: Annotated[
        str | None,
        typer.Option(
            "--allocate",
            help="proportional | even | none: spread each day x provider's unattributed "
            "remainder over that day's customers, stored as allocation rows (none: remove "
            "the month's allocation). Default: allocate nothing, change nothing.",
        ),
    ] = None,
) -> Output:
    """The invoice against the ledger: billed, attributed, unattributed, coverage per day x
    provider (x model where the bill names one). A day where the ledger exceeds the bill is an
    error (exit 1), shown on its row, never spread.

    With --allocate, the remainder is spread over the customers (whole cents, largest remainder
    method) and stored beside the ledger; every per-customer report then shows allocated_usd
    next to cost_usd, and attributed + allocated equals the bill.

    Example: tailguard reconcile --invoice costs.json --format openai-costs --period 2025-01
    """
    from tailguard.analytics.period import window
    from tailguard.finops.allocation import ALLOCATION_FIELDS, METHODS, store
    from tailguard.finops.allocation import allocate as allocate_
    from tailguard.finops.invoices import read_invoice
    from tailguard.finops.reconcile import RECONCILE_FIELDS, reconcile
    from tailguard.money import format_usd

    window(period, None, None)
    if allocate is not None and allocate not in METHODS:
        raise typer.BadParameter(
            f"{allocate!r}: one of {', '.join(METHODS)}", param_hint="--allocate"
        )
    lines = read_invoice(invoice, fmt)
    led = read_ledger(ledger)
    rec = reconcile(led, lines, period)
    notes = [
        f"billed {format_usd(rec.billed_usd)}, attributed {format_usd(rec.attributed_usd)}, "
        f"unattributed {format_usd(rec.unattributed_usd)}"
    ]
    if rec.lines_outside_period:
        notes.append(f"{rec.lines_outside_period} invoice line(s) outside {period} not compared")
    tables = [Table(rec.rows, RECONCILE_FIELDS, title=f"Invoice against the ledger, {period}")]
    if allocate == "none":
        store(led, period, None)
        notes.append(f"allocation of {period} removed")
    elif allocate is not None and not rec.over_attributed:
        alloc = allocate_(led, rec.rows, period, allocate)
        store(led, period, alloc)
        total = sum((c["total_usd"] for c in alloc.customers), Decimal(0))
        tables.append(
            Table(alloc.customers, ALLOCATION_FIELDS, title=f"Per customer, {allocate} allocation")
        )
        notes.append(
            f"allocated {format_usd(alloc.allocated_usd)} over {len(alloc.customers)} "
            f"customer(s) ({allocate}); attributed + allocated = {format_usd(total)} "
            f"(billed {format_usd(rec.billed_usd)})"
        )
        for u in alloc.unallocated:
            notes.append(
                f"{u['date']} {u['provider']}: {format_usd(u['unattributed_usd'])} not allocated "
                "(no customer called this provider in the month)"
            )
    elif allocate is not None:
        notes.append("nothing allocated: the ledger exceeds the bill on some rows")
    out = Output(tables, lines=notes)
    if rec.over_attributed:
        from tailguard.cli.output import choice, render

        render(out, choice())
        first = rec.over_attributed[0]
        raise TailguardError(
            f"the ledger exceeds the bill on {len(rec.over_attributed)} day x provider row(s) "
            f"(first: {first['date']} {first['provider']}"
            + (f" {first['model']}" if first["model"] else "")
            + f", by {format_usd(-first['unattributed_usd'])}): double counting or stale prices"
        )
    return out
