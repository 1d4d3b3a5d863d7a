"""The command-line side of OpenTelemetry in: ``ingest --format otlp`` output, ``collect``."""

from __future__ import annotations

from typing import Any

import typer

from tailguard.cli.output import print_json


def ingest_otlp_command(
    paths: list[str],
    ledger: Any,
    book: Any,
    rejects: str | None,
    otel_config: str | None,
    json_: bool,
) -> None:
    """``tailguard ingest FILE... --format otlp`` (the options are ``ingest``'s)."""
    from tailguard.otel.config import load_otel_config
    from tailguard.otel.ingest import ingest_otlp

    res = ingest_otlp(
        paths, ledger, prices=book, cfg=load_otel_config(otel_config), rejects_path=rejects
    )
    out = res.as_dict() | {"ledger": str(ledger)}
    if json_:
        print_json(out)
        return
    typer.echo(
        f"accepted {res.accepted:,} events into {ledger} from {res.spans:,} spans "
        f"({res.calls:,} calls, tools and retrievals; duplicates skipped {res.duplicates:,}, "
        f"rejected {res.rejected:,}, unattributed {res.unattributed:,})"
    )
    if res.rejected:
        typer.echo(f"rejected spans written to {rejects}", err=True)
