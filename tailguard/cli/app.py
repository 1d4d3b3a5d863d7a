"""The Typer application and the exit-code boundary."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

try:  # Typer >= 0.22 vendors click; its exception classes live here
    from typer._click import exceptions as tex
except ImportError:  # pragma: no cover - older Typer on real click
    from click import exceptions as tex  # type: ignore[no-redef]

from tailguard.errors import InputError, TailguardError

app = typer.Typer(
    name="tailguard",
    help="Per-customer unit economics for LLM spend, and the guardrails to act on it.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Per-customer unit economics for LLM spend, and the guardrails to act on it."""


@app.command()
def version() -> None:
    """Print the installed version.  Example: tailguard version"""
    from importlib.metadata import version as _v

    typer.echo(_v("tailguard"))


def _register() -> None:
    # Each room's commands live in their own module; importing registers them on ``app``.
    from tailguard.cli import (  # noqa: F401
        demo,
        diagnose,
        gateway,
        guard,
        ledger,
        panel,
        price,
        report,
        simulate,
        tail,
    )


_register()


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code instead of exiting."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=args, prog_name="tailguard", standalone_mode=False)
    except InputError as exc:
        for line in exc.problems[:50]:
            typer.echo(line, err=True)
        if len(exc.problems) > 50:
            typer.echo(f"... and {len(exc.problems) - 50} more", err=True)
        typer.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except TailguardError as exc:
        typer.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except tex.UsageError as exc:
        exc.show()
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return 1
    except tex.ClickException as exc:
        exc.show()
        return getattr(exc, "exit_code", 1)
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())
