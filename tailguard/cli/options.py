"""Options shared by several commands (same names everywhere), and the helpers that read them.

One place for each: the ledger a read command opens (``read_ledger``, ``ledger_connection``: a
missing or empty ledger is an error, never an empty report), dates (``parse_date``), the guard
policy (``load_policy_option``) and config files (``ConfigOpt``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tailguard.errors import ArgumentError, LedgerError

if TYPE_CHECKING:
    import duckdb

    from tailguard.guard.policy import Policy
    from tailguard.ledger import Ledger

LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        help="Ledger directory, or chdb:///DIR or clickhouse://HOST:PORT/DB "
        "[env TAILGUARD_LEDGER; default ./tailguard-data].",
    ),
]
PricesOpt = Annotated[
    str | None,
    typer.Option("--prices", help="Price override TOML [env TAILGUARD_PRICES]."),
]
PolicyOpt = Annotated[
    str | None,
    typer.Option("--policy", help="Guard policy TOML for tier caps [env TAILGUARD_POLICY]."),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", help="Config TOML [env TAILGUARD_CONFIG; default ./tailguard.toml]."),
]
PeriodOpt = Annotated[str | None, typer.Option("--period", help="Calendar month, YYYY-MM.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")]


def ledger_path(flag: str | None) -> str:
    """The ledger directory: the flag, else ``TAILGUARD_LEDGER``, the config file, the default."""
    from tailguard.config import setting

    return str(setting("ledger", flag))


def read_ledger(flag: str | None, *, allow_empty: bool = False) -> Ledger:
    """The ledger a read command reports on; a missing or empty one is an error (exit 1).

    A typo in ``--ledger`` must not read as "no spend": a path with no ledger names the path
    and how to make one, and a ledger with no events yet says so in one line (unless
    ``allow_empty``: ``compact`` has nothing to do there, which is not an error).
    """
    from tailguard.ledger import Ledger

    path = ledger_path(flag)
    from tailguard.ledger.clickhouse import is_clickhouse_url

    if is_clickhouse_url(path):
        return _read_clickhouse(path, allow_empty=allow_empty)
    p = Path(path)
    if not p.exists():
        raise LedgerError(
            f"no ledger at {path}: create it with `tailguard ingest EVENTS --ledger {path}`, "
            "or point --ledger (or TAILGUARD_LEDGER) at an existing ledger"
        )
    if not p.is_dir():
        raise LedgerError(f"{path} is a file, not a ledger directory")
    led = Ledger(p)
    if not allow_empty and not led.segment_files():
        raise LedgerError(
            f"the ledger at {path} holds no events yet: add some with "
            f"`tailguard ingest EVENTS --ledger {path}`"
        )
    return led


def _read_clickhouse(url: str, *, allow_empty: bool) -> Ledger:
    """``read_ledger`` for a ClickHouse URL: the same two refusals (no ledger, no events)."""
    from tailguard.ledger.clickhouse import ClickHouseLedger

    led = ClickHouseLedger(url)
    if not led.exists():
        raise LedgerError(
            f"no ledger at {url}: create it with "
            f"`tailguard ledger init --engine clickhouse --ledger {url}`"
        )
    if not allow_empty and not led.has_events():
        raise LedgerError(
            f"the ledger at {url} holds no events yet: add some with "
            f"`tailguard ingest EVENTS --ledger {url}`"
        )
    return led


def ledger_connection(flag: str | None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over the ledger (views ``events``, ``customers``), for a ``with``
    block: leaving it closes the connection. A missing or empty ledger is refused first. On a
    ClickHouse ledger, a ``QueryContext`` in its dialect (it answers the same calls), so the
    reports' SQL runs in ClickHouse rather than on a copy of every event."""
    led = read_ledger(flag)
    if getattr(led, "dialect", None) is not None:
        from tailguard.analytics.context import QueryContext

        return QueryContext.open(led)  # type: ignore[return-value]
    return led.connect()


def price_book(flag: str | None) -> Any:
    """The price book: genai-prices under the override file of ``--prices``/``TAILGUARD_PRICES``."""
    from tailguard.config import setting
    from tailguard.pricing import PriceBook

    return PriceBook.load(setting("prices", flag))


#: a library parameter whose flag is not ``--`` + its name with dashes
_FLAGS = {"date_from": "--from", "date_to": "--to"}


def flag_for(argument: str) -> str:
    """The command-line flag that sets a library parameter (``date_from`` -> ``--from``)."""
    return _FLAGS.get(argument, "--" + argument.replace("_", "-"))


def _argument(flag: str) -> str:
    return next((a for a, f in _FLAGS.items() if f == flag), flag.lstrip("-").replace("-", "_"))


def parse_date(value: str | None, flag: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` flag as a date (``None`` stays ``None``); anything else is a usage error
    (exit 2), as every bad date is, whichever command reads it."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ArgumentError(_argument(flag), f"{value!r} is not a date (YYYY-MM-DD)") from None


def check_dates(params: dict[str, Any]) -> None:
    """The date and window flags of a command checked before it opens anything, so a bad one
    is a usage error (exit 2) even when the ledger is missing too: ``--period``, ``--from``,
    ``--to`` (a window), ``--as-of`` and ``--day`` (a day)."""
    from tailguard.analytics.period import window

    def text(name: str) -> str | None:
        v = params.get(name)
        return v if isinstance(v, str) else None

    if any(text(n) for n in ("period", "date_from", "date_to")):
        window(text("period"), text("date_from"), text("date_to"))
    for name in ("as_of", "day"):
        parse_date(text(name), flag_for(name))


def load_policy_option(flag: str | None) -> Policy | None:
    """The guard policy of ``--policy`` / ``TAILGUARD_POLICY`` / the config file, or ``None``."""
    from tailguard.config import setting

    path = setting("policy", flag)
    if not path:
        return None
    from tailguard.guard.policy import load_policy

    return load_policy(path)
