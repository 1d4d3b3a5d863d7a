"""Helpers shared by the CLI tests: every leaf command of the app, walked from its click group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from tailguard.cli import app


def leaf_commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf command of the Typer app's click group, with its path."""
    subs = getattr(cmd, "commands", None)
    if subs is None:
        yield path, cmd
        return
    for name, sub in subs.items():
        yield from leaf_commands(sub, (*path, name))


#: every leaf command of ``tailguard``, keyed by its path (``("report", "customers")``)
COMMANDS = dict(leaf_commands(typer.main.get_command(app)))
