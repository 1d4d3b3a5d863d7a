"""The Typer application and the exit-code boundary."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

import typer

try:  # Typer >= 0.22 vendors click; its exception classes live here
    from typer._click import exceptions as tex
except ImportError:  # pragma: no cover - older Typer on real click
    from click import exceptions as tex  # type: ignore[no-redef]

from tailguard.cli.options import flag_for
from tailguard.errors import ArgumentError, InputError, TailguardError, UnknownModelError

app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[env TAILGUARD_LEDGER]" is not Rich markup
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
    """Print the installed version.

    Example: tailguard version
    """
    from importlib.metadata import version as _v

    typer.echo(_v("tailguard"))


def _register() -> None:
    # Each room's commands live in their own module; importing registers them on ``app``.
    from tailguard.cli import (  # noqa: F401
        collect,
        demo,
        diagnose,
        finops,
        gateway,
        guard,
        imports,
        ledger,
        panel,
        price,
        report,
        simulate,
        tail,
        ui,
    )


_register()


#: ``path:0: <file>: reason``: a problem with a whole file, which has no line to point at
_FILE_PROBLEM = re.compile(r"^(?P<path>.*):0: <file>: (?P<reason>.*)$")
#: problems shown before "... and N more"
_MAX_PROBLEMS = 50


def _problem_line(problem: str) -> str:
    """A problem as shown: ``path: reason`` when it concerns the whole file (no ``:0: <file>``)."""
    m = _FILE_PROBLEM.match(problem)
    return f"{m['path']}: {m['reason']}" if m else problem


def _report(exc: TailguardError) -> int:
    """Print one error once, the way a command-line user needs it; return its exit code."""
    message = str(exc)
    if isinstance(exc, ArgumentError):
        flag, reason = flag_for(exc.argument), exc.reason
        named = reason.startswith(exc.argument)  # "days must be ..." -> "--days must be ..."
        message = flag + reason[len(exc.argument) :] if named else f"{flag}: {reason}"
    elif isinstance(exc, UnknownModelError):
        message += "\nPass the file with --prices FILE, or set TAILGUARD_PRICES."
    elif isinstance(exc, InputError):
        lines = [_problem_line(p) for p in exc.problems]
        if lines != [message]:  # one problem that is the whole message is said once, below
            for line in lines[:_MAX_PROBLEMS]:
                typer.echo(line, err=True)
            if len(lines) > _MAX_PROBLEMS:
                typer.echo(f"... and {len(lines) - _MAX_PROBLEMS} more", err=True)
    typer.echo(f"Error: {message}", err=True)
    return exc.exit_code


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code instead of exiting.

    The one boundary where failures become exit codes: 0 success, 1 an expected failure (one
    message, no traceback), 2 a usage error (a bad flag or argument value, a bad date included),
    3 an unknown model (``price``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=args, prog_name="tailguard", standalone_mode=False)
    except TailguardError as exc:
        return _report(exc)
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
