"""Commands: ingest, compact, rollup, customers import."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.options import LedgerOpt, PricesOpt, ledger_path, price_book, read_ledger
from tailguard.cli.output import JsonOpt, print_json
from tailguard.errors import InputError

customers_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[env TAILGUARD_LEDGER]" is not Rich markup
    help="The customer dimension (tier, segment, MRR, seats, pool).",
    no_args_is_help=True,
)
app.add_typer(customers_app, name="customers")


@contextmanager
def _rejects_hint(rejects: str | None) -> Iterator[None]:
    """The library says "give a rejects file"; on the command line that is ``--rejects FILE``."""
    try:
        yield
    except InputError as exc:
        if rejects is not None or "rejects file" not in str(exc):  # not the bad-rows refusal
            raise
        raise InputError(f"{exc}: pass --rejects FILE", exc.problems) from None


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Event files: .jsonl, .csv or .parquet.")],
    ledger: LedgerOpt = None,
    prices: PricesOpt = None,
    rejects: Annotated[
        str | None,
        typer.Option("--rejects", help="Write bad rows here (JSONL) and accept the rest."),
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="events (tailguard's event files, by extension) or otlp (OTLP/JSON traces, "
            "one ExportTraceServiceRequest per line, see docs/otel.md).",
        ),
    ] = "events",
    otel_config: Annotated[
        str | None,
        typer.Option(
            "--otel-config",
            help="A TOML file whose otel table sets the span mapping (docs/otel.md).",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Validate, price and append events to the ledger (idempotent by event_id).

    Without --rejects, one bad row refuses the whole input (exit 1) and the ledger is untouched.

    Example: tailguard ingest events.jsonl --ledger ./tailguard-data
    Example: tailguard ingest traces.jsonl --format otlp --ledger ./tailguard-data
    """
    from tailguard.ledger import ingest as do_ingest

    led = ledger_path(ledger)
    book = price_book(prices)
    if format_ not in ("events", "otlp"):
        raise typer.BadParameter("must be events or otlp", param_hint="--format")
    if format_ == "otlp":
        from tailguard.otel.cli import ingest_otlp_command

        with _rejects_hint(rejects):
            ingest_otlp_command(paths, led, book, rejects, otel_config, json_)
        return
    with _rejects_hint(rejects):
        show = sys.stderr.isatty() and not json_
        if show:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task("reading", total=None)

                def tick(read: int, staged: int) -> None:
                    bar.update(task, description=f"read {read:,} rows, {staged:,} staged")

                res = do_ingest(paths, led, prices=book, rejects_path=rejects, progress=tick)
        else:
            res = do_ingest(paths, led, prices=book, rejects_path=rejects)
    out = res.as_dict() | {"ledger": led}
    if json_:
        print_json(out)
        return
    typer.echo(
        f"accepted {res.accepted:,} events into {led} "
        f"(read {res.read:,}, duplicates skipped {res.duplicates:,}, rejected {res.rejected:,}, "
        f"unpriced llm calls {res.unpriced:,})"
    )
    if res.rejected:
        typer.echo(f"rejected rows written to {rejects}", err=True)


@app.command()
def compact(
    ledger: LedgerOpt = None,
    small_rows: Annotated[
        int, typer.Option("--small-rows", help="Merge segments with fewer rows than this.")
    ] = 100_000,
    target_rows: Annotated[
        int, typer.Option("--target-rows", help="Rows per merged segment, at most.")
    ] = 1_000_000,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            help="Seconds a replaced segment is kept for reports that listed it already.",
        ),
    ] = 3600.0,
    json_: JsonOpt = False,
) -> None:
    """Merge small segments (the gateway writes one every few seconds) into large ones.

    Safe while reports, ingests and the gateway run: no reader ever sees a row twice, and
    a kill at any step loses nothing. Replaced segments are deleted on a later run, once
    they are older than --grace.

    Example: tailguard compact --ledger ./tailguard-data
    """
    from tailguard.ledger.compact import compact as do_compact

    led = ledger_path(ledger)
    res = do_compact(
        read_ledger(led, allow_empty=True),  # a typo in --ledger must not create a ledger
        small_rows=small_rows,
        target_rows=target_rows,
        grace_s=grace,
    )
    if json_:
        print_json(res.as_dict() | {"ledger": led})
        return
    typer.echo(
        f"merged {res.source_segments:,} small segments into {res.merged_segments:,} "
        f"({res.rows:,} rows); deleted {res.deleted_segments:,} replaced segments past the grace"
    )


@app.command()
def rollup(
    ledger: LedgerOpt = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Recompute every roll-up from the segments (not only missing ones)."
        ),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Write the roll-ups (per-day sums the reports read) the ledger's segments lack.

    Every write (ingest, the gateway, compact) keeps the roll-ups already, and a report
    computes a missing one on open; this is for after a crash, a hand edit, or with --rebuild
    after a change to the roll-up's definition. Safe while writers and reports run.

    Example: tailguard rollup --rebuild --ledger ./tailguard-data
    """
    from tailguard.errors import LedgerError
    from tailguard.ledger import Ledger
    from tailguard.ledger import rollup as rollups

    led = read_ledger(ledger_path(ledger), allow_empty=True)
    from tailguard.ledger.clickhouse import ClickHouseLedger

    if isinstance(led, ClickHouseLedger):  # refreshed from the de-duplicated events (issue 14)
        from tailguard.ledger import clickhouse_rollup

        months = clickhouse_rollup.refresh(led, rebuild=rebuild)
        if json_:
            print_json({"ledger": led.url, "rebuild": rebuild, "months": months})
            return
        typer.echo(f"refreshed the roll-ups of {len(months):,} month(s) in {led.url}")
        return
    if not isinstance(led, Ledger):
        raise LedgerError("tailguard rollup works on a ledger directory, not a database URL")
    from tailguard.ledger import merged

    res = rollups.rebuild(led) if rebuild else rollups.repair(led)
    month = merged.refresh(led, force=rebuild)  # the ledger-wide month level, of this listing
    if json_:
        print_json(
            res.as_dict() | {"ledger": str(led.path), "rebuild": rebuild, "month": month.as_dict()}
        )
        return
    typer.echo(
        f"{'rebuilt' if rebuild else 'wrote'} {res.written:,} roll-ups ({res.rows:,} rows) "
        f"for {res.segments:,} live segments; removed {res.removed:,} orphan roll-ups; "
        + (f"month level written ({month.rows:,} rows)" if month.written else "month level fresh")
    )


@customers_app.command("import")
def customers_import(
    path: Annotated[
        str,
        typer.Argument(
            help="CSV: customer_id, name, tier, segment, mrr_usd, "
            "seats, contracted_pool_usd, signup_date."
        ),
    ],
    ledger: LedgerOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Import (upsert) customers from CSV. Any bad row refuses the file (exit 1).

    Example: tailguard customers import customers.csv
    """
    from tailguard.customers import upsert
    from tailguard.ledger import read_customers_csv
    from tailguard.ledger.url import open_ledger

    led = open_ledger(ledger_path(ledger))
    new = read_customers_csv(path)
    merged = upsert(led.customers_table(), new)
    led.write_customers(merged)
    if json_:
        print_json(
            {"imported": new.num_rows, "customers": merged.num_rows, "ledger": str(led.path)}
        )
    else:
        typer.echo(f"imported {new.num_rows:,} customers ({merged.num_rows:,} in {led.path})")


ledger_app = typer.Typer(
    rich_markup_mode=None,
    help="The ledger's storage: create a ClickHouse ledger, copy a directory ledger into one.",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("init")
def ledger_init(
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="duckdb (a ledger directory) or clickhouse (--ledger chdb:///DIR or "
            "clickhouse://HOST:8123/DB).",
        ),
    ] = "duckdb",
    ledger: LedgerOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create a ledger, or migrate one (ClickHouse: add the columns the event schema gained).

    Idempotent: running it on an existing ledger changes only what is missing.

    Example: tailguard ledger init --engine clickhouse --ledger chdb:///var/lib/tailguard
    """
    from tailguard.ledger.clickhouse import ClickHouseLedger, is_clickhouse_url
    from tailguard.ledger.url import open_ledger

    target = ledger_path(ledger)
    if engine not in ("duckdb", "clickhouse"):
        raise typer.BadParameter("must be duckdb or clickhouse", param_hint="--engine")
    if (engine == "clickhouse") != is_clickhouse_url(target):
        raise typer.BadParameter(
            "--engine clickhouse takes --ledger chdb:///DIR or clickhouse://HOST:PORT/DB; "
            "--engine duckdb takes a directory",
            param_hint="--ledger",
        )
    led = open_ledger(target)
    if isinstance(led, ClickHouseLedger):
        changes = led.init()
    else:
        existed = led.segments_dir.exists()
        led.ensure()
        changes = [] if existed else [f"created {led.path}"]
    if json_:
        print_json({"ledger": target, "engine": engine, "changes": changes})
        return
    typer.echo(f"{target}: " + ("; ".join(changes) if changes else "up to date"))


@ledger_app.command("copy")
def ledger_copy(
    source: Annotated[str, typer.Option("--from", help="The ledger directory to copy.")],
    dest: Annotated[
        str, typer.Option("--to", help="The ClickHouse ledger URL (chdb:///DIR, clickhouse://...).")
    ],
    json_: JsonOpt = False,
) -> None:
    """Copy a directory (DuckDB/Parquet) ledger's events and customers into ClickHouse.

    Idempotent by event_id: a second run, or one after an interrupted run, adds only what is
    missing.

    Example: tailguard ledger copy --from ./tailguard-data --to chdb:///var/lib/tailguard
    """
    from tailguard.cli.options import read_ledger
    from tailguard.ledger.clickhouse import ClickHouseLedger, is_clickhouse_url

    if not is_clickhouse_url(dest):
        raise typer.BadParameter(
            "must be chdb:///DIR or clickhouse://HOST:PORT/DB", param_hint="--to"
        )
    src = read_ledger(source)
    led = ClickHouseLedger(dest)
    res = led.copy_from(src)
    out = {"from": source, "to": dest, "copied": res.accepted, "duplicates": res.duplicates}
    if json_:
        print_json(out)
        return
    typer.echo(
        f"copied {res.accepted:,} events from {source} to {dest} (already there {res.duplicates:,})"
    )
