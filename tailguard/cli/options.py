"""Options shared by several commands (same names everywhere)."""

from __future__ import annotations

from typing import Annotated

import typer

LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger", help="Ledger directory [env TAILGUARD_LEDGER; default ./tailguard-data]."
    ),
]
PricesOpt = Annotated[
    str | None,
    typer.Option("--prices", help="Price override TOML [env TAILGUARD_PRICES]."),
]
PeriodOpt = Annotated[str | None, typer.Option("--period", help="Calendar month, YYYY-MM.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")]


def ledger_path(flag: str | None) -> str:
    from tailguard.config import setting

    return str(setting("ledger", flag))


def ledger_connection(flag: str | None):  # type: ignore[no-untyped-def]
    """A DuckDB connection over the ledger (views ``events``, ``customers``), for a ``with``
    block: leaving it closes the connection."""
    from tailguard.ledger import Ledger

    return Ledger(ledger_path(flag)).connect()


def price_book(flag: str | None):  # type: ignore[no-untyped-def]
    from tailguard.config import setting
    from tailguard.pricing import PriceBook

    return PriceBook.load(setting("prices", flag))
