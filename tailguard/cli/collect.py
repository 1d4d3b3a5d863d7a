"""Command: collect (an OTLP/HTTP trace receiver into the ledger)."""

from __future__ import annotations

from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.options import LedgerOpt, PricesOpt, ledger_path, price_book


@app.command("collect")
def collect(
    ledger: LedgerOpt = None,
    prices: PricesOpt = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", help="A TOML file whose otel table sets the span mapping (docs/otel.md)."
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (OTLP/HTTP).")] = 4318,
    durability: Annotated[
        str, typer.Option("--durability", help="fsync (default), write or none.")
    ] = "fsync",
    fold_process: Annotated[
        bool,
        typer.Option(
            "--fold-process/--no-fold-process",
            help="Fold the log into Parquet in a second process (uses the second core).",
        ),
    ] = True,
) -> None:
    """Receive OpenTelemetry traces (OTLP/HTTP, protobuf or JSON, POST /v1/traces) and record
    their LLM calls, tool calls and retrievals in the ledger (see docs/otel.md).

    Example: tailguard collect --ledger ./tailguard-data --port 4318
    """
    if durability not in ("fsync", "write", "none"):
        raise typer.BadParameter("must be fsync, write or none", param_hint="--durability")
    try:
        import uvicorn
    except ImportError:
        from tailguard.errors import MissingDependencyError

        raise MissingDependencyError("uvicorn", "otel") from None
    from tailguard.config import setting
    from tailguard.otel.config import load_otel_config
    from tailguard.otel.receiver import CollectApp

    app_ = CollectApp(
        ledger_path(ledger),
        load_otel_config(config),
        prices=price_book(prices),
        durability=durability,
        fold_process=fold_process,
        prices_path=setting("prices", prices),
    )
    typer.echo(f"tailguard collect: OTLP/HTTP on http://{host}:{port}/v1/traces", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning", lifespan="on")
